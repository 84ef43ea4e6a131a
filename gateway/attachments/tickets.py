"""Upload and download tickets: short-lived, sealed capabilities for one file transfer.

Why tickets: a file is too big for the websocket's byte budget, so its bytes go over
HTTP. The client asks over the sealed channel (``upload``/``fetch`` frames) and gets a
ticket URL plus a fresh transfer key; it seals (upload) or opens (download) the bytes
with that key (NaCl ``secretbox``, as tweetnacl has it), so a TLS-terminating proxy sees
neither the file nor its name -- the same promise inspect mode makes for messages.

A ticket is the grant itself, sealed (XSalsa20-Poly1305) under a key derived from the
master keyring: any node of the installation opens it, nobody else can read or forge it,
and nothing has to be stored. It names the tenant, chat, sender or reader, the transfer
key and an expiry (:class:`TicketBox` takes an injectable clock). A ticket used twice is
harmless: an upload is de-duplicated by its message id like any message, a download
reads the same bytes again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Final, Literal

import msgspec
import nacl.exceptions
import nacl.secret
import nacl.utils

from crypto.envelope import Keyring
from gateway.derived_keys import derived_secret, derived_secrets

TICKET_LABEL: Final = "cipherdesk/file-ticket/v1"
"""Label of the key tickets are sealed under (gateway.derived_keys)."""
TRANSFER_KEY_BYTES: Final = nacl.secret.SecretBox.KEY_SIZE
TRANSFER_OVERHEAD: Final = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES
"""Bytes a sealed transfer adds to the file: the 24-byte nonce and the 16-byte tag."""
MAX_TICKET_CHARS: Final = 512
MAX_NAME_BYTES: Final = 1020
"""Longest file name a sealed upload may carry (255 characters of four UTF-8 bytes)."""


class UploadGrant(msgspec.Struct, tag="up", array_like=True, frozen=True):
    """Who may upload what: the message ``msg_id`` a ``sender`` (``agent`` with its id)
    adds to ``chat``, a file of ``size`` bytes. The file's name is not here: it travels
    inside the sealed body (a URL is logged by every proxy on the way)."""

    tenant: str
    chat: str
    msg_id: str
    sender: Literal["customer", "agent"]
    agent: str | None
    size: int
    expires: float
    key: bytes
    e2e: bool = False  # the body is ciphertext of the ends: stored as is, no message yet


class DownloadGrant(msgspec.Struct, tag="down", array_like=True, frozen=True):
    """Who may read which file: ``reader`` is ``customer`` or the agent's id."""

    tenant: str
    chat: str
    file: str
    reader: str
    expires: float
    key: bytes


Grant = UploadGrant | DownloadGrant


class TicketError(Exception):
    """``code``: ``ticket_invalid`` (forged, damaged, from another installation or for
    the other direction) or ``ticket_expired``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_transfer_key() -> bytes:
    return nacl.utils.random(TRANSFER_KEY_BYTES)


def seal_transfer(key: bytes, data: bytes) -> bytes:
    """``nonce ‖ secretbox(data)`` -- what tweetnacl's ``nacl.secretbox`` pairs with."""
    return bytes(nacl.secret.SecretBox(key).encrypt(data))


def open_transfer(key: bytes, body: bytes) -> bytes:
    """The file from a sealed transfer body; ValueError if it does not open."""
    try:
        return nacl.secret.SecretBox(key).decrypt(body)
    except nacl.exceptions.CryptoError:
        raise ValueError("the body does not open with the transfer key") from None


def seal_upload(key: bytes, name: str, data: bytes) -> bytes:
    """An upload body: ``nonce ‖ secretbox(len(name) as 2 bytes ‖ name ‖ file)``, the name
    in UTF-8 (the widget and console build the same with tweetnacl)."""
    raw = name.encode("utf-8")[:MAX_NAME_BYTES]
    return seal_transfer(key, len(raw).to_bytes(2, "big") + raw + data)


def open_upload(key: bytes, body: bytes) -> tuple[str, bytes]:
    """The name and file of an upload body; ValueError when it does not open or its name
    is not UTF-8 of at most :data:`MAX_NAME_BYTES`."""
    plain = open_transfer(key, body)
    size = int.from_bytes(plain[:2], "big")
    if len(plain) < 2 + size or size > MAX_NAME_BYTES:
        raise ValueError("the upload's name does not fit")
    try:
        name = plain[2 : 2 + size].decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the upload's name is not UTF-8") from None
    return name, plain[2 + size :]


class TicketBox:
    """Issues and opens tickets; every node with the same keyring agrees."""

    def __init__(self, keyring: Keyring, clock: Callable[[], float], ttl: float) -> None:
        self.keyring = keyring
        self.clock = clock
        self.ttl = ttl
        self._decoder = msgspec.msgpack.Decoder(Grant)

    def expiry(self) -> float:
        """When a ticket issued now stops working."""
        return self.clock() + self.ttl

    def issue(self, grant: Grant) -> str:
        box = nacl.secret.SecretBox(derived_secret(self.keyring, TICKET_LABEL))
        sealed = box.encrypt(msgspec.msgpack.encode(grant))
        return base64.urlsafe_b64encode(bytes(sealed)).rstrip(b"=").decode("ascii")

    def open(self, ticket: str) -> Grant:
        """The grant of a ticket that is genuine and current, else :class:`TicketError`.
        Tickets sealed under an older master key of the ring still open (a rotation does
        not break a transfer in flight)."""
        if not 0 < len(ticket) <= MAX_TICKET_CHARS:
            raise TicketError("ticket_invalid", "this file link is not valid")
        try:
            raw = base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4))
        except (binascii.Error, ValueError):
            raise TicketError("ticket_invalid", "this file link is not valid") from None
        for secret in derived_secrets(self.keyring, TICKET_LABEL):
            try:
                plain = nacl.secret.SecretBox(secret).decrypt(raw)
            except (nacl.exceptions.CryptoError, ValueError):
                continue
            try:
                grant = self._decoder.decode(plain)
            except (msgspec.DecodeError, msgspec.ValidationError):
                break
            if grant.expires < self.clock():
                raise TicketError("ticket_expired", "this file link has expired; ask again")
            return grant
        raise TicketError("ticket_invalid", "this file link is not valid")
