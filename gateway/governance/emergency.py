"""Tenant-wide emergency actions (handbook rule 16: cut off, revoke, force credential
changes, record) — each audited and written into the tenant's incident record.

* :meth:`Emergency.revoke_all_sessions` revokes every agent session of the tenant (the
  acting admin's own session can be kept so the responder stays in control); live
  console sockets close with 4401 through the same bus ``revoke`` event a single-agent
  revocation uses, on every node.
* :meth:`Emergency.force_password_reset` marks agents so that, after their next login,
  the API answers ``403 password_change_required`` to everything but changing the
  password (with the step-up it may need; the console and admin page show their
  change-password form, and the console socket is refused) until they choose one; it also
  revokes their sessions so the rule applies at once.
* :meth:`Emergency.pause_plugins` is the plugin kill switch: the outbox dispatcher defers
  the tenant's events instead of delivering them (nothing is dropped; they go out after
  the switch is released).

Installation-wide actions (master-key rotation, freezing any tenant) belong to the
installation operator and are not here.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.audit import Auditor
from gateway.bus.base import Bus, BusEvent, agent_topic
from gateway.governance.incidents import Incidents
from gateway.store.base import Store

PLUGINS_PAUSED = "plugins_paused"
"""Tenant setting read by the outbox dispatcher (see :func:`plugins_paused`)."""


class Emergency:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        auditor: Auditor,
        incidents: Incidents,
        clock: Callable[[], float],
        invalidate_tenant: Callable[[str], None],
    ) -> None:
        self._store = store
        self._bus = bus
        self._auditor = auditor
        self._incidents = incidents
        self._clock = clock
        self._invalidate = invalidate_tenant

    async def revoke_all_sessions(
        self,
        tenant_id: str,
        actor: str,
        *,
        ip: str | None,
        keep_token_hash: str | None = None,
        reason: str = "emergency",
    ) -> int:
        """Revoke every session of every agent of the tenant; returns how many."""
        now = self._clock()
        revoked = 0
        for agent in await self._store.list_agents(tenant_id):
            if keep_token_hash is not None and agent.id == actor:
                hashes = []
                for session in await self._store.list_sessions(agent.id):
                    if (
                        session.revoked_at is None
                        and session.token_hash != keep_token_hash
                        and await self._store.revoke_session(session.token_hash, now)
                    ):
                        hashes.append(session.token_hash)
                if hashes:
                    await self._bus.publish(
                        agent_topic(agent.id), BusEvent(kind="revoke", sessions=hashes)
                    )
            else:
                hashes = await self._store.revoke_agent_sessions(agent.id, now)
                await self._bus.publish(
                    agent_topic(agent.id), BusEvent(kind="revoke", sessions=None)
                )
            revoked += len(hashes)
        await self._auditor.record(
            "emergency.sessions_revoked",
            tenant_id=tenant_id,
            actor=actor,
            target=tenant_id,
            ip=ip,
            count=revoked,
            reason=reason,
        )
        await self._incidents.note(
            tenant_id, actor, "emergency.sessions_revoked", {"sessions": revoked}
        )
        return revoked

    async def force_password_reset(
        self, tenant_id: str, actor: str, *, ip: str | None, keep_token_hash: str | None = None
    ) -> int:
        """Every agent of the tenant but the actor must change their password."""
        agents = [
            a.id
            for a in await self._store.list_agents(tenant_id)
            if a.id != actor and not a.disabled
        ]
        marked = await self._store.force_password_resets(agents, actor, self._clock())
        await self._auditor.record(
            "emergency.password_reset_forced",
            tenant_id=tenant_id,
            actor=actor,
            target=tenant_id,
            ip=ip,
            agents=marked,
        )
        await self._incidents.note(
            tenant_id, actor, "emergency.password_reset_forced", {"agents": marked}
        )
        await self.revoke_all_sessions(
            tenant_id, actor, ip=ip, keep_token_hash=keep_token_hash, reason="password_reset_forced"
        )
        return marked

    async def pause_plugins(
        self, tenant_id: str, paused: bool, actor: str, *, ip: str | None
    ) -> None:
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            return
        settings = dict(tenant.settings)
        if paused:
            settings[PLUGINS_PAUSED] = True
        else:
            settings.pop(PLUGINS_PAUSED, None)
        tenant.settings = settings
        await self._store.update_tenant(tenant)
        self._invalidate(tenant_id)
        action = "emergency.plugins_paused" if paused else "emergency.plugins_resumed"
        await self._auditor.record(
            action, tenant_id=tenant_id, actor=actor, target=tenant_id, ip=ip
        )
        await self._incidents.note(tenant_id, actor, action)


def plugins_paused(settings: dict[str, object]) -> bool:
    return settings.get(PLUGINS_PAUSED) is True
