"""cipherdesk auth: how agents prove who they are and what they may do.

A pure library — no sockets, no event loop, no database. The gateway persists the
plain state values these functions take and return (hashes, TOTP steps, lockout
states, session timestamps) and runs the slow password hashing in a thread pool.
Everything time-dependent takes an injectable :data:`~auth.clock.Clock`.

Modules, one job each:

* :mod:`auth.clock` — the injectable clock type;
* :mod:`auth.emails` — canonical login e-mail addresses;
* :mod:`auth.passwords` — strength rules and argon2id hashing;
* :mod:`auth.totp` — TOTP enrolment (URI, QR codes) and replay-safe verification;
* :mod:`auth.recovery` — one-time recovery codes;
* :mod:`auth.tokens` — session tokens, session lifetime, CSRF tokens;
* :mod:`auth.lockout` — progressive delays and lockout against brute force;
* :mod:`auth.roles` — roles, permissions, tenant-scoped checks, the installation operator;
* :mod:`auth.identity` — verification of customers' identity tokens from the widget.
"""

from auth.clock import Clock, ManualClock, system_clock
from auth.emails import InvalidEmail, normalize_email
from auth.identity import IdentityError, IdentityVerifier, VerifiedIdentity, sign_identity
from auth.lockout import LockoutDecision, LockoutPolicy, LockoutState
from auth.passwords import PasswordHasher, PasswordPolicy, WeakPassword, check_password_strength
from auth.recovery import (
    InvalidRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
    normalize_recovery_code,
)
from auth.roles import (
    OPERATOR_SCOPE,
    Forbidden,
    InstallationPermission,
    Permission,
    Principal,
    Role,
    require,
    require_operator,
    role_permissions,
)
from auth.tokens import (
    SessionLifetime,
    SessionStatus,
    check_csrf,
    csrf_token_for,
    hash_token,
    new_session_token,
)
from auth.totp import TotpVerifier, new_totp_secret, provisioning_uri

__all__ = [
    "OPERATOR_SCOPE",
    "Clock",
    "Forbidden",
    "IdentityError",
    "IdentityVerifier",
    "InstallationPermission",
    "InvalidEmail",
    "InvalidRecoveryCode",
    "LockoutDecision",
    "LockoutPolicy",
    "LockoutState",
    "ManualClock",
    "PasswordHasher",
    "PasswordPolicy",
    "Permission",
    "Principal",
    "Role",
    "SessionLifetime",
    "SessionStatus",
    "TotpVerifier",
    "VerifiedIdentity",
    "WeakPassword",
    "check_csrf",
    "check_password_strength",
    "csrf_token_for",
    "generate_recovery_codes",
    "hash_recovery_code",
    "hash_token",
    "match_recovery_code",
    "new_session_token",
    "new_totp_secret",
    "normalize_email",
    "normalize_recovery_code",
    "provisioning_uri",
    "require",
    "require_operator",
    "role_permissions",
    "sign_identity",
    "system_clock",
]
