"""Retention: keep each class of data only as long as needed, then destroy it safely.

Handbook rule: collect the minimum, keep it only as long as needed. Every
``interval_seconds`` one job walks every tenant and applies its retention per data class
(installation defaults in ``[retention]``, overridden per tenant in the governance
settings, ``settings["retention"]``; 0 keeps a class forever):

``idle_chats``
    open chats with no message for ``idle_close_minutes`` are closed with reason
    ``idle`` through :meth:`ChatService.close_idle` (a system message to both sides,
    ``chat.closed`` to plugins); they then age like any closed chat.
``closed_chats``
    chats closed more than ``closed_chat_days`` ago are crypto-shredded (their data keys
    are deleted, so transcripts, identities and pending plugin events become
    unreadable), each erase audited. A chat whose erase fails is logged and retried on
    the next run; it never blocks the rest.
``flags``, ``delivered_outbox``, ``dead_letters``
    policy flags (sealed originals), delivered plugin events and dead letters older
    than ``flag_days`` / ``delivered_outbox_days`` / ``dead_letter_days`` are deleted.
``audit_log``
    audit rows older than the tenant's audit retention (never below 180 days) are purged
    behind a signed checkpoint (:func:`gateway.governance.auditchain.purge_expired`).

Each run returns what it destroyed per tenant and class (:class:`RetentionRun`) and, when
a :class:`~gateway.reports.ReportBook` is wired, signs one destruction report per tenant
that lost anything. The clock is injectable so tests run exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import structlog
from msgspec import Meta

from gateway.chats import ChatService
from gateway.config import RETENTION_BOUNDS, RetentionConfig
from gateway.governance.auditchain import Checkpointer, purge_expired, retention_days
from gateway.housekeeping import Housekeeping
from gateway.overrides import set_fields
from gateway.periodic import Periodic
from gateway.reports import ReportBook, SignedReport
from gateway.store.base import LifecycleCutoffs, Store, Tenant

log = structlog.get_logger("cipherdesk.retention")

DAY = 86_400.0
MINUTE = 60.0
BATCH = 200  # chats per store query
PURGE_BATCH = 500
"""Rows of each purged class deleted per transaction: a few milliseconds of SQLite's only
writer, so message appends go on between batches (and a failure loses no count)."""
SETTING = "retention"
"""Key of a tenant's retention overrides in ``tenant.settings``."""

DataClass = Literal[
    "idle_chats", "closed_chats", "flags", "delivered_outbox", "dead_letters", "audit_log"
]
DESTROYED: tuple[DataClass, ...] = (
    "closed_chats",
    "flags",
    "delivered_outbox",
    "dead_letters",
    "audit_log",
)
"""The classes a run destroys (idle chats are closed, not destroyed)."""
PURGED: tuple[DataClass, ...] = ("flags", "delivered_outbox", "dead_letters")
"""The classes :meth:`Store.purge_lifecycle` deletes (named as it counts them)."""


class RetentionSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A tenant's retention overrides (``PUT /api/governance/settings`` ``retention``);
    a field left out (or null) uses the installation default. Whole days / minutes,
    0 = keep forever (never auto-close). Bounds: :data:`gateway.config.RETENTION_BOUNDS`."""

    closed_chat_days: Annotated[int, Meta(ge=0, le=3650)] | None = None
    idle_close_minutes: Annotated[int, Meta(ge=0, le=43200)] | None = None
    flag_days: Annotated[int, Meta(ge=0, le=3650)] | None = None
    delivered_outbox_days: Annotated[int, Meta(ge=0, le=3650)] | None = None
    dead_letter_days: Annotated[int, Meta(ge=0, le=3650)] | None = None


def validate_retention(raw: Any) -> dict[str, int]:
    """Checked overrides to store in ``settings["retention"]`` (unset fields dropped);
    ValueError names the offending field. Takes the decoded body's struct or plain data."""
    return set_fields(raw, RetentionSettings, "retention")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One tenant's effective retention (overrides over installation defaults)."""

    closed_chat_days: float
    idle_close_minutes: float
    flag_days: float
    delivered_outbox_days: float
    dead_letter_days: float
    audit_days: float

    @classmethod
    def of(
        cls, settings: Mapping[str, Any], defaults: RetentionConfig, audit_default: float
    ) -> RetentionPolicy:
        """The policy of a tenant; a stored override that is out of bounds (written by
        an older release or by hand) is ignored in favour of the default."""
        found = settings.get(SETTING)
        overrides: Mapping[str, Any] = found if isinstance(found, dict) else {}

        def pick(name: str) -> float:
            value = overrides.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return float(getattr(defaults, name))
            if not 0 <= value <= RETENTION_BOUNDS[name]:
                return float(getattr(defaults, name))
            return float(value)

        return cls(
            closed_chat_days=pick("closed_chat_days"),
            idle_close_minutes=pick("idle_close_minutes"),
            flag_days=pick("flag_days"),
            delivered_outbox_days=pick("delivered_outbox_days"),
            dead_letter_days=pick("dead_letter_days"),
            audit_days=retention_days(dict(settings), audit_default),
        )

    def cutoffs(self, now: float) -> LifecycleCutoffs:
        def before(days: float) -> float | None:
            return None if days <= 0 else now - days * DAY

        return LifecycleCutoffs(
            flags_before=before(self.flag_days),
            delivered_before=before(self.delivered_outbox_days),
            dead_before=before(self.dead_letter_days),
        )

    def as_json(self) -> dict[str, float]:
        """The effective values, as the governance settings show them."""
        return {
            "closed_chat_days": self.closed_chat_days,
            "idle_close_minutes": self.idle_close_minutes,
            "flag_days": self.flag_days,
            "delivered_outbox_days": self.delivered_outbox_days,
            "dead_letter_days": self.dead_letter_days,
            "audit_days": self.audit_days,
        }


@dataclass(slots=True)
class RetentionRun:
    """What one run did: counts per tenant and class, and the reports it signed."""

    at: float
    counts: dict[str, dict[DataClass, int]] = field(default_factory=dict)
    reports: list[SignedReport] = field(default_factory=list)

    def add(self, tenant_id: str, data_class: DataClass, n: int) -> None:
        if n:
            per = self.counts.setdefault(tenant_id, {})
            per[data_class] = per.get(data_class, 0) + n

    def total(self, data_class: DataClass) -> int:
        """How many rows (chats for the chat classes) of a class the run handled."""
        return sum(per.get(data_class, 0) for per in self.counts.values())


