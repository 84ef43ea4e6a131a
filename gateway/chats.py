"""Chat lifecycle and message flow, independent of sockets.

One class, :class:`ChatService`, owns the rules of a conversation: who may open, resume,
post, accept, transfer, watch and close a chat, and in which order the steps of one
message happen (DESIGN.md, "Data flow"): policy → seal → persist (+ outbox events in the
same transaction) → ack → publish. Websocket handlers translate frames into these calls
and never touch the store or bus themselves, so every path (widget, console, SDK, tests)
runs the same checks.

Authorisation is re-checked on every call from the *current* stored state (a transfer or
revocation on another node takes effect on the next frame), never from what a socket
believed at connect time.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from auth.identity import IdentityError, IdentityVerifier, VerifiedIdentity
from auth.roles import Permission, Principal
from auth.tokens import hash_token
from gateway.attachments.files import CleanFile
from gateway.audit import Auditor
from gateway.bus.base import Bus, BusEvent, agent_topic, chat_topic, tenant_topic
from gateway.customers import CustomerKeys, CustomerKind
from gateway.e2e import (
    E2E_POLICY,
    RELEASE_SETTING,
    E2ERefused,
    E2EService,
    ReleasedLine,
    SealedBody,
    e2e_config,
    franking_sender,
    is_sealed,
)
from gateway.helpdesk_inbox import HelpdeskInbox
from gateway.notices import Consent, NoticeBook
from gateway.plugin_host import EventBuilder, PluginHost
from gateway.policy import PolicyRegistry
from gateway.policy.fields import REMOVED, screen_text
from gateway.policy.split import SPLIT_KINDS, SplitWindow, flag_kinds
from gateway.policy.types import Audience
from gateway.protocol import (
    Ack,
    ChatEvent,
    FileRef,
    Flag,
    Members,
    Msg,
    Notice,
    Profile,
    QueueEntry,
    QueueSnapshot,
    Reported,
    ReportMsg,
    Typing,
    WrapKeys,
)
from gateway.quality import COMMENT_PURPOSE, QualityMetrics
from gateway.queue_view import QueueRead, QueueRow, SharedQueueReads
from gateway.reports import ReportBook, SignedReport
from gateway.search_index import KeyedHasher
from gateway.search_indexer import SearchIndexer
from gateway.store.base import (
    AppendResult,
    Chat,
    ChatClosed,
    NewMessage,
    NotAssigned,
    NotFound,
    OutboxEvent,
    PolicyFlag,
    Store,
    StoredMessage,
    Tenant,
)
from gateway.tenants import TenantDirectory, tenant_queues
from gateway.transcripts import (
    ChatKeys,
    file_id,
    message_ref,
    open_file,
    open_json,
    open_msg_id,
    open_text,
    seal_file,
    seal_json,
    seal_msg_id,
    seal_text,
)

# Transfer targets arrive as free text (``protocol.Transfer``): what an agent id can look
# like (the ``Id`` shape of the protocol); anything else is unknown.
_AGENT_ID = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")

log = structlog.get_logger("cipherdesk.chats")
#: ``sender_agent_id`` prefix of messages written by a helpdesk agent through a plugin
#: (``helpdesk:<plugin>:<display name>``); never an agent id of this gateway.
HELPDESK_SENDER = "helpdesk:"

Direction = Literal["customer", "agent"]
CustomerIdKind = Literal["sub", "email", "chat_token"]
"""How an erase or export request names a customer (``POST /api/customers/...``)."""

NOTICE_ACTION: dict[str, Literal["masked", "blocked", "flagged"]] = {
    "mask": "masked",
    "block": "blocked",
    "flag": "flagged",
}
"""What replaces a profile field or close reason the policy blocks."""

SEALED_FILE_TYPE = "application/vnd.cipherdesk.sealed"
"""The ``type`` of a file in an end-to-end chat: its real type travels inside the sealed
message, where only the ends read it."""

IDLE_NOTICE = "This conversation was closed after {minutes} minutes without activity."
"""The system message both sides see when the retention job closes an idle chat."""


def _known_flags(flags: Sequence[str], known: frozenset[str]) -> bool:
    """Whether an end's ``emsg.flags`` name only kinds the tenant's policy has, and
    ``split:<kind>`` only for kinds the cross-message window completes (policy/split.py)."""
    for flag in flags:
        kind = flag.removeprefix("split:")
        if kind not in known or (kind != flag and kind not in SPLIT_KINDS):
            return False
    return True


class ChatError(Exception):
    """A refused chat action. ``code`` is the documented error code sent to the client;
    ``close`` is set when the refusal ends the connection (e.g. identity enforcement)."""

    def __init__(self, code: str, message: str, *, close: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


@dataclass(slots=True)
class PostOutcome:
    ack: Ack | None
    notice: Notice | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class _QueuedPost:
    """A message whose append is queued: what relaying it needs once it is stored."""

    tenant: Tenant
    chat: Chat
    key: bytes
    msg_id: str
    text: str  # as sent (for a supervisor flag's sealed original)
    shown: str  # as the policy lets it through (what readers get)
    flag_kinds: list[str] | None  # a supervisor flag's kinds, None when nothing flags it
    notice: Notice | None
    builder: EventBuilder | None


async def _settled(outcome: PostOutcome) -> PostOutcome:
    """An outcome known before any storing (a blocked message), as a queued post's."""
    return outcome


@dataclass(slots=True)
class OpenedChat:
    chat: Chat
    token: str | None  # resume token, only when newly created


