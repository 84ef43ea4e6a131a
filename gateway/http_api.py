"""The agents' and admins' HTTP API (JSON only): login, own account, administration.

Conventions (documented for console and SDK authors):

* Requests with a body must be ``Content-Type: application/json`` (else 415
  ``unsupported_media_type``) and at most 64 KiB (else 413 ``too_large``). Malformed JSON,
  unknown, missing or mistyped fields answer 400 ``bad_request`` with ``field`` naming the
  offending field when known. No response ever carries a traceback.
* Authentication: ``Authorization: Bearer <token>`` (SDKs, bots) or the HttpOnly
  ``cd_session`` cookie set by ``POST /api/login`` (browsers). Missing/expired/revoked
  sessions answer 401 ``unauthenticated``. Scoped API tokens (``Bearer cdt_...``,
  ``gateway/api_tokens.py``) work only on routes declaring a permission, within their scope.
* CSRF: a cookie-authenticated POST/PUT/PATCH/DELETE must carry ``X-CSRF-Token`` equal to
  the ``csrf`` value returned by login and ``GET /api/me``, and its ``Origin`` (when sent)
  must be one of the console's origins; otherwise 403 ``csrf``. Bearer requests are not
  subject to CSRF (a browser never attaches them by itself). The CSRF token is
  HMAC-SHA256 of the session token under a secret *derived from the current master key*
  (HMAC(master key, "cipherdesk/csrf-secret/v1"), recomputed on every use by
  :func:`gateway.derived_keys.derived_secret`, never cached): every node sharing the
  keyring agrees on it without extra files, and rotating the master key rotates it at once
  (the console re-reads ``/api/me``).
* Step-up: credential changes (``/api/me/password``, ``/api/me/totp``,
  ``/api/me/totp/confirm``, ``/api/me/recovery-codes``, an admin's
  ``/api/agents/{id}/reset-mfa``) need password + second factor proven on this session
  within ``auth.reauth_window`` (5 minutes; a login counts): ``POST /api/me/reauth
  {"password","otp"}``. Otherwise 403 ``reauth_required``; a wrong password or code 403
  ``reauth_failed`` (throttled like logins: 429 ``rate_limited``).
* Authorisation: every handler checks the role's permission *and* the tenant of the
  resource with :func:`auth.roles.require`. A resource of another tenant answers exactly
  like a missing one (404 ``not_found``); a permission the role lacks answers 403
  ``forbidden``.
* Rate limits: ``login_per_ip`` / ``login_per_account`` on login, ``api_per_token`` on
  every authenticated call: 429 ``rate_limited`` with ``Retry-After``.

Error codes: ``bad_request``, ``unsupported_media_type``, ``too_large``,
``unauthenticated``, ``login_failed``, ``rate_limited``, ``csrf``, ``forbidden``,
``not_found``, ``weak_password``, ``wrong_password``, ``invalid_otp``, ``no_enrollment``,
``reauth_required``, ``reauth_failed``, ``token_not_allowed`` (a scoped API token on a
route for interactive sessions only, see ``gateway/http/tokens.py``),
``invalid_email``, ``email_taken``, ``invalid_role``, ``last_admin``, ``invalid_policy``,
``invalid_origin``, ``invalid_secret``, ``password_change_required``, ``approval_required``,
``internal``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.api_tokens import is_api_token
from auth.identity import MIN_SECRET_BYTES
from auth.roles import (
    Forbidden,
    InstallationPermission,
    Permission,
    Role,
    require,
    require_operator,
)
from auth.tokens import SessionLifetime, csrf_token_for
from gateway.qr import qr_png
from gateway.agent_lookup import agent_label, match_agents, tenant_agents
from gateway.api_tokens import api_tokens
from gateway.chats import ChatError
from gateway.derived_keys import CSRF_LABEL, derived_secret
from gateway.http.public import ApiError
from gateway.invites import MAX_TTL_HOURS, MIN_TTL_HOURS
from gateway.invites import TTL_SETTING as INVITE_TTL_SETTING
from gateway.jsonlimits import MAX_BODY_DEPTH, JsonTooDeep, check_depth
from gateway.logins import GENERIC_FAILURE, CredentialError, LoginFailed, LoginResult
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import COOKIE, AgentContext, token_from_request
from gateway.store.base import Agent, AuditEvent, Tenant
from gateway.tenants import DEFAULT_QUEUE, MAX_QUEUES, normalize_origin

log = structlog.get_logger("cipherdesk.api")

MAX_BODY = 64 * 1024
CSRF_HEADER = "X-CSRF-Token"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a forced password change still allows: reading the own account, the step-up that
# /api/me/password may need (it only proves password + code), the change, logging out.
_RESET_ALLOWED = frozenset({"/api/me", "/api/me/reauth", "/api/me/password", "/api/logout"})

Email = Annotated[str, Meta(min_length=1, max_length=1024)]
Password = Annotated[str, Meta(max_length=1024)]
Otp = Annotated[str, Meta(max_length=64)]
Name = Annotated[str, Meta(min_length=1, max_length=120)]
RoleName = Literal["agent", "supervisor", "admin"]
QueueName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]

S = TypeVar("S", bound=Struct)


# ---------------------------------------------------------------------- bodies


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


class CreateAgentBody(Struct, forbid_unknown_fields=True):
    email: Email
    role: RoleName
    password: Password
    display_name: Name | None = None
    tenant: Annotated[str, Meta(max_length=64)] | None = None


class PatchAgentBody(Struct, forbid_unknown_fields=True):
    role: RoleName | None = None
    display_name: Name | None = None
    disabled: bool | None = None


class PatchTenantBody(Struct, forbid_unknown_fields=True):
    name: Name | None = None
    allowed_origins: (
        Annotated[list[Annotated[str, Meta(max_length=300)]], Meta(max_length=50)] | None
    ) = None
    identity_mode: Literal["off", "optional", "enforced"] | None = None
    identity_secrets: (
        Annotated[list[Annotated[str, Meta(max_length=512)]], Meta(max_length=2)] | None
    ) = None
    policy: dict[str, Any] | None = None
    allowed_link_domains: (
        Annotated[list[Annotated[str, Meta(max_length=253)]], Meta(max_length=500)] | None
    ) = None
    frozen: bool | None = None
    queues: Annotated[list[QueueName], Meta(max_length=MAX_QUEUES)] | None = None
    invite_ttl_hours: Annotated[int, Meta(ge=MIN_TTL_HOURS, le=MAX_TTL_HOURS)] | None = None


class PolicyTestBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=20_000)]
    direction: Literal["customer", "agent"] = "customer"
    tenant: Annotated[str, Meta(max_length=64)] | None = None


class FreezeBody(Struct, forbid_unknown_fields=True):
    frozen: bool


# ---------------------------------------------------------------------- plumbing


def _svc(request: web.Request) -> Services:
    return request.app[SERVICES]


_FIELD_RE = re.compile(r"`\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_RE = re.compile(r"missing required field `([A-Za-z_][A-Za-z0-9_]*)`")
_UNKNOWN_RE = re.compile(r"unknown field `([^`]{0,64})`")


def _field_of(message: str) -> str | None:
    for pattern in (_MISSING_RE, _UNKNOWN_RE, _FIELD_RE):
        m = pattern.search(message)
        if m:
            return m.group(1)
    return None


async def _read_body(request: web.Request) -> bytes:
    ctype = request.content_type
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(16 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, kind: type[S]) -> S:
    """Decode the JSON body as ``kind`` or answer 415/413/400."""
    body = await _read_body(request)
    try:
        check_depth(body, MAX_BODY_DEPTH)
        return msgspec.json.decode(body, type=kind)
    except JsonTooDeep as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = _field_of(message)
        raise ApiError(
            400, "bad_request", f"invalid request: {message}"[:300], field=field
        ) from None
    except (msgspec.DecodeError, RecursionError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None


def csrf_for(svc: Services, token: str) -> str:
    """The session's CSRF token under the secret of the *current* master key."""
    return csrf_token_for(token, derived_secret(svc.keyring, CSRF_LABEL))


