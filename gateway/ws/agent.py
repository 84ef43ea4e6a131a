"""``GET /ws/agent``: the console's end of protocol v1 (MFA session required)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import structlog
from aiohttp import web

from auth.roles import Permission, Principal
from gateway.bus.base import BusEvent, agent_topic, chat_topic, tenant_topic
from gateway.chats import ChatError
from gateway.e2e import SealedBody
from gateway.governance.approvals import ApprovalError
from gateway.governance.wiring import governance_of
from gateway.helpdesk_inbox import HelpdeskInbox
from gateway.protocol import (
    Accept,
    AgentClose,
    AgentFetch,
    AgentMsg,
    AgentSealedMsg,
    AgentTyping,
    AgentUpload,
    ChatEvent,
    ChatKeys,
    CloseCode,
    FrameError,
    History,
    Members,
    Msg,
    Ping,
    Pong,
    QueueRequest,
    QueueSnapshot,
    Ready,
    ReportMsg,
    Transfer,
    Unwatch,
    Watch,
    decode_agent,
)
from gateway.services import SERVICES, Services, serve_connection
from gateway.sessions import AgentContext, token_from_request
from gateway.store.base import Chat, E2EDevice
from gateway.ws.connection import ProtocolViolation, SecureConnection
from gateway.ws.echo import EchoFilter
from gateway.ws.feed import STUCK_CLOSE_REASON, ChatFeed
from gateway.ws.pipeline import Admissions, PostPipeline, Refusal, abort_after_failure
from gateway.ws.queue_updates import QueueView

log = structlog.get_logger("cipherdesk.ws.agent")

RECHECK_EVERY = 5.0  # seconds between re-validations of the session on agent actions
SESSION_POLL = 30.0
"""Longest real-time wait of the session watchdog between two store re-reads: it wakes
at the session's own deadline, and at least this often to catch a revocation whose bus
event was missed or an agent disabled directly in the store."""


class AgentSession:
    """One agent connection: several chats, the tenant queue, supervisor extras."""

    def __init__(
        self,
        conn: SecureConnection,
        svc: Services,
        ctx: AgentContext,
        ip: str,
        device: E2EDevice | None = None,
        *,
        echo: bool = True,
        queue_updates: bool = False,
    ) -> None:
        self.conn = conn
        # The certified e2e device this socket speaks for: it receives that device's
        # wrapped chat keys and writes e2e messages as that device (issue 13).
        self.device = device
        self.svc = svc
        self.ctx = ctx
        self.ip = ip
        self.chats: set[str] = set()  # assigned to this agent
        self.watching: set[str] = set()
        # ``key.echo: false``: the console shows its own replies as it sends them.
        self.echoes = None if echo else EchoFilter("agent")
        # A gap the store cannot fill ends the connection; the client resumes (feed.py).
        self.feed = ChatFeed(
            self._show,
            svc.chats.messages,
            on_stuck=lambda _chat: conn.abort(CloseCode.INTERNAL, STUCK_CLOSE_REASON),
        )
        self.posts = PostPipeline(conn)  # messages stored and acked in order, read ahead
        # chat id -> (the chat's writable check, when asked, for whom): _writable_chat
        self._writable: dict[str, tuple[asyncio.Future[Chat], float, Principal]] = {}
        # decided in order while reading ahead, when a decision is a round trip away
        self.admissions = Admissions(conn)
        # True until the first whole queue is sent: a change heard while it is read waits
        # and follows it (an update before any ``queue`` would have nothing to apply to).
        self._snapshot_pending = True
        # What the console was shown, so changes go as ``queue_update``s; None for a client
        # that did not ask for them (it gets the whole queue on every change).
        self.queue_view = QueueView() if queue_updates else None
        self._queue_changed_at = 0.0  # when the last queue change was heard (queue_reads clock)
        self._checked_at = svc.clock()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        """A background step (queue snapshot, join replay) failed: the console's view would
        silently go stale, so close the socket; the console reconnects to fresh state."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            abort_after_failure(self.conn, exc)

    def _show(self, msg: Msg) -> None:
        """The feed's output: every message in seq order, but an unneeded echo."""
        if self.echoes is None or not self.echoes.swallows(msg):
            self.conn.send(msg)

    # ------------------------------------------------------------------ bus events

    def _on_event(self, event: BusEvent) -> None:
        if event.skip_conn == self.conn.conn_id:
            return
        kind = event.kind
        if kind == "frame" and event.frame is not None:
            if event.audience == "customer":
                return
            if event.audience == "supervisors" and not self.principal.can(
                Permission.FLAG_VIEW_ORIGINAL, self.principal.tenant_id
            ):
                return
            frame = event.frame
            if isinstance(frame, ChatKeys) and (
                self.device is None or frame.device != self.device.id
            ):
                return  # another device's keys (useless here, but none of this socket's business)
            if isinstance(frame, Msg) and frame.chat is not None:
                self.feed.offer(frame)  # exactly once, in seq order, gaps filled from the store
                return
            if isinstance(frame, ChatEvent | ChatKeys | Members) and frame.chat:
                self._writable.pop(frame.chat, None)  # the chat changed: read it again
            self.conn.send(frame)
        elif kind == "queue_changed":
            self._queue_changed_at = self.svc.chats.queue_reads.clock()
            self._schedule_snapshot()
        elif kind == "join_chat" and event.chat:
            self._writable.pop(event.chat, None)
            self._spawn(self._join(event.chat, event.frame))
        elif kind == "leave_chat" and event.chat:
            self._writable.pop(event.chat, None)
            self.chats.discard(event.chat)
            if event.chat not in self.watching:
                self.conn.unsubscribe(chat_topic(event.chat))
            if event.frame is not None:
                self.conn.send(event.frame)
        elif kind == "frozen" and event.frame is not None:
            self.conn.send(event.frame)  # the console shows "service paused"
        elif kind == "revoke":
            if event.sessions is None or self.ctx.session.token_hash in event.sessions:
                self.conn.abort(CloseCode.UNAUTHENTICATED, event.reason or "session revoked")

    async def _join(self, chat_id: str, frame: Any) -> None:
        self.chats.add(chat_id)
        await self.conn.subscribe(chat_topic(chat_id), self._on_event)
        if frame is not None:
            self.conn.send(frame)
        await self._send_keys(chat_id)
        await self.feed.replay(chat_id)  # the history the new owner has not seen yet

    async def _send_keys(self, chat_id: str) -> None:
        """e2e: the chat keys already wrapped to this socket's device (before the history
        they open); keys wrapped later arrive as ``ckeys`` on the chat topic."""
        if self.device is not None:
            keys = await self.svc.e2e.keys_for(chat_id, self.device.id)
            if keys is not None:
                self.conn.send(keys)

    def _send_queue(self, snapshot: QueueSnapshot) -> None:
        """The whole queue (on connect, on request): from now on what the console has."""
        self.conn.send(snapshot if self.queue_view is None else self.queue_view.shown(snapshot))

    def _schedule_snapshot(self) -> None:
        if self._snapshot_pending:
            return
        self._snapshot_pending = True

        async def send_later() -> None:
            await asyncio.sleep(0.05)  # coalesce bursts of queue changes
            self._snapshot_pending = False
            snapshot = await self.svc.chats.queue_snapshot(self.principal, self._queue_changed_at)
            if self.queue_view is None:
                self.conn.send(snapshot)
            elif (update := self.queue_view.changes(snapshot)) is not None:
                self.conn.send(update)

        self._spawn(send_later())

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        p, agent = self.principal, self.ctx.agent
        await self.svc.presence.connected(p.tenant_id, self.conn.conn_id, agent_id=p.agent_id)
        try:
            await self._run(p, agent)
        finally:
            await self.svc.presence.disconnected(p.tenant_id, self.conn.conn_id)

    async def _run(self, p: Principal, agent: Any) -> None:
        await self.conn.subscribe(agent_topic(p.agent_id), self._on_event)
        await self.conn.subscribe(tenant_topic(p.tenant_id), self._on_event)
        self.conn.send(
            Ready(
                agent=agent.id,
                name=agent.display_name,
                role=agent.role,
                tenant=agent.tenant_id,
                device=self.device.id if self.device is not None else None,
            )
        )
        snapshot = await self.svc.chats.queue_snapshot(p)
        for entry in snapshot.mine:
            self.chats.add(entry.chat)
            chat = await self.svc.store.get_chat(entry.chat)
            # The console asks for history explicitly after (re)connecting; live messages
            # continue from what is stored now.
            self.feed.start_at(entry.chat, chat.last_seq if chat else 0)
            await self.conn.subscribe(chat_topic(entry.chat), self._on_event)
            await self._send_keys(entry.chat)
        self._send_queue(snapshot)
        self._snapshot_pending = False
        if self._queue_changed_at:  # a change heard while the first queue was read
            self._schedule_snapshot()
        self._spawn(self._watch_session())
        try:
            async for raw in self.conn.frames():
                await self.svc.guard.inbound_bytes(self.conn, len(raw))
                try:
                    frame = decode_agent(raw)
                except FrameError as exc:
                    raise ProtocolViolation(CloseCode.POLICY, str(exc)[:120]) from None
                await self._recheck()
                try:
                    await self._handle(frame)
                except ChatError as exc:
                    self.conn.send_error(
                        exc.code,
                        exc.message,
                        getattr(frame, "id", None)
                        or getattr(frame, "file", None)
                        or getattr(frame, "chat", None),
                    )
        finally:
            try:  # the agent left: what it sent is still relayed
                await self.admissions.drain()
                await self.posts.drain()
            finally:  # also when the drain itself is cancelled (shutdown)
                self.feed.cancel()
                for task in list(self._tasks):
                    task.cancel()

    async def _watch_session(self) -> None:
        """Close with 4401 once the session expires or is revoked, even if the agent
        never sends another frame (issue 11.7): sleep until the session's deadline (at
        most :data:`SESSION_POLL`), then re-read it from the store without touching it."""
        sessions, clock = self.svc.sessions, self.svc.clock
        while True:
            session = await sessions.recheck(self.ctx.session.token_hash)
            if session is None:
                log.info("agent_session_ended", agent=self.principal.agent_id)
                self.conn.abort(CloseCode.UNAUTHENTICATED, "session expired")
                return
            wait = sessions.expires_at(session) - clock()
            await asyncio.sleep(min(max(wait, 0.05), SESSION_POLL))

    async def _require_online(self, p: Principal, agent_id: str) -> None:
        """A transfer to a colleague of this tenant who has no console open would leave the
        customer waiting on nobody: refuse it (``agent_offline``). Unknown ids, other
        tenants' agents and an unknown presence (Redis down) are left to ChatService,
        which answers ``unknown_agent`` alike, so no other tenant's ids can be probed."""
        online = await self.svc.presence.agents(p.tenant_id)
        if online is None or agent_id in online:
            return
        target = await self.svc.store.get_agent(agent_id[:64])
        if target is not None and target.tenant_id == p.tenant_id and not target.disabled:
            raise ChatError("agent_offline", "that agent is not online")

    async def _recheck(self) -> None:
        """Per-message authorisation: the session and the agent row are re-read at most
        every few seconds, so revocation, disabling or a role change bite promptly even
        if the bus event was missed."""
        now = self.svc.clock()
        if now - self._checked_at < RECHECK_EVERY:
            return
        self._checked_at = now
        ctx = await self.svc.sessions.authenticate(self.ctx.token)
        if ctx is None:
            raise ProtocolViolation(CloseCode.UNAUTHENTICATED, "session expired")
        self.ctx = ctx

    async def _approved(self, action: str, target: str) -> None:
        """Approvals for sensitive access (gateway/governance/approvals.py): refuse with the error
        ``approval_required`` until a live grant exists (when the tenant requires one)."""

        try:
            await governance_of(self.svc).approvals.require(self.principal, action, target)
        except ApprovalError as exc:
            raise ChatError(exc.code, exc.message) from None

    def _writable_chat(self, p: Principal, chat_id: str) -> asyncio.Future[Chat]:
        """The chat a reply goes to, as ``ChatService.agent_writable`` found it at most
        :data:`RECHECK_EVERY` seconds ago and before any change to the chat this socket
        heard of; replies that arrive while it is being read share that read. Read once,
        not before every reply: that read was one store round trip per reply, and it
        capped a node's agent replies (``bench/limits.py --replies``). The store checks in
        each reply's own transaction that the chat is still active and this agent's
        (``NewMessage.assigned_only``), so a reply to a chat taken away a moment ago is
        refused however recent this view is."""
        seen = self._writable.get(chat_id)
        now = self.svc.clock()
        if seen is not None and now - seen[1] < RECHECK_EVERY and seen[2] == p:
            return seen[0]
        check = asyncio.ensure_future(self.svc.chats.agent_writable(p, chat_id))
        self._writable[chat_id] = (check, now, p)

        def forget_refusal(done: asyncio.Future[Chat]) -> None:
            # a refusal (not_assigned, not_found) is not kept: the next reply asks again
            if (done.cancelled() or done.exception() is not None) and (
                self._writable.get(chat_id, (None,))[0] is done
            ):
                del self._writable[chat_id]

        check.add_done_callback(forget_refusal)
        return check

    async def _post(
        self,
        p: Principal,
        frame: AgentMsg | AgentSealedMsg,
        device_id: str | None,
        writable: asyncio.Future[Chat],
        refusal: Refusal,
    ) -> None:
        """Queue a decided message for storing (or tell the agent to slow down). ``p`` is
        the principal the frame was read under; ``device_id`` the certified device of a
        sealed message; ``writable`` the chat as ``ChatService.agent_writable`` checked
        it when the frame arrived (its ``ChatError`` answers the message)."""
        if refusal is not None:  # ``writable`` may be shared with other replies: left be
            self.svc.guard.refuse(self.conn, frame.id, frame.chat, refusal)
            return
        chat = await writable
        chats = self.svc.chats
        if isinstance(frame, AgentMsg):
            if self.echoes is not None:  # before posting: the echo may overtake the ack
                self.echoes.expect(frame.chat, frame.id, frame.text)
            outcome = await chats.queue_agent_message(p, chat, frame.id, frame.text)
        else:
            body = SealedBody(c=frame.c, fc=frame.fc, e=frame.e, dev=device_id)
            outcome = await chats.queue_agent_sealed(
                p, chat, frame.id, body, frame.flags, frame.file
            )
        await self.posts.add(frame.id, outcome)

    async def _handle(self, frame: Any) -> None:
        chats, p = self.svc.chats, self.principal
        if isinstance(frame, AgentMsg | AgentSealedMsg):
            if isinstance(frame, AgentMsg) and (
                len(frame.text) > self.svc.config.websocket.max_text_chars
            ):
                raise ChatError("too_long", "message too long")
            device = self._require_device().id if isinstance(frame, AgentSealedMsg) else None
            # Both asked for now, answered while the socket reads on: the rate decision
            # and the chat as the store has it.
            guard = self.svc.guard
            refusal = guard.agent_message_refusal(p.agent_id)
            writable = self._writable_chat(p, frame.chat)
            post = functools.partial(self._post, p, frame, device, writable)
            if _answered(writable) and not guard.decides_remotely and not self.admissions:
                await post(await refusal)  # nothing to wait for: no reason to queue it
            else:
                await self.admissions.add(frame.id, refusal, post)
            return
        await self.admissions.drain()  # what follows comes after the messages before it
        await self.posts.drain()
        if isinstance(frame, Accept | Transfer | AgentClose):
            # This socket's own changes to a chat are not heard back from the bus.
            self._writable.pop(frame.chat, None)
        if isinstance(frame, ReportMsg):
            if frame.chat is None or (
                frame.chat not in self.chats and frame.chat not in self.watching
            ):
                raise ChatError("not_found", "report a message of a chat you take part in")
            # Audit row and flag per report: the message budget bounds them.
            report_id = f"report-{frame.seq}"
            if not await self.svc.guard.agent_message(self.conn, p.agent_id, report_id, frame.chat):
                return
            chat = await chats.chat_of(p.tenant_id, frame.chat)
            self.conn.send(await chats.report(chat, frame, reporter=p.agent_id, ip=self.ip))
        elif isinstance(frame, AgentUpload):
            if not await self.svc.guard.agent_message(self.conn, p.agent_id, frame.id, frame.chat):
                return
            chat = await chats.agent_writable(p, frame.chat)
            self.conn.send(
                await self.svc.attachments.grant_upload(
                    chat, "agent", p.agent_id, frame.id, frame.size
                )
            )
        elif isinstance(frame, AgentFetch):
            if frame.chat in self.chats or frame.chat in self.watching:
                chat = await chats.chat_of(p.tenant_id, frame.chat)
            else:  # a past chat opened from history: the transcript rules apply
                known = await self.svc.store.get_chat(frame.chat)
                if known is not None and known.assigned_agent_id != p.agent_id:
                    await self._approved("transcript.read", frame.chat)
                chat = await chats.readable(p, frame.chat, self.ip)
            self.conn.send(self.svc.attachments.grant_download(chat, frame.file, p.agent_id))
        elif isinstance(frame, AgentTyping):
            # The chat as replies see it (read once: an agent types about twice per reply,
            # and each typing frame read the chat until the first reply had); a chat that
            # is not this agent's active one gets typing's own answer (not_assigned, or
            # nothing once it is closed).
            try:
                chat = await self._writable_chat(p, frame.chat)
            except ChatError:
                await chats.typing(
                    frame.chat, p.tenant_id, "agent", frame.on, self.conn.conn_id, principal=p
                )
            else:
                await chats.typing_in(chat, "agent", frame.on, self.conn.conn_id)
        elif isinstance(frame, Accept):
            await self._e2e_ready(frame.chat)
            chat = await chats.accept(p, frame.chat)
            if chat.id not in self.chats:
                await self._join(chat.id, None)
        elif isinstance(frame, Transfer):
            if frame.to_agent is not None:
                await self._require_online(p, frame.to_agent)
            await chats.transfer(p, frame.chat, to_agent=frame.to_agent, to_queue=frame.to_queue)
        elif isinstance(frame, AgentClose):
            await chats.close(frame.chat, p.tenant_id, by="agent", principal=p, reason=frame.reason)
        elif isinstance(frame, Watch):
            await self._e2e_ready(frame.chat)
            await self._approved("transcript.read", frame.chat)
            chat, history = await chats.watch(p, frame.chat, self.ip)
            self.watching.add(chat.id)
            await self.conn.subscribe(chat_topic(chat.id), self._on_event)
            self.conn.send(ChatEvent(chat=chat.id, event="joined", agent=None, reason="watch"))
            self.feed.forget(chat.id)  # watching is an explicit request for the transcript
            if await self.feed.deliver_paced(chat.id, history, self.conn.send_paced):
                await self._send_notes(chat)
        elif isinstance(frame, Unwatch):
            self.watching.discard(frame.chat)
            if frame.chat not in self.chats:
                self.conn.unsubscribe(chat_topic(frame.chat))
            await chats.unwatch(p, frame.chat)
        elif isinstance(frame, QueueRequest):
            self._send_queue(await chats.queue_snapshot(p))
        elif isinstance(frame, History):
            known = await self.svc.store.get_chat(frame.chat) if len(frame.chat) <= 128 else None
            if (
                known is not None
                and known.tenant_id == p.tenant_id
                and known.assigned_agent_id != p.agent_id
            ):
                await self._approved("transcript.read", frame.chat)
            # An explicit request re-sends history even if this socket saw it before.
            # A long transcript is sent at the reader's pace, not all into the send queue
            # at once (that dropped agents reading > send_queue messages as slow consumers).
            for msg in await chats.agent_history(p, frame.chat, frame.after_seq, self.ip):
                self.feed.start_at(frame.chat, msg.seq)
                if not await self.conn.send_paced(msg):
                    return
            if frame.after_seq == 0 and known is not None:
                # The full history includes the helpdesk's internal notes (agents only;
                # agent_history above has checked this agent may read the chat).
                await self._send_notes(known)
        elif isinstance(frame, Ping):
            self.conn.send(Pong())

    def _require_device(self) -> E2EDevice:
        if self.device is None:
            raise ChatError(
                "e2e_device_required",
                "end-to-end chats need a certified device (open the console on one)",
            )
        return self.device

    async def _e2e_ready(self, chat_id: str) -> None:
        """An e2e chat is taken or watched only from a socket with a certified device:
        without one the agent could read nothing and the customer would wait."""
        if self.device is None and len(chat_id) <= 128:
            chat = await self.svc.store.get_chat(chat_id)
            if chat is not None and chat.tenant_id == self.principal.tenant_id:
                if chat.mode == "e2e":
                    self._require_device()

    async def _send_notes(self, chat: Chat) -> None:
        inbox = HelpdeskInbox(self.svc.store, self.svc.chats.keys, self.svc.clock)
        for note in await inbox.notes(chat):
            if not await self.conn.send_paced(note):
                return


