"""HTTP side of single sign-on (issue 20.2); the protocol lives in ``gateway/oidc.py``.

Browser navigations (no JSON, no session yet):

* ``GET /oidc/{tenant}/login`` -- 302 to the company's identity provider (404 for a
  string that is not a tenant id at all).
* ``GET /oidc/callback?code&state`` -- back from it: on success the ``cd_session`` cookie
  and 302 to ``/console``; on failure 302 to ``/console?sso_error=<code>`` (the console
  shows why, in the agent's language): ``sso_off``, ``invalid_state``, ``denied``,
  ``mfa_required``, ``email_unverified``, ``unknown_agent``, ``invalid_id_token``,
  ``invalid_grant``, ``token_refused``, ``provider_unreachable``, ``provider_mismatch``,
  ``rate_limited``.

Admin API (``tenant_manage``): ``GET|PUT|DELETE /api/oidc/settings`` -- the issuer (one the
installation operator allowed), client id and secret (write-only), whether the provider
must report a second factor (default yes) and just-in-time creation; the answer names
the callback address to register at the provider. Changing or removing them needs a
fresh step-up (403 ``reauth_required``: ``POST /api/me/reauth`` first). Errors: 400
``issuer_not_allowed`` / ``provider_unreachable`` / ``no_secret``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission
from gateway.http.account import set_session_cookie
from gateway.http.plumbing import authed, own_tenant, read_json, services_of, store_setting
from gateway.http.public import ApiError
from gateway.oidc import SETTING, OidcError, OidcSettings
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.tenant_admin import TENANT_ID

log = structlog.get_logger("cipherdesk.oidc")

Url = Annotated[str, Meta(min_length=8, max_length=512)]
Short = Annotated[str, Meta(min_length=1, max_length=256)]


Value = Annotated[str, Meta(min_length=1, max_length=128)]


class OidcSettingsBody(Struct, forbid_unknown_fields=True):
    issuer: Url
    client_id: Short
    client_secret: Annotated[str, Meta(max_length=1024)] | None = None
    require_mfa: bool = True
    # amr methods (RFC 8176) and acr classes that mean a second factor; None: the defaults
    mfa_values: Annotated[list[Value], Meta(min_length=1, max_length=20)] | None = None
    acr_values: Annotated[list[Value], Meta(max_length=20)] = []
    jit: bool = False


class OidcSettingsView(Struct):
    """A tenant's settings as the admin sees them: the secret only as ``has_secret``."""

    issuer: str
    client_id: str
    require_mfa: bool
    mfa_values: list[str]
    acr_values: list[str]
    jit: bool
    has_secret: bool


class OidcSettingsOut(Struct):
    settings: OidcSettingsView | None
    redirect_uri: str
    allowed_issuers: list[str]


def _to_console(code: str) -> web.HTTPFound:
    return web.HTTPFound(f"/console?sso_error={quote(code)}")


async def _budget(request: web.Request, svc: Services) -> bool:
    decision = await svc.guard.limiter.hit(
        f"sso:{peer_ip(request, svc)}", svc.guard.limits.login_per_ip, scope="login_per_ip"
    )
    return decision.allowed


async def login(request: web.Request) -> web.StreamResponse:
    """``GET /oidc/{tenant}/login``."""
    svc = services_of(request)
    if not await _budget(request, svc):
        raise _to_console("rate_limited")
    tenant_id = request.match_info["tenant"]
    if not TENANT_ID.match(tenant_id):
        raise web.HTTPNotFound(text="no such company code")  # not a tenant id at all
    tenant = await svc.tenants.get(tenant_id)
    try:
        if tenant is None or tenant.frozen:
            raise OidcError("sso_off")
        url = await svc.oidc.start(tenant)
    except OidcError as exc:
        raise _to_console(exc.code) from None
    raise web.HTTPFound(url)


async def callback(request: web.Request) -> web.StreamResponse:
    """``GET /oidc/callback``: one line in the log per refusal, never a traceback."""
    svc = services_of(request)
    if not await _budget(request, svc):
        raise _to_console("rate_limited")
    query = request.query
    if "error" in query:
        raise _to_console("denied")
    code, state = query.get("code", ""), query.get("state", "")
    if not (0 < len(code) <= 2048 and 0 < len(state) <= 256):
        raise _to_console("invalid_state")
    try:
        result = await svc.oidc.finish(
            svc.tenants.get,
            code,
            state,
            ip=peer_ip(request, svc),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except OidcError as exc:
        log.info("sso_refused", reason=exc.code)
        raise _to_console(exc.code) from None
    response = web.HTTPFound("/console")
    set_session_cookie(response, svc, result.token)
    raise response


@authed(Permission.TENANT_MANAGE)
async def get_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/oidc/settings``."""
    svc = services_of(request)
    settings = OidcSettings.of(await svc.tenants.get(ctx.principal.tenant_id))
    return _settings_answer(svc, settings)


@authed(Permission.TENANT_MANAGE)
async def put_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/oidc/settings``: whom the tenant trusts to sign its agents in (and
    whether it must vouch for a second factor) is a credential of every agent, so changing
    it takes a freshly re-authenticated admin, as ``PUT /api/e2e`` does."""
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    body = await read_json(request, OidcSettingsBody)
    tenant = await own_tenant(svc, ctx)
    try:
        settings = await svc.oidc.configure(
            tenant,
            issuer=body.issuer,
            client_id=body.client_id,
            client_secret=body.client_secret,
            require_mfa=body.require_mfa,
            jit=body.jit,
            mfa_values=tuple(body.mfa_values) if body.mfa_values else None,
            acr_values=tuple(body.acr_values),
        )
    except OidcError as exc:
        raise ApiError(400, exc.code, str(exc), field="issuer") from None
    await store_setting(svc, tenant, SETTING, settings.as_json())
    await svc.auditor.record(
        "sso.configured",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        issuer=settings.issuer,
        require_mfa=settings.require_mfa,
        jit=settings.jit,
    )
    return _settings_answer(svc, settings)


@authed(Permission.TENANT_MANAGE)
async def delete_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/oidc/settings``: single sign-on off (open sessions keep their limits);
    it locks out agents who only sign in that way, so it takes a fresh step-up too."""
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    tenant = await own_tenant(svc, ctx)
    await store_setting(svc, tenant, SETTING, None)
    await svc.auditor.record(
        "sso.removed", tenant_id=tenant.id, actor=ctx.agent.id, ip=peer_ip(request, svc)
    )
    return _settings_answer(svc, None)


def _settings_answer(svc: Services, settings: OidcSettings | None) -> web.Response:
    return web.json_response(
        {
            "settings": settings.public_json() if settings is not None else None,
            "redirect_uri": svc.oidc.redirect_uri,
            "allowed_issuers": list(svc.config.oidc.allowed_issuers),
        }
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/oidc/{tenant}/login", login)
    r.add_get("/oidc/callback", callback)
    r.add_get("/api/oidc/settings", get_settings)
    r.add_put("/api/oidc/settings", put_settings)
    r.add_delete("/api/oidc/settings", delete_settings)