def _is_bearer(request: web.Request) -> bool:
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def check_origin(request: web.Request, svc: Services) -> None:
    """403 ``csrf`` unless the request's ``Origin`` (when sent) is one of the console's:
    the CSRF defence of the calls made before there is a session (login, invites)."""
    origin = request.headers.get("Origin")
    if origin is not None and not svc.console_origin_allowed(origin):
        raise ApiError(403, "csrf", "request origin is not allowed")


def retry_headers(retry_after: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1) for a 429 answer."""
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


async def authenticate(request: web.Request, *, api_tokens_allowed: bool = False) -> AgentContext:
    """The caller's context: session (or, where allowed, API token) valid, API budget left,
    CSRF checked for cookie sessions."""
    svc = _svc(request)
    token = token_from_request(request)
    if _is_bearer(request) and token is not None and is_api_token(token):
        return await _authenticate_api_token(request, svc, token, api_tokens_allowed)
    ctx = await svc.sessions.authenticate(token)
    if ctx is None:
        raise ApiError(401, "unauthenticated", "log in first (session missing or expired)")
    decision = await svc.guard.limiter.hit(
        f"api:{ctx.session.token_hash}", svc.guard.limits.api_per_token, scope="api_per_token"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; slow down",
            headers=retry_headers(decision.retry_after),
        )
    if request.path not in _RESET_ALLOWED and await svc.store.password_reset_forced(ctx.agent.id):
        # Emergency panel: "force password reset at next login" (gateway/governance/emergency.py).
        raise ApiError(
            403, "password_change_required", "choose a new password first (POST /api/me/password)"
        )
    if request.method in _MUTATING and not _is_bearer(request):
        check_origin(request, svc)
        presented = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(
            csrf_for(svc, ctx.token).encode(), presented.encode("utf-8", "replace")
        ):
            raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    return ctx


async def _authenticate_api_token(
    request: web.Request, svc: Services, token: str, allowed: bool
) -> AgentContext:
    """A scoped API token (gateway/api_tokens.py): only on routes that declare a
    permission, rate-limited under its own key, audited on every use."""
    if not allowed:
        raise ApiError(
            403, "token_not_allowed", "API tokens cannot be used here; log in interactively"
        )
    service = api_tokens(svc)
    ctx = await service.authenticate(token)
    if ctx is None or ctx.api_token is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown, revoked or expired")
    decision = await svc.guard.limiter.hit(
        f"api:{ctx.session.token_hash}", svc.guard.limits.api_per_token, scope="api_per_token"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; slow down",
            headers=retry_headers(decision.retry_after),
        )
    route = request.match_info.route.resource
    await service.record_use(
        ctx,
        request.method,
        route.canonical if route is not None else request.path,
        peer_ip(request, svc),
    )
    return ctx


Handler = Callable[[web.Request, AgentContext], Awaitable[web.StreamResponse]]


def authed(
    permission: Permission | InstallationPermission | None = None, *, api_tokens: bool | None = None
) -> Callable[[Handler], Any]:
    """Decorator: authenticate, then (optionally) require ``permission`` in own tenant
    (an :class:`InstallationPermission` requires the installation operator).

    Scoped API tokens are accepted only where ``api_tokens`` is true, which defaults to
    "the route declares a permission": routes without one (own account, credentials,
    logout) are for interactive sessions only. The permission and the token flag are
    kept on the handler (``required_permission``, ``accepts_api_tokens``) so tests can
    check the scope of every route.
    """
    tokens_ok = permission is not None if api_tokens is None else api_tokens

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def inner(request: web.Request) -> web.StreamResponse:
            ctx = await authenticate(request, api_tokens_allowed=tokens_ok)
            try:
                if isinstance(permission, InstallationPermission):
                    require_operator(ctx.principal, permission)
                elif permission is not None:
                    require(ctx.principal, permission, ctx.principal.tenant_id)
                return await handler(request, ctx)
            except Forbidden:
                raise ApiError(403, "forbidden", "your role does not allow this") from None
            except CredentialError as exc:
                raise credential_error(exc) from None

        inner.__name__ = handler.__name__
        inner.__doc__ = handler.__doc__
        inner.required_permission = permission  # type: ignore[attr-defined]
        inner.accepts_api_tokens = tokens_ok  # type: ignore[attr-defined]
        return inner

    return wrap


_CREDENTIAL_STATUS = {
    "weak_password": 400,
    "wrong_password": 403,
    "invalid_otp": 400,
    "no_enrollment": 409,
    "invalid_email": 400,
    "email_taken": 409,
    "invalid_role": 400,
    "not_found": 404,
    "reauth_required": 403,
    "reauth_failed": 403,
    "rate_limited": 429,
}


def credential_error(exc: CredentialError) -> ApiError:
    """The API answer for a refused credential operation (status per documented code)."""
    extra = dict(exc.extra)
    headers = None
    if "retry_after" in extra:
        headers = retry_headers(extra["retry_after"])
        extra["retry_after"] = math.ceil(extra["retry_after"])
    return ApiError(
        _CREDENTIAL_STATUS.get(exc.code, 400), exc.code, exc.message, headers=headers, **extra
    )


def _lifetime(svc: Services) -> SessionLifetime:
    return SessionLifetime(
        idle_timeout=svc.config.auth.idle_timeout,
        absolute_lifetime=svc.config.auth.absolute_lifetime,
    )


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "email": agent.email,
        "display_name": agent.display_name,
        "role": agent.role,
        "tenant": agent.tenant_id,
        "disabled": agent.disabled,
        "totp_confirmed": agent.totp_confirmed,
        "created_at": agent.created_at,
        "password_changed_at": agent.password_changed_at,
    }


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def tenant_json(svc: Services, tenant: Tenant) -> dict[str, Any]:
    try:
        fingerprints = [_fingerprint(s) for s in svc.tenants.identity_secrets(tenant)]
    except Exception:  # unreadable sealed secrets (wrong master key): say so, never crash
        fingerprints = ["unreadable"]
    return {
        "id": tenant.id,
        "name": tenant.name,
        "allowed_origins": tenant.allowed_origins,
        "identity_mode": tenant.identity_mode,
        "identity_secrets": [{"fingerprint": f} for f in fingerprints],
        "settings": tenant.settings,
        "frozen": tenant.frozen,
        "created_at": tenant.created_at,
    }


def _audit_json(event: AuditEvent, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One audit record; ``actor_name``/``target_name`` label agent ids of the tenant."""
    labels = labels or {}
    return {
        "id": event.id,
        "ts": event.ts,
        "action": event.action,
        "tenant": event.tenant_id,
        "actor": event.actor,
        "target": event.target,
        "ip": event.ip,
        "details": event.details,
        "actor_name": labels.get(event.actor or ""),
        "target_name": labels.get(event.target or ""),
    }


