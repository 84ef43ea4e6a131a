"""Service quality (issue 15.4): what a support lead measures, from facts with no text.

A chat carries its own quality facts (``chats`` columns, migration 0013): creation, first
accept, first agent reply, close, transfers and the customer's rating. From them:

* **queue wait** = first accept - creation; **first response** = first agent reply -
  first accept; **handle time** = close - first accept;
* **CSAT** 1-5 (with an optional comment, policy-screened and sealed with the chat key);
  a rating given after the agent closed is recorded too and emitted as ``chat.rated``;
* **reopen within N days** (first-contact-resolution proxy): the same customer (same
  customer key, 0008: verified ``sub`` or e-mail) opened another chat within
  ``reopen_days`` of the close;
* **SLA targets** per tenant (queue wait, first response): :class:`SlaWatch` raises an
  ``alert.sla_*`` once per chat when one passes (through the anomaly engine's hooks:
  audit, admin live stream, Prometheus, notification channels), and the report counts
  the breaches.

:func:`build_report` groups the facts by agent, queue or day (in the caller's time zone)
and :func:`report_csv` renders them for spreadsheets; ``GET /api/quality`` serves both.
:class:`QualityMetrics` feeds the Prometheus histograms as chats move. Everything takes
an injectable clock; the figures are tested exactly on a scripted chat.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import structlog
from msgspec import Meta

from gateway.governance.alerts import AlertEngine, Rule
from gateway.metrics import Metrics
from gateway.overrides import set_fields
from gateway.periodic import Periodic
from gateway.store.base import QualityFacts, Store, Tenant

log = structlog.get_logger("cipherdesk.quality")

SETTING = "quality"
"""Where a tenant's targets live in its settings."""

Group = Literal["agent", "queue", "day"]
GROUPS: tuple[Group, ...] = ("agent", "queue", "day")

MAX_RANGE_DAYS = 92
"""A report spans at most a quarter (one query, grouped in memory)."""
MAX_CHATS = 200_000
"""Facts read for one report; a larger range is reported as truncated."""

SLA_QUEUE_BIT = 1
SLA_REPLY_BIT = 2
SLA_BATCH = 500

COMMENT_PURPOSE = "csat_comment"
"""Sealing context of a rating comment (with the chat key and id)."""

_DAY = 86_400.0
_SLA_COOLDOWN = 90 * _DAY  # one alert per chat; the store's bit is the real guard

SLA_RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "sla_queue_wait",
            frozenset(),
            1,
            _SLA_COOLDOWN,
            "medium",
            "chat",
            description="a chat waited in the queue longer than the tenant's target",
        ),
        Rule(
            "sla_first_response",
            frozenset(),
            1,
            _SLA_COOLDOWN,
            "medium",
            "chat",
            description="an accepted chat waited for its first reply longer than the target",
        ),
    )
}


class QualitySettings(msgspec.Struct, forbid_unknown_fields=True):
    """A tenant's targets (``PUT /api/governance/settings`` ``quality``); a field left
    out (or null) keeps the default. Seconds; 0 switches that SLA off."""

    queue_wait_sla_seconds: Annotated[int, Meta(ge=0, le=86_400)] | None = None
    first_response_sla_seconds: Annotated[int, Meta(ge=0, le=86_400)] | None = None
    reopen_days: Annotated[int, Meta(ge=1, le=90)] | None = None


def validate_quality(raw: Any) -> dict[str, int]:
    """Checked targets to store in ``settings["quality"]`` (unset fields dropped);
    ValueError names the offending field."""
    return set_fields(raw, QualitySettings, "quality")


@dataclass(frozen=True, slots=True)
class QualityPolicy:
    """A tenant's effective targets (its overrides over the defaults)."""

    queue_wait_sla: float = 180.0
    first_response_sla: float = 60.0
    reopen_days: int = 7

    @classmethod
    def of(cls, settings: dict[str, Any]) -> QualityPolicy:
        raw = settings.get(SETTING)
        try:
            own = validate_quality(raw) if isinstance(raw, dict) else {}
        except ValueError:
            own = {}  # a hand-edited junk value: the defaults, never a crash
        base = cls()
        return cls(
            queue_wait_sla=float(own.get("queue_wait_sla_seconds", base.queue_wait_sla)),
            first_response_sla=float(
                own.get("first_response_sla_seconds", base.first_response_sla)
            ),
            reopen_days=int(own.get("reopen_days", base.reopen_days)),
        )

    def as_json(self) -> dict[str, int]:
        return {
            "queue_wait_sla_seconds": int(self.queue_wait_sla),
            "first_response_sla_seconds": int(self.first_response_sla),
            "reopen_days": self.reopen_days,
        }


