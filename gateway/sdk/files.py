"""Attachments for SDK clients: the HTTP half of sending and reading a file.

The sealed websocket hands out a ticket (``upload``/``file`` frames, docs/PROTOCOL.md
"Attachments"); this module moves the bytes, sealed with the ticket's key, exactly as the
widget and console do. Kept apart from :mod:`gateway.sdk.client` because it is the SDK's
only HTTP code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import nacl.exceptions
import nacl.secret

from crypto.encoding import b64decode
from gateway.protocol import FileTicket, UploadTicket


class FileError(Exception):
    """The gateway refused a file transfer: HTTP ``status`` and the documented ``code``
    (``kinds``: what the policy found in a blocked file name)."""

    def __init__(self, status: int, code: str, message: str, kinds: list[str]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.kinds = kinds


@dataclass(frozen=True, slots=True)
class FileSent:
    """A stored upload: the message's ``seq`` (and the policy's notice on its name); for
    an end-to-end chat the ``file`` id its sealed message must name."""

    id: str
    seq: int | None  # None for an end-to-end chat's file: its message is sent next
    chat: str
    duplicate: bool = False
    notice: dict[str, Any] | None = field(default=None)
    file: str | None = None


def http_base(ws_url: str) -> str:
    """The gateway's HTTP origin from a websocket URL."""
    scheme, _, rest = ws_url.partition("://")
    return ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0]


async def post_file(
    base: str, ticket: UploadTicket, name: str, data: bytes, origin: str | None = None
) -> FileSent:
    """Seal ``name`` and ``data`` with the ticket's key and upload them."""
    raw = name.encode("utf-8")[:1020]
    plain = len(raw).to_bytes(2, "big") + raw + data
    body = bytes(nacl.secret.SecretBox(b64decode(ticket.key)).encrypt(plain))
    headers = {"Content-Type": "application/octet-stream", **({"Origin": origin} if origin else {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + ticket.url, data=body, headers=headers) as resp,
    ):
        answer = await resp.json(content_type=None)
        if resp.status != 201:
            raise _error(resp.status, answer)
    return FileSent(
        id=answer["id"],
        seq=int(answer["seq"]) if "seq" in answer else None,
        chat=answer["chat"],
        duplicate=bool(answer.get("duplicate")),
        notice=answer.get("notice"),
        file=answer.get("file"),
    )


async def get_file(base: str, ticket: FileTicket, origin: str | None = None) -> bytes:
    """Download a file and open it with the ticket's key."""
    headers = {"Origin": origin} if origin else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + ticket.url, headers=headers) as resp,
    ):
        if resp.status != 200:
            raise _error(resp.status, await resp.json(content_type=None))
        body = await resp.read()
    try:
        return nacl.secret.SecretBox(b64decode(ticket.key)).decrypt(body)
    except nacl.exceptions.CryptoError:
        raise FileError(
            resp.status, "bad_body", "the file does not open with its key", []
        ) from None


def _error(status: int, answer: Any) -> FileError:
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    return FileError(
        status,
        str(error.get("code", "unknown")),
        str(error.get("message", "")),
        list(error.get("kinds", [])),
    )
