"""Anomaly rules over the audit stream, and what happens when one fires.

Each rule watches some audit actions, counts them per *subject* (an agent, a source IP,
a plugin) in a sliding window, and fires when the count reaches its threshold. Counting
reads the audit table, not node memory: on several gateway nodes every node sees every
node's events, and a restart forgets nothing. A rule fires at most once per window per
subject (the last alert's time is checked, and the ``dedup_key`` — rule, subject and
window bucket — is unique in the store, so two nodes racing cannot both fire).

A hit: an ``alerts`` row, an ``alert.<rule>`` audit event, a Prometheus counter, a
nudge on the bus (the admin page's live stream re-reads the list) and a notification
(:mod:`gateway.notify`). Thresholds and windows are tenant settings
(``settings["alert_rules"][rule] = {"threshold", "window", "enabled"}``), bounded below
so a tenant cannot switch on an alert storm.

The clock is injected; every rule is tested at threshold - 1 (silent), at threshold
(fires) and again within the window (silent).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.audit import Auditor
from gateway.store.base import Alert, AuditEvent, Store

log = structlog.get_logger("cipherdesk.alerts")

Subject = Callable[[AuditEvent], str | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's definition and defaults (tenants tune ``threshold`` and ``window``)."""

    name: str
    actions: frozenset[str]
    threshold: int
    window: float  # seconds
    severity: str
    subject: str  # "actor" | "ip" | "plugin" | "chat" (SLA rules) — what is counted per
    distinct: bool = False  # count distinct targets (spraying) instead of events
    description: str = ""
    cooldown: float | None = None  # once per this many seconds (default: the window)


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "bulk_transcript_access",
            frozenset({"transcript.opened", "flag.original_viewed"}),
            20,
            60.0,
            "high",
            "actor",
            description="one person opens many transcripts or flagged originals",
        ),
        Rule(
            "new_login_context",
            frozenset({"login.ok"}),
            1,
            30 * 86400.0,
            "medium",
            "actor",
            description="login from a network or browser not seen for this agent in the window",
            cooldown=3600.0,
        ),
        Rule(
            "off_hours_access",
            frozenset(
                {
                    "login.ok",
                    "transcript.opened",
                    "flag.original_viewed",
                    "chat.erased",
                    "audit.read",
                }
            ),
            1,
            3600.0,
            "low",
            "actor",
            description="access outside the tenant's working hours",
        ),
        Rule(
            "mass_erasure",
            frozenset({"chat.erased"}),
            10,
            600.0,
            "high",
            "actor",
            description="one person erases many chats",
        ),
        Rule(
            "login_spraying",
            frozenset({"login.failed"}),
            10,
            600.0,
            "high",
            "ip",
            distinct=True,
            description="failed logins from one address over many accounts",
        ),
        Rule(
            "blocked_messages",
            frozenset({"message.blocked"}),
            5,
            600.0,
            "medium",
            "actor",
            description="an agent sends many messages the policy blocks (phishing attempts)",
        ),
        Rule(
            "plugin_dead_letters",
            frozenset({"plugin.dead_lettered"}),
            10,
            600.0,
            "medium",
            "plugin",
            description="a plugin dead-letters many events",
        ),
    )
}

MIN_WINDOW = 60.0
MAX_WINDOW = 90 * 86400.0
MAX_THRESHOLD = 100_000
_WATCHED = frozenset().union(*(r.actions for r in RULES.values()))


@dataclass(frozen=True, slots=True)
class Tuning:
    enabled: bool
    threshold: int
    window: float


def tuning(rule: Rule, settings: dict[str, Any]) -> Tuning:
    """The tenant's tuning of ``rule``; malformed values fall back to the defaults."""
    raw = settings.get("alert_rules")
    own = raw.get(rule.name) if isinstance(raw, dict) else None
    own = own if isinstance(own, dict) else {}
    threshold, window = own.get("threshold"), own.get("window")
    return Tuning(
        enabled=own.get("enabled", True) is not False,
        threshold=threshold
        if isinstance(threshold, int)
        and not isinstance(threshold, bool)
        and 1 <= threshold <= MAX_THRESHOLD
        else rule.threshold,
        window=float(window)
        if isinstance(window, int | float)
        and not isinstance(window, bool)
        and MIN_WINDOW <= window <= MAX_WINDOW
        else rule.window,
    )


