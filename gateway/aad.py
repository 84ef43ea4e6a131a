"""Additional authenticated data of the sealed columns that more than one module opens.

A sealed value is bound to where it belongs (whose TOTP secret, which tenant's identity
secret, which plugin's secrets): moved to another row it no longer opens. The readers
(``logins``, ``tenants``, ``plugin_host``), the master-key rotation (``keyrotation``) and
backup verification (``backup``) must agree byte for byte on that binding, so it is
defined once, here, instead of in the reader with the others importing its private name.
"""

from __future__ import annotations


def totp_aad(agent_id: str) -> bytes:
    """An agent's sealed TOTP secret."""
    return f"totp|{agent_id}".encode()


def totp_enrollment_aad(agent_id: str, token_hash: str) -> bytes:
    """A pending TOTP secret handed to the browser during enrolment (opaque token)."""
    return f"totp-enroll|{agent_id}|{token_hash}".encode()


def tenant_identity_aad(tenant_id: str) -> bytes:
    """A tenant's widget identity-token (HS256) secret."""
    return f"tenant-identity|{tenant_id}".encode()


def plugin_secrets_aad(tenant_id: str, plugin: str) -> bytes:
    """A tenant's sealed secrets of one plugin (API keys, webhook secrets)."""
    return f"plugin-secrets|{tenant_id}|{plugin}".encode()


def oidc_secret_aad(tenant_id: str) -> bytes:
    """A tenant's OpenID Connect client secret (single sign-on, issue 20.2)."""
    return f"oidc-secret|{tenant_id}".encode()


def oidc_refresh_aad(token_hash: str) -> bytes:
    """The identity provider's refresh token of one single sign-on session."""
    return f"oidc-refresh|{token_hash}".encode()
