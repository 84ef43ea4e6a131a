"""HTTP API for scoped API tokens (issue 20.4); the rules live in ``gateway/api_tokens.py``.

* ``GET /api/tokens`` — the caller's tenant's tokens (the operator: installation tokens):
  id, name, permissions, effective permissions, creator, created/expires/last used,
  revoked; never the token or its hash.
* ``POST /api/tokens {"name", "permissions": [...], "expires_in_days"?}`` — 201 with
  ``token`` (``cdt_...``, shown this once) and the token's record. Needs a tenant admin
  (``tenant_manage``) or the installation operator, a *fresh step-up* (``/api/me/reauth``
  or a login within ``auth.reauth_window``: 403 ``reauth_required``), and an interactive
  session (an API token can never mint or revoke tokens: 403 ``token_not_allowed``).
  Errors: 400 ``invalid_name`` / ``invalid_scope`` / ``invalid_lifetime``, 409
  ``too_many_tokens``.
* ``DELETE /api/tokens/{id}`` — revoke at once (404 ``not_found`` for an unknown id,
  another tenant's or an already revoked one).

Audit: ``api_token.created``, ``api_token.revoked``, and ``api_token.used`` on every use.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct

from auth.api_tokens import DEFAULT_LIFETIME_DAYS, MAX_NAME_LENGTH, ScopeError
from auth.roles import Permission, require
from gateway.api_tokens import api_tokens, effective_permissions
from gateway.http.plumbing import authed, read_json
from gateway.http.public import ApiError
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_staff_text
from gateway.store.base import ApiToken


class CreateTokenBody(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LENGTH * 4)]
    permissions: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=64)]
    expires_in_days: Annotated[int, Meta(ge=-(10**6), le=10**6)] = DEFAULT_LIFETIME_DAYS


def _svc(request: web.Request) -> Services:
    return request.app[SERVICES]


def _require_token_admin(ctx: AgentContext) -> None:
    """Tenant admins manage their tenant's tokens; the operator the installation's."""
    if not ctx.principal.is_operator:
        require(ctx.principal, Permission.TENANT_MANAGE, ctx.principal.tenant_id)


async def _token_json(svc: Services, token: ApiToken, now: float) -> dict[str, Any]:
    owner = await svc.store.get_agent(token.owner_id)
    return {
        "id": token.id,
        "name": token.name,
        "permissions": token.permissions,
        "effective_permissions": effective_permissions(token, owner) if owner else [],
        "created_by": {"id": token.owner_id, "email": owner.email if owner else None},
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "state": (
            "revoked"
            if token.revoked_at is not None
            else "expired"
            if now >= token.expires_at
            else "live"
        ),
    }


@authed(api_tokens=False)
async def list_tokens(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/tokens``."""
    svc = _svc(request)
    _require_token_admin(ctx)
    now = svc.clock()
    tokens = await api_tokens(svc).list_tokens(ctx.principal.tenant_id)
    grantable = sorted(p.value for p in api_tokens(svc).grantable(ctx.principal))
    return web.json_response(
        {"tokens": [await _token_json(svc, t, now) for t in tokens], "grantable": grantable}
    )


@authed(api_tokens=False)
async def create_token(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/tokens``: the token is in this response and nowhere else, ever."""
    svc = _svc(request)
    _require_token_admin(ctx)
    body = await read_json(request, CreateTokenBody)
    svc.logins.require_reauth(ctx.session)
    name = await screen_staff_text(svc, ctx.principal.tenant_id, body.name, "name")
    try:
        issued = await api_tokens(svc).create(
            ctx.agent,
            ctx.principal,
            name,
            body.permissions,
            body.expires_in_days,
            ip=peer_ip(request, svc),
        )
    except ScopeError as exc:
        status = 409 if exc.code == "too_many_tokens" else 400
        field = {
            "invalid_name": "name",
            "invalid_scope": "permissions",
            "invalid_lifetime": "expires_in_days",
        }.get(exc.code)
        raise ApiError(status, exc.code, str(exc), field=field) from None
    return web.json_response(
        {"token": issued.secret, "api_token": await _token_json(svc, issued.token, svc.clock())},
        status=201,
    )


@authed(api_tokens=False)
async def revoke_token(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/tokens/{token_id}``."""
    svc = _svc(request)
    _require_token_admin(ctx)
    done = await api_tokens(svc).revoke(
        ctx.principal.tenant_id,
        request.match_info["token_id"],
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
    )
    if not done:
        raise ApiError(404, "not_found", "no such live token")
    return web.json_response({"ok": True})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/tokens", list_tokens)
    r.add_post("/api/tokens", create_token)
    r.add_delete("/api/tokens/{token_id}", revoke_token)
