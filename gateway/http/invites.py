"""HTTP API and page for agent invitations (issue 16.9); the rules live in ``gateway/invites.py``.

Admin side (``agent_manage``, own tenant):

* ``GET /api/invites`` — every invite with its ``status`` (``pending``, ``used``,
  ``expired``, ``revoked``), who created it, expiry, and the tenant's ``ttl_hours``; never
  the token or its hash.
* ``POST /api/invites {"email", "role", "display_name"?}`` — 201 with ``link``
  (``<console>/invite#cdi_...``, shown this once) and the invite. Errors: 400
  ``invalid_email`` / ``invalid_role``, 409 ``email_taken`` / ``too_many_invites``.
* ``DELETE /api/invites/{id}`` — revoke a pending invite (404 ``not_found`` otherwise).

Invitee side (no session; the page at ``GET /invite`` reads the token from the URL
fragment and POSTs it; ``Origin``, when sent, must be the console's, else 403 ``csrf``):

* ``POST /api/invite/open {"token"}`` — who the invite is for, and a TOTP secret to enrol
  (``secret``, ``otpauth_uri``, ``qr_png``, sealed ``enrollment``).
* ``POST /api/invite/redeem {"token", "password", "enrollment", "otp"}`` — creates the
  account, uses the invite up and answers like ``POST /api/login`` (session cookie,
  ``csrf``) plus the ``recovery_codes`` (shown once). A re-enrolment link (``purpose``
  ``mfa_reset``, made by an admin's ``POST /api/agents/{id}/reset-mfa``) takes the agent's
  *current* password instead (403 ``wrong_password``) and enrols the new second factor.

Errors of both: 404 ``invite_invalid`` (unknown or malformed token), 410 ``invite_used``
/ ``invite_expired`` / ``invite_revoked``, 400 ``weak_password`` (with ``reason``:
``too_short``, ``common``...) / ``invalid_otp``, 409 ``no_enrollment`` (the TOTP set-up
of the page expired: reload) / ``email_taken``, 429
``rate_limited`` (per client address — ``login_per_ip`` — and, for redemption, per invite
token — ``login_per_account``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission, require
from gateway.http.account import session_response
from gateway.http.plumbing import (
    Email,
    Name,
    Otp,
    Password,
    RoleName,
    authed,
    check_origin,
    credential_error,
    qr_data_url,
    read_json,
    retry_headers,
    role_rules,
    services_of,
)
from gateway.http.public import ApiError
from gateway.http.web import page, public_base
from gateway.invites import InviteError, InviteService, IssuedInvite, ttl_hours
from gateway.logins import CredentialError
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_display_name
from gateway.store.base import Invite

InviteToken = Annotated[str, Meta(max_length=128)]


class CreateInviteBody(Struct, forbid_unknown_fields=True):
    email: Email
    role: RoleName
    display_name: Name | None = None


class OpenInviteBody(Struct, forbid_unknown_fields=True):
    token: InviteToken


class RedeemInviteBody(Struct, forbid_unknown_fields=True):
    token: InviteToken
    password: Password
    enrollment: Annotated[str, Meta(max_length=4096)]
    otp: Otp


def invite_link(request: web.Request, svc: Services, issued: IssuedInvite) -> str:
    """The page an invitee opens: the token rides in the fragment, never sent to a server
    log or a referrer."""
    return f"{public_base(request, svc)}/invite#{issued.token}"


def invites_of(svc: Services) -> InviteService:
    """The invite service over this installation's services (stateless, cheap)."""
    return InviteService(
        store=svc.store,
        auditor=svc.auditor,
        logins=svc.logins,
        keyring=svc.keyring,
        clock=svc.clock,
    )