async def qr_data_url(uri: str) -> str:
    """``uri`` as a QR code in a ``data:`` URL (rendered off the event loop)."""
    png = await asyncio.to_thread(qr_png, uri)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _ok(**data: Any) -> web.Response:
    return web.json_response({"ok": True, **data})


# ---------------------------------------------------------------------- login/session


async def login(request: web.Request) -> web.Response:
    """``POST /api/login {"email","password","otp"}`` → session token + cookie."""
    svc = _svc(request)
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
            "expires_at": _lifetime(svc).expires_at(session.created_at, session.last_seen_at),
            **extra,
        },
        status=status,
    )
    response.set_cookie(
        COOKIE,
        result.token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=svc.config.server.behind_tls or None,
        max_age=int(svc.config.auth.absolute_lifetime),
    )
    return response


@authed()
async def logout(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    await svc.logins.logout(ctx.agent, ctx.session.token_hash, ip=peer_ip(request, svc))
    response = _ok()
    response.del_cookie(COOKIE, path="/")
    return response


@authed()
async def me(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
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
                "expires_at": _lifetime(svc).expires_at(session.created_at, session.last_seen_at),
            },
            "recovery_codes_left": await svc.store.count_recovery_codes(ctx.agent.id),
            "password_change_required": await svc.store.password_reset_forced(ctx.agent.id),
        }
    )


