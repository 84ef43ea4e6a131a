"""Passkeys over JSON (issue 20.1; the rules are in :mod:`gateway.passkeys`).

* ``GET /api/me/passkeys`` — the caller's passkeys (no key material).
* ``POST /api/me/passkeys/options`` — start a registration (needs a fresh step-up,
  ``POST /api/me/reauth``, like every credential change): ``{challenge_id, options}``;
  the page passes ``options`` to ``navigator.credentials.create()``.
* ``POST /api/me/passkeys {challenge_id, credential, name}`` — finish it (201).
* ``DELETE /api/me/passkeys/{credential_id}`` — remove one (fresh step-up too).
* ``POST /api/login/passkey/options`` — start a passkey login (no session):
  ``{challenge_id, options}`` for ``navigator.credentials.get()``.
* ``POST /api/login/passkey {challenge_id, credential}`` — finish it: the same answer
  and cookie as ``POST /api/login``.

Error codes: ``reauth_required`` (403), ``challenge_expired`` (400: start again),
``passkey_invalid`` (400: wrong origin or RP id, no user verification, bad signature),
``passkey_exists`` (409), ``too_many_passkeys`` (409), ``not_found`` (404),
``login_failed`` (401, one answer for every login refusal), ``rate_limited`` (429).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct

from gateway.http.account import session_response
from gateway.http.plumbing import authed, check_origin, read_json, retry_headers, services_of
from gateway.http.public import ApiError
from gateway.logins import GENERIC_FAILURE, LoginFailed
from gateway.passkeys import PasskeyRefused, Started
from gateway.services import peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_staff_text
from gateway.store.base import Passkey

ChallengeId = Annotated[str, Meta(min_length=8, max_length=64, pattern=r"^wac_[A-Za-z0-9_\-]+$")]
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,1366}")
_STATUS = {
    "challenge_expired": 400,
    "passkey_invalid": 400,
    "passkey_exists": 409,
    "too_many_passkeys": 409,
}


class PasskeyBody(Struct, forbid_unknown_fields=True):
    """A registration answer: the ``PublicKeyCredential`` as JSON (``toJSON()``)."""

    challenge_id: ChallengeId
    credential: dict[str, Any]
    name: Annotated[str, Meta(max_length=64)] = ""


class PasskeyLoginBody(Struct, forbid_unknown_fields=True):
    """A login answer: the assertion ``PublicKeyCredential`` as JSON."""

    challenge_id: ChallengeId
    credential: dict[str, Any]


class PasskeyOut(Struct, forbid_unknown_fields=True):
    """One passkey as its owner sees it (``id`` is the credential id)."""

    id: str
    name: str
    created_at: float
    last_used_at: float | None
    transports: list[str]


class PasskeyList(Struct, forbid_unknown_fields=True):
    passkeys: list[PasskeyOut]


class PasskeyWrap(Struct, forbid_unknown_fields=True):
    passkey: PasskeyOut


class CeremonyOut(Struct, forbid_unknown_fields=True):
    """Options for ``navigator.credentials.create()`` / ``.get()`` and the id the answer
    quotes (valid 2 minutes, once)."""

    challenge_id: str
    options: dict[str, Any]


def _passkey(p: Passkey) -> dict[str, Any]:
    return {
        "id": p.credential_id,
        "name": p.name,
        "created_at": p.created_at,
        "last_used_at": p.last_used_at,
        "transports": list(p.transports),
    }


def _ceremony(started: Started) -> web.Response:
    return web.json_response(
        {"challenge_id": started.challenge_id, "options": json.loads(started.options_json)},
        headers={"Cache-Control": "no-store"},
    )


def _refused(exc: PasskeyRefused) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.code, exc.message)


def _clean_name(raw: str) -> str:
    # A label the agent chose for their own device: printable, one line.
    return "".join(c for c in raw if c.isprintable()).strip()[:64]


@authed()
async def list_passkeys(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    items = await svc.store.list_passkeys(ctx.agent.id)
    return web.json_response({"passkeys": [_passkey(p) for p in items]})


@authed()
async def registration_options(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    try:
        return _ceremony(await svc.passkeys.begin_registration(ctx.agent))
    except PasskeyRefused as exc:
        raise _refused(exc) from None


@authed()
async def add_passkey(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, PasskeyBody)
    # Shown to admins in the agent list and kept in the audit log: screened like any
    # other staff text (a phone number typed as a device label is masked).
    name = await screen_staff_text(svc, ctx.principal.tenant_id, _clean_name(body.name), "name")
    try:
        passkey = await svc.passkeys.finish_registration(
            ctx.agent,
            body.challenge_id,
            json.dumps(body.credential),
            name,
            peer_ip(request, svc),
        )
    except PasskeyRefused as exc:
        raise _refused(exc) from None
    return web.json_response({"passkey": _passkey(passkey)}, status=201)


@authed()
async def remove_passkey(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    credential_id = request.match_info["credential_id"]
    if not _CREDENTIAL_ID.fullmatch(credential_id):
        raise ApiError(400, "bad_request", "malformed passkey id", field="credential_id")
    if not await svc.passkeys.remove(ctx.agent, credential_id, peer_ip(request, svc)):
        raise ApiError(404, "not_found", "no such passkey")
    return web.json_response({"ok": True})


def _login_refused(exc: LoginFailed) -> ApiError:
    if exc.retry_after:
        return ApiError(
            429,
            "rate_limited",
            GENERIC_FAILURE,
            headers=retry_headers(exc.retry_after),
            retry_after=math.ceil(exc.retry_after),
        )
    return ApiError(401, "login_failed", GENERIC_FAILURE)


async def login_options(request: web.Request) -> web.Response:
    svc = services_of(request)
    check_origin(request, svc)
    try:
        return _ceremony(await svc.passkeys.begin_login(peer_ip(request, svc)))
    except LoginFailed as exc:
        raise _login_refused(exc) from None


async def login_with_passkey(request: web.Request) -> web.Response:
    svc = services_of(request)
    check_origin(request, svc)
    body = await read_json(request, PasskeyLoginBody)
    try:
        result = await svc.passkeys.finish_login(
            body.challenge_id,
            json.dumps(body.credential),
            ip=peer_ip(request, svc),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except LoginFailed as exc:
        raise _login_refused(exc) from None
    return session_response(svc, result)


def setup_routes(app: web.Application) -> None:
    """Register the passkey routes."""
    r = app.router
    r.add_get("/api/me/passkeys", list_passkeys)
    r.add_post("/api/me/passkeys/options", registration_options)
    r.add_post("/api/me/passkeys", add_passkey)
    r.add_delete("/api/me/passkeys/{credential_id}", remove_passkey)
    r.add_post("/api/login/passkey/options", login_options)
    r.add_post("/api/login/passkey", login_with_passkey)
