"""Approvals for sensitive access (handbook rule 5: approval before accessing customer data).

Per tenant (``settings["approvals"] = {"mode", "ttl_minutes"}``):

* ``off`` (default, the behaviour before approvals existed): access is only audited;
* ``reason``: the actor must state a reason first; the grant is approved at once;
* ``two_person``: a reason, and a *second* person (supervisor or admin, never the
  requester) approves before the access works.

A grant covers one action on one target for one person and expires (default 30 min).
Until a live grant exists, the API answers ``403 approval_required``. Requests,
decisions and reasons are audited, so "who looked at what, why, and who agreed" is in
the tamper-evident log.

Covered actions: reading a flagged original (``flag.view_original``, target = flag id),
erasing a chat (``chat.erase``, target = chat id), erasing every chat of a customer
(``customer.erase``, target = the ``customer_ref`` the 403 answer names: a keyed hash,
never the customer's identifier), exporting them (``customer.export``, the same target)
and opening another agent's transcript
over the console socket — ``watch``, or ``history`` of a chat not assigned to oneself
(``transcript.read``, target = chat id; refused with the error frame
``approval_required``), and granting a plugin customers' identities — configuring or
enabling a plugin whose instance would hold the ``customer.identity`` scope when the
current configuration does not (``plugin.identity``, target = the plugin's name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth.roles import Permission, Principal
from gateway.audit import Auditor
from gateway.store.base import AccessGrant, Store

ACTIONS = frozenset(
    {
        "flag.view_original",
        "chat.erase",
        "customer.erase",
        "customer.export",
        "transcript.read",
        "plugin.identity",
    }
)
MODES = ("off", "reason", "two_person")
DEFAULT_TTL_MINUTES = 30
MIN_REASON, MAX_REASON = 10, 500


class ApprovalError(Exception):
    """``code``: ``approval_required`` (403), ``invalid_request`` (400), ``not_found`` (404),
    ``not_pending`` (409), ``self_approval`` / ``forbidden`` (403)."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str
    ttl: float  # seconds

    @classmethod
    def of(cls, settings: dict[str, Any]) -> Policy:
        found = settings.get("approvals")
        raw: dict[str, Any] = found if isinstance(found, dict) else {}
        mode = str(raw["mode"]) if raw.get("mode") in MODES else "off"
        ttl = raw.get("ttl_minutes")
        minutes = (
            ttl
            if isinstance(ttl, int) and not isinstance(ttl, bool) and 1 <= ttl <= 24 * 60
            else DEFAULT_TTL_MINUTES
        )
        return cls(mode=mode, ttl=minutes * 60.0)


def validate_policy(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"mode", "ttl_minutes"}:
        raise ValueError("approvals takes mode and ttl_minutes")
    if value.get("mode") not in MODES:
        raise ValueError("approvals.mode is off, reason or two_person")
    ttl = value.get("ttl_minutes", DEFAULT_TTL_MINUTES)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= 24 * 60:
        raise ValueError("approvals.ttl_minutes is 1-1440")
    return {"mode": value["mode"], "ttl_minutes": ttl}


class Approvals:
    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clock: Callable[[], float],
        settings_of: Callable[[str], Any],
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._clock = clock
        self._settings_of = settings_of

    async def _policy(self, tenant_id: str) -> Policy:
        return Policy.of(await self._settings_of(tenant_id))

    async def request(
        self, principal: Principal, action: str, target: str, reason: str, ip: str | None = None
    ) -> AccessGrant:
        reason = " ".join(reason.split()) if isinstance(reason, str) else ""
        if action not in ACTIONS:
            raise ApprovalError("invalid_request", f"action is one of {sorted(ACTIONS)}")
        if not isinstance(target, str) or not 1 <= len(target) <= 128:
            raise ApprovalError("invalid_request", "target must be 1-128 characters")
        if not MIN_REASON <= len(reason) <= MAX_REASON:
            raise ApprovalError(
                "invalid_request", f"give a reason of {MIN_REASON}-{MAX_REASON} characters"
            )
        policy = await self._policy(principal.tenant_id)
        now = self._clock()
        immediate = policy.mode != "two_person"
        grant = AccessGrant(
            tenant_id=principal.tenant_id,
            requester=principal.agent_id,
            action=action,
            target=target,
            reason=reason,
            state="approved" if immediate else "pending",
            created_at=now,
            approver=principal.agent_id if immediate else None,
            decided_at=now if immediate else None,
            expires_at=now + policy.ttl if immediate else None,
        )
        grant.id = await self._store.add_grant(grant)
        await self._auditor.record(
            "approval.requested",
            tenant_id=principal.tenant_id,
            actor=principal.agent_id,
            target=target,
            ip=ip,
            grant=grant.id,
            access=action,
            reason=reason,
            mode=policy.mode,
        )
        return grant

    async def decide(
        self, principal: Principal, grant_id: int, approve: bool, ip: str | None = None
    ) -> AccessGrant:
        grant = await self._store.get_grant(grant_id)
        if grant is None or grant.tenant_id != principal.tenant_id:
            raise ApprovalError("not_found", "no such request")
        if not principal.can(Permission.CHAT_WATCH, grant.tenant_id):
            raise ApprovalError("forbidden", "only supervisors and admins approve access")
        if grant.requester == principal.agent_id:
            raise ApprovalError("self_approval", "a second person must approve")
        policy = await self._policy(grant.tenant_id)
        now = self._clock()
        if not await self._store.decide_grant(
            grant_id,
            approved=approve,
            approver=principal.agent_id,
            now=now,
            expires_at=now + policy.ttl if approve else None,
        ):
            raise ApprovalError("not_pending", "the request was already decided")
        await self._auditor.record(
            "approval.approved" if approve else "approval.denied",
            tenant_id=grant.tenant_id,
            actor=principal.agent_id,
            target=grant.target,
            ip=ip,
            grant=grant.id,
            access=grant.action,
            requester=grant.requester,
        )
        decided = await self._store.get_grant(grant_id)
        assert decided is not None
        return decided

    async def require(self, principal: Principal, action: str, target: str) -> int | None:
        """Return the live grant's id (None when approvals are off), or raise
        ``approval_required``."""
        policy = await self._policy(principal.tenant_id)
        if policy.mode == "off":
            return None
        grant = await self._store.live_grant(
            principal.tenant_id, principal.agent_id, action, target, self._clock()
        )
        if grant is None:
            raise ApprovalError(
                "approval_required",
                "request access with a reason first (POST /api/approvals)"
                + (
                    " and wait for a second person to approve"
                    if policy.mode == "two_person"
                    else ""
                ),
                action=action,
                target=target,
                mode=policy.mode,
            )
        return grant.id
