"""Scoped API tokens for automation: format, hashing and scope rules (pure, no I/O).

An API token is ``cdt_`` followed by 256 random bits (URL-safe base64). Like a session
token, only its SHA-256 is stored (:func:`auth.tokens.hash_token`): a database dump
yields no usable token, and the token is shown exactly once, when it is created.

The ``cdt_`` prefix is what keeps a token out of places it must never work: the gateway
recognises it in ``Authorization: Bearer`` headers of the HTTP API only; as a cookie or on
the agent websocket it is looked up as a *session* token and finds nothing. It also makes
a leaked token easy to spot for secret scanners.

A token's scope is a subset of its creator's permissions (tenant permissions for a tenant
admin, installation permissions for the installation operator). The gateway intersects the
scope with the creator's *current* role on every use, so demoting or disabling the creator
shrinks or kills the token at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from auth.roles import InstallationPermission, Permission

__all__ = [
    "DEFAULT_LIFETIME_DAYS",
    "MAX_LIFETIME_DAYS",
    "MAX_NAME_LENGTH",
    "TOKEN_PREFIX",
    "ScopeError",
    "check_name",
    "check_scope",
    "is_api_token",
    "new_api_token",
    "new_token_id",
]

TOKEN_PREFIX = "cdt_"  # noqa: S105 - a public marker, not a secret
MAX_TOKEN_LENGTH = 64
DEFAULT_LIFETIME_DAYS = 90
MAX_LIFETIME_DAYS = 365
"""Tokens always expire: a forgotten automation credential must not live forever."""
MAX_NAME_LENGTH = 80


class ScopeError(ValueError):
    """A requested scope or name is refused; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def new_api_token() -> str:
    """A fresh token: ``cdt_`` + 43 characters of URL-safe base64 (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    """The public id of a token (listed, audited, used to revoke; grants nothing)."""
    return "tok_" + secrets.token_hex(8)


def is_api_token(presented: str | None) -> bool:
    """True if ``presented`` has the shape of an API token (not whether it is valid)."""
    return (
        isinstance(presented, str)
        and presented.startswith(TOKEN_PREFIX)
        and len(presented) <= MAX_TOKEN_LENGTH
    )


def check_name(raw: str) -> str:
    """The token's display name, stripped; control characters and empty names refused."""
    name = raw.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ScopeError("invalid_name", f"the name must be 1 to {MAX_NAME_LENGTH} characters")
    if any(not ch.isprintable() for ch in name):
        raise ScopeError("invalid_name", "the name must not contain control characters")
    return name


def check_scope(
    requested: Iterable[str], grantable: frozenset[Permission] | frozenset[InstallationPermission]
) -> frozenset[str]:
    """The requested permission names, if each is one the creator may grant.

    Unknown names and names outside ``grantable`` are refused alike (``invalid_scope``), so
    a tenant admin can never mint a token with installation permissions or vice versa.
    """
    allowed = {p.value for p in grantable}
    names = frozenset(requested)
    if not names:
        raise ScopeError("invalid_scope", "choose at least one permission")
    refused = sorted(names - allowed)
    if refused:
        raise ScopeError(
            "invalid_scope", f"not a permission you can grant: {', '.join(refused)[:200]}"
        )
    return names
