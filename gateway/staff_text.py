"""Free text typed by staff (incident titles and summaries, approval reasons, API-token
names) screened by the tenant's policy before it is stored.

These texts are shown to other admins, kept in the audit log and exported to a SIEM; a
customer's phone number pasted into an approval reason would otherwise stay there as typed.
They are screened as an agent's message would be and masked for the ``export`` audience
(records kept outside the chat: phones ``138****5678``, e-mails, names, addresses by
default). Text the policy blocks (a card number, for agents) is refused with
``400 policy_blocked`` naming the field -- a record that reads ``[removed]`` helps nobody.
"""

from __future__ import annotations

from gateway.http.public import ApiError
from gateway.policy.fields import REMOVED, screen_text
from gateway.services import Services


async def screen_staff_text(svc: Services, tenant_id: str, value: str, field: str) -> str:
    """``value`` masked by ``tenant_id``'s policy (the default policy for the installation
    operator, who belongs to no tenant); ``ApiError`` 400 ``policy_blocked`` if blocked."""
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        engine = await svc.policies.default_engine()
    else:
        engine = await svc.policies.engine(tenant.id, tenant.settings)
    screened = screen_text(engine, value, "agent", audience="export")
    if screened == REMOVED and value != REMOVED:
        raise ApiError(
            400,
            "policy_blocked",
            f"{field}: the policy does not allow what this text contains "
            "(for example a card number); describe it without that data",
            field=field,
        )
    return screened
