"""Inbound plugin API: a helpdesk writes back into a chat (two-way integrations).

``POST /api/inbound/{tenant}/{plugin}`` with a JSON body::

    {"action": "reply" | "note" | "handled" | "close" | "comment" | "status",
     "chat": "<chat id>", "text": "...", "agent_name": "<helpdesk agent's display name>",
     "id": "<vendor comment id>", "public": true | "true" | "false",
     "status": "<ticket status>", "event": "<event id>", "ts": "<time of the event>"}

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

**Token mode** (plugins whose dialect says ``token_auth``: Freshdesk). A Freshdesk
automation rule's "Trigger Webhook" cannot compute an HMAC but can send Basic
authentication and custom headers (https://support.freshdesk.com/support/solutions/
articles/132589-using-webhooks-in-automation-rules). So the secret itself is accepted as
a token — ``X-Cipherdesk-Token: <secret>``, ``Authorization: Basic`` with the secret as
password (or as user name with password ``X``, Freshdesk's API-key convention) or
``Authorization: Bearer`` — compared in constant time. A token does not bind the body,
so the body must carry ``event`` (unique per call) and ``ts`` (unix seconds, ISO 8601 or
an RFC 2822 date) within :data:`TOLERANCE`; each event id is accepted once.

Commands (the vendor's ``comment``/``status`` are translated by the plugin's
:class:`plugins._inbound.InboundDialect`: a non-public comment is a note, a solved/
resolved/pending status marks the chat handled, other statuses are ``ignored``):

* ``reply`` goes through the chat service's normal agent-message path — the tenant's
  policy runs on the text (masking, blocking, flags) and the customer's widget receives
  it as an agent message showing the helpdesk agent's name; the name is policy-checked
  too (a name the policy would mask is replaced by "Helpdesk").
* ``note`` — an internal note: the policy runs on it as on an agent message (blocked:
  not stored), it is stored beside the chat (gateway/helpdesk_inbox.py) and published to
  the chat's *agents* only (``note`` frame); it is never sent on a customer socket and
  is outside the chat's message sequence, so no customer history can contain it.
* ``handled`` — the helpdesk has dealt with the chat: the chat gets a handled mark
  (queue entries show ``handled: true``, the console moves it out of the waiting list),
  every agent of the tenant gets a ``chat`` event ``handled`` (helpdesk agent, status);
  the customer's chat stays open and nothing is sent to the customer.
* ``close`` closes the chat (reason ``helpdesk``); the customer is told.

Every accepted request is audited (``plugin.inbound``: plugin, command, chat, the
vendor's comment/event id — never the text). The stored id is derived from the vendor's
comment id, so a vendor retrying the same comment does not post it twice. Every refusal
is one log line ``inbound_refused`` (tenant, plugin, code — never a token or body).

Errors (JSON ``{"error": {"code", "message"}}``): 401 ``bad_signature`` (missing or
wrong signature or token; also unknown tenant/plugin), 409 ``replayed`` (signature or
event id already used), 400 ``stale_event`` (token mode: ``ts`` outside the window),
400 ``bad_request``, 404 ``not_found`` (chat), 409 ``chat_closed``, 409 ``too_many_notes``,
409 ``e2e_required`` (a reply into an end-to-end chat: the helpdesk holds no chat key;
internal notes are still accepted), 413 ``too_large``, 415 ``unsupported_media_type``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Literal

import msgspec
import structlog
from aiohttp import web
from msgspec import Meta, Struct

from gateway.bus.base import BusEvent, chat_topic, tenant_topic
from gateway.chats import NOTICE_ACTION, ChatError
from gateway.helpdesk_inbox import HelpdeskInbox, InboxFull
from gateway.http.public import ApiError
from gateway.protocol import ChatEvent
from gateway.services import SERVICES, Services, peer_ip
from gateway.store.base import Chat, Tenant
from plugins import freshdesk, zendesk
from plugins._inbound import GENERIC, Action, DialectError, InboundDialect
from plugins.webhook import SIGNATURE_HEADER, verify_signature

log = structlog.get_logger("cipherdesk.inbound")

TOLERANCE = 300.0
MAX_BODY = 64 * 1024
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
TOKEN_HEADER = "X-Cipherdesk-Token"  # noqa: S105 - a header name
SECRET_FIELD = "inbound_secret"  # noqa: S105 - a setting name
FALLBACK_NAME = "Helpdesk"
MAX_TOKEN = 512
# A plain personal name: letters (any script), spaces and . ' - · — no digits, no "@",
# no URLs, so a name cannot smuggle a phone number or a link past the message policy.
_NAME_OK = re.compile(r"^(?:[^\W\d_]|[ .'\-·]){1,80}$")
_VENDOR_ID = re.compile(r"[^A-Za-z0-9_.-]")
_STATUS_SHOWN = re.compile(r"[^\w .-]")

#: Vendor vocabularies of the built-in helpdesk plugins; every other plugin speaks the
#: generic dialect (the four commands, signed requests only).
DIALECTS: dict[str, InboundDialect] = {
    zendesk.INFO.name: zendesk.INBOUND,
    freshdesk.INFO.name: freshdesk.INBOUND,
}


class InboundRequest(Struct, forbid_unknown_fields=True):
    """The body; ``public``/``status`` feed the vendor translation, ``event``/``ts`` are
    required in token mode (module docstring)."""

    action: Action
    chat: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
    text: Annotated[str, Meta(max_length=4000)] | None = None
    agent_name: Annotated[str, Meta(max_length=80)] | None = None
    id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    public: bool | Annotated[str, Meta(max_length=10)] | None = None
    status: Annotated[str, Meta(max_length=40)] | None = None
    event: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    ts: Annotated[str, Meta(min_length=1, max_length=64)] | int | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """How the request proved it holds the secret: the replay nonce it spends."""

    mode: Literal["signature", "token"]
    signature: str | None


def _unauthorized() -> ApiError:
    return ApiError(401, "bad_signature", "missing or invalid signature or token")


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


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a token-mode caller sent (see the module docstring), or None. Never
    logged; bounded before anything is decoded."""
    get = headers.get
    direct = get(TOKEN_HEADER)
    if direct:
        return direct.strip() if len(direct) <= MAX_TOKEN else None
    auth = get("Authorization") or ""
    if not auth or len(auth) > 2 * MAX_TOKEN:
        return None
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    # Freshdesk's "API key" option sends <key>:X; "username/password" sends the password.
    return user if password == "X" else password  # noqa: S105 - the convention, not a secret