# ---------------------------------------------------------------------- figures


def queue_wait(f: QualityFacts) -> float | None:
    return None if f.accepted_at is None else max(0.0, f.accepted_at - f.created_at)


def first_response(f: QualityFacts) -> float | None:
    if f.accepted_at is None or f.first_response_at is None:
        return None
    return max(0.0, f.first_response_at - f.accepted_at)


def handle_time(f: QualityFacts) -> float | None:
    if f.accepted_at is None or f.closed_at is None:
        return None
    return max(0.0, f.closed_at - f.accepted_at)


def queue_breached(f: QualityFacts, policy: QualityPolicy, now: float) -> bool:
    """Waited longer than the target for the first accept (still waiting counts)."""
    if policy.queue_wait_sla <= 0:
        return False
    end = f.accepted_at if f.accepted_at is not None else (f.closed_at or now)
    return end - f.created_at > policy.queue_wait_sla


def reply_breached(f: QualityFacts, policy: QualityPolicy, now: float) -> bool:
    """Accepted, and the first reply came (or has not come) later than the target."""
    if policy.first_response_sla <= 0 or f.accepted_at is None:
        return False
    end = f.first_response_at if f.first_response_at is not None else (f.closed_at or now)
    return end - f.accepted_at > policy.first_response_sla


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 1)


@dataclass(slots=True)
class QualityRow:
    """The figures of one group (an agent, a queue or a day) or of the whole range.

    Times are seconds (None when no chat of the group has the figure); ``reopened``
    counts closed chats whose customer came back within ``reopen_days``."""

    key: str
    label: str
    chats: int = 0
    answered: int = 0
    unanswered: int = 0  # closed without ever being accepted (abandoned)
    queue_wait_avg: float | None = None
    queue_wait_p90: float | None = None
    first_response_avg: float | None = None
    first_response_p90: float | None = None
    handle_avg: float | None = None
    transfers: int = 0
    rated: int = 0
    csat_avg: float | None = None
    closed: int = 0
    reopened: int = 0
    sla_queue_breaches: int = 0
    sla_first_response_breaches: int = 0


@dataclass(slots=True)
class _Acc:
    row: QualityRow
    waits: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)

    def add(self, f: QualityFacts, reopened: bool, policy: QualityPolicy, now: float) -> None:
        row = self.row
        row.chats += 1
        if f.accepted_at is not None:
            row.answered += 1
        elif f.state == "closed":
            row.unanswered += 1
        for values, value in (
            (self.waits, queue_wait(f)),
            (self.replies, first_response(f)),
            (self.handles, handle_time(f)),
        ):
            if value is not None:
                values.append(value)
        row.transfers += f.transfers
        if f.csat is not None:
            self.ratings.append(f.csat)
        if f.closed_at is not None:
            row.closed += 1
            row.reopened += reopened
        row.sla_queue_breaches += queue_breached(f, policy, now)
        row.sla_first_response_breaches += reply_breached(f, policy, now)

    def finish(self) -> QualityRow:
        row = self.row
        row.queue_wait_avg, row.queue_wait_p90 = _mean(self.waits), _p90(self.waits)
        row.first_response_avg = _mean(self.replies)
        row.first_response_p90 = _p90(self.replies)
        row.handle_avg = _mean(self.handles)
        row.rated = len(self.ratings)
        row.csat_avg = round(sum(self.ratings) / len(self.ratings), 2) if self.ratings else None
        return row


@dataclass(slots=True)
class QualityReport:
    """One report: the rows of the chosen grouping and the range's totals."""

    group: Group
    since: float
    until: float
    timezone: str
    policy: QualityPolicy
    rows: list[QualityRow]
    total: QualityRow
    truncated: bool = False


def group_key(f: QualityFacts, group: Group, tz: zoneinfo.ZoneInfo) -> str:
    if group == "agent":
        return f.agent_id or ""
    if group == "queue":
        return f.queue
    return dt.datetime.fromtimestamp(f.created_at, tz).date().isoformat()


