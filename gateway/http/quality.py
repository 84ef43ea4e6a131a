"""Service-quality report (issue 15.4): ``GET /api/quality`` (JSON) and
``GET /api/quality.csv`` (the same rows for a spreadsheet), for ``quality_read``
(supervisor, admin).

Query: ``group`` (``agent``, ``queue`` or ``day``; default ``day``), ``start`` and ``end``
(``YYYY-MM-DD``, both days included, in ``tz``; default the last 7 days), ``tz`` (an IANA
zone such as ``Asia/Shanghai``; default the tenant's working-hours zone, else UTC). At
most :data:`gateway.quality.MAX_RANGE_DAYS` days. The figures come from the chats'
quality facts (:mod:`gateway.quality`): no message text, no customer data.

Error codes: ``bad_request`` (400; ``field`` names the parameter), ``forbidden`` (403).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Literal

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission
from gateway.governance.alerts import working_hours_of
from gateway.http.plumbing import authed, own_tenant, services_of, struct_json, time_zone
from gateway.http.public import ApiError
from gateway.quality import (
    MAX_CHATS,
    MAX_RANGE_DAYS,
    QualityPolicy,
    QualityReport,
    QualityRow,
    build_report,
    report_csv,
)
from gateway.sessions import AgentContext

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_DAYS = 7
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)


class QualityQueryParams(Struct, forbid_unknown_fields=True):
    """Query of ``GET /api/quality`` and ``/api/quality.csv`` (see the module docstring)."""

    group: Literal["agent", "queue", "day"] | None = None
    start: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", max_length=10)] | None = None
    end: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", max_length=10)] | None = None
    tz: Annotated[str, Meta(max_length=64)] | None = None


class QualityCsvQueryParams(QualityQueryParams, forbid_unknown_fields=True):
    """Query of ``GET /api/quality.csv``: the same as the JSON report's."""


class QualityRowOut(Struct, forbid_unknown_fields=True):
    """The figures of one agent, queue or day (seconds; null when no chat has one)."""

    key: str
    label: str
    chats: int
    answered: int
    unanswered: int
    queue_wait_avg: float | None
    queue_wait_p90: float | None
    first_response_avg: float | None
    first_response_p90: float | None
    handle_avg: float | None
    transfers: int
    rated: int
    csat_avg: float | None
    closed: int
    reopened: int
    sla_queue_breaches: int
    sla_first_response_breaches: int


class QualityTargets(Struct, forbid_unknown_fields=True):
    """The tenant's targets the report measured against."""

    queue_wait_sla_seconds: int
    first_response_sla_seconds: int
    reopen_days: int


class QualityOut(Struct, forbid_unknown_fields=True):
    """A quality report: rows of the chosen grouping and the totals of the range."""

    group: str
    start: str
    end: str
    since: float
    until: float
    timezone: str
    targets: QualityTargets
    rows: list[QualityRowOut]
    total: QualityRowOut
    truncated: bool


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", message, field=field)


def _day(request: web.Request, name: str) -> dt.date | None:
    raw = request.query.get(name, "")
    if not raw:
        return None
    try:
        if not _DATE.match(raw):
            raise ValueError
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, f"{name} must be a date like 2026-12-01") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _bad(name, f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def _midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> float:
    return dt.datetime.combine(day, dt.time(), tz).timestamp()


def _row(row: QualityRow) -> QualityRowOut:
    return QualityRowOut(**{name: getattr(row, name) for name in QualityRowOut.__struct_fields__})


async def _report(request: web.Request, ctx: AgentContext) -> tuple[QualityReport, str, str]:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    group = request.query.get("group", "day") or "day"
    if group not in ("agent", "queue", "day"):
        raise _bad("group", "group must be agent, queue or day")
    hours = working_hours_of(tenant.settings)
    tz = time_zone(request.query.get("tz"), hours.tz if hours else None)
    now = svc.clock()
    today = dt.datetime.fromtimestamp(now, tz).date()
    end = _day(request, "end") or today
    start = _day(request, "start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise _bad("start", "start must not be after end")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise _bad("end", f"a report spans at most {MAX_RANGE_DAYS} days")
    since, until = _midnight(start, tz), _midnight(end + dt.timedelta(days=1), tz)
    policy = QualityPolicy.of(tenant.settings)
    facts = await svc.store.quality_facts(tenant.id, since, until, MAX_CHATS + 1)
    reopened = await svc.store.reopened_chats(tenant.id, since, until, policy.reopen_days * 86400.0)
    labels = {"": "—"}
    if group == "agent":
        labels.update({a.id: a.display_name for a in await svc.store.list_agents(tenant.id)})
    report = build_report(
        facts[:MAX_CHATS],
        reopened,
        policy=policy,
        group=group,  # type: ignore[arg-type]  # checked above
        tz=tz,
        since=since,
        until=until,
        now=now,
        labels=labels,
        truncated=len(facts) > MAX_CHATS,
    )
    return report, start.isoformat(), end.isoformat()


@authed(Permission.QUALITY_READ)
async def quality_report(request: web.Request, ctx: AgentContext) -> web.Response:
    """The report as JSON (the admin page draws its charts from it)."""
    report, start, end = await _report(request, ctx)
    targets = report.policy.as_json()
    return struct_json(
        QualityOut(
            group=report.group,
            start=start,
            end=end,
            since=report.since,
            until=report.until,
            timezone=report.timezone,
            targets=QualityTargets(**targets),
            rows=[_row(r) for r in report.rows],
            total=_row(report.total),
            truncated=report.truncated,
        )
    )


@authed(Permission.QUALITY_READ)
async def quality_csv(request: web.Request, ctx: AgentContext) -> web.Response:
    """The same rows as CSV, UTF-8 with a byte-order mark (spreadsheet programs then read
    Chinese names right), offered as a download."""
    report, start, end = await _report(request, ctx)
    name = f"cipherdesk-quality-{report.group}-{start}-{end}.csv"
    return web.Response(
        body=("\ufeff" + report_csv(report)).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def setup_routes(app: web.Application) -> None:
    """Register the quality report routes."""
    r = app.router
    r.add_get("/api/quality", quality_report)
    r.add_get("/api/quality.csv", quality_csv)