class ChatService:
    """The rules of a conversation; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        bus: Bus,
        keys: ChatKeys,
        tenants: TenantDirectory,
        policies: PolicyRegistry,
        auditor: Auditor,
        clock: Callable[[], float],
        plugins: PluginHost | None = None,
        on_policy: Callable[[str, str], None] | None = None,
        reports: ReportBook | None = None,
        customer_keys: CustomerKeys | None = None,
        search: KeyedHasher | None = None,
        search_indexer: SearchIndexer | None = None,
        notices: NoticeBook | None = None,
        quality: QualityMetrics | None = None,
        e2e: E2EService | None = None,
        queue_listed: int = 500,
    ) -> None:
        self.store = store
        self.bus = bus
        self.keys = keys
        self.tenants = tenants
        self.policies = policies
        self.auditor = auditor
        self.clock = clock
        self.plugins = plugins
        self.reports = reports
        self.customer_keys = customer_keys
        self._on_policy = on_policy or (lambda direction, action: None)
        self.split_window = SplitWindow(clock=clock)  # numbers split across messages
        self.queue_listed = queue_listed  # waiting chats listed per queue (the rest counted)
        self.queue_reads = SharedQueueReads(self._queue_read)  # one read per tenant burst
        # tenant -> chat id -> (what the entry was made from, the entry): a queue read
        # decrypts only the profiles of chats that are new or changed since the last read
        # (decryption was ~60 % of a 1,000-chat read's Python time), and an unchanged chat
        # keeps the same entry object, which the consoles' QueueViews compare by identity.
        self._queue_entries: dict[str, dict[str, tuple[tuple[object, ...], QueueEntry]]] = {}
        self._agent_names: dict[str, str] = {}
        # History search (issue 16 item 5): keyed-hash tokens and customer keys, no plaintext;
        # a chat's words are indexed once it closes (gateway/search_indexer.py).
        self.search = search
        self.search_indexer = search_indexer
        # The tenant's privacy notice: consent, when required, comes before any message.
        self.notices = notices
        # Service-quality figures as chats move (Prometheus); the facts live in the store.
        self.quality = quality
        # End-to-end mode (issue 13): devices, members, wrapped keys, franking.
        self.e2e = e2e

    # ------------------------------------------------------------------ helpers

    async def _tenant(self, tenant_id: str) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise ChatError("unknown_tenant", "unknown tenant", close=4403)
        return tenant

    async def _chat(self, chat_id: str, tenant_id: str) -> Chat:
        chat = await self.store.get_chat(chat_id)
        if chat is None or chat.tenant_id != tenant_id or chat.close_reason == "erased":
            # Same answer for "absent" and "other tenant": nothing leaks across tenants.
            raise ChatError("not_found", "no such chat")
        return chat

    async def chat_of(self, tenant_id: str, chat_id: str) -> Chat:
        """The tenant's chat ``chat_id`` (``not_found`` for absent, erased, or another
        tenant's alike)."""
        return await self._chat(chat_id, tenant_id)

    async def agent_name(self, agent_id: str | None) -> str | None:
        if agent_id is None:
            return None
        if agent_id.startswith(HELPDESK_SENDER):  # a helpdesk agent (gateway/http_inbound)
            return agent_id.split(":", 2)[2] or "helpdesk"
        name = self._agent_names.get(agent_id)
        if name is None:
            agent = await self.store.get_agent(agent_id)
            name = agent.display_name if agent else "agent"
            self._agent_names[agent_id] = name
        return name

    async def _publish_queue_changed(self, tenant_id: str) -> None:
        await self.bus.publish(tenant_topic(tenant_id), BusEvent(kind="queue_changed"))

    async def queue_changed(self, tenant_id: str) -> None:
        """Tell every console of the tenant to refresh its queue (e.g. an agent's queue
        scope changed)."""
        await self._publish_queue_changed(tenant_id)

    # ------------------------------------------------------------------ customers

    async def open_chat(
        self,
        tenant_id: str,
        *,
        queue: str = "default",
        identity_token: str | None = None,
        profile: Profile | None = None,
    ) -> OpenedChat:
        """Create a chat in the tenant's queue, enforcing the tenant's identity mode."""
        tenant = await self._tenant(tenant_id)
        if tenant.frozen:
            raise ChatError("tenant_frozen", "chat is temporarily unavailable", close=4403)
        _check_queue(tenant, queue)
        identity = await self._verify_identity(tenant, identity_token)
        now = self.clock()
        key, wrapped = self.keys.new_key()
        e2e = self.e2e is not None and e2e_config(tenant).mode == "e2e"
        chat_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        chat = Chat(
            id=chat_id,
            tenant_id=tenant.id,
            state="queued",
            created_at=now,
            queue=queue,
            resume_token_hash=hash_token(token),
            verified=identity is not None,
            queued_at=now,
            mode="e2e" if e2e else "inspect",
            e2e_epoch=1 if e2e else 0,  # the customer's end made epoch 1's key at open
        )
        if identity is not None:
            chat.identity_sealed = seal_json(
                key,
                chat_id,
                "identity",
                await self._screen_fields(
                    tenant,
                    {
                        "user_id": identity.user_id,
                        "name": identity.name,
                        "email": identity.email,
                    },
                ),
            )
        profile_dict = await self._screen_fields(tenant, _profile_dict(profile))
        if profile_dict:
            chat.profile_sealed = seal_json(key, chat_id, "profile", profile_dict)
        await self.store.create_chat(
            chat, wrapped, self._customer_keys_of(tenant.id, identity, profile)
        )
        self.keys.remember(chat_id, key)
        await self._emit(
            tenant, "chat.opened", chat, key, {"queue": queue, "verified": chat.verified}
        )
        await self._publish_queue_changed(tenant.id)
        return OpenedChat(chat=chat, token=token)

    def _customer_keys_of(
        self, tenant_id: str, identity: VerifiedIdentity | None, profile: Profile | None
    ) -> list[str]:
        """Lookup keys of the chat's customer (:mod:`gateway.customers`): the verified
        ``sub`` and e-mail, and the e-mail typed in the form."""
        if self.customer_keys is None:
            return []
        found: list[tuple[CustomerKind, str]] = []
        if identity is not None:
            found.append(("sub", identity.user_id))
            if identity.email:
                found.append(("email", identity.email))
        if profile is not None and profile.email:
            found.append(("email", profile.email))
        return [self.customer_keys.current(tenant_id, kind, v) for kind, v in found if v.strip()]

    async def _verify_identity(self, tenant: Tenant, token: str | None) -> VerifiedIdentity | None:
        mode = tenant.identity_mode
        if mode == "off":
            return None
        if token is None:
            if mode == "enforced":
                raise ChatError(
                    "identity_required", "this chat requires a signed-in customer", close=4403
                )
            return None
        secrets_ = self.tenants.identity_secrets(tenant)
        if not secrets_:
            # A token cannot be checked without a secret: refuse it, never trust it.
            raise ChatError(
                "identity_invalid", "identity token refused (no secret configured)", close=4403
            )
        try:
            identity = IdentityVerifier(secrets_, clock=self.clock).verify(token)
        except IdentityError as exc:
            # An invalid token is refused in every mode: it is forged, expired or replayed.
            raise ChatError(
                "identity_invalid", f"identity token refused ({exc.code})", close=4403
            ) from None
        fresh = await self.store.remember_nonce(
            tenant.id, identity.nonce, identity.expires_at, self.clock()
        )
        if not fresh:
            raise ChatError("identity_replayed", "identity token already used", close=4403)
        return identity

    async def resume_chat(
        self, tenant_id: str, chat_id: str, token: str, last_seq: int
    ) -> OpenedChat:
        """Reattach a customer to their chat; the resume token is the only credential."""
        chat = await self.store.get_chat(chat_id)
        if (
            chat is None
            or chat.tenant_id != tenant_id
            or chat.close_reason == "erased"
            or not secrets.compare_digest(chat.resume_token_hash, hash_token(token))
        ):
            raise ChatError("resume_refused", "this conversation cannot be resumed")
        return OpenedChat(chat=chat, token=None)

    # ------------------------------------------------------------------ messages

    async def post_customer_message(
        self, tenant_id: str, chat_id: str, msg_id: str, text: str, chat: Chat | None = None
    ) -> PostOutcome:
        """``chat`` is the connection's view of its chat (kept current by bus events); it
        saves a read per message. A chat it believes closed is re-read to be sure, and the
        store refuses appends to erased chats regardless."""
        return await (await self.queue_customer_message(tenant_id, chat_id, msg_id, text, chat))

    async def queue_customer_message(
        self, tenant_id: str, chat_id: str, msg_id: str, text: str, chat: Chat | None = None
    ) -> Awaitable[PostOutcome]:
        """:meth:`post_customer_message` in two steps: returns once the message is checked
        and its append queued (refusals raise here), with what gives its outcome once it
        is stored and relayed. Messages queued one after the other are stored in that
        order, so a connection reads its next frame meanwhile (gateway/ws/pipeline.py)."""
        chat = await self.customer_writable(tenant_id, chat_id, chat)
        _check_plain(chat)
        return await self._queue_post(chat, "customer", msg_id, text, agent=None)

    async def customer_writable(self, tenant_id: str, chat_id: str, chat: Chat | None) -> Chat:
        """The chat a customer writes to, if they may: open, and consented when the
        tenant's notice requires it (``chat_closed``, ``consent_required``)."""
        if chat is None or chat.state == "closed" or chat.tenant_id != tenant_id:
            chat = await self._chat(chat_id, tenant_id)
        if chat.state == "closed":
            raise ChatError("chat_closed", "this conversation is closed")
        if chat.consent_sealed is None and self.notices is not None:
            notice = await self.notices.current(tenant_id)
            if notice is not None and notice.required:
                # Not stored, not acked: the widget shows the notice and re-sends.
                raise ChatError("consent_required", "accept the privacy notice before writing")
        return chat

    async def agent_writable(self, principal: Principal, chat_id: str) -> Chat:
        """The chat an agent writes to, if it is active and assigned to them."""
        _require(principal, Permission.CHAT_HANDLE, principal.tenant_id)
        chat = await self._chat(chat_id, principal.tenant_id)
        if chat.state != "active" or chat.assigned_agent_id != principal.agent_id:
            raise ChatError("not_assigned", "accept the chat before writing to it")
        return chat

    async def record_consent(self, tenant_id: str, chat: Chat, version: int) -> Consent:
        """The customer accepted notice ``version`` (it must be the current one): stored
        sealed with the chat, so it is erased with it and exported with it."""
        notice = None
        if self.notices is not None:
            notice = await self.notices.current(tenant_id)
            if notice is None or notice.version != version:
                self.notices.forget(tenant_id)  # published a moment ago, on another node?
                notice = await self.notices.current(tenant_id)
        if notice is None or notice.version != version:
            raise ChatError("notice_outdated", "the privacy notice changed; read it again")
        key = await self.keys.get(chat.id)
        if key is None or chat.tenant_id != tenant_id:
            raise ChatError("not_found", "no such chat")
        consent = Consent(version=version, at=self.clock())
        sealed = seal_json(key, chat.id, CONSENT_PURPOSE, {"version": version, "at": consent.at})
        if not await self.store.set_chat_consent(chat.id, sealed):
            raise ChatError("not_found", "no such chat")
        chat.consent_sealed = sealed
        return consent

    async def consent_of(self, chat: Chat) -> Consent | None:
        """The consent recorded with ``chat`` (None when none, or the chat is erased)."""
        key = await self.keys.get(chat.id) if chat.consent_sealed else None
        if key is None or chat.consent_sealed is None:
            return None
        data = open_json(key, chat.id, CONSENT_PURPOSE, chat.consent_sealed)
        return Consent(version=int(data["version"]), at=float(data["at"]))

    async def post_agent_message(
        self, principal: Principal, chat_id: str, msg_id: str, text: str
    ) -> PostOutcome:
        chat = await self.agent_writable(principal, chat_id)
        return await (await self.queue_agent_message(principal, chat, msg_id, text))

    async def queue_agent_message(
        self, principal: Principal, writable: Chat, msg_id: str, text: str
    ) -> Awaitable[PostOutcome]:
        """:meth:`post_agent_message` in two steps (see :meth:`queue_customer_message`),
        for ``writable`` as :meth:`agent_writable` returned it: a console's session checks
        each message when its frame arrives, while it reads on (``gateway/ws/agent.py``),
        instead of waiting for a store read before it queues each one."""
        _check_plain(writable)
        return await self._queue_post(
            writable, "agent", msg_id, text, agent=principal.agent_id, assigned_only=True
        )

    async def post_helpdesk_reply(
        self, tenant_id: str, chat_id: str, msg_id: str, text: str, *, plugin: str, name: str
    ) -> PostOutcome:
        """An agent reply written in the tenant's helpdesk (inbound plugin API): the normal
        agent path, policy included; ``name`` (already policy-checked by the caller) is
        shown as the agent. Refused for closed chats."""
        chat = await self._chat(chat_id, tenant_id)
        if chat.state == "closed":
            raise ChatError("chat_closed", "this conversation is closed")
        _check_plain(chat)  # a helpdesk holds no chat key: it cannot write into an e2e chat
        return await self._post(
            chat, "agent", msg_id, text, agent=f"{HELPDESK_SENDER}{plugin}:{name}"
        )

    # ------------------------------------------------------------------ attachments

    async def post_attachment(
        self,
        tenant_id: str,
        chat_id: str,
        sender: Direction,
        agent: str | None,
        msg_id: str,
        name: str,
        file: CleanFile,
    ) -> PostOutcome:
        """A file as message ``msg_id`` (issue 16.6): the bytes sealed at rest under the
        chat key, then the message that names it through the normal path -- the name
        passes the policy like text, a blocked name stores nothing. The caller checked
        the upload ticket; the chat's state and the agent's assignment are checked again
        here (they may have changed since the ticket was issued)."""
        chat = await self._uploader_writable(tenant_id, chat_id, sender, agent)
        _check_plain(chat)
        fid = await self._store_file(chat, sender, msg_id, file.data)
        meta: dict[str, Any] = {"id": fid, "type": file.content_type, "size": len(file.data)}
        if file.width is not None and file.height is not None:
            meta.update(w=file.width, h=file.height)
        stored = False
        try:
            outcome = await self._post(chat, sender, msg_id, name, agent, attachment=meta)
            stored = outcome.ack is not None
        finally:
            if not stored:  # blocked name, closed chat: no message names the bytes
                await self.store.delete_attachment(chat.id, fid)
        return outcome

    async def post_sealed_file(
        self,
        tenant_id: str,
        chat_id: str,
        sender: Direction,
        agent: str | None,
        msg_id: str,
        data: bytes,
    ) -> str:
        """The bytes of a file for an end-to-end chat, encrypted by the sender's end under
        the chat key (the gateway cannot read, sniff or scan them): stored sealed at rest
        like any file, under the id the ``emsg`` with the same ``msg_id`` names next."""
        chat = await self._uploader_writable(tenant_id, chat_id, sender, agent)
        if chat.mode != "e2e":
            raise ChatError("not_e2e", "this chat is not end-to-end encrypted")
        return await self._store_file(chat, sender, msg_id, data)

    async def _uploader_writable(
        self, tenant_id: str, chat_id: str, sender: Direction, agent: str | None
    ) -> Chat:
        """The chat an upload's ticket names, if its sender may still write there (the
        ticket holds no principal: an agent must still be the assigned one)."""
        chat = await self._chat(chat_id, tenant_id)
        if sender == "customer":
            return await self.customer_writable(tenant_id, chat_id, chat)
        if chat.state != "active" or chat.assigned_agent_id != agent:
            raise ChatError("not_assigned", "accept the chat before writing to it")
        return chat

    async def _store_file(self, chat: Chat, sender: Direction, msg_id: str, data: bytes) -> str:
        """Seal a file's bytes under the chat key and store them; returns the file id."""
        key = await self.keys.get(chat.id)
        if key is None:
            raise ChatError("not_found", "no such chat")
        fid = file_id(key, chat.id, sender, seal_msg_id(key, chat.id, msg_id))
        sealed = seal_file(key, chat.id, fid, data)
        await self.store.put_attachment(chat.id, fid, sealed, len(data), self.clock())
        return fid

    async def _sealed_file_meta(
        self, key: bytes, chat: Chat, sender: Direction, msg_id: str, file: str
    ) -> dict[str, Any]:
        """The ``file`` metadata of an e2e message: the file must be the one its sender
        uploaded as this message (``bad_file`` otherwise). Its type is the ends' secret."""
        expected = file_id(key, chat.id, sender, seal_msg_id(key, chat.id, msg_id))
        size = await self.store.attachment_size(chat.id, file) if file == expected else None
        if size is None:
            raise ChatError("bad_file", "upload the file as this message first")
        return {"id": file, "type": SEALED_FILE_TYPE, "size": size}

    async def read_attachment(self, chat: Chat, file: str) -> bytes | None:
        """A file's bytes (no authorisation: callers check who reads); None when the chat
        or file is gone (erased, or never stored)."""
        key = await self.keys.get(chat.id)
        blob = await self.store.get_attachment(chat.id, file) if key is not None else None
        if key is None or blob is None:
            return None
        return open_file(key, chat.id, file, blob)

    # ------------------------------------------------------------------ e2e messages

    async def queue_customer_sealed(
        self,
        tenant_id: str,
        chat_id: str,
        msg_id: str,
        body: SealedBody,
        chat: Chat | None,
        flags: Sequence[str] = (),
        file: str | None = None,
    ) -> Awaitable[PostOutcome]:
        """An e2e message from the customer's end (``emsg``), stored and relayed as is, in
        two steps like :meth:`queue_customer_message`; ``file``: the id of the sealed file
        it carries (uploaded before, as this message)."""
        chat = await self.customer_writable(tenant_id, chat_id, chat)
        return await self._queue_sealed(chat, "customer", msg_id, body, None, flags, file)

    async def queue_agent_sealed(
        self,
        principal: Principal,
        writable: Chat,
        msg_id: str,
        body: SealedBody,
        flags: Sequence[str] = (),
        file: str | None = None,
    ) -> Awaitable[PostOutcome]:
        """An e2e message from an agent's console, in two steps like
        :meth:`queue_customer_message`, for ``writable`` as :meth:`agent_writable` returned
        it; ``body.dev`` is the socket's certified device (checked by the caller)."""
        return await self._queue_sealed(
            writable, "agent", msg_id, body, principal.agent_id, flags, file, assigned_only=True
        )

    async def _queue_sealed(
        self,
        chat: Chat,
        sender: Direction,
        msg_id: str,
        body: SealedBody,
        agent: str | None,
        flags: Sequence[str] = (),
        file: str | None = None,
        *,
        assigned_only: bool = False,
    ) -> Awaitable[PostOutcome]:
        """The e2e twin of :meth:`_queue_post`: no policy (it runs at the ends), no plugin message
        event, no search tokens -- the gateway cannot read the text. What the end's policy
        flagged (``flags``: finding kinds the tenant's policy knows) alerts supervisors
        like an inspect-mode flag, without an original. Sizes, rates, consent and freezes
        were enforced before; seq, ack-after-commit, de-duplication and resume are the
        same as in inspect mode."""
        if chat.mode != "e2e":
            raise ChatError("not_e2e", "this chat is not end-to-end encrypted: send msg")
        if body.e > chat.e2e_epoch:  # re-keyed a moment ago (on another socket or node)?
            chat = await self._chat(chat.id, chat.tenant_id)
        if not 1 <= body.e <= chat.e2e_epoch:
            raise ChatError("bad_epoch", "no chat key of that epoch")
        tenant = await self._tenant(chat.tenant_id)
        if tenant.frozen:
            raise ChatError("tenant_frozen", "chat is temporarily unavailable")
        if flags:
            engine = await self.policies.engine(tenant.id, tenant.settings)
            if not _known_flags(flags, engine.known_kinds):
                raise ChatError("bad_flags", "flags name kinds the tenant's policy does not have")
        key = await self.keys.get(chat.id)
        if key is None:
            raise ChatError("not_found", "no such chat")
        stored_id = seal_msg_id(key, chat.id, msg_id)
        policy: dict[str, Any] = dict(E2E_POLICY)
        if file is not None:
            policy["file"] = await self._sealed_file_meta(key, chat, sender, msg_id, file)
        text = body.dumps()
        appended = self.store.queue_append(
            NewMessage(
                chat_id=chat.id,
                msg_id=stored_id,
                sender=sender,
                ts=self.clock(),
                body_sealed=seal_text(key, chat.id, stored_id, text),
                sender_agent_id=agent,
                policy=policy,
                assigned_only=assigned_only,
            )
        )
        return self._relay_sealed(tenant, chat, key, msg_id, text, flags, appended)

    async def _relay_sealed(
        self,
        tenant: Tenant,
        chat: Chat,
        key: bytes,
        msg_id: str,
        text: str,
        flags: Sequence[str],
        appended: Awaitable[AppendResult],
    ) -> PostOutcome:
        """The rest of :meth:`_queue_sealed` once the append is stored. A new message's
        frame is made from the id and body just sealed; a duplicate's from what was stored
        (the first send's body, which a resend may not repeat)."""
        result = await self._stored(chat, appended)
        stored = result.message
        if result.duplicate:
            frame = await self._frame(key, chat.id, stored)
        else:
            frame = await self._frame_of(chat.id, stored, msg_id, text)
        if flags and not result.duplicate:
            await self._raise_flag(tenant, chat, stored.seq, None, sorted(set(flags)), key)
        # Published again for a duplicate too: the storing node may have died first.
        await self.bus.publish(chat_topic(chat.id), BusEvent(kind="frame", frame=frame))
        return PostOutcome(
            ack=Ack(id=msg_id, seq=stored.seq, chat=chat.id, ts=stored.ts),
            notice=None,
            duplicate=result.duplicate,
        )

    async def _stored(self, chat: Chat, appended: Awaitable[AppendResult]) -> AppendResult:
        """The result of a message's append (queued with ``Store.queue_append``, both
        modes), as the chat's rules see it: a refusal as a ``ChatError``, an agent's first
        reply noted."""
        try:
            result = await appended
        except ChatClosed:
            # The service's view was stale (closed on another node or a moment ago): the
            # store checked the state in the append's own transaction and wrote nothing.
            raise ChatError("chat_closed", "this conversation is closed") from None
        except NotFound:
            raise ChatError("not_found", "no such chat") from None
        except NotAssigned:  # transferred or unassigned since the sender's view was read
            raise ChatError("not_assigned", "accept the chat before writing to it") from None
        stored = result.message
        if stored.sender == "agent" and chat.answered_at is None and not result.duplicate:
            await self._answered(chat, stored.ts)
        return result

    async def _frame(self, key: bytes, chat_id: str, m: StoredMessage) -> Msg:
        """A stored message as the ``msg`` frame readers get (e2e: ciphertext fields and
        the gateway's franking tag, computed from what was stored)."""
        msg_id = open_msg_id(key, chat_id, m.msg_id)
        return await self._frame_of(
            chat_id, m, msg_id, open_text(key, chat_id, m.msg_id, m.body_sealed)
        )

    async def _frame_of(self, chat_id: str, m: StoredMessage, msg_id: str, text: str) -> Msg:
        """The ``msg`` frame of stored message ``m`` whose id and text (an e2e message's
        sealed body) are known in the clear: opened by :meth:`_frame`, or just sealed by
        this node (opening them again cost two decryptions per relayed e2e message)."""
        agent = await self.agent_name(m.sender_agent_id)
        if not is_sealed(m) or self.e2e is None:
            return Msg(
                seq=m.seq,
                sender=m.sender,
                text=text,
                ts=m.ts,
                id=msg_id,
                chat=chat_id,
                agent=agent,
                file=file_ref(m, text),
            )
        body = SealedBody.loads(text)
        gt = self.e2e.tag(
            chat=chat_id,
            sender=franking_sender(m.sender, body.dev),
            msg_id=msg_id,
            seq=m.seq,
            ts=m.ts,
            fc=body.fc,
        )
        return Msg(
            seq=m.seq,
            sender=m.sender,
            text="",
            ts=m.ts,
            id=msg_id,
            chat=chat_id,
            agent=agent,
            c=body.c,
            fc=body.fc,
            gt=gt,
            e=body.e,
            dev=body.dev,
            file=file_ref(m, ""),
        )

    async def report(
        self, chat: Chat, frame: ReportMsg, *, reporter: str, ip: str | None = None
    ) -> Reported:
        """A recipient reports an e2e message by revealing its text and franking key. The
        gateway checks the commitment it relayed and its own tag; a genuine report is
        raised to supervisors as a flag (the verified text sealed with it, read through
        the audited flag API); every report is audited, verified or not."""
        if chat.mode != "e2e" or self.e2e is None:
            raise ChatError("not_e2e", "reports by franking are for end-to-end chats")
        key = await self.keys.get(chat.id)
        batch = await self.store.messages_after(chat.id, frame.seq - 1) if frame.seq else []
        stored = batch[0] if batch and batch[0].seq == frame.seq else None
        if key is None or stored is None or not is_sealed(stored):
            raise ChatError("not_found", "no such message")
        msg_id = open_msg_id(key, chat.id, stored.msg_id)
        body = SealedBody.loads(open_text(key, chat.id, stored.msg_id, stored.body_sealed))
        verified = self.e2e.verify_report(
            chat=chat.id,
            sender=franking_sender(stored.sender, body.dev),
            msg_id=msg_id,
            seq=stored.seq,
            ts=stored.ts,
            body=body,
            gt=frame.gt,
            text=frame.text,
            franking_key=frame.fk,
        )
        await self.auditor.record(
            "message.reported",
            tenant_id=chat.tenant_id,
            actor=reporter,
            target=chat.id,
            ip=ip,
            seq=stored.seq,
            reason=frame.reason,
            verified=verified,
            author=stored.sender_agent_id or stored.sender,
        )
        if verified:
            tenant = await self._tenant(chat.tenant_id)
            kinds = [f"report:{frame.reason}"]
            await self._raise_flag(tenant, chat, stored.seq, frame.text, kinds, key)
        return Reported(seq=stored.seq, verified=verified, chat=chat.id)

    async def members(self, chat: Chat) -> Members | None:
        """The e2e member list for the customer's end (None for inspect chats)."""
        if chat.mode != "e2e" or self.e2e is None:
            return None
        return await self.e2e.members(chat)

    async def _announce_members(self, chat: Chat) -> None:
        """Tell the customer's end who takes part now, so it wraps keys (or re-keys).
        ``chat`` is as the caller just read or updated it (nothing for inspect chats)."""
        members = await self.members(chat)
        if members is not None:
            await self.bus.publish(
                chat_topic(chat.id), BusEvent(kind="frame", frame=members, audience="customer")
            )

    async def member_devices_changed(self, tenant_id: str, agent_id: str) -> None:
        """An agent's devices changed (one revoked): the customers of their open e2e chats
        get a fresh member list, so their ends re-key without the revoked device."""
        for chat in await self.store.list_chats(tenant_id, states=("active",), agent_id=agent_id):
            if chat.mode == "e2e":
                await self._announce_members(chat)

    async def wrap_keys(self, chat: Chat, frame: WrapKeys) -> None:
        """Store the customer's wrapped chat keys and hand them to the devices' consoles."""
        if chat.mode != "e2e" or self.e2e is None:
            raise ChatError("not_e2e", "this chat is not end-to-end encrypted")
        fresh = await self._chat(chat.id, chat.tenant_id)
        try:
            frames = await self.e2e.accept_wraps(fresh, frame)
        except E2ERefused as exc:
            raise ChatError(exc.code, exc.message) from None
        chat.e2e_epoch = max(chat.e2e_epoch, frame.epoch)
        for keys in frames:
            await self.bus.publish(
                chat_topic(chat.id), BusEvent(kind="frame", frame=keys, audience="agents")
            )

    async def _post(
        self,
        chat: Chat,
        sender: Direction,
        msg_id: str,
        text: str,
        agent: str | None,
        attachment: dict[str, Any] | None = None,
    ) -> PostOutcome:
        """Policy, storage, events and relay of one message. With ``attachment`` (the
        stored file's ``file_meta``) the message carries a file and ``text`` is its name."""
        return await (await self._queue_post(chat, sender, msg_id, text, agent, attachment))

    async def _queue_post(
        self,
        chat: Chat,
        sender: Direction,
        msg_id: str,
        text: str,
        agent: str | None,
        attachment: dict[str, Any] | None = None,
        *,
        assigned_only: bool = False,
    ) -> Awaitable[PostOutcome]:
        """``_post`` up to the store: policy, sealing and events, then the append queued
        (``Store.queue_append``). Returns what finishes it: the outcome once stored, after
        the relay. Messages queued one after the other are stored in that order.
        ``assigned_only``: an agent's own reply (``NewMessage.assigned_only``)."""
        tenant = await self._tenant(chat.tenant_id)
        if tenant.frozen:
            raise ChatError("tenant_frozen", "chat is temporarily unavailable")
        engine = await self.policies.engine(tenant.id, tenant.settings)
        decision = engine.evaluate(text, sender)
        if engine.config.cross_message:
            decision = self.split_window.check(engine, chat.id, sender, text, decision)
        self._on_policy(sender, decision.action)
        notice = None
        if decision.action != "allow":
            notice = Notice(
                id=msg_id,
                action=NOTICE_ACTION[decision.action],
                kinds=list(decision.kinds),
                message=decision.notice or "Part of your message was hidden for your safety.",
                chat=chat.id,
            )
        if decision.action == "block" or decision.text is None:
            # Not delivered, not stored; the notice settles the message for the sender.
            log.info("message_blocked", chat=chat.id, sender=sender, kinds=list(decision.kinds))
            if sender == "agent":  # staff sending blocked content: the anomaly rules count it
                await self.auditor.record(
                    "message.blocked",
                    tenant_id=chat.tenant_id,
                    actor=agent,
                    target=chat.id,
                    kinds=sorted(decision.kinds),
                )
            return _settled(PostOutcome(ack=None, notice=notice))
        key = await self.keys.get(chat.id)
        if key is None:
            raise ChatError("not_found", "no such chat")
        now = self.clock()
        policy_meta: dict[str, Any] = {"action": decision.action, "kinds": list(decision.kinds)}
        if attachment is not None:
            policy_meta["file"] = attachment
        # The client's id is stored sealed (deterministically, so a resend still finds it).
        stored_id = seal_msg_id(key, chat.id, msg_id)
        builder = await self._message_events(
            tenant,
            chat,
            key,
            sender,
            message_ref(key, chat.id, stored_id),
            now,
            engine.for_audience(text, decision, "plugin") or "",
            policy_meta,
        )
        message = NewMessage(
            chat_id=chat.id,
            msg_id=stored_id,
            sender=sender,
            ts=now,
            body_sealed=seal_text(key, chat.id, stored_id, decision.text),
            sender_agent_id=agent,
            policy=policy_meta,
            assigned_only=assigned_only,
        )
        appended = self.store.queue_append(message, builder)
        post = _QueuedPost(
            tenant, chat, key, msg_id, text, decision.text, flag_kinds(decision), notice, builder
        )
        return self._relay_post(post, appended)

    async def _relay_post(
        self, post: _QueuedPost, appended: Awaitable[AppendResult]
    ) -> PostOutcome:
        """The rest of ``_post`` once the append is stored: the ack, the relay to the
        chat's readers and a supervisor flag."""
        chat, key, msg_id = post.chat, post.key, post.msg_id
        result = await self._stored(chat, appended)
        stored = result.message
        if post.builder is not None and self.plugins is not None and not result.duplicate:
            self.plugins.enqueued()
        ack = Ack(id=msg_id, seq=stored.seq, chat=chat.id, ts=stored.ts)
        frame = Msg(
            seq=stored.seq,
            sender=stored.sender,
            text=open_text(key, chat.id, stored.msg_id, stored.body_sealed)
            if result.duplicate
            else post.shown,
            ts=stored.ts,
            id=msg_id,
            chat=chat.id,
            agent=await self.agent_name(stored.sender_agent_id),
        )
        frame.file = file_ref(stored, frame.text)
        if result.duplicate:
            # Publish again: the node that stored it may have died before publishing.
            # Receivers de-duplicate by seq (gateway/ws/feed.py).
            await self.bus.publish(chat_topic(chat.id), BusEvent(kind="frame", frame=frame))
            return PostOutcome(ack=ack, notice=None, duplicate=True)
        if post.flag_kinds is not None:
            await self._raise_flag(post.tenant, chat, stored.seq, post.text, post.flag_kinds, key)
        await self.bus.publish(chat_topic(chat.id), BusEvent(kind="frame", frame=frame))
        return PostOutcome(ack=ack, notice=post.notice)

    async def _raise_flag(
        self,
        tenant: Tenant,
        chat: Chat,
        seq: int,
        original: str | None,
        kinds: list[str],
        key: bytes,
    ) -> None:
        """A supervisor flag on message ``seq``; ``original`` is None for an e2e message
        (the gateway has no text: a supervisor watches the chat to read it)."""
        flag = PolicyFlag(
            chat_id=chat.id,
            tenant_id=tenant.id,
            seq=seq,
            kinds=kinds,
            original_sealed=seal_json(key, chat.id, f"flag:{seq}", {"text": original}),
            created_at=self.clock(),
        )
        flag_id = await self.store.add_flag(flag)
        await self.bus.publish(
            tenant_topic(tenant.id),
            BusEvent(
                kind="frame",
                audience="supervisors",
                frame=Flag(chat=chat.id, seq=seq, flag_id=flag_id, kinds=kinds),
            ),
        )
        await self._emit(
            tenant, "policy.flag", chat, key, {"seq": seq, "kinds": kinds, "action": "flag"}
        )

    async def flag_original(
        self, principal: Principal, flag_id: int, ip: str | None
    ) -> dict[str, Any]:
        """Supervisors read a flagged original; every read is audited."""
        flag = await self.store.get_flag(flag_id)
        if flag is None or flag.tenant_id != principal.tenant_id:
            raise ChatError("not_found", "no such flag")
        _require(principal, Permission.FLAG_VIEW_ORIGINAL, flag.tenant_id)
        key = await self.keys.get(flag.chat_id)
        if key is None:
            raise ChatError("not_found", "no such flag")
        original = open_json(key, flag.chat_id, f"flag:{flag.seq}", flag.original_sealed)
        await self.auditor.record(
            "flag.original_viewed",
            tenant_id=flag.tenant_id,
            actor=principal.agent_id,
            target=flag.chat_id,
            ip=ip,
            flag_id=flag_id,
            seq=flag.seq,
        )
        await self.store.mark_flag_reviewed(flag_id, principal.agent_id)
        return {
            "flag_id": flag_id,
            "chat": flag.chat_id,
            "seq": flag.seq,
            "kinds": flag.kinds,
            "original": original["text"],
            "e2e": original["text"] is None,
        }

    async def typing(
        self,
        chat_id: str,
        tenant_id: str,
        sender: Direction,
        on: bool,
        conn_id: str,
        principal: Principal | None = None,
    ) -> None:
        chat = await self._chat(chat_id, tenant_id)
        if principal is not None and chat.assigned_agent_id != principal.agent_id:
            raise ChatError("not_assigned", "accept the chat before writing to it")
        await self.typing_in(chat, sender, on, conn_id)

    async def typing_in(self, chat: Chat, sender: Direction, on: bool, conn_id: str) -> None:
        """Typing in ``chat`` as the caller's session knows it, without reading it again: a
        customer's socket keeps its own chat's state from the bus, and typing is not
        stored, so a view a moment old does no harm (a typing frame used to cost a store
        read, and a widget sends about two per message)."""
        if chat.state == "closed":
            return
        await self.bus.publish(
            chat_topic(chat.id),
            BusEvent(
                kind="frame", frame=Typing(sender=sender, on=on, chat=chat.id), skip_conn=conn_id
            ),
        )

    async def history(self, chat: Chat, after_seq: int) -> list[Msg]:
        return await self.messages(chat.id, after_seq)

    async def messages(self, chat_id: str, after_seq: int) -> list[Msg]:
        """Stored messages after ``after_seq`` as frames (no authorisation: callers check)."""
        key = await self.keys.get(chat_id)
        if key is None:
            return []
        frames: list[Msg] = []
        while True:
            batch = await self.store.messages_after(chat_id, after_seq)
            for m in batch:
                frames.append(await self._frame(key, chat_id, m))
            if len(batch) < 1000:
                return frames
            after_seq = batch[-1].seq

    async def agent_history(
        self, principal: Principal, chat_id: str, after_seq: int, ip: str | None
    ) -> list[Msg]:
        return await self.history(await self.readable(principal, chat_id, ip), after_seq)

    async def readable(self, principal: Principal, chat_id: str, ip: str | None) -> Chat:
        """A chat an agent may read: their own, or any of the tenant's with
        ``transcript_read`` (audited ``transcript.opened``)."""
        chat = await self._chat(chat_id, principal.tenant_id)
        if chat.assigned_agent_id != principal.agent_id:
            _require(principal, Permission.TRANSCRIPT_READ, chat.tenant_id)
            await self.auditor.record(
                "transcript.opened",
                tenant_id=chat.tenant_id,
                actor=principal.agent_id,
                target=chat.id,
                ip=ip,
            )
        return chat

    # ------------------------------------------------------------------ agents

    async def accept(self, principal: Principal, chat_id: str) -> Chat:
        """Take a queued chat; supervisors may take over an active one (audited)."""
        _require(principal, Permission.CHAT_HANDLE, principal.tenant_id)
        chat = await self._chat(chat_id, principal.tenant_id)
        if chat.assigned_agent_id != principal.agent_id and not principal.sees_queue(chat.queue):
            raise ChatError("not_your_queue", "this chat waits in a queue you are not assigned to")
        takeover = chat.state == "active" and chat.assigned_agent_id != principal.agent_id
        if takeover and not principal.can(Permission.CHAT_TAKEOVER, chat.tenant_id):
            # Same answer whether the other agent won a race a moment ago or long before.
            raise ChatError("already_taken", "another agent took this chat")
        if chat.state == "active" and chat.assigned_agent_id == principal.agent_id:
            return chat
        updated = await self.store.assign_chat(
            chat.id,
            agent_id=principal.agent_id,
            from_states=("active",) if takeover else ("queued",),
            expected_agent_id=chat.assigned_agent_id,
            check_agent=takeover,
            now=self.clock(),
        )
        if updated is None:
            raise ChatError("already_taken", "another agent took this chat")
        if chat.accepted_at is None and updated.accepted_at is not None and self.quality:
            self.quality.accepted(updated.accepted_at - updated.created_at)
        if takeover:
            await self.auditor.record(
                "chat.takeover",
                tenant_id=chat.tenant_id,
                actor=principal.agent_id,
                target=chat.id,
                previous_agent=chat.assigned_agent_id,
            )
            await self._leave(chat, chat.assigned_agent_id)
        await self._join(updated, principal.agent_id)
        tenant = await self._tenant(chat.tenant_id)
        key = await self.keys.get(chat.id)
        await self._emit(
            tenant,
            "chat.assigned",
            updated,
            key,
            {
                "agent_id": principal.agent_id,
                "agent_name": await self.agent_name(principal.agent_id),
                "queue_seconds": (updated.accepted_at or self.clock()) - updated.created_at,
            },
        )
        await self._publish_queue_changed(chat.tenant_id)
        await self._announce_members(updated)
        return updated

    async def transfer(
        self, principal: Principal, chat_id: str, *, to_agent: str | None, to_queue: str | None
    ) -> Chat:
        _require(principal, Permission.CHAT_HANDLE, principal.tenant_id)
        if (to_agent is None) == (to_queue is None):
            raise ChatError("bad_transfer", "name exactly one of to_agent or to_queue")
        chat = await self._chat(chat_id, principal.tenant_id)
        may_override = principal.can(Permission.CHAT_TAKEOVER, chat.tenant_id)
        if chat.state != "active" or (
            chat.assigned_agent_id != principal.agent_id and not may_override
        ):
            raise ChatError("not_assigned", "only the assigned agent can transfer this chat")
        if to_queue is not None:
            _check_queue(await self._tenant(chat.tenant_id), to_queue)
        if to_agent is not None:
            target = await self.store.get_agent(to_agent) if _AGENT_ID.fullmatch(to_agent) else None
            if target is None or target.tenant_id != chat.tenant_id or target.disabled:
                raise ChatError("unknown_agent", "no such agent")
            if chat.mode == "e2e" and self.e2e is not None:
                if not await self.e2e.certified_devices(chat.tenant_id, target.id):
                    raise ChatError(
                        "e2e_device_required",
                        "that agent has no certified device for end-to-end chats",
                    )
        updated = await self.store.assign_chat(
            chat.id,
            agent_id=to_agent,
            queue=to_queue,
            from_states=("active",),
            expected_agent_id=chat.assigned_agent_id,
            check_agent=True,
            now=self.clock(),
        )
        if updated is None:
            raise ChatError("conflict", "the chat changed meanwhile; try again")
        await self.store.count_transfer(chat.id)
        await self._leave(chat, chat.assigned_agent_id, event="transferred")
        if to_agent is not None:
            await self._join(updated, to_agent)
        tenant = await self._tenant(chat.tenant_id)
        await self._emit(
            tenant,
            "chat.transferred",
            updated,
            await self.keys.get(chat.id),
            {
                "from_agent_id": chat.assigned_agent_id,
                "to_agent_id": to_agent,
                "to_queue": to_queue,
            },
        )
        await self.auditor.record(
            "chat.transferred",
            tenant_id=chat.tenant_id,
            actor=principal.agent_id,
            target=chat.id,
            to_agent=to_agent,
            to_queue=to_queue,
        )
        await self._publish_queue_changed(chat.tenant_id)
        await self._announce_members(updated)
        return updated

    async def _join(self, chat: Chat, agent_id: str) -> None:
        name = await self.agent_name(agent_id)
        await self.bus.publish(
            agent_topic(agent_id),
            BusEvent(
                kind="join_chat",
                chat=chat.id,
                frame=ChatEvent(chat=chat.id, event="assigned", agent=name),
            ),
        )
        await self.bus.publish(
            chat_topic(chat.id),
            BusEvent(kind="frame", frame=ChatEvent(chat=chat.id, event="joined", agent=name)),
        )

    async def _leave(self, chat: Chat, agent_id: str | None, event: str = "left") -> None:
        if agent_id is None:
            return
        name = await self.agent_name(agent_id)
        await self.bus.publish(
            chat_topic(chat.id),
            BusEvent(kind="frame", frame=ChatEvent(chat=chat.id, event="left", agent=name)),
        )
        await self.bus.publish(
            agent_topic(agent_id),
            BusEvent(
                kind="leave_chat",
                chat=chat.id,
                frame=ChatEvent(chat=chat.id, event="removed", agent=name, reason=event),
            ),
        )

    async def close(
        self,
        chat_id: str,
        tenant_id: str,
        *,
        by: Direction,
        principal: Principal | None = None,
        reason: str = "resolved",
        csat: int | None = None,
        comment: str | None = None,
        release: Sequence[ReleasedLine] = (),
    ) -> Chat:
        """Close a chat (once, whoever closes first). A customer's ``csat`` (1-5, with an
        optional ``comment``) is recorded with their close, or later when the agent
        closed first: see :meth:`rate`. ``release``: in an end-to-end chat, the masked
        transcript the agent's console releases to the helpdesk with this close (see
        :meth:`_released_lines`)."""
        chat = await self._chat(chat_id, tenant_id)
        if principal is not None:
            _require(principal, Permission.CHAT_HANDLE, tenant_id)
            if chat.assigned_agent_id != principal.agent_id and not principal.can(
                Permission.CHAT_TAKEOVER, tenant_id
            ):
                raise ChatError("not_assigned", "only the assigned agent can close this chat")
        released: dict[int, str] = {}
        if release:
            if chat.state == "closed":
                raise ChatError("chat_closed", "this conversation is closed")
            released = await self._released_lines(chat, principal, release)
        if chat.state != "closed":
            close_reason = "customer_left"
            if by == "agent":
                # The reason is agent-typed text: it goes through the policy like a message.
                tenant = await self._tenant(tenant_id)
                close_reason = (await self._screen_fields(tenant, {"r": reason}, "agent"))["r"]
            # Compare-and-set: of concurrent closes (two nodes, double clicks) exactly one
            # gets the chat back and runs the close steps once; the others see it closed.
            closed = await self.store.close_chat(
                chat.id, closed_at=self.clock(), reason=close_reason
            )
            if closed is None:
                if released:
                    raise ChatError("chat_closed", "closed meanwhile: nothing was released")
                chat = await self._chat(chat_id, tenant_id)
            else:
                chat = closed
                self.split_window.forget(chat.id)
                rating = None
                if by == "customer" and csat is not None:
                    # recorded before chat.closed (which carries csat), emitted after it
                    rating = await self._record_rating(chat, csat, comment, with_close=True)
                if released:
                    await self.auditor.record(
                        "e2e.transcript_released",
                        tenant_id=tenant_id,
                        actor=principal.agent_id if principal else None,
                        target=chat.id,
                        lines=len(released),
                    )
                chat = await self._after_close(chat, tenant_id, released)
                if rating is not None:
                    await self._emit_rating(chat, rating)
                return chat
        if by == "customer" and csat is not None:
            await self.rate(chat, csat, comment, with_close=False)
        return chat

    async def rate(self, chat: Chat, csat: int, comment: str | None, *, with_close: bool) -> bool:
        """Record the customer's rating of closed ``chat`` once (a second rating is
        ignored): the comment goes through the policy like a message and is stored sealed
        with the chat key; plugins get ``chat.rated`` (the comment masked for them).
        ``with_close``: given with the customer's own close (``chat.closed`` carries
        it too). Returns False when the chat was rated already."""
        rating = await self._record_rating(chat, csat, comment, with_close=with_close)
        if rating is None:
            return False
        await self._emit_rating(chat, rating)
        return True

    async def _record_rating(
        self, chat: Chat, csat: int, comment: str | None, *, with_close: bool
    ) -> dict[str, Any] | None:
        """Store the rating (once); returns the ``chat.rated`` payload, None when the
        chat was rated already or is erased."""
        tenant = await self._tenant(chat.tenant_id)
        key = await self.keys.get(chat.id)
        if key is None:
            return None
        engine = await self.policies.engine(tenant.id, tenant.settings)
        text = (comment or "").strip()
        stored = screen_text(engine, text, "customer") if text else ""
        sealed = seal_json(key, chat.id, COMMENT_PURPOSE, {"text": stored}) if stored else None
        now = self.clock()
        if not await self.store.rate_chat(chat.id, csat, now, sealed):
            return None
        chat.csat, chat.rated_at, chat.csat_comment_sealed = csat, now, sealed
        if self.quality is not None:
            self.quality.rated(csat)
        return {
            "csat": csat,
            "comment": screen_text(engine, text, "customer", "plugin") if text else None,
            "agent_id": chat.assigned_agent_id,
            "with_close": with_close,
        }

    async def _emit_rating(self, chat: Chat, rating: dict[str, Any]) -> None:
        tenant = await self._tenant(chat.tenant_id)
        await self._emit(tenant, "chat.rated", chat, await self.keys.get(chat.id), rating)

    def rating_comment(self, chat: Chat, key: bytes | None) -> str | None:
        """The stored (policy-screened) comment of the chat's rating, if any."""
        if key is None or chat.csat_comment_sealed is None:
            return None
        return str(open_json(key, chat.id, COMMENT_PURPOSE, chat.csat_comment_sealed)["text"])

    async def _answered(self, chat: Chat, at: float) -> None:
        """The first agent reply of the chat's current assignment: recorded once (across
        nodes) for the reply SLA; the chat's very first one also for the report."""
        first_response_at = await self.store.mark_answered(chat.id, at)
        chat.answered_at = at  # answered now or by another node: no second write
        if first_response_at is None or first_response_at != at:
            return
        chat.first_response_at = at
        if self.quality is not None and chat.accepted_at is not None:
            self.quality.first_response(at - chat.accepted_at)

    async def close_idle(self, chat_id: str, tenant_id: str, idle_minutes: float) -> Chat | None:
        """Close an open chat nobody wrote in for ``idle_minutes`` (retention job).

        A system message tells both sides why (stored like any message, so it reaches
        every connection in order and stays in the transcript), then the normal close
        runs with reason ``idle``: plugins get ``chat.closed``. Returns None when the
        chat was closed meanwhile (by a person or another node)."""
        chat = await self._chat(chat_id, tenant_id)
        key = await self.keys.get(chat.id)
        if chat.state == "closed" or key is None:
            return None
        text = IDLE_NOTICE.format(minutes=int(idle_minutes))
        msg_id = uuid.uuid4().hex
        stored_id = seal_msg_id(key, chat.id, msg_id)
        try:
            result = await self.store.append_message(
                NewMessage(
                    chat_id=chat.id,
                    msg_id=stored_id,
                    sender="system",
                    ts=self.clock(),
                    body_sealed=seal_text(key, chat.id, stored_id, text),
                    policy={"action": "allow", "kinds": []},
                )
            )
        except (ChatClosed, NotFound):
            return None
        await self.bus.publish(
            chat_topic(chat.id),
            BusEvent(
                kind="frame",
                frame=Msg(
                    seq=result.message.seq,
                    sender="system",
                    text=text,
                    ts=result.message.ts,
                    id=msg_id,
                    chat=chat.id,
                ),
            ),
        )
        closed = await self.store.close_chat(chat.id, closed_at=self.clock(), reason="idle")
        if closed is None:
            return None
        self.split_window.forget(chat.id)
        return await self._after_close(closed, tenant_id)

    async def _released_lines(
        self, chat: Chat, principal: Principal | None, release: Sequence[ReleasedLine]
    ) -> dict[int, str]:
        """seq -> the plugin-audience text of a transcript an agent's console releases at
        the close of an end-to-end chat (``e2e_release_transcripts``, a per-tenant option).

        The console masked each text with the tenant's end policy; the gateway, which sees
        the released text anyway, runs its own policy over it once more (names, addresses
        and links are found here only) and masks it for the plugin audience. Each line
        must name an e2e message of the chat with its sender's direction. What the text
        says cannot be checked against the ciphertext (that would need the plaintext):
        the release is audited with who made it."""
        tenant = await self._tenant(chat.tenant_id)
        if principal is None or chat.mode != "e2e":
            raise ChatError("not_e2e", "only an end-to-end chat's console releases a transcript")
        if tenant.settings.get(RELEASE_SETTING) is not True:
            raise ChatError("release_disabled", "the tenant does not release e2e transcripts")
        senders = {m.seq: m.sender for m in await self.history(chat, 0) if m.c is not None}
        seqs = [line.seq for line in release]
        if len(set(seqs)) != len(seqs):
            raise ChatError("bad_release", "each message is released once")
        for seq in seqs:
            if seq not in senders:
                raise ChatError("bad_release", f"no end-to-end message {seq} in this chat")
        engine = await self.policies.engine(tenant.id, tenant.settings)

        def screen_all() -> dict[int, str]:  # many policy passes: off the event loop
            return {
                line.seq: screen_text(
                    engine,
                    line.text,
                    "agent" if senders[line.seq] == "agent" else "customer",
                    "plugin",
                )
                for line in release
            }

        return await asyncio.to_thread(screen_all)

    async def _after_close(
        self, chat: Chat, tenant_id: str, released: Mapping[int, str] | None = None
    ) -> Chat:
        """The steps of a close, run once by the caller whose compare-and-set won."""
        if self.search_indexer is not None:
            self.search_indexer.kick()
        if self.quality is not None and chat.accepted_at is not None and chat.closed_at:
            self.quality.closed(chat.closed_at - chat.accepted_at)
        await self.bus.publish(
            chat_topic(chat.id),
            BusEvent(
                kind="frame",
                frame=ChatEvent(chat=chat.id, event="closed", reason=chat.close_reason),
            ),
        )
        if chat.assigned_agent_id:
            await self.bus.publish(
                agent_topic(chat.assigned_agent_id), BusEvent(kind="leave_chat", chat=chat.id)
            )
        tenant = await self._tenant(tenant_id)
        key = await self.keys.get(chat.id)
        transcript = await self._transcript_for(
            tenant, await self.history(chat, 0), "plugin", released
        )
        queue_seconds = (chat.accepted_at - chat.created_at) if chat.accepted_at else None
        await self._emit(
            tenant,
            "chat.closed",
            chat,
            key,
            {
                "transcript": transcript,
                "csat": chat.csat,
                "close_reason": chat.close_reason,
                "queue_seconds": queue_seconds,
                "agent_id": chat.assigned_agent_id,
                "consent": consent_json(await self.consent_of(chat)),
            },
        )
        await self._publish_queue_changed(tenant_id)
        return chat

    async def watch(
        self, principal: Principal, chat_id: str, ip: str | None
    ) -> tuple[Chat, list[Msg]]:
        """Supervisor follows a chat; opening a transcript is an audited access."""
        _require(principal, Permission.CHAT_WATCH, principal.tenant_id)
        chat = await self._chat(chat_id, principal.tenant_id)
        if not principal.sees_queue(chat.queue):
            raise ChatError("not_your_queue", "this chat waits in a queue you are not assigned to")
        await self.auditor.record(
            "transcript.opened",
            tenant_id=chat.tenant_id,
            actor=principal.agent_id,
            target=chat.id,
            ip=ip,
            via="watch",
        )
        if chat.mode == "e2e" and chat.state != "closed":
            # The customer sees that a supervisor joined (their end wraps the key to them).
            if await self.store.add_e2e_member(chat.id, principal.agent_id, "watch", self.clock()):
                await self._announce_members(chat)
        return chat, await self.history(chat, 0)

    async def unwatch(self, principal: Principal, chat_id: str) -> None:
        """Stop following a chat; in an e2e chat the supervisor stops being a member (the
        customer's end re-keys, so what follows is not readable with the key they had)."""
        chat = await self.store.get_chat(chat_id)
        if chat is None or chat.tenant_id != principal.tenant_id or chat.mode != "e2e":
            return
        if await self.store.remove_e2e_member(chat.id, principal.agent_id):
            await self._announce_members(chat)

    async def queue_snapshot(
        self, principal: Principal, not_before: float | None = None
    ) -> QueueSnapshot:
        """The queue as ``principal`` sees it: their own chats, plus the waiting ones (every
        open one for supervisors). ``not_before`` (``queue_reads.clock``): the last queue
        change the caller was told of; a read started since then is shared (None: a new
        read)."""
        since = self.queue_reads.clock() if not_before is None else not_before
        read = await self.queue_reads.rows(principal.tenant_id, since)
        supervisor = principal.can(Permission.CHAT_WATCH, principal.tenant_id)
        visible, mine = [], []
        for row in read.rows:
            if row.assigned_agent_id == principal.agent_id:
                mine.append(row.entry)
            elif not principal.sees_queue(row.entry.queue):
                continue  # queue scoping: not even the customer's name or topic
            elif row.state == "queued" or supervisor:
                visible.append(row.entry)
        unlisted = sum(n for queue, n in read.unlisted.items() if principal.sees_queue(queue))
        return QueueSnapshot(chats=visible, mine=mine, waiting_unlisted=unlisted)

    async def _queue_read(self, tenant_id: str) -> QueueRead:
        """The tenant's open chats as queue entries (one store read; a profile decryption
        per chat new or changed since the last read), shared by the consoles through
        ``queue_reads``: every active chat, and the ``queue_listed`` longest-waiting chats
        of each queue with a count of the rest."""
        cap = self.queue_listed  # the read lists min(total, cap) chats of each queue
        listing = await self.store.list_queue(tenant_id, waiting_per_queue=cap)
        chats = listing.chats
        handled = await HelpdeskInbox(self.store, self.keys, self.clock).handled(
            tenant_id, [c.id for c in chats]
        )
        unlisted = {queue: total - cap for queue, total in listing.waiting.items() if total > cap}
        rows = []
        known = self._queue_entries.get(tenant_id, {})
        entries: dict[str, tuple[tuple[object, ...], QueueEntry]] = {}
        for chat in chats:
            agent = await self.agent_name(chat.assigned_agent_id)
            is_handled = chat.id in handled
            facts = (
                chat.queue,
                chat.waiting_since,
                chat.verified,
                chat.state,
                agent,
                is_handled,
                chat.mode,
                chat.profile_sealed,
                chat.identity_sealed,
            )
            cached = known.get(chat.id)
            if cached is not None and cached[0] == facts:
                entry = cached[1]
            else:
                entry = QueueEntry(
                    chat=chat.id,
                    queue=chat.queue,
                    waiting_since=chat.waiting_since,
                    verified=chat.verified,
                    state=chat.state,
                    agent=agent,
                    handled=is_handled,
                    e2e=chat.mode == "e2e",
                    **await self._profile_summary(chat),
                )
            entries[chat.id] = (facts, entry)
            rows.append(QueueRow(entry, chat.state, chat.assigned_agent_id))
        self._queue_entries[tenant_id] = entries
        return QueueRead(rows, unlisted)

    async def _profile_summary(self, chat: Chat) -> dict[str, str | None]:
        """Name and topic for the queue; the verified identity wins over the form."""
        key = await self.keys.get(chat.id)
        name = topic = None
        if key is not None and chat.profile_sealed:
            profile = open_json(key, chat.id, "profile", chat.profile_sealed)
            name, topic = profile.get("name"), profile.get("topic")
        if key is not None and chat.identity_sealed:
            identity = open_json(key, chat.id, "identity", chat.identity_sealed)
            name = identity.get("name") or identity.get("user_id")
        return {"name": name, "topic": topic}

    async def customer_of(self, chat: Chat) -> dict[str, Any] | None:
        """Verified identity (or form data) of a chat, for agents and scoped plugins."""
        key = await self.keys.get(chat.id)
        if key is None:
            return None
        if chat.identity_sealed:
            return {**open_json(key, chat.id, "identity", chat.identity_sealed), "verified": True}
        if chat.profile_sealed:
            return {**open_json(key, chat.id, "profile", chat.profile_sealed), "verified": False}
        return None

    # ------------------------------------------------------------------ plugins

    async def _customer_for(self, chat: Chat, audience: Audience) -> dict[str, Any] | None:
        """The customer as ``audience`` may see them: name and e-mail masked per the
        tenant's audience table (``张**``, ``z***@example.com`` by default)."""
        customer = await self.customer_of(chat)
        if customer is None:
            return None
        tenant = await self._tenant(chat.tenant_id)
        engine = await self.policies.engine(tenant.id, tenant.settings)
        out = dict(customer)
        for kind in ("name", "email"):
            value = out.get(kind)
            if isinstance(value, str):
                out[kind] = engine.mask_field(kind, value, audience)
        return out

    async def _customer_for_plugins(self, chat: Chat) -> dict[str, Any] | None:
        """What plugins get of the customer: the identifiers only, masked for ``plugin``."""
        customer = await self._customer_for(chat, "plugin")
        if customer is None:
            return None
        return {k: customer.get(k) for k in ("user_id", "name", "email", "verified")}

    # ------------------------------------------------------------------ policy on fields

    async def _screen_fields(
        self, tenant: Tenant, fields: dict[str, Any], direction: Direction = "customer"
    ) -> dict[str, Any]:
        """Every free-text field a customer or agent controls (profile, identity, close
        reason) goes through the policy before it is stored, shown or queued for plugins:
        masked as a message would be; a blocked value is replaced by ``[removed]``."""
        engine = await self.policies.engine(tenant.id, tenant.settings)
        return {
            name: screen_text(engine, value, direction) if isinstance(value, str) else value
            for name, value in fields.items()
        }

    async def _transcript_for(
        self,
        tenant: Tenant,
        messages: list[Msg],
        audience: Audience,
        released: Mapping[int, str] | None = None,
    ) -> list[dict[str, Any]]:
        """A chat's transcript as ``audience`` (plugins, a customer export) gets it:
        per-audience masking, computed in a worker thread (a long chat is many policy
        passes). ``released``: the masked texts of e2e messages an agent released."""
        released = released or {}
        engine = await self.policies.engine(tenant.id, tenant.settings)

        def mask_all() -> list[dict[str, Any]]:
            rows = []
            for m in messages:
                if m.c is not None:  # e2e: the gateway has no text to give (metadata only)
                    rows.append(
                        {
                            "seq": m.seq,
                            "sender": m.sender,
                            "ts": m.ts,
                            "e2e": True,
                            "size": len(m.c) * 3 // 4 - m.c.count("="),  # sealed bytes
                            "agent": m.agent,
                        }
                        | ({"text": released[m.seq], "released": True} if m.seq in released else {})
                    )
                    continue
                direction: Direction = "agent" if m.sender == "agent" else "customer"
                decision = engine.evaluate(m.text, direction)
                shown = engine.for_audience(m.text, decision, audience)
                rows.append(
                    {
                        "seq": m.seq,
                        "sender": m.sender,
                        "ts": m.ts,
                        "text": shown if shown is not None else REMOVED,
                        "agent": m.agent,
                    }
                )
            return rows

        return await asyncio.to_thread(mask_all)

    async def _message_events(
        self,
        tenant: Tenant,
        chat: Chat,
        key: bytes,
        sender: str,
        event_key: str,
        now: float,
        text: str,
        policy_meta: dict[str, Any],
    ) -> EventBuilder | None:
        """Outbox rows for a message are built inside the store transaction, once the
        message's ``seq`` is known (the builder runs there)."""
        if self.plugins is None:
            return None
        targets = await self.plugins.targets(tenant, "chat.message")
        if not targets:
            return None
        base = {
            "chat_id": chat.id,
            "occurred_at": now,
            "sender": sender,
            "text": text,
            "policy_action": None if policy_meta["action"] == "allow" else policy_meta["action"],
            "policy_kinds": policy_meta["kinds"],
            "customer": await self._customer_for_plugins(chat),
        }
        file = policy_meta.get("file")
        if file is not None:  # the name is the text; type and size, never the bytes
            base.update(attachment_type=file["type"], attachment_size=file["size"])
        host = self.plugins

        def build(stored: StoredMessage) -> list[OutboxEvent]:
            data = {**base, "seq": stored.seq}
            return host.build(targets, tenant, "chat.message", data, key, event_key=event_key)

        return build

    async def _emit(
        self, tenant: Tenant, event_type: str, chat: Chat, key: bytes | None, data: dict[str, Any]
    ) -> None:
        """Enqueue a chat event for the tenant's plugins that declared its scope."""
        if key is None or self.plugins is None:
            return
        targets = await self.plugins.targets(tenant, event_type)
        if not targets:
            return
        event = {
            "chat_id": chat.id,
            "occurred_at": self.clock(),
            "customer": await self._customer_for_plugins(chat),
            **data,
        }
        await self.store.enqueue_events(self.plugins.build(targets, tenant, event_type, event, key))
        self.plugins.enqueued()

    # ------------------------------------------------------------------ erasure

    async def erase(
        self, chat_id: str, *, actor: str, tenant_id: str | None = None, shred: bool = True
    ) -> bool:
        """Crypto-shred a chat (CLI, admin API, retention job). ``shred=False``: the caller
        erases several in a row and calls the store's ``shred_erased`` after them."""
        chat = await self.store.get_chat(chat_id)
        if chat is None or (tenant_id is not None and chat.tenant_id != tenant_id):
            return False
        erased = await self.store.erase_chat(chat_id, shred=shred)
        self.keys.forget(chat_id)
        if erased:
            await self.auditor.record(
                "chat.erased", tenant_id=chat.tenant_id, actor=actor, target=chat_id
            )
            await self.bus.publish(
                chat_topic(chat_id),
                BusEvent(
                    kind="frame", frame=ChatEvent(chat=chat_id, event="closed", reason="erased")
                ),
            )
        return erased

    async def erase_reported(
        self, chat_id: str, *, actor: str, tenant_id: str | None = None
    ) -> SignedReport | None:
        """Erase one chat (admin API, CLI) and sign a destruction report of it; None when
        there was no such chat (nothing destroyed, nothing reported)."""
        chat = await self.store.get_chat(chat_id)
        if chat is None or not await self.erase(chat_id, actor=actor, tenant_id=tenant_id):
            return None
        if self.reports is None:
            raise RuntimeError("erase_reported needs a ReportBook")
        return await self.reports.issue(
            "erase", tenant_id=chat.tenant_id, actor=actor, counts={"chats": 1}, chats=[chat_id]
        )

    async def customer_chats(self, tenant_id: str, kind: CustomerIdKind, value: str) -> list[str]:
        """Ids of every not yet erased chat of one customer of a tenant, named by the
        verified ``sub``, an ``email`` (verified or typed in the form) or the
        ``chat_token`` of one of their chats (that chat plus every chat sharing its
        customer keys)."""
        if kind == "chat_token":
            found = await self.store.chat_by_resume_hash(tenant_id, hash_token(value))
            if found is None:
                return []
            keys = await self.store.customer_keys_of(found)
            return sorted({found, *await self.store.chats_of_customer(tenant_id, keys)})
        if self.customer_keys is None:
            raise RuntimeError("customer lookups need CustomerKeys")
        keys = self.customer_keys.candidates(tenant_id, kind, value)
        return await self.store.chats_of_customer(tenant_id, keys)

    async def erase_customer(
        self, tenant_id: str, kind: CustomerIdKind, value: str, *, actor: str
    ) -> SignedReport:
        """Crypto-shred every chat of one customer (right to erasure) and sign one report.

        Each chat goes through :meth:`erase` (audited ``chat.erased``; its pending and dead
        plugin events are dropped with it); the request itself is audited
        ``customer.erased`` with the count, never the identifier. A chat whose erase
        fails raises: the caller retries, and chats already erased stay erased."""
        if self.reports is None:
            raise RuntimeError("erase_customer needs a ReportBook")
        chat_ids = await self.customer_chats(tenant_id, kind, value)
        people = await self._identities_for_plugins(chat_ids)  # read before the keys go
        try:
            erased = [
                chat_id
                for chat_id in chat_ids
                if await self.erase(chat_id, actor=actor, tenant_id=tenant_id, shred=False)
            ]
        finally:  # the chats erased before a failure are shredded too
            await self.store.shred_erased()
        await self.auditor.record(
            "customer.erased", tenant_id=tenant_id, actor=actor, by=kind, chats=len(erased)
        )
        if erased:
            await self._request_helpdesk_erasure(tenant_id, people, erased)
        return await self.reports.issue(
            "erase", tenant_id=tenant_id, actor=actor, counts={"chats": len(erased)}, chats=erased
        )

    async def _identities_for_plugins(self, chat_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The distinct identities of these chats as plugins may see them (masked per the
        tenant's plugin audience), for the helpdesk deletion request."""
        people: list[dict[str, Any]] = []
        for chat_id in chat_ids:
            chat = await self.store.get_chat(chat_id)
            person = await self._customer_for_plugins(chat) if chat is not None else None
            if person and (person.get("email") or person.get("user_id")) and person not in people:
                people.append(person)
        return people

    async def _request_helpdesk_erasure(
        self, tenant_id: str, people: list[dict[str, Any]], erased: list[str]
    ) -> None:
        """``customer.erased`` for the tenant's plugins that delete customers in the
        helpdesk (PIPL Art. 47 / GDPR Art. 17: the request reaches every copy), one per
        identity. The event belongs to no chat -- the chats are gone -- so it is sealed
        under the tenant-event key and survives their shredding."""
        if self.plugins is None or not people:
            return
        tenant = await self._tenant(tenant_id)
        targets = await self.plugins.targets(tenant, "customer.erased")
        if not targets:
            return
        rows = []
        for person in people:
            rows += self.plugins.build_tenant_events(
                targets,
                tenant_id,
                "customer.erased",
                {"occurred_at": self.clock(), "customer": person, "chats": erased},
                event_key=uuid.uuid4().hex,
            )
        await self.store.enqueue_events(rows)
        self.plugins.enqueued()

    async def export_customer(
        self, tenant_id: str, kind: CustomerIdKind, value: str, *, actor: str
    ) -> CustomerExport:
        """Everything the gateway holds about one customer's chats, decrypted (right of
        access): per chat its times, state, the identity or form data and the messages,
        masked for the ``export`` audience (the tenant's audience table: phones
        ``138****5678``, e-mails, names and addresses by default). Staff appear by role
        only, never by name. At most :data:`MAX_EXPORT_CHATS` chats (``truncated`` says
        when there were more). Audited ``customer.exported`` with the count, never the
        identifier."""
        ids = await self.customer_chats(tenant_id, kind, value)
        tenant = await self._tenant(tenant_id)
        chats: list[ExportedChat] = []
        for chat_id in ids[:MAX_EXPORT_CHATS]:
            chat = await self.store.get_chat(chat_id)
            if chat is None or chat.tenant_id != tenant_id:
                continue
            transcript = await self._transcript_for(
                tenant, await self.messages(chat.id, 0), "export"
            )
            chats.append(
                ExportedChat(
                    id=chat.id,
                    created_at=chat.created_at,
                    closed_at=chat.closed_at,
                    state=chat.state,
                    close_reason=chat.close_reason,
                    consent=await self.consent_of(chat),
                    customer=await self._customer_for(chat, "export"),
                    messages=[
                        ExportedMessage(
                            seq=m["seq"],
                            sender=m["sender"],
                            ts=m["ts"],
                            text=m.get("text", ""),
                            e2e=bool(m.get("e2e")),
                        )
                        for m in transcript
                    ],
                )
            )
        await self.auditor.record(
            "customer.exported", tenant_id=tenant_id, actor=actor, by=kind, chats=len(chats)
        )
        return CustomerExport(chats=chats, truncated=len(ids) > MAX_EXPORT_CHATS)

    async def export_for_customer(self, tenant_id: str, identity_token: str) -> CustomerExport:
        """The right of access from the widget: the customer proves who they are with a
        fresh signed identity token from the company's site (single use, like at chat
        open) and gets their own chats, masked for the ``export`` audience. Refused
        (:class:`ChatError`) when the tenant has no widget identity or the token is
        forged, expired or replayed."""
        tenant = await self._tenant(tenant_id)
        if tenant.identity_mode == "off":
            raise ChatError("identity_off", "this site does not sign in its customers")
        identity = await self._verify_identity(tenant, identity_token)
        if identity is None:  # pragma: no cover - a token was given and the mode is on
            raise ChatError("identity_invalid", "identity token refused")
        return await self.export_customer(tenant_id, "sub", identity.user_id, actor="customer")


CONSENT_PURPOSE = "consent"
"""Associated-data purpose of the sealed consent record of a chat."""


def consent_json(consent: Consent | None) -> dict[str, Any] | None:
    """The consent as exports and plugin events carry it."""
    return None if consent is None else {"notice_version": consent.version, "at": consent.at}


MAX_EXPORT_CHATS = 200
"""Chats in one customer export (a larger history is exported oldest ids first, truncated)."""


@dataclass(frozen=True, slots=True)
class ExportedMessage:
    """One message of a customer export."""

    seq: int
    sender: str
    ts: float
    text: str
    # End-to-end encrypted: the gateway holds no key, so ``text`` is empty.
    e2e: bool = False


@dataclass(frozen=True, slots=True)
class ExportedChat:
    """One chat of a customer export."""

    id: str
    created_at: float
    closed_at: float | None
    state: str
    close_reason: str | None
    consent: Consent | None
    customer: dict[str, Any] | None
    messages: list[ExportedMessage]


@dataclass(frozen=True, slots=True)
class CustomerExport:
    """What :meth:`ChatService.export_customer` returns (``POST /api/customers/export``)."""

    chats: list[ExportedChat]
    truncated: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "chats": [
                {
                    "id": c.id,
                    "created_at": c.created_at,
                    "closed_at": c.closed_at,
                    "state": c.state,
                    "close_reason": c.close_reason,
                    "consent": consent_json(c.consent),
                    "customer": c.customer,
                    "messages": [
                        {"seq": m.seq, "from": m.sender, "ts": m.ts, "text": m.text}
                        | ({"e2e": True} if m.e2e else {})
                        for m in c.messages
                    ],
                }
                for c in self.chats
            ],
            "truncated": self.truncated,
        }


def _require(principal: Principal, permission: Permission, tenant_id: str) -> None:
    if not principal.can(permission, tenant_id):
        raise ChatError("forbidden", "your role does not allow this")


def file_ref(stored: StoredMessage, name: str) -> FileRef | None:
    """The ``file`` of a stored message's frame, from its metadata (None: a text message)."""
    meta = stored.policy.get("file")
    if not isinstance(meta, dict):
        return None
    return FileRef(
        id=str(meta["id"]),
        name=name,
        type=str(meta["type"]),
        size=int(meta["size"]),
        w=meta.get("w"),
        h=meta.get("h"),
    )


def _check_plain(chat: Chat) -> None:
    """Plain ``msg`` frames carry text the gateway reads; an e2e chat takes ``emsg`` only."""
    if chat.mode == "e2e":
        raise ChatError("e2e_required", "this chat is end-to-end encrypted: send emsg")


def _check_queue(tenant: Tenant, queue: str) -> None:
    if queue not in tenant_queues(tenant):
        raise ChatError("unknown_queue", "no such queue")


def _profile_dict(profile: Profile | None) -> dict[str, str]:
    if profile is None:
        return {}
    return {
        k: v
        for k, v in (("name", profile.name), ("email", profile.email), ("topic", profile.topic))
        if v
    }
