"""Free text typed by staff (incident titles and summaries, approval reasons, API-token
names, agents' display names) screened by the tenant's policy before it is stored.

These texts are shown to other admins, kept in the audit log and exported to a SIEM; a
customer's phone number pasted into an approval reason would otherwise stay there as typed.
They are screened as an agent's message would be and masked for the ``export`` audience
(records kept outside the chat: phones ``138****5678``, e-mails, names, addresses by
default; display names keep the person's name) by ``gateway/staff_screen.py``. Text the
policy blocks (a card number, for agents) is refused with ``400 policy_blocked`` naming
the field -- a record that reads ``[removed]`` helps nobody.
"""

from __future__ import annotations

from gateway.http.public import ApiError
from gateway.services import Services


async def screen_staff_text(svc: Services, tenant_id: str, value: str, field: str) -> str:
    """``value`` masked by ``tenant_id``'s policy (gateway/staff_screen.py); ``ApiError``
    400 ``policy_blocked`` naming ``field`` if blocked."""
    return _allowed(await svc.staff_screen.screen(tenant_id, value), field)


async def screen_display_name(
    svc: Services, tenant_id: str, value: str | None, field: str
) -> str | None:
    """A display name as given (stripped) through the policy, a person's name in it left
    alone; None when none or blank was given; ``ApiError`` 400 ``policy_blocked`` if
    blocked."""
    name = (value or "").strip()
    if not name:
        return None
    return _allowed(await svc.staff_screen.display_name(tenant_id, name), field)


def _allowed(screened: str | None, field: str) -> str:
    if screened is None:
        raise ApiError(
            400,
            "policy_blocked",
            f"{field}: the policy does not allow what this text contains "
            "(for example a card number); describe it without that data",
            field=field,
        )
    return screened
