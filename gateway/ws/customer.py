"""``GET /ws/customer?tenant=<id>``: the widget's end of protocol v1."""

from __future__ import annotations

import functools
from typing import Any

import structlog
from aiohttp import web

from gateway.bus.base import BusEvent, chat_topic, customers_topic
from gateway.chats import ChatError, OpenedChat
from gateway.e2e import SealedBody, e2e_config
from gateway.protocol import (
    ChatEvent,
    CloseCode,
    CustomerClose,
    CustomerConsent,
    CustomerFetch,
    CustomerMsg,
    CustomerSealedMsg,
    CustomerTyping,
    CustomerUpload,
    FrameError,
    Key,
    Msg,
    Open,
    Ping,
    Pong,
    ReportMsg,
    Service,
    Welcome,
    WrapKeys,
    Wrapped,
    decode_customer,
)
from gateway.services import SERVICES, Services, serve_connection
from gateway.store.base import Chat, Tenant
from gateway.ws.connection import ProtocolViolation, SecureConnection
from gateway.ws.echo import EchoFilter
from gateway.ws.feed import STUCK_CLOSE_REASON, ChatFeed
from gateway.ws.pipeline import Admissions, PostPipeline, Refusal

log = structlog.get_logger("cipherdesk.ws.customer")


class CustomerSession:
    """One customer connection bound to at most one chat."""

    def __init__(self, conn: SecureConnection, svc: Services, tenant_id: str, ip: str) -> None:
        self.conn = conn
        self.svc = svc
        self.tenant_id = tenant_id
        self.ip = ip
        self.chat: Chat | None = None  # this connection's view, updated by bus events
        self.echoes: EchoFilter | None = None  # set by ``run`` when the client wants none
        # A gap the store cannot fill ends the connection; the client resumes (feed.py).
        self.feed = ChatFeed(
            self._show,
            svc.chats.messages,
            on_stuck=lambda _chat: conn.abort(CloseCode.INTERNAL, STUCK_CLOSE_REASON),
        )
        self.posts = PostPipeline(conn)  # messages stored and acked in order, read ahead
        # decided in order while reading ahead, when a decision is a round trip away
        self.admissions = Admissions(conn)

    def _show(self, msg: Msg) -> None:
        """The feed's output: every message in seq order, but an unneeded echo."""
        if self.echoes is None or not self.echoes.swallows(msg):
            self.conn.send(msg)

    def _on_event(self, event: BusEvent) -> None:
        if event.kind != "frame" or event.frame is None or event.skip_conn == self.conn.conn_id:
            return
        if event.audience not in ("all", "customer"):
            return
        frame = event.frame
        if isinstance(frame, Service):
            # Frozen/unfrozen on another node: this node's 2-second tenant cache is stale.
            self.svc.tenants.invalidate(self.tenant_id)
        if isinstance(frame, ChatEvent) and frame.event == "closed" and self.chat is not None:
            self.chat.state = "closed"
        if isinstance(frame, Msg):
            self.feed.offer(frame)  # exactly once, in seq order, gaps filled from the store
            return
        self.conn.send(frame)

    async def _attach(self, opened: OpenedChat, known_seq: int = 0) -> None:
        chat = opened.chat
        self.chat = chat
        # Subscribe before replaying so nothing published in between is missed; the feed
        # holds live messages while the replay runs and drops what it already sent.
        self.feed.start_at(chat.id, known_seq)
        await self.conn.subscribe(chat_topic(chat.id), self._on_event)
        consent = await self.svc.chats.consent_of(chat)
        self.conn.send(
            Welcome(
                chat=chat.id,
                token=opened.token,
                state=chat.state,
                last_seq=chat.last_seq,
                verified=chat.verified,
                agents_online=await self.svc.presence.online(chat.tenant_id),
                agent=await self.svc.chats.agent_name(chat.assigned_agent_id)
                if chat.state == "active"
                else None,
                consent=consent.version if consent is not None else None,
            )
        )
        members = await self.svc.chats.members(chat)
        if members is not None:  # e2e: who to wrap the chat key to, before the history
            self.conn.send(members)
        await self.feed.replay(chat.id)

    async def run(self, key: Key) -> None:
        if not key.echo:
            self.echoes = EchoFilter("customer")
        # Service notices (tenant frozen / live again) reach every live customer socket.
        await self.conn.subscribe(customers_topic(self.tenant_id), self._on_event)
        if key.resume is not None:
            try:
                opened = await self.svc.chats.resume_chat(
                    self.tenant_id, key.resume.chat, key.resume.token, key.resume.last_seq
                )
                await self._attach(opened, known_seq=key.resume.last_seq)
            except ChatError as exc:
                self.conn.send_error(exc.code, exc.message)
        try:
            await self._read_frames()
        finally:
            await self.admissions.drain()  # the client left: what it sent is still relayed
            await self.posts.drain()

    async def _read_frames(self) -> None:
        async for raw in self.conn.frames():
            try:
                frame = decode_customer(raw)
            except FrameError as exc:
                raise ProtocolViolation(CloseCode.POLICY, str(exc)[:120]) from None
            await self.svc.guard.inbound_bytes(self.conn, len(raw))
            try:
                await self._handle(frame)
            except ChatError as exc:
                if exc.close is not None:
                    raise ProtocolViolation(exc.close, exc.message) from None
                ref = getattr(frame, "id", None) or getattr(frame, "file", None)
                self.conn.send_error(exc.code, exc.message, ref)

    async def _post(
        self, frame: CustomerMsg | CustomerSealedMsg, chat: Chat, refusal: Refusal
    ) -> None:
        """Queue a decided message for storing (or tell the sender to slow down)."""
        if refusal is not None:
            self.svc.guard.refuse(self.conn, frame.id, chat.id, refusal)
            return
        chats = self.svc.chats
        if isinstance(frame, CustomerMsg):
            if self.echoes is not None:  # before posting: the echo may overtake the ack
                self.echoes.expect(chat.id, frame.id, frame.text)
            outcome = await chats.queue_customer_message(
                self.tenant_id, chat.id, frame.id, frame.text, chat
            )
        else:
            body = SealedBody(c=frame.c, fc=frame.fc, e=frame.e)
            outcome = await chats.queue_customer_sealed(
                self.tenant_id, chat.id, frame.id, body, chat, frame.flags, frame.file
            )
        await self.posts.add(frame.id, outcome)

    async def _handle(self, frame: Any) -> None:
        chats = self.svc.chats
        if isinstance(frame, Ping):
            self.conn.send(Pong())
            return
        if isinstance(frame, Open):
            if self.chat is not None:
                raise ChatError("already_open", "this connection already has a chat")
            opened = await chats.open_chat(
                self.tenant_id,
                queue=frame.queue,
                identity_token=frame.identity,
                profile=frame.profile,
            )
            await self._attach(opened)
            return
        if self.chat is None:
            raise ChatError("no_chat", "send open (or key.resume) first")
        chat_id = self.chat.id
        if isinstance(frame, CustomerMsg | CustomerSealedMsg):
            if isinstance(frame, CustomerMsg) and (
                len(frame.text) > self.svc.config.websocket.max_text_chars
            ):
                raise ChatError("too_long", "message too long")
            guard = self.svc.guard
            refusal = guard.customer_message_refusal(self.tenant_id, chat_id, self.ip)
            post = functools.partial(self._post, frame, self.chat)
            if guard.decides_remotely:
                await self.admissions.add(frame.id, refusal, post)
            else:  # decided at once: no reason to queue the message a second time
                await post(await refusal)
            return
        await self.admissions.drain()  # what follows comes after the messages before it
        await self.posts.drain()
        if isinstance(frame, CustomerUpload):
            if not await self.svc.guard.customer_message(
                self.conn, self.tenant_id, chat_id, self.ip, frame.id
            ):
                return
            chat = await chats.customer_writable(self.tenant_id, chat_id, self.chat)
            self.conn.send(
                await self.svc.attachments.grant_upload(
                    chat, "customer", None, frame.id, frame.size
                )
            )
        elif isinstance(frame, CustomerFetch):
            self.conn.send(self.svc.attachments.grant_download(self.chat, frame.file, "customer"))
        elif isinstance(frame, WrapKeys):
            await chats.wrap_keys(self.chat, frame)
            if frame.id is not None:
                self.conn.send(Wrapped(id=frame.id, epoch=frame.epoch))
        elif isinstance(frame, ReportMsg):
            # Each report writes an audit row (and a flag when verified): it spends the
            # same budget as a message, so reports cannot flood supervisors.
            report_id = f"report-{frame.seq}"
            if not await self.svc.guard.customer_message(
                self.conn, self.tenant_id, chat_id, self.ip, report_id
            ):
                return
            self.conn.send(await chats.report(self.chat, frame, reporter="customer", ip=self.ip))
        elif isinstance(frame, CustomerTyping):
            await chats.typing_in(self.chat, "customer", frame.on, self.conn.conn_id)
        elif isinstance(frame, CustomerConsent):
            await chats.record_consent(self.tenant_id, self.chat, frame.version)
        elif isinstance(frame, CustomerClose):
            await chats.close(
                chat_id, self.tenant_id, by="customer", csat=frame.csat, comment=frame.comment
            )