@authed()
async def reauth(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/me/reauth {"password","otp"}``: step-up for credential changes."""
    svc = _svc(request)
    body = await read_json(request, ReauthBody)
    at = await svc.logins.reauthenticate(
        ctx.agent, ctx.session, body.password, body.otp, ip=peer_ip(request, svc)
    )
    return _ok(reauth_until=at + svc.config.auth.reauth_window)


@authed()
async def change_password(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
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
    return _ok(sessions_revoked=revoked)


@authed()
async def start_totp(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
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
    svc = _svc(request)
    body = await read_json(request, ConfirmTotpBody)
    svc.logins.require_reauth(ctx.session)
    await svc.logins.confirm_enrollment(
        ctx.agent, ctx.session.token_hash, body.otp, body.enrollment, ip=peer_ip(request, svc)
    )
    return _ok()


@authed()
async def recovery_codes(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    svc.logins.require_reauth(ctx.session)
    codes = await svc.logins.regenerate_recovery_codes(
        ctx.agent, actor=ctx.agent.id, ip=peer_ip(request, svc), keep_session=ctx.session.token_hash
    )
    return web.json_response({"recovery_codes": codes})


# ---------------------------------------------------------------------- admin: agents


async def _target_agent(request: web.Request, ctx: AgentContext, permission: Permission) -> Agent:
    """The agent named in the path, in the caller's tenant; 404 otherwise (also for an
    agent of another tenant, so ids of other tenants cannot be probed)."""
    svc = _svc(request)
    agent_id = request.match_info["agent_id"]
    agent = await svc.store.get_agent(agent_id) if len(agent_id) <= 64 else None
    if agent is None or agent.tenant_id != ctx.principal.tenant_id:
        raise ApiError(404, "not_found", "no such agent")
    require(ctx.principal, permission, agent.tenant_id)
    return agent


@authed(Permission.AGENT_MANAGE)
async def list_agents(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    agents = await svc.store.list_agents(tenant_id)
    return web.json_response({"agents": [agent_json(a) for a in agents]})


@authed(Permission.AGENT_MANAGE)
async def create_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    body = await read_json(request, CreateAgentBody)
    tenant_id = body.tenant or ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    creds = await svc.logins.create_agent(
        body.email,
        tenant_id,
        body.role,
        body.password,
        body.display_name,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
    )
    # Issue 16.9: a password an admin chose is known to the admin, so the agent must
    # replace it before doing anything else (the password_change_required gate; the
    # console shows its change-password form). Invites avoid this altogether.
    await svc.store.force_password_resets([creds.agent.id], ctx.agent.id, svc.clock())
    return web.json_response(
        {
            "agent": agent_json(creds.agent),
            "otpauth_uri": creds.otpauth_uri,
            "qr_png": await qr_data_url(creds.otpauth_uri),
            "recovery_codes": creds.recovery_codes,
        },
        status=201,
    )


async def _enabled_admins(svc: Services, tenant_id: str) -> int:
    return sum(
        1
        for a in await svc.store.list_agents(tenant_id)
        if a.role == Role.ADMIN.value and not a.disabled
    )


@authed(Permission.AGENT_MANAGE)
async def patch_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    agent = await _target_agent(request, ctx, Permission.AGENT_MANAGE)
    body = await read_json(request, PatchAgentBody)
    ip = peer_ip(request, svc)
    actor = ctx.agent.id
    losing_admin = (
        agent.role == Role.ADMIN.value
        and not agent.disabled
        and ((body.role is not None and body.role != Role.ADMIN.value) or body.disabled is True)
    )
    if losing_admin and await _enabled_admins(svc, agent.tenant_id) <= 1:
        raise ApiError(409, "last_admin", "the tenant would be left without an enabled admin")
    if body.display_name is not None and body.display_name != agent.display_name:
        agent.display_name = body.display_name.strip()[:120] or agent.display_name
        await svc.store.update_agent(agent)
        await svc.auditor.record(
            "agent.renamed", tenant_id=agent.tenant_id, actor=actor, target=agent.id, ip=ip
        )
    if body.role is not None and body.role != agent.role:
        old = agent.role
        agent.role = body.role
        await svc.store.update_agent(agent)
        await svc.auditor.record(
            "role.changed",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
            old_role=old,
            new_role=body.role,
        )
        # Open sockets hold the old principal: make them log in again.
        await svc.logins.revoke_all(agent.id, actor, ip=ip, reason="role_changed")
    if body.disabled is not None and body.disabled != agent.disabled:
        await svc.logins.set_disabled(agent, body.disabled, actor=actor, ip=ip)
    return web.json_response({"agent": agent_json(agent)})


@authed(Permission.AGENT_MANAGE)
async def unlock_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    agent = await _target_agent(request, ctx, Permission.AGENT_MANAGE)
    had = await svc.logins.unlock(agent, actor=ctx.agent.id, ip=peer_ip(request, svc))
    return _ok(was_locked=had)


@authed(Permission.AGENT_MANAGE)
async def revoke_sessions(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    agent = await _target_agent(request, ctx, Permission.AGENT_MANAGE)
    count = await svc.logins.revoke_all(agent.id, ctx.agent.id, ip=peer_ip(request, svc))
    return _ok(sessions_revoked=count)


@authed(Permission.AGENT_MANAGE)
async def reset_mfa(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    agent = await _target_agent(request, ctx, Permission.AGENT_MANAGE)
    svc.logins.require_reauth(ctx.session)
    creds = await svc.logins.reset_mfa(agent, actor=ctx.agent.id, ip=peer_ip(request, svc))
    return web.json_response(
        {
            "agent": agent_json(creds.agent),
            "otpauth_uri": creds.otpauth_uri,
            "qr_png": await qr_data_url(creds.otpauth_uri),
            "recovery_codes": creds.recovery_codes,
        }
    )


# ---------------------------------------------------------------------- admin: audit


def _query_number(
    request: web.Request,
    name: str,
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"query parameter {name} must be a number", field=name
        ) from None
    if (
        (isinstance(value, float) and not math.isfinite(value))
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ApiError(400, "bad_request", f"query parameter {name} is out of range", field=name)
    return value


#: Largest row id a database column holds (signed 64-bit); larger ids cannot exist, and
#: passing one to SQLite raised OverflowError (a 500, found by schemathesis).
_MAX_ROW_ID = 2**63 - 1


@authed(Permission.AUDIT_READ)
async def audit(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/audit?action=&actor=&since=&until=&before_id=&limit=``: newest first.
    ``actor`` is an agent id, e-mail or (part of a) name, or a non-agent actor such as
    ``system``; several matching agents → 400 ``ambiguous_actor``. Records carry
    ``actor_name``/``target_name`` (display name or e-mail) for the tenant's agent ids."""
    svc = _svc(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AUDIT_READ, tenant_id)
    for name in ("action", "actor"):
        if len(request.query.get(name, "")) > 128:
            raise ApiError(400, "bad_request", f"query parameter {name} is too long", field=name)
    limit = _query_number(request, "limit", int, low=1, high=500) or 100
    agents = await tenant_agents(svc.store, tenant_id)
    actor = request.query.get("actor", "").strip() or None
    if actor is not None:  # an agent's e-mail or name also works, not only the id
        matched = match_agents(agents, actor)
        if len(matched) > 1:
            raise ApiError(
                400,
                "ambiguous_actor",
                "several agents match: type more of the name or the whole e-mail address",
                field="actor",
            )
        actor = matched[0].id if matched else actor
    events = await svc.store.query_audit(
        tenant_id=tenant_id,
        action=request.query.get("action") or None,
        actor=actor,
        since=_query_number(request, "since", float),
        until=_query_number(request, "until", float),
        before_id=_query_number(request, "before_id", int, low=1, high=_MAX_ROW_ID),
        limit=limit,
    )
    next_before = events[-1].id if len(events) == limit else None
    # Reading the audit log is itself an access worth recording (who looked, at what).
    await svc.auditor.record(
        "audit.read",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        rows=len(events),
        filters=sorted(
            k for k in ("action", "actor", "since", "until", "before_id") if request.query.get(k)
        ),
    )
    labels = {a.id: agent_label(a) for a in agents}
    return web.json_response(
        {"events": [_audit_json(e, labels) for e in events], "next_before_id": next_before}
    )


