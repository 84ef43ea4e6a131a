"""Time-based one-time passwords (RFC 6238) for the agents' second factor.

Enrolment: :func:`new_totp_secret`, then show :func:`provisioning_uri` as a QR code
(rendered by :mod:`gateway.qr` for the web console and the CLI) and confirm
with a first code. Login: :meth:`TotpVerifier.verify` with the last step the agent
used, and store the step it returns.

Codes are SHA-1, 6 digits, 30-second steps: the parameters every authenticator app
supports. A code is accepted one step early or late (clock drift and typing time),
and each step is accepted at most once per agent (RFC 6238 §5.2), which stops an
observed code from being replayed within its window.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from dataclasses import dataclass, field

import pyotp

from auth.clock import Clock

__all__ = [
    "TotpVerifier",
    "new_totp_secret",
    "provisioning_uri",
]

SECRET_BYTES = 20
"""160 bits: RFC 4226's recommended secret size for HMAC-SHA1."""


def new_totp_secret() -> str:
    """Return a fresh random secret, base32 without padding (32 characters).

    The secret must be stored encrypted or at least access-controlled: anyone who
    reads it can produce valid codes.
    """
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, email: str, issuer: str = "cipherdesk") -> str:
    """Return the ``otpauth://totp/...`` URI that authenticator apps import.

    The issuer appears both as the label prefix and as the ``issuer`` parameter,
    so apps group and name the entry consistently.
    """
    _secret_bytes(secret)
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def _secret_bytes(secret: str) -> bytes:
    """Decode a base32 secret, raising ValueError for a corrupt one."""
    try:
        padded = secret.upper() + "=" * (-len(secret) % 8)
        raw = base64.b32decode(padded, casefold=False)
    except (binascii.Error, AttributeError, TypeError) as exc:
        raise ValueError("TOTP secret is not valid base32") from exc
    if len(raw) < 10:
        raise ValueError("TOTP secret is shorter than 80 bits")
    return raw


@dataclass(frozen=True, slots=True)
class TotpVerifier:
    """Checks TOTP codes against an injectable clock.

    ``valid_window`` is how many steps before and after the current one are
    accepted (1 = ±30 s). Steps are integers ``floor(unix_time / step)``; the
    gateway stores, per agent, the last step accepted and passes it back to
    :meth:`verify`.
    """

    clock: Clock = field(default=time.time)
    step: int = 30
    digits: int = 6
    valid_window: int = 1

    def __post_init__(self) -> None:
        if self.step <= 0 or not 6 <= self.digits <= 10 or self.valid_window < 0:
            raise ValueError("TotpVerifier needs step > 0, 6 <= digits <= 10, valid_window >= 0")

    def _totp(self, secret: str) -> pyotp.TOTP:
        _secret_bytes(secret)
        return pyotp.TOTP(secret, digits=self.digits, interval=self.step)

    def current_code(self, secret: str, at: float | None = None) -> str:
        """The code for time ``at`` (default: the clock's now); for tests and the CLI."""
        when = self.clock() if at is None else at
        return self._totp(secret).generate_otp(int(when // self.step))

    def match_step(self, secret: str, code: str) -> int | None:
        """Return the time step ``code`` belongs to within the window, or None.

        Accepts surrounding whitespace and inner spaces (``"123 456"``), nothing
        else: any non-ASCII-digit or a wrong length is a miss. Every candidate is
        compared in constant time, and all candidates are always compared.
        """
        totp = self._totp(secret)
        if not isinstance(code, str):
            return None
        cleaned = code.strip().replace(" ", "")
        if len(cleaned) != self.digits or not (cleaned.isascii() and cleaned.isdigit()):
            return None
        now_step = int(self.clock() // self.step)
        found: int | None = None
        for offset in range(-self.valid_window, self.valid_window + 1):
            candidate = now_step + offset
            if candidate < 0:
                continue
            expected = totp.generate_otp(candidate)
            if hmac.compare_digest(expected.encode(), cleaned.encode()) and found is None:
                found = candidate
        return found

    def verify(self, secret: str, code: str, last_used_step: int) -> int | None:
        """Return the matched step if it is newer than ``last_used_step``, else None.

        Refusing steps at or before the last one used makes every code single-use
        (and also refuses older codes once a newer one was accepted). Store the
        returned step as the agent's new ``last_used_step``; use ``-1`` for an
        agent who never logged in.
        """
        matched = self.match_step(secret, code)
        if matched is None or matched <= last_used_step:
            return None
        return matched
