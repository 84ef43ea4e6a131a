"""Inbound plugin API: a helpdesk writes back into a chat (two-way integrations).

``POST /api/inbound/{tenant}/{plugin}`` with a JSON body::

    {"action": "reply" | "close", "chat": "<chat id>", "text": "...",
     "agent_name": "<helpdesk agent's display name>", "id": "<vendor comment id>"}

Who may call: whoever holds the tenant plugin's ``inbound_secret`` (a secret setting of
the built-in plugins; a plugin without one has no inbound API, and an unknown or
disabled tenant/plugin answers exactly like a bad signature). Each request is signed
like cipherdesk's own webhooks — ``X-Cipherdesk-Signature: t=<unix>,v1=<hex
HMAC-SHA256(secret, "<t>." + body)>`` — or with Zendesk's native webhook signature
(``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256(secret, timestamp + body),
``X-Zendesk-Webhook-Signature-Timestamp``; https://developer.zendesk.com/documentation/
webhooks/verifying/), so a Zendesk trigger/webhook can call it directly. Replay-proof: the
timestamp must be within :data:`TOLERANCE` of the gateway's clock and each signature is
accepted once (remembered as a nonce for twice that window).

What happens: ``reply`` goes through the chat service's normal agent-message path — the
tenant's policy runs on the text (masking, blocking, flags) and the customer's widget
receives it as an agent message showing the helpdesk agent's name; the name is
policy-checked too (a name the policy would mask is replaced by "Helpdesk").
``close`` closes the chat (reason ``helpdesk``). Every accepted request is audited
(``plugin.inbound``: plugin, action, chat, the vendor's comment id — never the text).
The message id is derived from the vendor's comment id, so a vendor retrying the same
comment does not post it twice.

Errors (JSON ``{"error": {"code", "message"}}``): 401 ``bad_signature`` (also unknown
tenant/plugin), 409 ``replayed``, 400 ``bad_request``, 404 ``not_found`` (chat),
409 ``chat_closed``, 413/415 as elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta, Struct

from gateway.chats import ChatError
from gateway.http.public import ApiError
from gateway.services import SERVICES, Services, peer_ip
from plugins.webhook import SIGNATURE_HEADER, verify_signature

TOLERANCE = 300.0
MAX_BODY = 64 * 1024
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
SECRET_FIELD = "inbound_secret"  # noqa: S105 - a setting name
FALLBACK_NAME = "Helpdesk"
# A plain personal name: letters (any script), spaces and . ' - · — no digits, no "@",
# no URLs, so a name cannot smuggle a phone number or a link past the message policy.
_NAME_OK = re.compile(r"^(?:[^\W\d_]|[ .'\-·]){1,80}$")
_VENDOR_ID = re.compile(r"[^A-Za-z0-9_.-]")


class InboundRequest(Struct, forbid_unknown_fields=True):
    action: Literal["reply", "close"]
    chat: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
    text: Annotated[str, Meta(max_length=4000)] | None = None
    agent_name: Annotated[str, Meta(max_length=80)] | None = None
    id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None


def _unauthorized() -> ApiError:
    return ApiError(401, "bad_signature", "missing or invalid signature")


def zendesk_signature_ok(
    secret: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: float,
    tolerance: float = TOLERANCE,
) -> bool:
    """Zendesk's webhook signature: base64(HMAC-SHA256(secret, timestamp + body)), with
    the ISO 8601 timestamp within ``tolerance`` of ``now``."""
    if not signature or not timestamp or len(timestamp) > 40:
        return False
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    if abs(now - when) > tolerance:
        return False
    expected = base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, signature.strip())


async def _secret(svc: Services, tenant_id: str, plugin: str) -> str | None:
    if len(tenant_id) > 64 or len(plugin) > 64:
        return None
    config = await svc.store.get_plugin_config(tenant_id, plugin)
    if config is None or not config.enabled:
        return None
    try:
        secrets = svc.plugins.open_secrets(config)
    except Exception:  # unreadable with this master key: treat as not configured
        return None
    secret = secrets.get(SECRET_FIELD)
    return secret if isinstance(secret, str) and secret else None


def _checked_name(svc: Services, tenant_settings: dict, tenant_id: str, raw: str | None) -> str:
    """The helpdesk agent's name if it is a plain name the policy lets through as is."""
    if not raw or not _NAME_OK.match(raw.strip()):
        return FALLBACK_NAME
    name = raw.strip()
    decision = svc.chats.policies.engine_for(tenant_id, tenant_settings).evaluate(name, "agent")
    if decision.action != "allow" or decision.text != name:
        return FALLBACK_NAME  # a name carrying a phone number, a keyword...: not shown
    return name


async def inbound(request: web.Request) -> web.Response:
    svc: Services = request.app[SERVICES]
    tenant_id = request.match_info["tenant"]
    plugin = request.match_info["plugin"]
    secret = await _secret(svc, tenant_id, plugin)
    raw = await _body(request)
    now = svc.clock()
    if secret is None:
        raise _unauthorized()
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is not None:
        ok = verify_signature(secret, signature, raw, tolerance=TOLERANCE, now=now)
    else:
        signature = request.headers.get(ZENDESK_SIGNATURE)
        ok = zendesk_signature_ok(
            secret, signature, request.headers.get(ZENDESK_TIMESTAMP), raw, now
        )
    if not ok or signature is None:
        raise _unauthorized()
    nonce = "inbound:" + hashlib.sha256(f"{plugin}|{signature}".encode()).hexdigest()
    if not await svc.store.remember_nonce(tenant_id, nonce, now + 2 * TOLERANCE, now):
        raise ApiError(409, "replayed", "this request was already received")
    try:
        body = msgspec.json.decode(raw, type=InboundRequest)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "bad_request", f"invalid request: {exc}"[:300]) from None
    except msgspec.DecodeError:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        raise _unauthorized()
    vendor_id = _VENDOR_ID.sub("", body.id or "")[:60] or hashlib.sha256(raw).hexdigest()[:32]
    msg_id = f"hd-{plugin}-{vendor_id}"[:64]
    result: dict[str, object] = {"ok": True, "action": body.action}
    try:
        if body.action == "reply":
            if not body.text or not body.text.strip():
                raise ApiError(400, "bad_request", "a reply needs text", field="text")
            name = _checked_name(svc, tenant.settings, tenant_id, body.agent_name)
            outcome = await svc.chats.post_helpdesk_reply(
                tenant_id, body.chat, msg_id, body.text, plugin=plugin, name=name
            )
            result["seq"] = outcome.ack.seq if outcome.ack else None
            result["policy"] = outcome.notice.action if outcome.notice else "allow"
        else:
            await svc.chats.close(body.chat, tenant_id, by="agent", reason="helpdesk")
    except ChatError as exc:
        status = 404 if exc.code == "not_found" else 409
        raise ApiError(status, exc.code, exc.message[:200]) from None
    await svc.auditor.record(
        "plugin.inbound",
        tenant_id=tenant_id,
        actor=f"plugin:{plugin}",
        target=body.chat,
        ip=peer_ip(request, svc),
        plugin=plugin,
        inbound_action=body.action,
        vendor_id=vendor_id,
        outcome=str(result.get("policy", "closed")),
    )
    return web.json_response(result)


async def _body(request: web.Request) -> bytes:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(16 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/inbound/{tenant}/{plugin}", inbound)
