"""Text that staff (or their company's directory) enter, through the tenant's policy.

Incident titles, approval reasons, API-token names -- and agents' display names, which
customers see when an agent joins, plugins receive with every agent message and exports
keep. An admin, an invite, a SCIM directory or a single sign-on provider sets a display
name; a card or phone number typed into one would otherwise travel everywhere as typed.

Each value is screened as an agent's message would be and masked for the ``export``
audience (records kept outside the chat: phones ``138****5678``, e-mails, addresses by
default). A display name is *meant* to hold a person's name, so for those the ``name``
detector's findings are left alone (it would mask every real name). Callers turn a
blocked value (``None``) into their protocol's error: 400 ``policy_blocked`` for the admin
API, ``invalidValue`` for SCIM, the e-mail's local part for a single sign-on claim.
"""

from __future__ import annotations

from gateway.policy import PolicyRegistry
from gateway.policy.fields import REMOVED, screen_text
from gateway.tenants import TenantDirectory

NAME_KINDS = frozenset({"name"})
"""Finding kinds a display-name field is for."""


class StaffTextScreen:
    """The tenant's policy applied to staff-entered text (see the module docstring)."""

    def __init__(self, tenants: TenantDirectory, policies: PolicyRegistry) -> None:
        self._tenants = tenants
        self._policies = policies

    async def screen(self, tenant_id: str, value: str) -> str | None:
        """``value`` masked by ``tenant_id``'s policy (the default policy for the
        installation operator, who belongs to no tenant); ``None`` when it is blocked."""
        return await self._screen(tenant_id, value, frozenset())

    async def display_name(self, tenant_id: str, value: str) -> str | None:
        """A display name: as :meth:`screen`, but a person's name in it is left alone."""
        return await self._screen(tenant_id, value, NAME_KINDS)

    async def _screen(self, tenant_id: str, value: str, expected: frozenset[str]) -> str | None:
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:
            engine = await self._policies.default_engine()
        else:
            engine = await self._policies.engine(tenant.id, tenant.settings)
        screened = screen_text(engine, value, "agent", audience="export", expected=expected)
        return None if screened == REMOVED and value != REMOVED else screened
