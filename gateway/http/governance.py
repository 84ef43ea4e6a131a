"""Governance HTTP API: audit verification, alerts (with a live stream), alert rules and
notification settings, incidents, and the tenant-wide emergency actions.

Routes (all JSON, same conventions and error codes as :mod:`gateway.http.plumbing`):

* ``GET  /api/audit/verify`` (audit_read) — verify the tenant's audit chain; reports the
  first broken row.
* ``GET  /api/alerts`` · ``GET /api/alerts/stream`` (Server-Sent Events, live) ·
  ``POST /api/alerts/{id}/ack`` · ``POST /api/alerts/{id}/resolve`` (audit_read to see,
  emergency to act).
* ``GET/PUT /api/governance/settings`` (tenant_manage) — alert rule tuning, working hours,
  audit retention, per-class data retention (``retention``: closed/idle chats, flags,
  outbox, dead letters; 400 ``bad_request`` with ``field: "retention"`` when out
  of bounds), service-quality targets (``quality``: SLA seconds, reopen days), who must
  sign in with a passkey (``phishing_resistant_mfa``: off, admins, staff, all),
  notification channels (secrets write-only).
* ``GET /api/incidents`` · ``GET /api/incidents/{id}`` · ``POST /api/incidents`` ·
  ``POST /api/incidents/{id}/close`` (emergency).
* ``POST /api/emergency/revoke-sessions`` · ``POST /api/emergency/force-password-reset`` ·
  ``POST /api/emergency/pause-plugins {"paused": bool}`` (emergency).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission, require
from gateway.attachments.service import SETTING as ATTACHMENTS_SETTING
from gateway.attachments.service import AttachmentSettings
from gateway.attachments.service import validate_settings as validate_attachments
from gateway.bus.base import BusEvent, agent_topic
from gateway.governance.alerts import RULES, WorkingHours, tuning, validate_rules
from gateway.governance.approvals import ApprovalError, Policy, validate_policy
from gateway.governance.auditchain import MIN_RETENTION_DAYS, retention_days, verify_chain
from gateway.governance.incidents import worse
from gateway.governance.wiring import alerts_topic, governance_of
from gateway.http.plumbing import authed, int_path, own_tenant, read_json, services_of
from gateway.http.public import ApiError
from gateway.passkeys import SETTING as PASSKEY_SETTING
from gateway.passkeys import requirement as passkey_requirement
from gateway.quality import SETTING as QUALITY_SETTING
from gateway.quality import QualityPolicy, QualitySettings, validate_quality
from gateway.retention import SETTING as RETENTION_SETTING
from gateway.retention import RetentionSettings, validate_retention
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_staff_text
from gateway.store.base import Alert, Incident, Tenant

HEARTBEAT = 15.0
Severity = Literal["low", "medium", "high", "critical"]


class GovernanceSettingsBody(Struct, forbid_unknown_fields=True):
    alert_rules: dict[str, dict[str, Any]] | None = None
    working_hours: dict[str, Any] | None = None
    clear_working_hours: bool = False
    audit_retention_days: Annotated[int, Meta(ge=180, le=3650)] | None = None
    notify: dict[str, Any] | None = None
    approvals: dict[str, Any] | None = None
    retention: RetentionSettings | None = None
    """Per-class retention overrides; replaces the tenant's previous overrides."""
    phishing_resistant_mfa: Literal["off", "admins", "staff", "all"] | None = None
    """Who must sign in with a passkey (gateway/passkeys.py)."""
    quality: QualitySettings | None = None
    """SLA targets and the reopen window (gateway/quality.py); replaces the previous ones."""
    attachments: AttachmentSettings | None = None
    """Files in chats off, or a lower size limit (gateway/attachments/service.py)."""


class ApprovalRequestBody(Struct, forbid_unknown_fields=True):
    action: Annotated[str, Meta(max_length=64)]
    target: Annotated[str, Meta(max_length=128)]
    reason: Annotated[str, Meta(max_length=2000)]


class PauseBody(Struct, forbid_unknown_fields=True):
    paused: bool