# ---------------------------------------------------------------------- admin: tenant


async def _own_tenant(svc: Services, ctx: AgentContext) -> Tenant:
    tenant = await svc.store.get_tenant(ctx.principal.tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    return tenant


@authed(Permission.TENANT_MANAGE)
async def get_tenant(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    return web.json_response({"tenant": tenant_json(svc, tenant)})


async def _set_frozen(svc: Services, tenant: Tenant, frozen: bool, actor: str, ip: str) -> None:
    from gateway.tenant_admin import set_frozen

    await set_frozen(svc, tenant, frozen, actor=actor, ip=ip)


@authed(Permission.TENANT_MANAGE)
async def patch_tenant(request: web.Request, ctx: AgentContext) -> web.Response:

    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    body = await read_json(request, PatchTenantBody)
    ip = peer_ip(request, svc)
    changed: list[str] = []
    if body.name is not None:
        tenant.name = body.name.strip() or tenant.name
        changed.append("name")
    if body.allowed_origins is not None:
        origins = []
        for raw in body.allowed_origins:
            normalized = normalize_origin(raw)
            if normalized is None:
                raise ApiError(
                    400,
                    "invalid_origin",
                    "origins look like https://shop.example.com (no path)",
                    field="allowed_origins",
                )
            origins.append(normalized)
        tenant.allowed_origins = sorted(set(origins))
        changed.append("allowed_origins")
    if body.identity_mode is not None:
        tenant.identity_mode = body.identity_mode
        changed.append("identity_mode")
    if body.identity_secrets is not None:
        if any(len(s.encode()) < MIN_SECRET_BYTES for s in body.identity_secrets):
            raise ApiError(
                400,
                "invalid_secret",
                f"identity secrets need at least {MIN_SECRET_BYTES} bytes",
                field="identity_secrets",
            )
        tenant.identity_secrets_sealed = (
            svc.tenants.seal_identity_secrets(tenant.id, body.identity_secrets)
            if body.identity_secrets
            else None
        )
        changed.append("identity_secrets")
    if tenant.identity_mode == "enforced" and not tenant.identity_secrets_sealed:
        raise ApiError(
            400,
            "invalid_secret",
            "enforced identity needs an identity secret",
            field="identity_secrets",
        )
    if body.policy is not None or body.allowed_link_domains is not None:
        # The message policy is its own permission (a token or role that manages origins
        # and secrets need not be able to switch PII masking off).
        require(ctx.principal, Permission.POLICY_MANAGE, tenant.id)
    settings = dict(tenant.settings)
    if body.policy is not None:
        settings["policy"] = body.policy
        changed.append("policy")
    if body.allowed_link_domains is not None:
        settings["allowed_link_domains"] = body.allowed_link_domains
        changed.append("allowed_link_domains")
    if body.queues is not None:
        settings["queues"] = sorted(set(body.queues) - {DEFAULT_QUEUE})
        tenant.settings = settings
        changed.append("queues")
    if body.invite_ttl_hours is not None:
        settings[INVITE_TTL_SETTING] = body.invite_ttl_hours
        tenant.settings = settings
        changed.append(INVITE_TTL_SETTING)
    if body.policy is not None or body.allowed_link_domains is not None:
        await _check_policy(svc, tenant.id, settings)
        settings.pop("managed_demo", None)
        tenant.settings = settings
    frozen_changed = body.frozen is not None and body.frozen != tenant.frozen
    if frozen_changed:
        tenant.frozen = bool(body.frozen)
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    if changed:
        await svc.auditor.record(
            "tenant.updated",
            tenant_id=tenant.id,
            actor=ctx.agent.id,
            target=tenant.id,
            ip=ip,
            fields=changed,
        )
    if frozen_changed:
        await _set_frozen(svc, tenant, tenant.frozen, ctx.agent.id, ip)
    return web.json_response({"tenant": tenant_json(svc, tenant)})


@authed(Permission.EMERGENCY)
async def freeze(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    require(ctx.principal, Permission.EMERGENCY, tenant.id)
    body = await read_json(request, FreezeBody)
    await _set_frozen(svc, tenant, body.frozen, ctx.agent.id, peer_ip(request, svc))
    from gateway.governance.wiring import governance_of

    await governance_of(svc).incidents.note(  # the emergency panel keeps the record
        tenant.id, ctx.agent.id, "tenant.frozen" if body.frozen else "tenant.unfrozen"
    )
    return _ok(frozen=body.frozen)


# ---------------------------------------------------------------------- policy, flags, chats


@authed(Permission.POLICY_TEST)
async def policy_test(request: web.Request, ctx: AgentContext) -> web.Response:

    svc = _svc(request)
    body = await read_json(request, PolicyTestBody)
    tenant_id = body.tenant or ctx.principal.tenant_id
    require(ctx.principal, Permission.POLICY_TEST, tenant_id)
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    engine = await svc.policies.engine(tenant.id, tenant.settings)
    decision = await asyncio.to_thread(engine.evaluate, body.text, body.direction)
    # Audited without the text: who probed the policy, and what it decided.
    await svc.auditor.record(
        "policy.tested",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        direction=body.direction,
        outcome=decision.action,
        kinds=sorted(decision.kinds),
        chars=len(body.text),
    )
    return web.json_response(engine.as_dict(decision))


async def _check_policy(svc: Services, tenant_id: str, settings: dict[str, Any]) -> None:
    """Validate new policy settings strictly (unknown keys refused, no server paths) and
    build the engine off the event loop under its time budget before anything is stored."""
    from gateway.policy import PolicyConfigError

    registry = svc.policies
    try:
        config = registry.config_for(settings, strict=True)
        await registry.build(tenant_id, settings, config=config)
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_policy", str(exc)[:300], field="policy") from None


class KeywordListBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=50_000)]


@authed(Permission.TENANT_MANAGE)
async def policy_schema(request: web.Request, ctx: AgentContext) -> web.Response:
    """The policy schema, defaults and the tenant's effective per-audience table."""
    from gateway.policy.describe import effective_table
    from gateway.policy.schema import describe

    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    engine = await svc.policies.engine(tenant.id, tenant.settings)
    return web.json_response({"settings": describe(), "kinds": effective_table(engine.config)})


@authed(Permission.POLICY_MANAGE)
async def list_keyword_lists(request: web.Request, ctx: AgentContext) -> web.Response:
    from gateway.policy.lists import MAX_LIST_BYTES, MAX_LISTS, MAX_TENANT_TERMS

    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    records = await svc.store.list_keyword_lists(tenant.id)
    return web.json_response(
        {
            "lists": [
                {
                    "name": r.name,
                    "terms": r.terms,
                    "bytes": len(r.body.encode()),
                    "digest": r.digest,
                    "updated_at": r.updated_at,
                }
                for r in records
            ],
            "limits": {
                "lists": MAX_LISTS,
                "bytes_per_list": MAX_LIST_BYTES,
                "terms_per_tenant": MAX_TENANT_TERMS,
            },
        }
    )


def _list_name(request: web.Request) -> str:
    from gateway.policy import PolicyConfigError
    from gateway.policy.lists import check_name

    try:
        return check_name(request.match_info["name"])
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_keyword_list", str(exc), field="name") from None


@authed(Permission.POLICY_MANAGE)
async def get_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    name = _list_name(request)
    for record in await svc.store.list_keyword_lists(tenant.id):
        if record.name == name:
            return web.json_response({"name": name, "text": record.body, "terms": record.terms})
    raise ApiError(404, "not_found", "no such keyword list")


@authed(Permission.POLICY_MANAGE)
async def put_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    from gateway.policy import PolicyConfigError
    from gateway.policy_lists import save_keyword_list

    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    name = _list_name(request)
    body = await read_json(request, KeywordListBody)
    try:
        parsed = await save_keyword_list(
            svc.store, tenant, name, body.text, ctx.agent.id, svc.clock()
        )
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_keyword_list", str(exc)[:300], field="text") from None
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "policy.keyword_list_saved",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=name,
        ip=peer_ip(request, svc),
        terms=len(parsed.rules),
    )
    return _ok(name=name, terms=len(parsed.rules), digest=parsed.digest)


