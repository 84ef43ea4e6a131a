"""Creating and freezing tenants: installation-wide actions of the operator.

One implementation behind ``cipherdesk tenant add`` and the operator API
(``gateway/http/operator.py``), so both validate ids and origins the same way and audit
the same events. Tenant admins never reach these (issue 11.4); a tenant admin may still
freeze *their own* tenant from the emergency panel (``/api/emergency/freeze``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from auth.roles import OPERATOR_SCOPE
from gateway.bus.base import BusEvent, customers_topic, tenant_topic
from gateway.protocol import Service
from gateway.store.base import Conflict, Tenant
from gateway.tenants import normalize_origin

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
"""Tenant ids: 1-63 lowercase letters, digits, ``-`` or ``_``, starting alphanumeric."""

MIN_IDENTITY_SECRET_BYTES = 32


class TenantRefused(Exception):
    """A tenant request was refused; ``code`` is the API code, ``field`` the culprit."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class NewTenant:
    """What an operator asks for; validated by :func:`create_tenant`."""

    tenant_id: str
    name: str
    origins: tuple[str, ...] = ()
    identity_mode: str = "off"
    identity_secret: str | None = None


def normalized_origins(raw: tuple[str, ...] | list[str]) -> list[str]:
    """Origins in canonical form; :class:`TenantRefused` naming the first bad one."""
    out = []
    for value in raw:
        normalized = normalize_origin(value)
        if normalized is None:
            raise TenantRefused(
                "invalid_origin",
                f"not an origin: {value[:80]!r} (expected https://host[:port], no path)",
                "allowed_origins",
            )
        out.append(normalized)
    return sorted(set(out))


def is_real_tenant(tenant: Tenant) -> bool:
    """False for the operators' placeholder row (never listed as a tenant)."""
    return tenant.id != OPERATOR_SCOPE


async def create_tenant(
    svc: Any, request: NewTenant, *, actor: str, ip: str | None = None
) -> Tenant:
    """Validate, store and audit a new tenant (``tenant.created``)."""
    if not TENANT_ID.match(request.tenant_id):
        raise TenantRefused(
            "bad_request", "tenant ids are 1-63 lowercase letters, digits, '-' or '_'", "id"
        )
    name = request.name.strip()[:120]
    if not name:
        raise TenantRefused("bad_request", "a tenant needs a name", "name")
    if request.identity_mode not in ("off", "optional", "enforced"):
        raise TenantRefused(
            "bad_request", "identity mode is off, optional or enforced", "identity_mode"
        )
    secret = request.identity_secret
    if secret is not None and len(secret.encode()) < MIN_IDENTITY_SECRET_BYTES:
        raise TenantRefused(
            "invalid_secret", "identity secrets need at least 32 bytes", "identity_secret"
        )
    if request.identity_mode == "enforced" and secret is None:
        raise TenantRefused(
            "invalid_secret", "enforced identity needs an identity secret", "identity_secret"
        )
    tenant = Tenant(
        id=request.tenant_id,
        name=name,
        allowed_origins=normalized_origins(request.origins),
        identity_mode=request.identity_mode,
        created_at=svc.clock(),
    )
    if secret is not None:
        tenant.identity_secrets_sealed = svc.tenants.seal_identity_secrets(tenant.id, [secret])
    try:
        await svc.store.create_tenant(tenant)
    except Conflict:
        raise TenantRefused(
            "tenant_exists", f"tenant {request.tenant_id!r} already exists", "id"
        ) from None
    await svc.auditor.record(
        "tenant.created",
        tenant_id=tenant.id,
        actor=actor,
        ip=ip,
        target=tenant.id,
        origins=tenant.allowed_origins,
        identity_mode=tenant.identity_mode,
    )
    return tenant


async def set_frozen(
    svc: Any, tenant: Tenant, frozen: bool, *, actor: str, ip: str | None = None
) -> None:
    """Freeze (cut every chat and refuse new ones) or unfreeze a tenant, audited."""
    tenant.frozen = frozen
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "tenant.frozen" if frozen else "tenant.unfrozen",
        tenant_id=tenant.id,
        actor=actor,
        target=tenant.id,
        ip=ip,
    )
    # Live widgets learn it at once (a localised "service paused" banner), instead of a
    # silent failure on their next send.
    service = Service(state="paused" if frozen else "live")
    await svc.bus.publish(tenant_topic(tenant.id), BusEvent(kind="frozen", frame=service))
    await svc.bus.publish(
        customers_topic(tenant.id), BusEvent(kind="frame", frame=service, audience="customer")
    )