class IncidentBody(Struct, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    severity: Severity = "high"


class CloseIncidentBody(Struct, forbid_unknown_fields=True):
    summary: Annotated[str, Meta(max_length=500)] = ""


class KeepBody(Struct, forbid_unknown_fields=True):
    keep_own_session: bool = True


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "rule": a.rule,
        "subject": a.subject,
        "severity": a.severity,
        "ts": a.ts,
        "count": a.count,
        "details": a.details,
        "state": a.state,
        "acked_by": a.acked_by,
        "acked_at": a.acked_at,
        "resolved_by": a.resolved_by,
        "resolved_at": a.resolved_at,
        "incident": a.incident_id,
    }


def incident_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "severity": i.severity,
        "title": i.title,
        "state": i.state,
        "opened_by": i.opened_by,
        "opened_at": i.opened_at,
        "closed_at": i.closed_at,
    }


# ---------------------------------------------------------------------- audit


@authed(Permission.AUDIT_READ)
async def audit_verify(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AUDIT_READ, tenant_id)
    report = await verify_chain(svc.store, svc.audit_keys, svc.identity, tenant_id)
    await svc.auditor.record(
        "audit.verified",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        ok=report.ok,
        problem=report.problem,
    )
    return web.json_response({"report": report.as_dict()})


# ---------------------------------------------------------------------- alerts


async def _alerts(svc: Services, tenant_id: str, state: str | None) -> list[dict[str, Any]]:
    states = (state,) if state else None
    return [alert_json(a) for a in await svc.store.list_alerts(tenant_id, states=states)]


@authed(Permission.AUDIT_READ)
async def list_alerts(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    state = request.query.get("state") or None
    if state not in (None, "open", "acknowledged", "resolved"):
        raise ApiError(400, "bad_request", "state is open, acknowledged or resolved", field="state")
    return web.json_response({"alerts": await _alerts(svc, ctx.principal.tenant_id, state)})


@authed(Permission.AUDIT_READ)
async def alert_stream(request: web.Request, ctx: AgentContext) -> web.StreamResponse:
    """Server-Sent Events: the alert list now, and again whenever an alert fires or
    changes on any node (a bus nudge; the store stays the source of truth). The stream
    ends as soon as the session is revoked (the agent's bus ``revoke`` event) and when it
    expires; it never extends the session's idle timeout."""
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    token_hash = ctx.session.token_hash
    nudges: asyncio.Queue[None] = asyncio.Queue(maxsize=1)

    def on_event(_: BusEvent) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            nudges.put_nowait(None)

    async def still_valid() -> bool:
        session = await svc.store.get_session(token_hash)
        return session is not None and svc.sessions.still_valid(session, svc.clock())

    subscriptions = [
        await svc.bus.subscribe(alerts_topic(tenant_id), on_event),
        await svc.bus.subscribe(agent_topic(ctx.agent.id), on_event),
    ]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        while await still_valid():
            payload = json.dumps(
                {"alerts": await _alerts(svc, tenant_id, None)},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            await response.write(f"event: alerts\ndata: {payload}\n\n".encode())
            while True:
                try:
                    await asyncio.wait_for(nudges.get(), HEARTBEAT)
                    break
                except TimeoutError:
                    if not await still_valid():
                        return response
                    await response.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        for subscription in subscriptions:
            subscription.cancel()
    return response


async def _set_alert_state(request: web.Request, ctx: AgentContext, state: str) -> web.Response:
    svc = services_of(request)
    gov = governance_of(svc)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.EMERGENCY, tenant_id)
    alert = await svc.store.get_alert(int_path(request, "alert_id"))
    if alert is None or alert.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "no such alert")
    if alert.state == state or alert.state == "resolved":
        raise ApiError(409, "alert_state", f"the alert is already {alert.state}")
    incident = await gov.incidents.current(tenant_id)
    if incident is None:
        incident = await gov.incidents.open(
            tenant_id,
            ctx.agent.id,
            severity=worse(alert.severity, "medium"),
            title=f"Alert: {alert.rule}",
        )
        await gov.incidents.note(
            tenant_id,
            "system",
            "alert.fired",
            {
                "alert": alert.id,
                "rule": alert.rule,
                "subject": alert.subject,
                "count": alert.count,
                "fired_at": alert.ts,
            },
        )
    verb = "alert.acknowledged" if state == "acknowledged" else "alert.resolved"
    await gov.incidents.note(tenant_id, ctx.agent.id, verb, {"alert": alert.id, "rule": alert.rule})
    updated = await svc.store.set_alert_state(
        alert.id, state, ctx.agent.id, svc.clock(), incident_id=incident.id
    )
    await svc.auditor.record(
        verb,
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        target=str(alert.id),
        ip=peer_ip(request, svc),
        incident=incident.id,
    )
    await svc.bus.publish(alerts_topic(tenant_id), BusEvent(kind="alert"))
    assert updated is not None
    return web.json_response({"alert": alert_json(updated), "incident": incident.id})