@authed(Permission.POLICY_MANAGE)
async def delete_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    from gateway.policy_lists import delete_keyword_list as delete

    svc = _svc(request)
    tenant = await _own_tenant(svc, ctx)
    name = _list_name(request)
    if not await delete(svc.store, tenant, name):
        raise ApiError(404, "not_found", "no such keyword list")
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "policy.keyword_list_deleted",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=name,
        ip=peer_ip(request, svc),
    )
    return _ok(name=name)


@authed(Permission.FLAG_VIEW_ORIGINAL)
async def list_flags(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.FLAG_VIEW_ORIGINAL, tenant_id)
    raw_all = request.query.get("all", "")
    if raw_all not in ("", "1", "true", "0", "false"):
        raise ApiError(
            400, "bad_request", "query parameter all must be 1, true, 0 or false", field="all"
        )
    every = raw_all in ("1", "true")
    flags = await svc.store.list_flags(tenant_id, unreviewed_only=not every)
    return web.json_response(
        {
            "flags": [
                {
                    "id": f.id,
                    "chat": f.chat_id,
                    "seq": f.seq,
                    "kinds": f.kinds,
                    "created_at": f.created_at,
                    "reviewed_by": f.reviewed_by,
                }
                for f in flags
                if f.tenant_id == tenant_id
            ]
        }
    )


