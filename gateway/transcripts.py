"""Per-chat data keys and the sealing of everything a chat stores.

Why here and not in the store: the store must never see plaintext, and crypto/ must not
know about chats. This module binds the two: each chat gets a random data key, stored
*wrapped* by the master keyring; every sealed value carries associated data naming its
chat and purpose (``msg|<chat>|<msg id>``), so a row copied onto another chat or field
fails to open. Erasing a chat deletes the wrapped key: every sealed value of that chat
becomes noise (crypto-shredding) — including outbox payloads not yet delivered.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from typing import Any

from crypto.detseal import open_deterministic, seal_deterministic
from crypto.envelope import EnvelopeError, Keyring, new_data_key, open_record, seal_record
from gateway.store.base import Store


class ChatKeys:
    """Create, unwrap and cache chat data keys (bounded LRU of unwrapped keys)."""

    def __init__(self, store: Store, keyring: Keyring, max_cached: int = 20_000) -> None:
        self._store = store
        self._keyring = keyring
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._max = max_cached

    def new_key(self) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form (for :meth:`Store.create_chat`)."""
        key = new_data_key()
        return key, self._keyring.wrap(key)

    def remember(self, chat_id: str, key: bytes) -> None:
        self._cache[chat_id] = key
        self._cache.move_to_end(chat_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    async def get(self, chat_id: str) -> bytes | None:
        """The chat's data key, or None once the chat was erased."""
        key = self._cache.get(chat_id)
        if key is not None:
            self._cache.move_to_end(chat_id)
            return key
        wrapped = await self._store.get_chat_key(chat_id)
        if wrapped is None:
            return None
        key = self._keyring.unwrap(wrapped)
        self.remember(chat_id, key)
        return key

    def forget(self, chat_id: str) -> None:
        self._cache.pop(chat_id, None)


def _aad(purpose: str, chat_id: str, ref: str) -> bytes:
    return f"{purpose}|{chat_id}|{ref}".encode()


def seal_text(key: bytes, chat_id: str, msg_id: str, text: str) -> bytes:
    """Seal a message body; ``surrogatepass`` keeps lone surrogates from crashing a chat."""
    return seal_record(key, text.encode("utf-8", "surrogatepass"), _aad("msg", chat_id, msg_id))


def open_text(key: bytes, chat_id: str, msg_id: str, blob: bytes) -> str:
    return open_record(key, blob, _aad("msg", chat_id, msg_id)).decode("utf-8", "surrogatepass")


def seal_json(key: bytes, chat_id: str, purpose: str, value: Any) -> bytes:
    """Seal a JSON-able value (identity, profile, flag original, outbox payload)."""
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return seal_record(key, raw.encode("utf-8", "surrogatepass"), _aad(purpose, chat_id, ""))


def open_json(key: bytes, chat_id: str, purpose: str, blob: bytes) -> Any:
    raw = open_record(key, blob, _aad(purpose, chat_id, ""))
    return json.loads(raw.decode("utf-8", "surrogatepass"))


# -- client-chosen message ids (issue 11, finding 10) ------------------------------------
#
# The id a client gives a message is stored sealed (deterministically: the store's unique
# index still de-duplicates a resend) and given back opened in replays. Rows written
# before this change hold the id in clear; they still open and still de-duplicate.

_SEALED_ID_PREFIX = "s1:"


def seal_msg_id(key: bytes, chat_id: str, msg_id: str) -> str:
    """The stored form of a client's message id: ``s1:`` + base64url(deterministic seal)."""
    blob = seal_deterministic(
        key, msg_id.encode("utf-8", "surrogatepass"), _aad("msgid", chat_id, "")
    )
    return _SEALED_ID_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def open_msg_id(key: bytes, chat_id: str, stored: str) -> str:
    """The client's id from its stored form (a legacy clear id is returned as it is)."""
    if not stored.startswith(_SEALED_ID_PREFIX):
        return stored
    body = stored[len(_SEALED_ID_PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return open_deterministic(key, blob, _aad("msgid", chat_id, "")).decode(
            "utf-8", "surrogatepass"
        )
    except (ValueError, EnvelopeError):
        return stored  # a legacy clear id that happens to start with "s1:"


def message_ref(key: bytes, chat_id: str, stored_id: str) -> str:
    """A short keyed hash of a message's stored id: the stable, opaque part of outbox
    idempotency keys (plugins see it as ``event_id``; it names no client input)."""
    return hashlib.blake2b(
        f"{chat_id}|{stored_id}".encode(), key=key, person=b"cd/msgref", digest_size=16
    ).hexdigest()


# -- attachments (issue 16.6) -------------------------------------------------------------


def file_id(key: bytes, chat_id: str, sender: str, stored_id: str) -> str:
    """The id of the file a message carries: a keyed hash of its sender and the message's
    stored id, so a re-sent upload (same message id) lands on the same file, one side
    cannot pass off the other's upload as its own, and the id names nothing typed."""
    digest = hashlib.blake2b(
        f"{chat_id}|{sender}|{stored_id}".encode(), key=key, person=b"cd/fileid", digest_size=15
    )
    return "f" + base64.urlsafe_b64encode(digest.digest()).decode("ascii")


def seal_file(key: bytes, chat_id: str, file: str, data: bytes) -> bytes:
    """A file's bytes sealed at rest under the chat's data key, bound to chat and file."""
    return seal_record(key, data, _aad("file", chat_id, file))


def open_file(key: bytes, chat_id: str, file: str, blob: bytes) -> bytes:
    return open_record(key, blob, _aad("file", chat_id, file))
