"""Attachments end to end on the gateway side: tickets, checks, scanning, storage.

The websocket handlers call :meth:`AttachmentService.grant_upload` /
:meth:`grant_download` once they have checked who is asking (the sealed channel is the
authentication); the HTTP routes (``gateway/http/files.py``) call :meth:`receive` and
:meth:`send` with nothing but the ticket. Refusals are :class:`FileRefused` (the file),
:class:`~gateway.attachments.tickets.TicketError` (the ticket) or
:class:`~gateway.chats.ChatError` (the chat), each with a documented code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import structlog
from msgspec import Meta

from crypto.encoding import b64encode
from gateway.attachments.files import CleanFile, FileRefused, clean_file, clean_name
from gateway.attachments.tickets import (
    MAX_NAME_BYTES,
    TRANSFER_OVERHEAD,
    DownloadGrant,
    TicketBox,
    UploadGrant,
    new_transfer_key,
    open_upload,
    seal_transfer,
)
from gateway.audit import Auditor
from gateway.chats import ChatError, ChatService, PostOutcome
from gateway.config import AttachmentsConfig
from gateway.overrides import set_fields
from gateway.protocol import FileTicket, UploadTicket
from gateway.store.base import Chat, Tenant
from plugins.api import FileScanner, ScanUnavailable

log = structlog.get_logger("cipherdesk.attachments")

SETTING = "attachments"
"""Where a tenant's own attachment limits live in its settings."""
URL_PREFIX = "/api/files/"


class AttachmentSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A tenant's attachment limits (``PUT /api/governance/settings`` ``attachments``):
    switch files off, or accept less than the installation does. A field left out keeps
    the installation's value; a tenant can never raise it."""

    enabled: bool | None = None
    max_bytes: Annotated[int, Meta(ge=1024, le=50 * 1024 * 1024)] | None = None


def validate_settings(raw: Any) -> dict[str, Any]:
    """Checked limits to store in ``settings["attachments"]``; ValueError names the field."""
    return set_fields(raw, AttachmentSettings, SETTING)


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """What one tenant accepts now: the installation's limits narrowed by the tenant's."""

    enabled: bool
    max_bytes: int
    types: frozenset[str]

    def as_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "max_bytes": self.max_bytes, "types": sorted(self.types)}


@dataclass(frozen=True, slots=True)
class Received:
    """A stored upload: the message's outcome (ack and maybe a masked-name notice); for
    an end-to-end chat no message yet (``outcome`` None), the ``file`` its ``emsg`` names."""

    grant: UploadGrant
    outcome: PostOutcome | None
    file: str | None = None


