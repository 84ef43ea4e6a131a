"""Operator API: rotate the master key.

* ``POST /api/emergency/rotate-keys`` (installation operators only — a tenant admin gets
  403 ``forbidden``; cookie callers need ``X-CSRF-Token``; no body) — for a gateway
  whose master keys live in ``<data dir>/master.key`` and that runs as a single node
  (``memory://`` bus): writes a new current key to the file, adopts it in the running
  process and moves every sealed value onto it (:func:`gateway.keyrotation.rotate`).
  Answers counts only, never key material: ``{"ok": true, "key_id", "previous_key_id",
  "keys_in_ring", "chat_keys", "totp_secrets", "identity_secrets", "plugin_secrets",
  "already_current", "skipped", "moved"}``. Audited ``keys.rotated``.

  Refusals (409, nothing changed): ``env_managed`` — keys come from
  ``CIPHERDESK_MASTER_KEY``; ``multi_node`` — the bus is shared (other nodes would not
  know the new key); ``in_progress`` — a rotation is already running. Each message says
  what to do instead.

Master keys are deployment-wide, so rotating them is an installation-wide action of the
operator (issue 11.4: a tenant admin used to be able to rewrap every other tenant's keys).
The audit event has no tenant. The rewrap runs inside the request (one store round trip
per value moved): fine for a single node's data, slow for millions of chats. The CSRF
secret is derived from the current master key on every use, so it rotates at once: open
consoles re-read it from ``/api/me`` after their next 403 ``csrf``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from auth.roles import InstallationPermission, require_operator
from gateway import keyrotation
from gateway.http.plumbing import authed
from gateway.http.public import ApiError
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext

_SINGLE_NODE_BUSES = ("", "memory", "memory://")

MULTI_NODE = (
    "this gateway shares a bus with other nodes, which would not know the new key: "
    "rotate from the command line instead: stop every node, run 'cipherdesk keys rotate' "
    "on one, copy its master.key to every node (or, with CIPHERDESK_MASTER_KEY, prepend "
    "a new key to the value on every node), start them, then run 'cipherdesk keys rewrap'"
)


def _lock(svc: Services) -> asyncio.Lock:
    return svc.key_rotation_lock


@authed(InstallationPermission.KEYS_ROTATE)
async def rotate_keys(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    require_operator(ctx.principal, InstallationPermission.KEYS_ROTATE)
    if keyrotation.env_managed(svc):
        raise ApiError(409, "env_managed", keyrotation.ENV_REFUSAL)
    if svc.config.bus.url.strip() not in _SINGLE_NODE_BUSES:
        raise ApiError(409, "multi_node", MULTI_NODE)
    lock = _lock(svc)
    if lock.locked():
        raise ApiError(409, "in_progress", "a key rotation is already running; wait for it")
    async with lock:
        previous = svc.keyring.current.key_id
        try:
            report = await keyrotation.rotate(svc, actor=ctx.agent.id, ip=peer_ip(request, svc))
        except keyrotation.RotationRefused as exc:
            raise ApiError(409, exc.code, exc.message) from None
    data = report.as_dict()
    data.pop("failures", None)  # ids of chats/plugins: counts only here
    keys_in_file = data.pop("keys_in_file")
    return web.json_response(
        {"ok": True, "previous_key_id": previous, "keys_in_ring": keys_in_file, **data}
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/emergency/rotate-keys", rotate_keys)