def validate_rules(value: Any) -> dict[str, dict[str, Any]]:
    """Check an ``alert_rules`` object from an admin; raises ValueError with the field."""
    if not isinstance(value, dict):
        raise ValueError("alert_rules must be an object")
    out: dict[str, dict[str, Any]] = {}
    for name, conf in value.items():
        if name not in RULES:
            raise ValueError(f"unknown rule {str(name)[:64]!r}")
        if not isinstance(conf, dict) or set(conf) - {"threshold", "window", "enabled"}:
            raise ValueError(f"{name}: only threshold, window and enabled can be set")
        t, w, e = conf.get("threshold"), conf.get("window"), conf.get("enabled")
        if t is not None and (
            not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= MAX_THRESHOLD
        ):
            raise ValueError(f"{name}.threshold must be an integer 1-{MAX_THRESHOLD}")
        if w is not None and (
            not isinstance(w, int | float)
            or isinstance(w, bool)
            or not MIN_WINDOW <= w <= MAX_WINDOW
        ):
            raise ValueError(f"{name}.window must be {int(MIN_WINDOW)}-{int(MAX_WINDOW)} s")
        if e is not None and not isinstance(e, bool):
            raise ValueError(f"{name}.enabled must be true or false")
        out[name] = {k: v for k, v in conf.items() if v is not None}
    return out


# ---------------------------------------------------------------------- working hours

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """``{"start": "09:00", "end": "18:00", "days": [1..7 ISO weekdays], "tz": "Asia/Shanghai"}``"""

    start: int  # minutes after midnight
    end: int
    days: frozenset[int]
    tz: zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, value: Any) -> WorkingHours:
        if not isinstance(value, dict) or set(value) - {"start", "end", "days", "tz"}:
            raise ValueError("working_hours needs start, end, days and tz")
        start, end = (_HHMM.match(str(value.get(k, ""))) for k in ("start", "end"))
        if start is None or end is None:
            raise ValueError("working_hours start/end look like 09:00")
        days = value.get("days", [1, 2, 3, 4, 5])
        if (
            not isinstance(days, list)
            or not days
            or any(not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7 for d in days)
        ):
            raise ValueError("working_hours days are ISO weekdays 1 (Monday) to 7")
        try:
            tz = zoneinfo.ZoneInfo(str(value.get("tz", "UTC"))[:64])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("working_hours tz must be an IANA zone like Asia/Shanghai") from None
        return cls(
            int(start[1]) * 60 + int(start[2]), int(end[1]) * 60 + int(end[2]), frozenset(days), tz
        )

    def contains(self, ts: float) -> bool:
        local = dt.datetime.fromtimestamp(ts, self.tz)
        minute = local.hour * 60 + local.minute
        if self.start <= self.end:
            inside = self.start <= minute < self.end
            return inside and local.isoweekday() in self.days
        # overnight shift (22:00-06:00): the early part belongs to the previous day's shift
        if minute >= self.start:
            return local.isoweekday() in self.days
        if minute < self.end:
            return (local - dt.timedelta(days=1)).isoweekday() in self.days
        return False


def working_hours_of(settings: dict[str, Any]) -> WorkingHours | None:
    try:
        return WorkingHours.parse(settings["working_hours"])
    except (KeyError, ValueError):
        return None


# ---------------------------------------------------------------------- login context


def network_of(ip: str | None) -> str | None:
    """The network an address belongs to for "seen before": /24 (IPv4), /48 (IPv6)."""
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def browser_of(user_agent: str) -> str:
    """A coarse browser family and OS ("Chrome/Windows"): versions change with every
    update and must not look like a new device."""
    ua = user_agent or ""
    name = next((n for token, n in _BROWSERS if token in ua), "other")
    system = next((n for token, n in _SYSTEMS if token in ua), "other")
    return f"{name}/{system}"


# ---------------------------------------------------------------------- the engine

Notify = Callable[[Alert], Awaitable[None]]
Publish = Callable[[str], Awaitable[None]]