def _int_path(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "no such resource")
    return int(raw)


def _chat_error(exc: ChatError) -> ApiError:
    status = {"not_found": 404, "forbidden": 403}.get(exc.code, 409)
    return ApiError(status, exc.code, exc.message)


@authed(Permission.FLAG_VIEW_ORIGINAL)
async def flag_original(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    flag_id = _int_path(request, "flag_id")
    from gateway.http.governance import require_approval  # (http_governance imports us)

    await require_approval(svc, ctx, "flag.view_original", str(flag_id))
    try:
        data = await svc.chats.flag_original(ctx.principal, flag_id, peer_ip(request, svc))
    except ChatError as exc:
        raise _chat_error(exc) from None
    return web.json_response(data)


@authed(Permission.TENANT_MANAGE)
async def erase_chat(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    chat_id = request.match_info["chat_id"]
    chat = await svc.store.get_chat(chat_id) if len(chat_id) <= 128 else None
    if chat is None or chat.tenant_id != ctx.principal.tenant_id:
        raise ApiError(404, "not_found", "no such chat")
    require(ctx.principal, Permission.TENANT_MANAGE, chat.tenant_id)
    from gateway.http.governance import require_approval  # (http_governance imports us)

    await require_approval(svc, ctx, "chat.erase", chat_id)
    erased = await svc.chats.erase(chat_id, actor=ctx.agent.id, tenant_id=chat.tenant_id)
    return _ok(erased=erased)


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
    r.add_get("/api/agents", list_agents)
    r.add_post("/api/agents", create_agent)
    r.add_patch("/api/agents/{agent_id}", patch_agent)
    r.add_post("/api/agents/{agent_id}/unlock", unlock_agent)
    r.add_post("/api/agents/{agent_id}/revoke-sessions", revoke_sessions)
    r.add_post("/api/agents/{agent_id}/reset-mfa", reset_mfa)
    r.add_get("/api/audit", audit)
    r.add_get("/api/tenant", get_tenant)
    r.add_patch("/api/tenant", patch_tenant)
    r.add_post("/api/policy/test", policy_test)
    r.add_get("/api/policy/schema", policy_schema)
    r.add_get("/api/policy/keyword-lists", list_keyword_lists)
    r.add_get("/api/policy/keyword-lists/{name}", get_keyword_list)
    r.add_put("/api/policy/keyword-lists/{name}", put_keyword_list)
    r.add_delete("/api/policy/keyword-lists/{name}", delete_keyword_list)
    r.add_get("/api/flags", list_flags)
    r.add_get("/api/flags/{flag_id}/original", flag_original)
    r.add_post("/api/chats/{chat_id}/erase", erase_chat)
    r.add_post("/api/emergency/freeze", freeze)