def _answered(check: asyncio.Future[Chat]) -> bool:
    """Whether ``check`` is in, and found the chat writable."""
    return check.done() and not check.cancelled() and check.exception() is None


async def agent_ws(request: web.Request) -> web.StreamResponse:
    svc: Services = request.app[SERVICES]

    async def admit(conn: SecureConnection, ip: str) -> AgentContext | None:
        token = token_from_request(request)
        origin = request.headers.get("Origin")
        from_cookie = "Authorization" not in request.headers
        if token is None:
            # No credentials at all: nothing to protect against hijacking, the answer is
            # "log in" (4401, as docs/PROTOCOL.md says), with or without Origin.
            svc.metrics.connections_refused_total.labels(reason="unauthenticated").inc()
            await conn.refuse(CloseCode.UNAUTHENTICATED, "login required")
            return None
        # Browsers always send Origin on websockets; a cookie-authenticated socket must
        # come from the console's own origin (Cross-Site WebSocket Hijacking).
        if (origin is not None or from_cookie) and not svc.console_origin_allowed(origin):
            svc.metrics.connections_refused_total.labels(reason="origin").inc()
            await conn.refuse(CloseCode.FORBIDDEN, "origin not allowed")
            return None
        ctx = await svc.sessions.authenticate(token)
        if ctx is None:
            svc.metrics.connections_refused_total.labels(reason="unauthenticated").inc()
            await conn.refuse(CloseCode.UNAUTHENTICATED, "login required")
            return None
        if ctx.principal.is_operator:
            # Operators run the installation, not chats: they have no console socket.
            svc.metrics.connections_refused_total.labels(reason="role").inc()
            await conn.refuse(CloseCode.FORBIDDEN, "operators have no chat console")
            return None
        if await svc.store.password_reset_forced(ctx.agent.id):
            await conn.refuse(CloseCode.FORBIDDEN, "password change required")
            return None
        refusal = await svc.passkeys.gate(ctx)
        if refusal is not None:  # the tenant requires a passkey session (gateway/passkeys.py)
            svc.metrics.connections_refused_total.labels(reason="passkey").inc()
            await conn.refuse(CloseCode.FORBIDDEN, refusal.replace("_", " "))
            return None
        return ctx

    async def body(conn: SecureConnection, ctx: AgentContext, ip: str) -> None:
        key = await conn.handshake(svc.guard.advertised_limits())
        device_id = request.query.get("device", "")
        device = None
        if 0 < len(device_id) <= 64:  # an uncertified or foreign device is simply none
            device = await svc.e2e.usable_device(ctx.agent.id, device_id)
        session = AgentSession(
            conn, svc, ctx, ip, device, echo=key.echo, queue_updates=key.queue_updates
        )
        with contextlib.suppress(asyncio.CancelledError):
            await session.run()

    return await serve_connection(
        request, svc, "agent", admit, body, tenant_of=lambda ctx: ctx.principal.tenant_id
    )