def _invite_error(exc: InviteError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def _invite_json(svc: Services, invite: Invite) -> dict[str, Any]:
    creator = await svc.store.get_agent(invite.created_by)
    return {
        "id": invite.id,
        "email": invite.email,
        "display_name": invite.display_name,
        "role": invite.role,
        "status": await invites_of(svc).status_of(invite),
        "created_by": {"id": invite.created_by, "email": creator.email if creator else None},
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "used_at": invite.used_at,
        "agent_id": invite.agent_id,
        "revoked_at": invite.revoked_at,
    }


@authed(Permission.AGENT_MANAGE)
async def list_invites(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/invites``."""
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    found = await invites_of(svc).list_invites(tenant_id)
    return web.json_response(
        {
            "invites": [await _invite_json(svc, i) for i in found],
            "ttl_hours": ttl_hours(await svc.store.get_tenant(tenant_id)),
        }
    )


@authed(Permission.AGENT_MANAGE)
async def create_invite(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/invites``: the link is in this response and nowhere else, ever."""
    svc = services_of(request)
    body = await read_json(request, CreateInviteBody)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    with role_rules():
        svc.custom_roles.check_grantable(ctx.principal, body.role)
    # shown to customers and plugins once the invitee joins
    name = await screen_display_name(svc, tenant_id, body.display_name, "display_name")
    try:
        issued = await invites_of(svc).create(
            tenant_id,
            body.email,
            body.role,
            name,
            actor=ctx.agent.id,
            ip=peer_ip(request, svc),
        )
    except InviteError as exc:
        raise _invite_error(exc) from None
    except CredentialError as exc:
        raise credential_error(exc) from None
    return web.json_response(
        {
            "link": invite_link(request, svc, issued),
            "invite": await _invite_json(svc, issued.invite),
        },
        status=201,
    )


@authed(Permission.AGENT_MANAGE)
async def revoke_invite(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/invites/{invite_id}``."""
    svc = services_of(request)
    done = await invites_of(svc).revoke(
        ctx.principal.tenant_id,
        request.match_info["invite_id"],
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
    )
    if not done:
        raise ApiError(404, "not_found", "no such pending invite")
    return web.json_response({"ok": True})


async def _limit(svc: Services, key: str, per_token: bool) -> None:
    """429 when the address (or, ``per_token``, the invite token) is over budget. The
    keys are keyed hashes: no address and no token in the limiter or in Redis."""
    limits = svc.guard.limits
    rate, scope = (
        (limits.login_per_account, "login_per_account")
        if per_token
        else (limits.login_per_ip, "login_per_ip")
    )
    decision = await svc.guard.limiter.hit(key, rate, scope=scope)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many attempts; try again later",
            headers=retry_headers(decision.retry_after),
            retry_after=max(1, math.ceil(decision.retry_after)),
        )


async def _limit_address(request: web.Request, svc: Services) -> str:
    ip = peer_ip(request, svc)
    await _limit(svc, "invite:" + svc.logins.throttle.keys("invite", ip).source, False)
    return ip


async def open_invite(request: web.Request) -> web.Response:
    """``POST /api/invite/open {"token"}``."""
    svc = services_of(request)
    check_origin(request, svc)
    body = await read_json(request, OpenInviteBody)
    await _limit_address(request, svc)
    try:
        opened = await invites_of(svc).open(body.token)
    except InviteError as exc:
        raise _invite_error(exc) from None
    invite = opened.invite
    return web.json_response(
        {
            "email": invite.email,
            "display_name": invite.display_name,
            "role": invite.role,
            "tenant": opened.tenant_name,
            "expires_at": invite.expires_at,
            "secret": opened.secret,
            "otpauth_uri": opened.otpauth_uri,
            "qr_png": await qr_data_url(opened.otpauth_uri),
            "enrollment": opened.enrollment,
            "purpose": invite.purpose,
        },
        headers={"Cache-Control": "no-store"},
    )


async def redeem_invite(request: web.Request) -> web.Response:
    """``POST /api/invite/redeem``: account created, invite used up, session started."""
    svc = services_of(request)
    check_origin(request, svc)
    body = await read_json(request, RedeemInviteBody)
    ip = await _limit_address(request, svc)
    service = invites_of(svc)
    await _limit(svc, "invite:t:" + service.token_hash(body.token)[:32], True)
    try:
        done = await service.redeem(
            body.token,
            body.password,
            body.enrollment,
            body.otp,
            ip=ip,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except InviteError as exc:
        raise _invite_error(exc) from None
    except CredentialError as exc:
        raise credential_error(exc) from None
    response = session_response(
        svc, done.login, status=201, recovery_codes=done.credentials.recovery_codes
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def invite_page(request: web.Request) -> web.Response:
    """``GET /invite``: the page; the token stays in the fragment, never sent here (and
    every response already carries ``Referrer-Policy: no-referrer``)."""
    return page(request, "invite.html")


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/invites", list_invites)
    r.add_post("/api/invites", create_invite)
    r.add_delete("/api/invites/{invite_id}", revoke_invite)
    r.add_post("/api/invite/open", open_invite)
    r.add_post("/api/invite/redeem", redeem_invite)
    r.add_get("/invite", invite_page)