async def customer_ws(request: web.Request) -> web.StreamResponse:
    svc: Services = request.app[SERVICES]

    async def admit(conn: SecureConnection, ip: str) -> Tenant | None:
        tenant_id = request.query.get("tenant", "")
        tenant = await svc.tenants.get(tenant_id) if tenant_id else None
        if tenant is None:
            await conn.refuse(CloseCode.FORBIDDEN, "unknown tenant")
            return None
        if not svc.tenants.origin_allowed(tenant, request.headers.get("Origin")):
            svc.metrics.connections_refused_total.labels(reason="origin").inc()
            await conn.refuse(CloseCode.FORBIDDEN, "origin not allowed")
            return None
        if tenant.frozen:
            await conn.refuse(CloseCode.FORBIDDEN, "chat is temporarily unavailable")
            return None
        return tenant

    async def body(conn: SecureConnection, tenant: Tenant, ip: str) -> None:
        # The tenant admit() read: its mode decides the handshake, with no second lookup.
        key = await conn.handshake(svc.guard.advertised_limits(), e2e_config(tenant).mode)
        session = CustomerSession(conn, svc, tenant.id, ip)
        try:
            await session.run(key)
        finally:
            session.feed.cancel()

    return await serve_connection(
        request, svc, "customer", admit, body, tenant_of=lambda tenant: tenant.id
    )