@authed(Permission.EMERGENCY)
async def ack_alert(request: web.Request, ctx: AgentContext) -> web.Response:
    return await _set_alert_state(request, ctx, "acknowledged")


@authed(Permission.EMERGENCY)
async def resolve_alert(request: web.Request, ctx: AgentContext) -> web.Response:
    return await _set_alert_state(request, ctx, "resolved")


# ---------------------------------------------------------------------- settings


def _settings_json(svc: Services, tenant: Tenant) -> dict[str, Any]:
    s = tenant.settings
    gov = governance_of(svc)
    return {
        "alert_rules": {
            name: {
                "threshold": t.threshold,
                "window": t.window,
                "enabled": t.enabled,
                "severity": rule.severity,
                "description": rule.description,
            }
            for name, rule in RULES.items()
            for t in (tuning(rule, s),)
        },
        "working_hours": s.get("working_hours"),
        "audit_retention_days": retention_days(s, svc.config.audit.retention_days),
        "notify": gov.notifier.describe(s),
        "plugins_paused": s.get("plugins_paused") is True,
        "approvals": {"mode": (p := Policy.of(s)).mode, "ttl_minutes": int(p.ttl // 60)},
        "retention": svc.retention.policy(tenant).as_json(),
        "quality": QualityPolicy.of(s).as_json(),
        "attachments": svc.attachments.limits(tenant).as_json(),
        "phishing_resistant_mfa": passkey_requirement(tenant),
    }


@authed(Permission.TENANT_MANAGE)
async def get_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    return web.json_response({"settings": _settings_json(svc, tenant)})


@authed(Permission.TENANT_MANAGE)
async def put_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    body = await read_json(request, GovernanceSettingsBody)
    settings = dict(tenant.settings)
    changed: list[str] = []
    current_field = ""
    try:
        current_field = "alert_rules"
        if body.alert_rules is not None:
            merged = dict(settings.get("alert_rules") or {})
            merged.update(validate_rules(body.alert_rules))
            settings["alert_rules"] = merged
            changed.append("alert_rules")
        current_field = "working_hours"
        if body.working_hours is not None:
            WorkingHours.parse(body.working_hours)
            settings["working_hours"] = body.working_hours
            changed.append("working_hours")
        elif body.clear_working_hours:
            settings.pop("working_hours", None)
            changed.append("working_hours")
        if body.audit_retention_days is not None:
            settings["audit_retention_days"] = max(
                int(MIN_RETENTION_DAYS), body.audit_retention_days
            )
            changed.append("audit_retention_days")
        current_field = "retention"
        if body.retention is not None:
            settings[RETENTION_SETTING] = validate_retention(body.retention)
            changed.append("retention")
        if body.phishing_resistant_mfa is not None:
            settings[PASSKEY_SETTING] = body.phishing_resistant_mfa
            changed.append("phishing_resistant_mfa")
        current_field = "quality"
        if body.quality is not None:
            settings[QUALITY_SETTING] = validate_quality(body.quality)
            changed.append("quality")
        current_field = "attachments"
        if body.attachments is not None:
            settings[ATTACHMENTS_SETTING] = validate_attachments(body.attachments)
            changed.append("attachments")
        current_field = "approvals"
        if body.approvals is not None:
            settings["approvals"] = validate_policy(body.approvals)
            changed.append("approvals")
        current_field = "notify"
        if body.notify is not None:
            found = settings.get("notify")
            current: dict[str, Any] = found if isinstance(found, dict) else {}
            settings["notify"] = governance_of(svc).notifier.build_settings(
                tenant.id, current, body.notify
            )
            changed.append("notify")
    except ValueError as exc:
        raise ApiError(400, "invalid_settings", str(exc)[:300], field=current_field) from None
    tenant.settings = settings
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    if changed:
        await svc.auditor.record(
            "governance.updated",
            tenant_id=tenant.id,
            actor=ctx.agent.id,
            ip=peer_ip(request, svc),
            fields=changed,
        )
    return web.json_response({"settings": _settings_json(svc, tenant)})


# ---------------------------------------------------------------------- incidents


@authed(Permission.EMERGENCY)
async def list_incidents(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    items = await svc.store.list_incidents(ctx.principal.tenant_id)
    return web.json_response({"incidents": [incident_json(i) for i in items]})


async def _incident(request: web.Request, ctx: AgentContext) -> Incident:
    svc = services_of(request)
    incident = await svc.store.get_incident(int_path(request, "incident_id"))
    if incident is None or incident.tenant_id != ctx.principal.tenant_id:
        raise ApiError(404, "not_found", "no such incident")
    return incident


@authed(Permission.EMERGENCY)
async def get_incident(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    incident = await _incident(request, ctx)
    events = await svc.store.list_incident_events(incident.id)
    await svc.auditor.record(
        "incident.viewed", tenant_id=incident.tenant_id, actor=ctx.agent.id, target=str(incident.id)
    )
    return web.json_response(
        {
            "incident": incident_json(incident),
            "timeline": [
                {"ts": e.ts, "actor": e.actor, "action": e.action, "details": e.details}
                for e in events
            ],
        }
    )


@authed(Permission.EMERGENCY)
async def open_incident(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, IncidentBody)
    gov = governance_of(svc)
    if await gov.incidents.current(ctx.principal.tenant_id) is not None:
        raise ApiError(409, "incident_open", "close the open incident first")
    title = await screen_staff_text(svc, ctx.principal.tenant_id, body.title.strip(), "title")
    incident = await gov.incidents.open(
        ctx.principal.tenant_id, ctx.agent.id, severity=body.severity, title=title
    )
    return web.json_response({"incident": incident_json(incident)}, status=201)


@authed(Permission.EMERGENCY)
async def close_incident(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    incident = await _incident(request, ctx)
    body = await read_json(request, CloseIncidentBody)
    if incident.state != "open":
        raise ApiError(409, "incident_closed", "the incident is already closed")
    summary = await screen_staff_text(svc, ctx.principal.tenant_id, body.summary.strip(), "summary")
    await governance_of(svc).incidents.close(incident, ctx.agent.id, summary)
    return web.json_response({"ok": True})


# ---------------------------------------------------------------------- emergency


@authed(Permission.EMERGENCY)
async def revoke_sessions(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, KeepBody) if request.body_exists else KeepBody()
    count = await governance_of(svc).emergency.revoke_all_sessions(
        ctx.principal.tenant_id,
        ctx.agent.id,
        ip=peer_ip(request, svc),
        keep_token_hash=ctx.session.token_hash if body.keep_own_session else None,
    )
    return web.json_response({"ok": True, "sessions_revoked": count})


@authed(Permission.EMERGENCY)
async def force_password_reset(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    marked = await governance_of(svc).emergency.force_password_reset(
        ctx.principal.tenant_id,
        ctx.agent.id,
        ip=peer_ip(request, svc),
        keep_token_hash=ctx.session.token_hash,
    )
    return web.json_response({"ok": True, "agents": marked})


@authed(Permission.EMERGENCY)
async def pause_plugins(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, PauseBody)
    await governance_of(svc).emergency.pause_plugins(
        ctx.principal.tenant_id, body.paused, ctx.agent.id, ip=peer_ip(request, svc)
    )
    return web.json_response({"ok": True, "paused": body.paused})


# ---------------------------------------------------------------------- approvals

_APPROVAL_STATUS = {
    "approval_required": 403,
    "invalid_request": 400,
    "not_found": 404,
    "not_pending": 409,
    "self_approval": 403,
    "forbidden": 403,
}


def _approval_error(exc: ApprovalError) -> ApiError:
    return ApiError(_APPROVAL_STATUS.get(exc.code, 400), exc.code, exc.message, **exc.extra)


async def require_approval(svc: Services, ctx: AgentContext, action: str, target: str) -> None:
    """Gate of a sensitive handler: ``403 approval_required`` without a live grant."""
    try:
        await governance_of(svc).approvals.require(ctx.principal, action, target)
    except ApprovalError as exc:
        raise _approval_error(exc) from None


def grant_json(g: Any) -> dict[str, Any]:
    return {
        "id": g.id,
        "requester": g.requester,
        "action": g.action,
        "target": g.target,
        "reason": g.reason,
        "state": g.state,
        "approver": g.approver,
        "created_at": g.created_at,
        "decided_at": g.decided_at,
        "expires_at": g.expires_at,
    }


@authed()
async def request_approval(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, ApprovalRequestBody)
    reason = await screen_staff_text(svc, ctx.principal.tenant_id, body.reason, "reason")
    try:
        grant = await governance_of(svc).approvals.request(
            ctx.principal, body.action, body.target, reason, ip=peer_ip(request, svc)
        )
    except ApprovalError as exc:
        raise _approval_error(exc) from None
    return web.json_response(
        {"grant": grant_json(grant)}, status=201 if grant.state == "approved" else 202
    )


@authed(Permission.CHAT_WATCH)
async def list_approvals(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    state = request.query.get("state") or None
    if state not in (None, "pending", "approved", "denied"):
        raise ApiError(400, "bad_request", "state is pending, approved or denied", field="state")
    grants = await svc.store.list_grants(ctx.principal.tenant_id, state=state)
    return web.json_response({"grants": [grant_json(g) for g in grants]})


async def _decide(request: web.Request, ctx: AgentContext, approve: bool) -> web.Response:
    svc = services_of(request)
    try:
        grant = await governance_of(svc).approvals.decide(
            ctx.principal, int_path(request, "grant_id"), approve, ip=peer_ip(request, svc)
        )
    except ApprovalError as exc:
        raise _approval_error(exc) from None
    return web.json_response({"grant": grant_json(grant)})


@authed(Permission.CHAT_WATCH)
async def approve(request: web.Request, ctx: AgentContext) -> web.Response:
    return await _decide(request, ctx, True)


@authed(Permission.CHAT_WATCH)
async def deny(request: web.Request, ctx: AgentContext) -> web.Response:
    return await _decide(request, ctx, False)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/audit/verify", audit_verify)
    r.add_get("/api/alerts", list_alerts)
    r.add_get("/api/alerts/stream", alert_stream)
    r.add_post("/api/alerts/{alert_id}/ack", ack_alert)
    r.add_post("/api/alerts/{alert_id}/resolve", resolve_alert)
    r.add_get("/api/governance/settings", get_settings)
    r.add_put("/api/governance/settings", put_settings)
    r.add_get("/api/incidents", list_incidents)
    r.add_post("/api/incidents", open_incident)
    r.add_get("/api/incidents/{incident_id}", get_incident)
    r.add_post("/api/incidents/{incident_id}/close", close_incident)
    r.add_post("/api/emergency/revoke-sessions", revoke_sessions)
    r.add_post("/api/emergency/force-password-reset", force_password_reset)
    r.add_post("/api/emergency/pause-plugins", pause_plugins)
    r.add_post("/api/approvals", request_approval)
    r.add_get("/api/approvals", list_approvals)
    r.add_post("/api/approvals/{grant_id}/approve", approve)
    r.add_post("/api/approvals/{grant_id}/deny", deny)