class RetentionJob:
    """The retention worker; see the module docstring."""

    def __init__(
        self,
        store: Store,
        chats: ChatService,
        config: RetentionConfig,
        clock: Callable[[], float],
        housekeeping: Housekeeping | None = None,
        *,
        audit_default_days: float = 180.0,
        checkpointer: Checkpointer | None = None,
        reports: ReportBook | None = None,
        on_counted: Callable[[DataClass, int], None] | None = None,
    ) -> None:
        self._housekeeping = housekeeping
        self._store = store
        self._chats = chats
        self._config = config
        self._clock = clock
        self._audit_default = audit_default_days
        self._checkpointer = checkpointer
        self._reports = reports
        self._on_counted = on_counted or (lambda data_class, n: None)
        self._periodic = Periodic(
            "retention", config.interval_seconds, self._round, failure_event="retention_failed"
        )

    def policy(self, tenant: Tenant) -> RetentionPolicy:
        """The tenant's effective retention (also shown in its governance settings)."""
        return RetentionPolicy.of(tenant.settings, self._config, self._audit_default)

    async def run_once(self) -> RetentionRun:
        """Apply every tenant's retention to every class; see the module docstring.

        A tenant whose step fails is logged and retried on the next run; the other
        tenants go on, and what was destroyed before the failure is still reported."""
        now = self._clock()
        run = RetentionRun(at=now)
        erased: dict[str, list[str]] = {}
        try:
            for tenant in await self._store.list_tenants():
                try:
                    await self._tenant(run, erased, tenant, now)
                except Exception as exc:  # one line per tenant; the next run retries it
                    log.warning(
                        "retention_tenant_failed", tenant=tenant.id, error=type(exc).__name__
                    )
            if self._checkpointer is not None:
                purged_audit = await purge_expired(
                    self._store, self._checkpointer, now, self._audit_default
                )
                for chain, n in purged_audit.items():
                    run.add(chain, "audit_log", n)
        finally:
            await self._finish(run, erased)
        return run

    async def _tenant(
        self, run: RetentionRun, erased: dict[str, list[str]], tenant: Tenant, now: float
    ) -> None:
        policy = self.policy(tenant)
        if policy.idle_close_minutes > 0:
            cutoff = now - policy.idle_close_minutes * MINUTE
            run.add(tenant.id, "idle_chats", await self._close_idle(tenant.id, policy, cutoff))
        if policy.closed_chat_days > 0:
            ids = await self._erase_closed(tenant.id, now - policy.closed_chat_days * DAY)
            erased[tenant.id] = ids
            run.add(tenant.id, "closed_chats", len(ids))
        cutoffs = policy.cutoffs(now)
        while True:
            purged = await self._store.purge_lifecycle(tenant.id, cutoffs, PURGE_BATCH)
            for name in PURGED:  # counted batch by batch: the report holds what is gone
                run.add(tenant.id, name, purged.get(name, 0))
            if all(purged.get(name, 0) < PURGE_BATCH for name in PURGED):
                break

    async def _finish(self, run: RetentionRun, erased: dict[str, list[str]]) -> None:
        """Report, count and log what the run did (also after a failure midway)."""
        await self._report(run, erased)
        for data_class in (*DESTROYED, "idle_chats"):
            if n := run.total(data_class):
                self._on_counted(data_class, n)
        if run.counts:
            log.info("retention_run", **{c: run.total(c) for c in (*DESTROYED, "idle_chats")})

    async def _report(self, run: RetentionRun, erased: dict[str, list[str]]) -> None:
        if self._reports is None:
            return
        for tenant_id, per in sorted(run.counts.items()):
            counts: dict[str, int] = {c: per[c] for c in DESTROYED if per.get(c)}
            if counts:
                run.reports.append(
                    await self._reports.issue(
                        "retention",
                        tenant_id=tenant_id,
                        actor="retention",
                        counts=counts,
                        chats=erased.get(tenant_id, []),
                    )
                )

    async def _close_idle(self, tenant_id: str, policy: RetentionPolicy, cutoff: float) -> int:
        closed = 0
        failed: set[str] = set()
        while True:
            limit = BATCH + len(failed)
            found = await self._store.chats_idle_before(tenant_id, cutoff, limit=limit)
            batch = [chat_id for chat_id in found if chat_id not in failed]
            for chat_id in batch:
                try:
                    if await self._chats.close_idle(chat_id, tenant_id, policy.idle_close_minutes):
                        closed += 1
                    else:
                        failed.add(chat_id)  # closed meanwhile: it leaves the query anyway
                except Exception as exc:  # one line per chat; the next run retries it
                    failed.add(chat_id)
                    log.warning("retention_close_failed", chat=chat_id, error=type(exc).__name__)
            if not batch or len(found) < limit:
                return closed

    async def _erase_closed(self, tenant_id: str, cutoff: float) -> list[str]:
        """Erase the tenant's chats closed before ``cutoff``; returns the erased ids.

        A chat whose erase fails is logged, skipped for the rest of this run and retried
        on the next one: one bad row never stops the others from being destroyed.
        """
        erased: list[str] = []
        failed: set[str] = set()
        while True:
            # Failed chats stay first in the store's order: ask past them. Every chat of a
            # batch is either erased (it leaves the query) or failed, so this terminates.
            limit = BATCH + len(failed)
            found = await self._store.chats_closed_before(cutoff, limit=limit, tenant_id=tenant_id)
            batch = [chat_id for chat_id in found if chat_id not in failed]
            if not batch:
                break
            try:
                for chat_id in batch:
                    try:
                        if await self._chats.erase(chat_id, actor="retention", shred=False):
                            erased.append(chat_id)
                        else:
                            failed.add(chat_id)
                    except Exception as exc:  # one line per chat; the next run retries it
                        failed.add(chat_id)
                        log.warning(
                            "retention_erase_failed", chat=chat_id, error=type(exc).__name__
                        )
            finally:  # once per batch, not per chat (see Store.erase_chat)
                await self._store.shred_erased()
            if len(found) < limit:
                break
        if failed:
            log.info("retention_erase_incomplete", tenant=tenant_id, failed=len(failed))
        return erased

    async def _round(self) -> None:
        try:
            await self.run_once()
        finally:
            # Housekeeping runs even after a failed retention round (its own failure is
            # one warning line; the next interval tries again).
            if self._housekeeping is not None:
                try:
                    await self._housekeeping.run_once()
                except Exception as exc:
                    log.warning("housekeeping_failed", error=type(exc).__name__)

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