class AlertEngine:
    """An :class:`~gateway.audit.Auditor` listener evaluating :data:`RULES`."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clock: Callable[[], float],
        *,
        settings_of: Callable[[str], Awaitable[dict[str, Any]]],
        on_alert: list[Callable[[Alert], Awaitable[None] | None]] | None = None,
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._clock = clock
        self._settings_of = settings_of
        self.on_alert = on_alert if on_alert is not None else []

    async def __call__(self, event: AuditEvent) -> None:
        if event.action not in _WATCHED or not event.tenant_id:
            return
        settings = await self._settings_of(event.tenant_id)
        for rule in RULES.values():
            if event.action in rule.actions:
                tune = tuning(rule, settings)
                if tune.enabled:
                    await self._evaluate(rule, tune, event, settings)

    async def _evaluate(
        self, rule: Rule, tune: Tuning, event: AuditEvent, settings: dict[str, Any]
    ) -> None:
        subject = _subject(rule, event)
        if subject is None:
            return
        if rule.name == "new_login_context":
            details = await self._new_context(event, tune.window)
            count = 1
        elif rule.name == "off_hours_access":
            hours = working_hours_of(settings)
            if hours is None or hours.contains(event.ts):
                return
            count, details = (
                1,
                {
                    "local_time": dt.datetime.fromtimestamp(event.ts, hours.tz).strftime(
                        "%a %H:%M"
                    ),
                    "via": event.action,
                },
            )
        else:
            count = await self._count(rule, event, subject, tune.window)
            details = {"window_seconds": int(tune.window), "threshold": tune.threshold}
        if details is None or count < tune.threshold:
            return
        await self._fire(rule, tune, event.tenant_id or "", subject, count, details)

    async def _count(self, rule: Rule, event: AuditEvent, subject: str, window: float) -> int:
        since = event.ts - window
        threshold = tuning(rule, await self._settings_of(event.tenant_id or "")).threshold
        # Per-actor event counts only need to know whether the threshold is reached (the
        # query filters by actor); IP/plugin and distinct counts filter afterwards.
        cap = (
            threshold
            if rule.subject == "actor" and not rule.distinct
            else min(5000, threshold * 50)
        )
        seen: set[str] = set()
        total = 0
        for action in sorted(rule.actions):
            actor = subject if rule.subject == "actor" else None
            rows = await self._store.query_audit(
                tenant_id=event.tenant_id,
                action=action,
                actor=actor,
                since=since,
                until=event.ts + 1e-6,
                limit=cap,
            )
            for row in rows:
                if _subject(rule, row) != subject:
                    continue
                total += 1
                if rule.distinct:
                    seen.add(row.target or f"unknown:{row.id}")
        return len(seen) if rule.distinct else total

    async def _new_context(self, event: AuditEvent, lookback: float) -> dict[str, Any] | None:
        """What is new about this login (network, browser), or None when nothing is."""
        if not event.actor:
            return None
        sessions = await self._store.list_sessions(event.actor)
        current = next(
            (s for s in sessions if s.created_at <= event.ts + 1e-6 and s.ip == (event.ip or s.ip)),
            None,
        )
        prior = [s for s in sessions if s is not current and s.created_at <= event.ts]
        if current is None or not prior:
            return None  # first login ever: nothing to compare with
        earlier = [s for s in prior if s.created_at >= event.ts - lookback]
        new: list[str] = []
        if network_of(current.ip) not in {network_of(s.ip) for s in earlier}:
            new.append("network")
        if browser_of(current.user_agent) not in {browser_of(s.user_agent) for s in earlier}:
            new.append("browser")
        if not new:
            return None
        return {
            "new": new,
            "network": network_of(current.ip),
            "browser": browser_of(current.user_agent),
            "lookback_days": round(lookback / 86400),
        }

    async def fire(
        self, rule: Rule, tenant_id: str, subject: str, count: int, details: dict[str, Any]
    ) -> None:
        """Raise ``rule`` for ``subject`` from outside the audit stream (the SLA watch of
        :mod:`gateway.quality`): the same once-per-cooldown guard, audit event, metrics,
        live stream and notifications as a rule the audit stream fires."""
        window = rule.cooldown or rule.window
        await self._fire(rule, Tuning(True, 1, window), tenant_id, subject, count, details)

    async def _fire(
        self,
        rule: Rule,
        tune: Tuning,
        tenant_id: str,
        subject: str,
        count: int,
        details: dict[str, Any],
    ) -> None:
        now = self._clock()
        recent = [
            a
            for a in await self._store.list_alerts(tenant_id, limit=200)
            if a.rule == rule.name and a.subject == subject
        ]
        cooldown = rule.cooldown or tune.window
        if recent and recent[0].ts > now - cooldown:
            return  # once per window
        bucket = math.floor(now / cooldown)
        alert = Alert(
            tenant_id=tenant_id,
            rule=rule.name,
            subject=subject,
            dedup_key=f"{tenant_id}|{rule.name}|{subject}|{int(cooldown)}|{bucket}",
            severity=rule.severity,
            ts=now,
            count=count,
            details=details,
        )
        alert_id = await self._store.add_alert(alert)
        if alert_id is None:
            return  # another node fired it
        alert.id = alert_id
        await self._auditor.record(
            f"alert.{rule.name}",
            tenant_id=tenant_id,
            actor="system",
            target=subject,
            alert_id=alert_id,
            severity=rule.severity,
            count=count,
        )
        log.warning("alert", rule=rule.name, tenant=tenant_id, alert_id=alert_id)
        for hook in self.on_alert:
            try:
                ret = hook(alert)
                if ret is not None:
                    await ret
            except Exception:
                log.exception("alert_hook_failed", rule=rule.name)


def _subject(rule: Rule, event: AuditEvent) -> str | None:
    if rule.subject == "actor":
        return event.actor if event.actor not in (None, "", "system", "cli") else None
    if rule.subject == "ip":
        return event.ip or None
    plugin = event.details.get("plugin") if event.details else None
    return plugin if isinstance(plugin, str) and plugin else event.target