def token_ok(secret: str, token: str | None) -> bool:
    """Constant-time comparison of fixed-length digests (no length or prefix leak)."""
    if not token:
        return False
    return hmac.compare_digest(
        hashlib.sha256(secret.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


def event_time(value: str | int | None) -> float | None:
    """``ts`` of a token-mode body: unix seconds, ISO 8601 or an RFC 2822 date (what
    helpdesk date placeholders print); None when it is none of these."""
    if value is None:
        return None
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        return None  # a local time of unknown zone cannot be checked against the window
    return when.timestamp()


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


def _authenticate(
    secret: str, dialect: InboundDialect, request: web.Request, raw: bytes, now: float
) -> Caller:
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is not None:
        if verify_signature(secret, signature, raw, tolerance=TOLERANCE, now=now):
            return Caller("signature", signature)
        raise _unauthorized()
    signature = request.headers.get(ZENDESK_SIGNATURE)
    if signature is not None:
        stamp = request.headers.get(ZENDESK_TIMESTAMP)
        if zendesk_signature_ok(secret, signature, stamp, raw, now):
            return Caller("signature", signature)
        raise _unauthorized()
    if dialect.token_auth and token_ok(secret, presented_token(request.headers)):
        return Caller("token", None)
    raise _unauthorized()


def _decode(raw: bytes) -> InboundRequest:
    try:
        return msgspec.json.decode(raw, type=InboundRequest)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "bad_request", f"invalid request: {exc}"[:300]) from None
    except msgspec.DecodeError:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None


def _check_event_time(body: InboundRequest, now: float) -> str:
    """Token mode: the body's own event id and time stand in for a signature's."""
    if body.event is None or body.ts is None:
        raise ApiError(400, "bad_request", "token-authenticated calls need event and ts")
    when = event_time(body.ts)
    if when is None:
        raise ApiError(400, "bad_request", "ts is not a time", field="ts")
    if abs(now - when) > TOLERANCE:
        raise ApiError(400, "stale_event", "ts is outside the accepted window", field="ts")
    return body.event


async def _remember(svc: Services, tenant_id: str, material: str, now: float) -> None:
    """Each signature (signature mode) or event id (token mode) is accepted once; the
    window check makes anything older than the nonce's lifetime fail anyway."""
    nonce = "inbound:" + hashlib.sha256(material.encode()).hexdigest()
    if not await svc.store.remember_nonce(tenant_id, nonce, now + 2 * TOLERANCE, now):
        raise ApiError(409, "replayed", "this request was already received")


def _text(body: InboundRequest) -> str:
    if not body.text or not body.text.strip():
        raise ApiError(400, "bad_request", f"a {body.action} needs text", field="text")
    return body.text


async def _live_chat(svc: Services, tenant: Tenant, chat_id: str) -> Chat:
    """The chat as the chat service would find it: same answers for absent, other
    tenant and erased; closed chats and frozen tenants refused."""
    chat = await svc.store.get_chat(chat_id)
    if chat is None or chat.tenant_id != tenant.id or chat.close_reason == "erased":
        raise ChatError("not_found", "no such chat")
    if chat.state == "closed":
        raise ChatError("chat_closed", "this conversation is closed")
    if tenant.frozen:
        raise ChatError("tenant_frozen", "chat is temporarily unavailable")
    return chat


def _inbox(svc: Services) -> HelpdeskInbox:
    return HelpdeskInbox(svc.store, svc.chats.keys, svc.clock)


async def _note(
    svc: Services, tenant: Tenant, body: InboundRequest, plugin: str, vendor_id: str
) -> str:
    """Screen, store and publish an internal note to the chat's agents; the policy
    outcome (``allow``/``masked``/``blocked``/``flagged``)."""
    text = _text(body)
    chat = await _live_chat(svc, tenant, body.chat)
    engine = await svc.chats.policies.engine(tenant.id, tenant.settings)
    decision = engine.evaluate(text, "agent")
    if decision.action == "block" or decision.text is None:
        log.info("note_blocked", chat=chat.id, plugin=plugin, kinds=list(decision.kinds))
        return "blocked"
    name = _checked_name(svc, tenant.settings, tenant.id, body.agent_name)
    try:
        note = await _inbox(svc).add_note(chat, vendor_id, decision.text, name=name, plugin=plugin)
    except InboxFull:
        raise ApiError(409, "too_many_notes", "this chat holds the most notes it can") from None
    except KeyError:
        raise ChatError("not_found", "no such chat") from None
    if note is not None:  # None: the vendor retried a note already stored
        await svc.chats.bus.publish(
            chat_topic(chat.id), BusEvent(kind="frame", frame=note, audience="agents")
        )
    return NOTICE_ACTION.get(decision.action, "allow")


def _status(svc: Services, tenant: Tenant, raw: str | None) -> str:
    """The vendor's status as agents see it: plain words only, and only if the policy
    leaves it unchanged."""
    value = (raw or "").strip()
    if not value or _STATUS_SHOWN.search(value):
        return "handled"
    decision = svc.chats.policies.engine_for(tenant.id, tenant.settings).evaluate(value, "agent")
    return value if decision.action == "allow" and decision.text == value else "handled"


async def _handled(svc: Services, tenant: Tenant, body: InboundRequest, plugin: str) -> None:
    """Mark the chat handled and tell every agent of the tenant (never the customer)."""
    chat = await _live_chat(svc, tenant, body.chat)
    status = _status(svc, tenant, body.status)
    name = _checked_name(svc, tenant.settings, tenant.id, body.agent_name)
    await _inbox(svc).mark_handled(chat, plugin=plugin, status=status)
    topic = tenant_topic(tenant.id)
    event = ChatEvent(chat=chat.id, event="handled", agent=name, reason=status)
    await svc.chats.bus.publish(topic, BusEvent(kind="frame", frame=event, audience="agents"))
    await svc.chats.bus.publish(topic, BusEvent(kind="queue_changed"))


async def inbound(request: web.Request) -> web.Response:
    svc: Services = request.app[SERVICES]
    tenant_id = request.match_info["tenant"]
    plugin = request.match_info["plugin"]
    try:
        return await _inbound(request, svc, tenant_id, plugin)
    except ApiError as exc:
        # One line per refusal, for the admin wiring a helpdesk: never a token or a body.
        log.warning(
            "inbound_refused",
            tenant=tenant_id[:64],
            plugin=plugin[:64],
            status=exc.status,
            code=_code_of(exc),
        )
        raise


def _code_of(exc: ApiError) -> str:
    try:
        return str(json.loads(exc.text or "{}")["error"]["code"])[:40]
    except (ValueError, KeyError, TypeError):
        return "unknown"


async def _inbound(
    request: web.Request, svc: Services, tenant_id: str, plugin: str
) -> web.Response:
    secret = await _secret(svc, tenant_id, plugin)
    raw = await _body(request)
    now = svc.clock()
    if secret is None:
        raise _unauthorized()
    dialect = DIALECTS.get(plugin, GENERIC)
    caller = _authenticate(secret, dialect, request, raw, now)
    if caller.mode == "signature":
        await _remember(svc, tenant_id, f"{plugin}|{caller.signature}", now)
        body = _decode(raw)
    else:
        body = _decode(raw)
        event_id = _check_event_time(body, now)
        await _remember(svc, tenant_id, f"{plugin}|event|{event_id}", now)
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        raise _unauthorized()
    try:
        command = dialect.command(body.action, body.public, body.status)
    except DialectError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    vendor_raw = body.id or body.event or ""
    vendor_id = _VENDOR_ID.sub("", vendor_raw)[:60] or hashlib.sha256(raw).hexdigest()[:32]
    result: dict[str, object] = {"ok": True, "action": command}
    outcome = "ignored"
    try:
        if command == "reply":
            text = _text(body)
            name = _checked_name(svc, tenant.settings, tenant_id, body.agent_name)
            posted = await svc.chats.post_helpdesk_reply(
                tenant_id,
                body.chat,
                f"hd-{plugin}-{vendor_id}"[:64],
                text,
                plugin=plugin,
                name=name,
            )
            result["seq"] = posted.ack.seq if posted.ack else None
            outcome = posted.notice.action if posted.notice else "allow"
            result["policy"] = outcome
        elif command == "note":
            outcome = await _note(svc, tenant, body, plugin, vendor_id)
            result["policy"] = outcome
        elif command == "handled":
            await _handled(svc, tenant, body, plugin)
            outcome = "handled"
        elif command == "close":
            await svc.chats.close(body.chat, tenant_id, by="agent", reason="helpdesk")
            outcome = "closed"
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
        inbound_action=command,
        vendor_id=vendor_id,
        outcome=outcome,
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
