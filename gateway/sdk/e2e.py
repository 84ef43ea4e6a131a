"""End-to-end mode for SDK clients (issue 13): the customer's and the agent's ends.

The gateway relays what these clients seal; it holds no key that opens it. Usage::

    customer = E2ECustomerClient(base, "acme", origin=site, tenant_key=pinned_verify_key)
    await customer.connect()
    await customer.open()
    await customer.send_text("my card is …")          # sealed under the chat key

    agent = E2EAgentClient(base, token=session, device=device_key, device_id=dev_id)
    await agent.connect()
    await agent.accept(chat)
    await agent.keys_ready(chat)                       # the customer's end wrapped the key
    text = agent.read(await agent.wait_for(Msg))       # OpenedMessage(text, franking_key)

The customer's end is the one that makes chat keys: epoch 1 at ``open``; for every
``members`` frame it verifies each device certificate against the *pinned* tenant key
(``tenant_key``; a device whose certificate does not verify is refused and listed in
:attr:`E2ECustomerClient.refused`), wraps the key to members that lack it (with the earlier
epochs, so they read the history), and re-keys when a device that held the key is no
longer a member. Readers check every message against its frame (chat, sender, id, epoch),
its franking commitment, and that its id was not seen at another seq (a replay).

With ``policy`` (the tenant's :class:`~gateway.policy.PolicyEngine`), an end runs it on what
it seals, and reads each message with its last ones in the chat (``policy/split.py``'s
window, as the gateway does for inspect-mode chats): a number split across messages, and a
customer's bare answer to the question in an agent's message it read.
"""

# ruff: noqa: ASYNC109 - ``timeout=`` arguments are this SDK's documented API (tests, bots)
from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import nacl.public

from crypto.e2e import (
    CertificateError,
    DeviceCertificate,
    E2EError,
    FileRecord,
    OpenedMessage,
    SignedCertificate,
    file_text,
    new_chat_key,
    open_file_content,
    open_message,
    parse_file_text,
    seal_file_content,
    seal_message,
    unwrap_chat_key,
    verify_certificate,
    wrap_chat_key,
)
from crypto.encoding import b64encode
from gateway.policy.engine import PolicyEngine
from gateway.policy.split import SplitWindow, flag_kinds
from gateway.protocol import (
    AgentSealedMsg,
    AgentUpload,
    ChatKeys,
    CustomerSealedMsg,
    CustomerUpload,
    Members,
    Msg,
    Reported,
    ReportMsg,
    WrapKeys,
    Wrapped,
    WrappedKey,
)
from gateway.sdk.client import (
    DEFAULT_TIMEOUT,
    AgentClient,
    CustomerClient,
    ResumeInfo,
    _new_id,
)


