"""The agent's own account over JSON: login, logout, ``/api/me``, step-up, password, TOTP."""

import math
from typing import Annotated, Any

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from gateway.http.plumbing import (
    Email,
    Otp,
    Password,
    agent_json,
    authed,
    check_origin,
    csrf_for,
    ok,
    qr_data_url,
    read_json,
    retry_headers,
    services_of,
    session_lifetime,
)
from gateway.http.public import ApiError
from gateway.logins import GENERIC_FAILURE, LoginFailed, LoginResult
from gateway.services import Services, peer_ip
from gateway.sessions import COOKIE, AgentContext

log = structlog.get_logger("cipherdesk.api")


class LoginBody(Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    otp: Otp


class ReauthBody(Struct, forbid_unknown_fields=True):
    password: Password
    otp: Otp


class PasswordBody(Struct, forbid_unknown_fields=True):
    current: Password
    new: Password


class ConfirmTotpBody(Struct, forbid_unknown_fields=True):
    otp: Otp
    enrollment: Annotated[str, Meta(max_length=4096)] | None = None


async def login(request: web.Request) -> web.Response:
    """``POST /api/login {"email","password","otp"}`` → session token + cookie."""
    svc = services_of(request)
    check_origin(request, svc)
    body = await read_json(request, LoginBody)
    ip = peer_ip(request, svc)
    try:
        result = await svc.logins.login(
            body.email,
            body.password,
            body.otp,
            ip=ip,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except LoginFailed as exc:
        if exc.retry_after:
            raise ApiError(
                429,
                "rate_limited",
                GENERIC_FAILURE,
                headers=retry_headers(exc.retry_after),
                retry_after=math.ceil(exc.retry_after),
            ) from None
        raise ApiError(401, "login_failed", GENERIC_FAILURE) from None
    return session_response(svc, result)


def session_response(
    svc: Services, result: LoginResult, status: int = 200, **extra: Any
) -> web.Response:
    """The answer that starts a browser session: token, CSRF token, the agent, expiry
    (plus ``extra``) and the HttpOnly ``cd_session`` cookie. Login and invite
    redemption answer alike, so the console treats both the same."""
    session = result.session
    response = web.json_response(
        {
            "token": result.token,
            "csrf": csrf_for(svc, result.token),
            "agent": agent_json(result.agent),
            "expires_at": session_lifetime(svc).expires_at(
                session.created_at, session.last_seen_at
            ),
            **extra,
        },
        status=status,
    )
    set_session_cookie(response, svc, result.token)
    return response


def set_session_cookie(response: web.StreamResponse, svc: Services, token: str) -> None:
    """The HttpOnly, SameSite=Strict ``cd_session`` cookie of a new browser session."""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=svc.config.server.behind_tls or None,
        max_age=int(svc.config.auth.absolute_lifetime),
    )


@authed()
async def logout(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    await svc.logins.logout(ctx.agent, ctx.session.token_hash, ip=peer_ip(request, svc))
    response = ok()
    response.del_cookie(COOKIE, path="/")
    return response


@authed()
async def me(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await svc.tenants.get(ctx.agent.tenant_id)
    session = ctx.session
    operator = ctx.principal.is_operator
    return web.json_response(
        {
            "agent": agent_json(ctx.agent),
            "tenant": None
            if operator
            else {
                "id": ctx.agent.tenant_id,
                "name": tenant.name if tenant else None,
                "frozen": tenant.frozen if tenant else False,
            },
            "role": ctx.agent.role,
            "permissions": sorted(p.value for p in ctx.principal.permissions),
            "installation_permissions": sorted(
                p.value for p in ctx.principal.installation_permissions
            ),
            "reauth_until": (
                session.reauth_at + svc.config.auth.reauth_window
                if svc.logins.reauth_is_fresh(session)
                else None
            ),
            "csrf": csrf_for(svc, ctx.token),
            "session": {
                "created_at": session.created_at,
                "last_seen_at": session.last_seen_at,
                "expires_at": session_lifetime(svc).expires_at(
                    session.created_at, session.last_seen_at
                ),
            },
            "recovery_codes_left": await svc.store.count_recovery_codes(ctx.agent.id),
            "password_change_required": await svc.store.password_reset_forced(ctx.agent.id),
            "passkey_gate": await svc.passkeys.gate(ctx),
            "session_factor": session.factor,
        }
    )


@authed()
async def reauth(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/me/reauth {"password","otp"}``: step-up for credential changes."""
    svc = services_of(request)
    body = await read_json(request, ReauthBody)
    at = await svc.logins.reauthenticate(
        ctx.agent, ctx.session, body.password, body.otp, ip=peer_ip(request, svc)
    )
    return ok(reauth_until=at + svc.config.auth.reauth_window)


@authed()
async def change_password(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, PasswordBody)
    svc.logins.require_reauth(ctx.session)
    ip = peer_ip(request, svc)
    pair = svc.logins.throttle.keys(ctx.agent.email, ip).pair
    decision = await svc.guard.limiter.hit(
        f"login:{pair}", svc.guard.limits.login_per_account, scope="login_per_account"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many attempts; try again later",
            headers=retry_headers(decision.retry_after),
        )
    revoked = await svc.logins.change_password(
        ctx.agent,
        body.current,
        body.new,
        keep_session=ctx.session.token_hash,
        ip=peer_ip(request, svc),
    )
    await svc.store.clear_forced_password_reset(ctx.agent.id)
    return ok(sessions_revoked=revoked)


@authed()
async def start_totp(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    enrollment = await svc.logins.start_enrollment(
        ctx.agent, ctx.session.token_hash, ip=peer_ip(request, svc)
    )
    return web.json_response(
        {
            "otpauth_uri": enrollment.otpauth_uri,
            "qr_png": await qr_data_url(enrollment.otpauth_uri),
            "enrollment": enrollment.token,
            "confirm": "/api/me/totp/confirm",
        }
    )


@authed()
async def confirm_totp(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, ConfirmTotpBody)
    svc.logins.require_reauth(ctx.session)
    await svc.logins.confirm_enrollment(
        ctx.agent, ctx.session.token_hash, body.otp, body.enrollment, ip=peer_ip(request, svc)
    )
    return ok()


@authed()
async def recovery_codes(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    codes = await svc.logins.regenerate_recovery_codes(
        ctx.agent, actor=ctx.agent.id, ip=peer_ip(request, svc), keep_session=ctx.session.token_hash
    )
    return web.json_response({"recovery_codes": codes})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/me", me)
    r.add_post("/api/me/reauth", reauth)
    r.add_post("/api/me/password", change_password)
    r.add_post("/api/me/totp", start_totp)
    r.add_post("/api/me/totp/confirm", confirm_totp)
    r.add_post("/api/me/recovery-codes", recovery_codes)