class AttachmentService:
    """See the module docstring."""

    def __init__(
        self,
        config: AttachmentsConfig,
        tickets: TicketBox,
        chats: ChatService,
        auditor: Auditor,
        scanner: FileScanner | None,
        clean: Callable[[bytes, frozenset[str]], CleanFile] = clean_file,
    ) -> None:
        self.config = config
        self.tickets = tickets
        self.chats = chats
        self.auditor = auditor
        self.scanner = scanner
        self._clean = clean
        self._uploads = 0  # bodies being read or processed on this node

    @contextlib.contextmanager
    def upload_slot(self) -> Iterator[None]:
        """Hold one of the node's ``concurrent_uploads`` while a body is read and
        processed; :class:`FileRefused` ``busy`` when all are taken (memory stays bounded
        by slots × ``max_bytes``)."""
        if self._uploads >= self.config.concurrent_uploads:
            raise FileRefused("busy", "too many files are being sent right now; try again")
        self._uploads += 1
        try:
            yield
        finally:
            self._uploads -= 1

    def limits(self, tenant: Tenant) -> AttachmentLimits:
        own = tenant.settings.get(SETTING)
        own = own if isinstance(own, dict) else {}
        return AttachmentLimits(
            enabled=self.config.enabled and own.get("enabled", True) is not False,
            max_bytes=min(self.config.max_bytes, int(own.get("max_bytes") or 1 << 62)),
            types=frozenset(self.config.types),
        )

    async def _open_limits(self, tenant_id: str) -> AttachmentLimits:
        """The tenant's limits when it accepts files at all (``files_off`` otherwise)."""
        tenant = await self.chats.tenants.get(tenant_id)
        if tenant is None:
            raise ChatError("not_found", "no such chat")
        limits = self.limits(tenant)
        if not limits.enabled:
            raise ChatError("files_off", "files cannot be sent in this chat")
        return limits

    # ------------------------------------------------------------------ upload

    async def grant_upload(
        self,
        chat: Chat,
        sender: Literal["customer", "agent"],
        agent: str | None,
        msg_id: str,
        size: int,
    ) -> UploadTicket:
        """A ticket for one file into ``chat``; the caller checked that the sender may
        write there (and spent a message of its rate budget)."""
        limits = await self._open_limits(chat.tenant_id)
        if size > limits.max_bytes:
            raise ChatError(
                "file_too_big", f"files may be at most {limits.max_bytes // 1024} KiB here"
            )
        key = new_transfer_key()
        grant = UploadGrant(
            tenant=chat.tenant_id,
            chat=chat.id,
            msg_id=msg_id,
            sender=sender,
            agent=agent,
            size=size,
            expires=self.tickets.expiry(),
            key=key,
            e2e=chat.mode == "e2e",
        )
        return UploadTicket(
            id=msg_id,
            url=URL_PREFIX + self.tickets.issue(grant),
            key=b64encode(key),
            expires=grant.expires,
            chat=chat.id if sender == "agent" else None,
        )

    @staticmethod
    def max_body(grant: UploadGrant) -> int:
        """The most bytes an upload body for ``grant`` can have (file, name, sealing)."""
        return grant.size + 2 + MAX_NAME_BYTES + TRANSFER_OVERHEAD

    async def receive(self, grant: UploadGrant, body: bytes) -> Received:
        """The sealed body of an upload: opened, sniffed, cleaned, scanned, stored."""
        try:
            raw_name, data = open_upload(grant.key, body)
        except ValueError:
            raise FileRefused("bad_body", "the upload does not open with its key") from None
        if len(data) != grant.size:
            raise FileRefused("bad_body", "the upload is not the size that was announced")
        limits = await self._open_limits(grant.tenant)  # switched off since the ticket?
        if grant.e2e:  # ciphertext of the ends: nothing to sniff, clean or scan here
            if raw_name:
                raise FileRefused("bad_name", "end-to-end chats send the name sealed")
            fid = await self.chats.post_sealed_file(
                grant.tenant, grant.chat, grant.sender, grant.agent, grant.msg_id, data
            )
            return Received(grant=grant, outcome=None, file=fid)
        name = clean_name(raw_name)
        clean = await asyncio.to_thread(self._clean, data, limits.types)
        await self._scan(grant, clean)
        outcome = await self.chats.post_attachment(
            grant.tenant, grant.chat, grant.sender, grant.agent, grant.msg_id, name, clean
        )
        return Received(grant=grant, outcome=outcome)

    async def _scan(self, grant: UploadGrant, clean: CleanFile) -> None:
        if self.scanner is None:
            return
        try:
            verdict = await self.scanner.scan(clean.data)
        except ScanUnavailable as exc:
            log.warning("attachment_scan_unavailable", chat=grant.chat, error=str(exc)[:200])
            if self.config.scan_required:
                raise FileRefused(
                    "scan_unavailable", "files cannot be checked right now; try again later"
                ) from None
            return
        if not verdict.clean:
            log.warning("attachment_infected", chat=grant.chat, signature=verdict.signature)
            await self.auditor.record(
                "attachment.infected",
                tenant_id=grant.tenant,
                actor=grant.agent or "customer",
                target=grant.chat,
                signature=verdict.signature,
            )
            raise FileRefused("file_infected", "this file was refused: it contains malware")

    # ------------------------------------------------------------------ download

    def grant_download(self, chat: Chat, file: str, reader: str) -> FileTicket:
        """A ticket to read ``file`` of ``chat``; the caller checked that ``reader`` (the
        customer of the chat, or an agent's id) may read the chat."""
        key = new_transfer_key()
        grant = DownloadGrant(
            tenant=chat.tenant_id,
            chat=chat.id,
            file=file,
            reader=reader,
            expires=self.tickets.expiry(),
            key=key,
        )
        return FileTicket(
            file=file,
            url=URL_PREFIX + self.tickets.issue(grant),
            key=b64encode(key),
            expires=grant.expires,
            chat=chat.id if reader != "customer" else None,
        )

    async def send(self, grant: DownloadGrant) -> bytes:
        """The file of a download grant, sealed with its transfer key."""
        chat = await self.chats.store.get_chat(grant.chat)
        if chat is None or chat.tenant_id != grant.tenant or chat.close_reason == "erased":
            raise FileRefused("not_found", "this file no longer exists")
        data = await self.chats.read_attachment(chat, grant.file)
        if data is None:
            raise FileRefused("not_found", "this file no longer exists")
        return seal_transfer(grant.key, data)