def _file_parts(key: bytes, name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """The sealed bytes to upload and the file-record text of the message naming them."""
    digest = b64encode(hashlib.sha256(data).digest())
    record = FileRecord(name=name, type=content_type, size=len(data), sha256=digest)
    return seal_file_content(key, data), file_text(record)


def _file_of(opened: OpenedMessage, msg: Msg) -> tuple[FileRecord, str]:
    record = parse_file_text(opened.text)
    if record is None or msg.file is None:
        raise E2EError("not a file message")
    return record, msg.file.id


@dataclass(frozen=True, slots=True)
class Refusal:
    """A member device whose certificate the customer's end refused (not wrapped to)."""

    device: str
    code: str  # CertificateError codes, or "mismatch" (cert of another device/agent)


@dataclass(slots=True)
class ChatSecrets:
    """What the customer's end keeps to come back to an e2e chat (with
    :class:`~gateway.sdk.client.ResumeInfo`): the chat keys by epoch. The widget keeps the
    same in the browser's storage."""

    keys: dict[int, bytes] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return max(self.keys, default=0)


class _Opener:
    """Opening relayed messages, shared by both ends: checks and replay detection."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], int] = {}  # (chat, sender, id) -> seq

    def open(self, key: bytes | None, chat: str, msg: Msg) -> OpenedMessage:
        if msg.c is None or msg.fc is None or msg.e is None or msg.id is None:
            raise E2EError("not an end-to-end message")
        if key is None:
            raise E2EError(f"no chat key of epoch {msg.e} (yet)")
        sender = "customer" if msg.sender == "customer" else f"agent:{msg.dev or ''}"
        opened = open_message(
            key, c=msg.c, fc=msg.fc, chat=chat, sender=sender, msg_id=msg.id, epoch=msg.e
        )
        seen = self._seen.setdefault((chat, sender, msg.id), msg.seq)
        if seen != msg.seq:
            raise E2EError("replayed message: this id was relayed at another seq")
        return opened


def verified_members(
    tenant_key: str, tenant: str, members: Members, now: float
) -> tuple[dict[str, DeviceCertificate], list[Refusal]]:
    """The member devices whose certificates verify under the pinned ``tenant_key`` (and
    name the device and agent the gateway says), and the refused ones."""
    ok: dict[str, DeviceCertificate] = {}
    refused: list[Refusal] = []
    for member in members.devices:
        try:
            cert = verify_certificate(
                tenant_key, SignedCertificate(member.cert, member.sig), now=now, tenant=tenant
            )
        except CertificateError as exc:
            refused.append(Refusal(member.device, exc.code))
            continue
        if cert.device != member.device or cert.agent != member.agent:
            refused.append(Refusal(member.device, "mismatch"))
            continue
        ok[member.device] = cert
    return ok, refused


class EndPolicy(Protocol):
    """What an end runs before sealing: ``gateway.policy.PolicyEngine`` fits (a bot built
    on the SDK passes the tenant's engine, as the widget and the console run theirs)."""

    def evaluate(self, text: str, direction: Literal["customer", "agent"]) -> Any:
        """A decision with ``action``, ``text`` (masked; None when blocked), ``kinds``,
        ``split_kinds`` and ``findings`` (each with ``kind`` and ``action``)."""
        ...


class PolicyBlocked(E2EError):
    """The end's policy blocked the text: nothing was sealed or sent."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        super().__init__(f"blocked by the policy: {', '.join(kinds) or 'policy'}")
        self.kinds = kinds


def _through_policy(
    policy: EndPolicy | None,
    text: str,
    direction: Literal["customer", "agent"],
    flags: list[str] | None,
    window: tuple[SplitWindow, str] | None = None,
) -> tuple[str, list[str]]:
    """(the text to seal, the kinds to flag) after the end's policy, if there is one; with
    ``window`` (the end's window and the chat), read with the end's last messages in the
    chat too, as the gateway reads inspect-mode ones (a number split across them)."""
    if policy is None:
        return text, list(flags or [])
    decision = policy.evaluate(text, direction)
    if window is not None and isinstance(policy, PolicyEngine):
        split_window, chat = window
        decision = split_window.check(policy, chat, direction, text, decision)
    if decision.action == "block" or decision.text is None:
        raise PolicyBlocked(tuple(decision.kinds))
    return decision.text, sorted({*(flag_kinds(decision) or ()), *(flags or ())})[:8]


class E2ECustomerClient(CustomerClient):
    """The widget's end of an e2e chat; see the module docstring."""

    def __init__(
        self,
        url_base: str,
        tenant: str,
        *,
        origin: str,
        tenant_key: str,
        gateway_key: str | None = None,
        resume: ResumeInfo | None = None,
        secrets: ChatSecrets | None = None,
        clock: Callable[[], float] = time.time,
        open_timeout: float = DEFAULT_TIMEOUT,
        policy: EndPolicy | None = None,
    ) -> None:
        """``policy``: run on every text before it is sealed (masks, blocks, flags), with
        this end's last messages too (``SplitWindow``)."""
        self.policy = policy
        self.window = SplitWindow(clock=clock)
        super().__init__(
            url_base,
            tenant,
            origin=origin,
            gateway_key=gateway_key,
            resume=resume,
            open_timeout=open_timeout,
        )
        self.tenant_key = tenant_key
        self.secrets = secrets or ChatSecrets()
        self.clock = clock
        self.members: dict[str, DeviceCertificate] = {}  # verified member devices
        self.refused: list[Refusal] = []
        self.key_errors: list[str] = []  # wraps the gateway refused (stale member list…)
        self._sealed_outbox: dict[str, CustomerSealedMsg] = {}
        self._opener = _Opener()
        self._tasks: set[asyncio.Task[None]] = set()
        self._members_done = asyncio.Event()
        self._heard_seq = 0  # the newest agent message read into the window

    async def open(self, *args: Any, **kwargs: Any) -> Any:
        """Start a chat; epoch 1's key is made here, before anything is written."""
        if not self.secrets.keys:
            self.secrets.keys[1] = new_chat_key()
        return await super().open(*args, **kwargs)

    # ------------------------------------------------------------------ members and keys

    def _observe(self, frame: Any) -> None:
        super()._observe(frame)
        if isinstance(frame, Members):
            self._members_done.clear()
            task = asyncio.get_running_loop().create_task(self._on_members(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _on_members(self, frame: Members) -> None:
        try:
            await self._wrap_for(frame)
        except Exception as exc:
            self.key_errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._members_done.set()

    async def _wrap_for(self, frame: Members) -> None:
        verified, self.refused = verified_members(self.tenant_key, self.tenant, frame, self.clock())
        self.members = verified
        if frame.epoch not in self.secrets.keys:
            raise E2EError(f"this end has no key of the chat's epoch {frame.epoch}")
        holders = set(frame.holders)
        removed = holders - set(verified)
        keys = dict(self.secrets.keys)
        epoch = frame.epoch
        if removed:
            # A device that held the key left: what follows goes under a fresh key.
            epoch = frame.epoch + 1
            keys[epoch] = new_chat_key()
            needing = set(verified)
        else:
            needing = set(verified) - holders
        if not needing and not removed:
            return
        joining = sorted(needing - holders)
        current = [self._wrap(keys, d, epoch) for d in sorted(needing)]
        older = {str(e): [self._wrap(keys, d, e) for d in joining] for e in keys if e < epoch}
        wrap_id = _new_id()
        await self.send(
            WrapKeys(
                id=wrap_id,
                rekey=bool(removed),
                epoch=epoch,
                keys=current,
                older=older if joining else {},
            )
        )
        # A new epoch is adopted only once stored: of two ends re-keying at once, the
        # loser hears ``stale_epoch`` and keeps the winner's epoch (wrapped to it too).
        await self._wait_reply(
            lambda f: isinstance(f, Wrapped) and f.id == wrap_id, wrap_id, DEFAULT_TIMEOUT
        )
        self.secrets.keys = keys

    def _wrap(self, keys: dict[int, bytes], device: str, epoch: int) -> WrappedKey:
        assert self.chat is not None
        wrapped = wrap_chat_key(
            keys[epoch], self.members[device].public_key, chat=self.chat, epoch=epoch
        )
        return WrappedKey(device=device, k=wrapped)

    async def members_settled(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Wait until the latest ``members`` frame was acted on (wraps sent)."""
        await asyncio.wait_for(self._members_done.wait(), timeout)
        await self.ping(timeout)  # the server has handled the wrap frame

    # ------------------------------------------------------------------ messages

    async def send_text(
        self,
        text: str,
        msg_id: str | None = None,
        *,
        flags: list[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Any:
        """Seal ``text`` under the current chat key and wait for its ``ack``. ``flags``: the
        finding kinds this end's policy flagged in ``text`` (supervisors are alerted)."""
        if self.chat is None or not self.secrets.keys:
            raise E2EError("open the chat first")
        text, flags = _through_policy(
            self.policy, text, "customer", flags, (self.window, self.chat)
        )
        msg_id = msg_id or _new_id()
        epoch = self.secrets.epoch
        sealed = seal_message(
            self.secrets.keys[epoch],
            chat=self.chat,
            sender="customer",
            msg_id=msg_id,
            epoch=epoch,
            text=text,
        )
        frame = CustomerSealedMsg(id=msg_id, c=sealed.c, fc=sealed.fc, e=epoch, flags=flags)
        self._sealed_outbox[msg_id] = frame
        self.outbox[msg_id] = ""  # the base class's bookkeeping: acked ids leave it
        return await self._request(frame, msg_id, timeout)

    async def resend_unacked(self) -> list[str]:
        """Re-send unacked sealed messages, byte for byte (same id: stored once)."""
        ids = [i for i in self.outbox if i in self._sealed_outbox]
        for msg_id in ids:
            self._future(msg_id)
            await self.send(self._sealed_outbox[msg_id])
        return ids

    async def send_file(
        self,
        name: str,
        data: bytes,
        msg_id: str | None = None,
        *,
        content_type: str = "application/octet-stream",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Any:
        """Seal a file under the current chat key, upload it, then send the message that
        names it (its record -- name after the end's policy, type, size, SHA-256 -- sealed
        and franked like a text); returns the ``ack``."""
        if self.chat is None or not self.secrets.keys:
            raise E2EError("open the chat first")
        name, flags = _through_policy(self.policy, name, "customer", None)
        msg_id = msg_id or _new_id()
        epoch = self.secrets.epoch
        body, text = _file_parts(self.secrets.keys[epoch], name, data, content_type)
        upload = CustomerUpload(id=msg_id, size=len(body))
        uploaded = await self._send_file(upload, msg_id, "", body, timeout)  # no name: sealed
        sealed = seal_message(
            self.secrets.keys[epoch],
            chat=self.chat,
            sender="customer",
            msg_id=msg_id,
            epoch=epoch,
            text=text,
        )
        frame = CustomerSealedMsg(
            id=msg_id, c=sealed.c, fc=sealed.fc, e=epoch, flags=flags, file=uploaded.file
        )
        self._sealed_outbox[msg_id] = frame
        self.outbox[msg_id] = ""
        return await self._request(frame, msg_id, timeout)

    async def read_file(self, msg: Msg) -> tuple[FileRecord, bytes]:
        """The record and plain bytes of a relayed file message, checked against each
        other (:class:`E2EError` otherwise)."""
        record, file = _file_of(self.read(msg), msg)
        body = await self.fetch_file(file)
        return record, open_file_content(self.secrets.keys[msg.e or 0], body, record)

    def read(self, msg: Msg) -> OpenedMessage:
        """The text of a relayed message (:class:`E2EError` if it does not verify; an
        agent's message must come from a device whose certificate verified)."""
        if msg.sender == "agent" and msg.dev not in self.members:
            raise E2EError("message from a device that is not a verified member")
        key = self.secrets.keys.get(msg.e or 0)
        opened = self._opener.open(key, self.chat or "", msg)
        if msg.sender == "agent" and (msg.seq or 0) > self._heard_seq:
            # a question it names is read with this end's next answer, once per message
            self._heard_seq = msg.seq or 0
            if isinstance(self.policy, PolicyEngine) and self.chat is not None:
                text = opened.text
                decision = self.policy.evaluate(text, "agent")
                self.window.check(self.policy, self.chat, "agent", text, decision)
        return opened

    async def report(
        self,
        msg: Msg,
        reason: str = "abuse",
        *,
        text: str | None = None,
        franking_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Reported:
        """Report ``msg`` to the tenant's supervisors by revealing it (franking). ``text``
        and ``franking_key`` default to what :meth:`read` opens (tests forge them)."""
        opened = self.read(msg)
        await self.send(
            ReportMsg(
                seq=msg.seq,
                text=opened.text if text is None else text,
                fk=opened.franking_key if franking_key is None else franking_key,
                gt=msg.gt or "",
                reason=reason,  # type: ignore[arg-type]
            )
        )
        return await self._wait_reply(
            lambda f: isinstance(f, Reported) and f.seq == msg.seq, None, timeout
        )


class E2EAgentClient(AgentClient):
    """The console's end: one certified device (private key held here) for every chat."""

    def __init__(
        self,
        url_base: str,
        *,
        device: nacl.public.PrivateKey,
        device_id: str,
        token: str | None = None,
        cookie: str | None = None,
        origin: str | None = None,
        gateway_key: str | None = None,
        open_timeout: float = DEFAULT_TIMEOUT,
        policy: EndPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``policy``: run on every reply before it is sealed (masks, blocks, flags), with
        this end's last replies in the chat too (``SplitWindow`` on ``clock``)."""
        self.policy = policy
        self.window = SplitWindow(clock=clock)
        super().__init__(
            url_base,
            token=token,
            cookie=cookie,
            origin=origin,
            gateway_key=gateway_key,
            open_timeout=open_timeout,
        )
        self.url += ("&" if "?" in self.url else "?") + f"device={device_id}"
        self.device = device
        self.device_id = device_id
        self.chat_keys: dict[str, dict[int, bytes]] = {}
        self.key_errors: list[str] = []
        self._opener = _Opener()
        self._keys_arrived = asyncio.Event()

    def _observe(self, frame: Any) -> None:
        super()._observe(frame)
        if isinstance(frame, ChatKeys) and frame.device == self.device_id:
            keys = self.chat_keys.setdefault(frame.chat, {})
            for wrapped in frame.keys:
                try:
                    keys[wrapped.e] = unwrap_chat_key(
                        wrapped.k, self.device, chat=frame.chat, epoch=wrapped.e
                    )
                except E2EError as exc:
                    self.key_errors.append(str(exc))
            self._keys_arrived.set()

    async def keys_ready(
        self, chat: str, epoch: int = 1, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[int, bytes]:
        """Wait until this device holds the chat key of ``epoch`` (or a later one)."""

        async def wait() -> dict[int, bytes]:
            while max(self.chat_keys.get(chat, {}), default=0) < epoch:
                self._keys_arrived.clear()
                await self._keys_arrived.wait()
            return self.chat_keys[chat]

        return await asyncio.wait_for(wait(), timeout)

    async def send_text(
        self,
        chat: str,
        text: str,
        msg_id: str | None = None,
        *,
        flags: list[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Any:
        """Seal ``text`` under the newest chat key this device holds and wait for the ack
        (``flags``: as for the customer's end)."""
        keys = self.chat_keys.get(chat)
        if not keys:
            raise E2EError("no chat key for this chat yet (keys_ready)")
        text, flags = _through_policy(self.policy, text, "agent", flags, (self.window, chat))
        msg_id = msg_id or _new_id()
        epoch = max(keys)
        sealed = seal_message(
            keys[epoch],
            chat=chat,
            sender=f"agent:{self.device_id}",
            msg_id=msg_id,
            epoch=epoch,
            text=text,
        )
        frame = AgentSealedMsg(chat=chat, id=msg_id, c=sealed.c, fc=sealed.fc, e=epoch, flags=flags)
        return await self._request(frame, msg_id, timeout)

    def read(self, msg: Msg) -> OpenedMessage:
        chat = msg.chat or ""
        return self._opener.open(self.chat_keys.get(chat, {}).get(msg.e or 0), chat, msg)

    async def send_file(
        self,
        chat: str,
        name: str,
        data: bytes,
        msg_id: str | None = None,
        *,
        content_type: str = "application/octet-stream",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Any:
        """Like :meth:`E2ECustomerClient.send_file`, into an accepted chat."""
        keys = self.chat_keys.get(chat)
        if not keys:
            raise E2EError("no chat key for this chat yet (keys_ready)")
        name, flags = _through_policy(self.policy, name, "agent", None)
        msg_id = msg_id or _new_id()
        epoch = max(keys)
        body, text = _file_parts(keys[epoch], name, data, content_type)
        upload = AgentUpload(chat=chat, id=msg_id, size=len(body))
        uploaded = await self._send_file(upload, msg_id, "", body, timeout)  # no name: sealed
        sealed = seal_message(
            keys[epoch],
            chat=chat,
            sender=f"agent:{self.device_id}",
            msg_id=msg_id,
            epoch=epoch,
            text=text,
        )
        message = AgentSealedMsg(
            chat=chat, id=msg_id, c=sealed.c, fc=sealed.fc, e=epoch, flags=flags, file=uploaded.file
        )
        return await self._request(message, msg_id, timeout)

    async def read_file(self, msg: Msg) -> tuple[FileRecord, bytes]:
        """The record and plain bytes of a relayed file message of an agent's chat."""
        record, file = _file_of(self.read(msg), msg)
        chat = msg.chat or ""
        body = await self.fetch_file(chat, file)
        return record, open_file_content(self.chat_keys[chat][msg.e or 0], body, record)

    async def report(
        self,
        msg: Msg,
        reason: str = "abuse",
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Reported:
        opened = self.read(msg)
        await self.send(
            ReportMsg(
                seq=msg.seq,
                text=opened.text,
                fk=opened.franking_key,
                gt=msg.gt or "",
                reason=reason,  # type: ignore[arg-type]
                chat=msg.chat,
            )
        )
        return await self._wait_reply(
            lambda f: isinstance(f, Reported) and f.seq == msg.seq, msg.chat, timeout
        )