def build_report(
    facts: Iterable[QualityFacts],
    reopened: set[str],
    *,
    policy: QualityPolicy,
    group: Group,
    tz: zoneinfo.ZoneInfo,
    since: float,
    until: float,
    now: float,
    labels: dict[str, str] | None = None,
    truncated: bool = False,
) -> QualityReport:
    """Group ``facts`` (chats created in [since, until)) by ``group``; ``labels`` names
    the keys for people (agent display names; an unassigned chat's key is "")."""
    names = labels or {}
    groups: dict[str, _Acc] = {}
    total = _Acc(QualityRow(key="", label="total"))
    for f in facts:
        key = group_key(f, group, tz)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc(QualityRow(key=key, label=names.get(key, key)))
        came_back = f.chat_id in reopened
        acc.add(f, came_back, policy, now)
        total.add(f, came_back, policy, now)
    return QualityReport(
        group=group,
        since=since,
        until=until,
        timezone=tz.key,
        policy=policy,
        rows=[groups[k].finish() for k in sorted(groups)],
        total=total.finish(),
        truncated=truncated,
    )


CSV_COLUMNS = tuple(QualityRow.__dataclass_fields__)


def report_csv(report: QualityReport) -> str:
    """The rows and a final ``total`` row as CSV (UTF-8 text; the HTTP layer adds a BOM
    so spreadsheet programs read Chinese names right). Cells starting with ``= + - @``
    are prefixed with ``'``: an agent's display name must not become a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report.group, *CSV_COLUMNS[1:]])
    for row in [*report.rows, report.total]:
        writer.writerow([_cell(getattr(row, name)) for name in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


# ---------------------------------------------------------------------- live figures


class QualityMetrics:
    """Feeds the Prometheus histograms and counters as chats move (ChatService calls
    it at each step; each figure is observed once per chat because the store's
    compare-and-set steps decide who observes it)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def accepted(self, queue_seconds: float) -> None:
        self._m.queue_wait_seconds.observe(max(0.0, queue_seconds))

    def first_response(self, seconds: float) -> None:
        self._m.first_response_seconds.observe(max(0.0, seconds))

    def closed(self, handle_seconds: float | None) -> None:
        if handle_seconds is not None:
            self._m.handle_seconds.observe(max(0.0, handle_seconds))

    def rated(self, csat: int) -> None:
        self._m.csat_total.labels(rating=str(csat)).inc()

    def breached(self, kind: str) -> None:
        self._m.sla_breaches_total.labels(kind=kind).inc()


# ---------------------------------------------------------------------- SLA watch


class SlaWatch:
    """Every ``interval`` seconds, raises the SLA alerts of every tenant's open chats
    that passed a target: once per chat and target, across nodes (the store's
    compare-and-set bit), delivered like any other alert."""

    def __init__(
        self,
        store: Store,
        alerts: AlertEngine,
        clock: Callable[[], float],
        *,
        interval: float = 15.0,
        on_breach: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._clock = clock
        self._on_breach = on_breach or (lambda kind: None)
        self._periodic = Periodic("sla-watch", interval, self.run_once, failure_event="sla_failed")

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def run_once(self) -> int:
        """Check every tenant now; returns how many alerts were raised."""
        raised = 0
        for tenant in await self._store.list_tenants():
            raised += await self.check_tenant(tenant)
        return raised

    async def check_tenant(self, tenant: Tenant) -> int:
        policy = QualityPolicy.of(tenant.settings)
        now = self._clock()
        queue_cutoff = now - policy.queue_wait_sla if policy.queue_wait_sla > 0 else -1.0
        reply_cutoff = now - policy.first_response_sla if policy.first_response_sla > 0 else -1.0
        if queue_cutoff < 0 and reply_cutoff < 0:
            return 0
        raised = 0
        due = await self._store.sla_due(tenant.id, queue_cutoff, reply_cutoff, SLA_BATCH)
        for f in due:
            if f.state == "queued":  # waiting since the open or since sent back to a queue
                rule, bit, kind = SLA_RULES["sla_queue_wait"], SLA_QUEUE_BIT, "queue_wait"
                waited, target = now - f.waiting_since, policy.queue_wait_sla
            else:
                rule, bit, kind = SLA_RULES["sla_first_response"], SLA_REPLY_BIT, "first_response"
                # timed from the current assignment: a chat handed to another agent, or
                # taken again from a queue, gives that agent the whole target
                waited, target = now - (f.assigned_since or now), policy.first_response_sla
            if not await self._store.mark_sla_alerted(f.chat_id, bit):
                continue  # another node raised it
            self._on_breach(kind)
            await self._alerts.fire(
                rule,
                tenant.id,
                f.chat_id,
                1,
                {
                    "waited_seconds": int(waited),
                    "target_seconds": int(target),
                    "queue": f.queue,
                    "agent": f.agent_id,
                },
            )
            raised += 1
        return raised
