"""Dormant accounts (issue 20.5): a tenant setting disables accounts unused for N days.

Unused credentials are what attackers reuse (a leaver's account nobody noticed). A tenant
admin sets ``dormant_disable_days`` (7 to 3650; unset = off) in the tenant settings. An
account is dormant when its last login — or its creation, if it never logged in — is that
many days old. It is enforced twice, both on the gateway's injectable clock:

* at login (:func:`refuse_if_dormant`, called by ``LoginService.login`` after the
  credentials were checked): the account is disabled instead of let in;
* by :class:`DormancySweep`, a worker running with the retention interval, which disables
  dormant accounts (sessions revoked, live sockets closed 4401) before anyone tries.

Never disabled: the installation operator (no tenant), and a tenant's last enabled admin
(the tenant would be locked out of its own administration; it is logged instead).
Every disabling is audited as ``agent.disabled`` by ``system`` with reason ``dormant``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from auth.roles import Role
from gateway.periodic import Periodic
from gateway.store.base import Agent, Store, Tenant

if TYPE_CHECKING:
    from gateway.logins import LoginService

log = structlog.get_logger("cipherdesk.dormancy")

SETTING = "dormant_disable_days"
MIN_DAYS = 7
MAX_DAYS = 3650
DAY = 86_400.0


def dormant_days(tenant: Tenant | None) -> int | None:
    """The tenant's limit in days, or None when the rule is off (or the value is junk)."""
    raw: Any = (tenant.settings or {}).get(SETTING) if tenant is not None else None
    if isinstance(raw, bool) or not isinstance(raw, int) or not MIN_DAYS <= raw <= MAX_DAYS:
        return None
    return raw


@dataclass(frozen=True, slots=True)
class Activity:
    """How long an account has been unused, as admins see it."""

    last_login_at: float | None
    idle_days: float
    dormant: bool


def activity(
    agent: Agent, last_login_at: float | None, limit_days: int | None, now: float
) -> Activity:
    """Idle time since the last login (or creation) and whether it passes the limit."""
    since = last_login_at if last_login_at is not None else agent.created_at
    idle = max(0.0, now - since) / DAY
    return Activity(last_login_at, idle, limit_days is not None and idle >= limit_days)


async def _spared(store: Store, agent: Agent) -> bool:
    """The last enabled admin of a tenant is never disabled by this rule."""
    if agent.role != Role.ADMIN.value:
        return False
    admins = [
        a
        for a in await store.list_agents(agent.tenant_id)
        if a.role == Role.ADMIN.value and not a.disabled
    ]
    return len(admins) <= 1


async def refuse_if_dormant(logins: LoginService, agent: Agent, now: float) -> bool:
    """True (and the account disabled) if ``agent`` is dormant under its tenant's rule."""
    if agent.role == Role.OPERATOR.value:
        return False
    limit = dormant_days(await logins.store.get_tenant(agent.tenant_id))
    if limit is None:
        return False
    last = (await logins.store.last_logins(agent.tenant_id)).get(agent.id)
    if not activity(agent, last, limit, now).dormant or await _spared(logins.store, agent):
        return False
    await logins.set_disabled(agent, True, actor="system", reason="dormant")
    return True


class DormancySweep:
    """Disables dormant accounts of every tenant that set the rule, every interval."""

    def __init__(self, logins: LoginService, interval: float, clock: Callable[[], float]) -> None:
        self._logins = logins
        self._clock = clock
        self._periodic = Periodic(
            "dormancy-sweep", interval, self.run_once, failure_event="dormancy_sweep_failed"
        )

    async def run_once(self) -> int:
        """Disable every dormant account now; returns how many were disabled."""
        store = self._logins.store
        now = self._clock()
        disabled = 0
        for tenant in await store.list_tenants():
            limit = dormant_days(tenant)
            if limit is None:
                continue
            last = await store.last_logins(tenant.id)
            for agent in await store.list_agents(tenant.id):
                if agent.disabled or agent.role == Role.OPERATOR.value:
                    continue
                if not activity(agent, last.get(agent.id), limit, now).dormant:
                    continue
                if await _spared(store, agent):
                    log.warning("dormant_last_admin_spared", tenant=tenant.id, agent=agent.id)
                    continue
                await self._logins.set_disabled(agent, True, actor="system", reason="dormant")
                disabled += 1
        if disabled:
            log.info("dormant_accounts_disabled", count=disabled)
        return disabled

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
