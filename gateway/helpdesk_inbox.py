"""What the tenant's helpdesk leaves for the chat's agents: internal notes and the
"handled" mark (inbound plugin API, issue 17).

Why not messages: a chat's messages form one gap-free sequence that the customer's widget
replays and gap-fills from the store (gateway/ws/feed.py). A note in that sequence would
either reach the customer or leave a hole the customer's feed could never fill. Notes
therefore live *beside* the chat — in the gateway's key-value table under a namespace no
plugin can be called (``_inbound``; plugin names start with a letter or digit) — and are
only ever read by agent-side code (the console's ``history``/``watch``). Nothing on the
customer's path knows this module.

Each note is sealed with the chat's data key (AAD ``note:<n>``), so erasing or expiring
the chat (crypto-shredding its key) makes its notes unreadable with the rest of it.
Slots ``note:<chat>:<n>`` are claimed with insert-if-absent, so two gateway nodes adding
notes at once never overwrite each other; a vendor retrying the same note id is
recognised by ``noteid:<chat>:<hash>`` (a near-simultaneous retry may, rarely, store the
note twice — it is never lost). At most :data:`MAX_NOTES` notes per chat.

"Handled" is one record per chat (``handled:<chat>``: plugin, ticket status, time), read
by the queue snapshot; it expires after :data:`HANDLED_TTL`, long after any live chat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway.protocol import HelpdeskNote
from gateway.store.base import Chat, Store
from gateway.transcripts import ChatKeys, open_json, seal_json

NAMESPACE = "_inbound"
MAX_NOTES = 200
NOTE_TTL = 400 * 86_400.0  # sealed with the chat key anyway: shredded with the chat
HANDLED_TTL = 30 * 86_400.0


class InboxFull(Exception):
    """The chat already holds :data:`MAX_NOTES` notes."""


@dataclass(frozen=True, slots=True)
class HandledMark:
    """Who marked a chat handled and why (the ticket status as the vendor named it)."""

    plugin: str
    status: str
    at: float


def _id_key(chat_id: str, plugin: str, note_id: str) -> str:
    digest = hashlib.sha256(f"{plugin}|{note_id}".encode()).hexdigest()[:32]
    return f"noteid:{chat_id}:{digest}"


class HelpdeskInbox:
    """Notes and handled marks of chats; see the module docstring."""

    def __init__(self, store: Store, keys: ChatKeys, clock: Callable[[], float]) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock

    async def add_note(
        self, chat: Chat, note_id: str, text: str, *, name: str, plugin: str
    ) -> HelpdeskNote | None:
        """Store a (policy-screened) note; None when this plugin's ``note_id`` is already
        stored for the chat. Raises :class:`InboxFull` past :data:`MAX_NOTES`, ``KeyError``
        when the chat has no key (erased)."""
        key = await self._keys.get(chat.id)
        if key is None:
            raise KeyError(chat.id)
        now = self._clock()
        id_key = _id_key(chat.id, plugin, note_id)
        if await self._store.kv_get(chat.tenant_id, NAMESPACE, id_key, now) is not None:
            return None
        note = HelpdeskNote(chat=chat.id, id=note_id, text=text, ts=now, agent=name, plugin=plugin)
        record = {"id": note_id, "text": text, "ts": now, "agent": name, "plugin": plugin}
        for slot in range(1, MAX_NOTES + 1):
            sealed = seal_json(key, chat.id, f"note:{slot}", record)
            if await self._store.kv_put(
                chat.tenant_id,
                NAMESPACE,
                f"note:{chat.id}:{slot}",
                sealed,
                now=now,
                expires_at=now + NOTE_TTL,
                only_if_absent=True,
            ):
                await self._store.kv_put(
                    chat.tenant_id,
                    NAMESPACE,
                    id_key,
                    str(slot).encode(),
                    now=now,
                    expires_at=now + NOTE_TTL,
                )
                return note
        raise InboxFull(chat.id)

    async def notes(self, chat: Chat) -> list[HelpdeskNote]:
        """The chat's notes in the order they were stored (agents only: callers check)."""
        key = await self._keys.get(chat.id)
        if key is None:
            return []
        now = self._clock()
        out: list[HelpdeskNote] = []
        for slot in range(1, MAX_NOTES + 1):
            sealed = await self._store.kv_get(
                chat.tenant_id, NAMESPACE, f"note:{chat.id}:{slot}", now
            )
            if sealed is None:
                break
            record = open_json(key, chat.id, f"note:{slot}", sealed)
            out.append(
                HelpdeskNote(
                    chat=chat.id,
                    id=str(record["id"]),
                    text=str(record["text"]),
                    ts=float(record["ts"]),
                    agent=str(record["agent"]),
                    plugin=str(record["plugin"]),
                )
            )
        return out

    async def mark_handled(self, chat: Chat, *, plugin: str, status: str) -> HandledMark:
        """Record the mark (a repeat overwrites it: the newest status wins)."""
        now = self._clock()
        mark = HandledMark(plugin=plugin, status=status, at=now)
        value = json.dumps({"plugin": plugin, "status": status, "at": now}).encode()
        await self._store.kv_put(
            chat.tenant_id,
            NAMESPACE,
            f"handled:{chat.id}",
            value,
            now=now,
            expires_at=now + HANDLED_TTL,
        )
        return mark

    async def handled(self, tenant_id: str, chat_ids: Iterable[str]) -> set[str]:
        """Which of ``chat_ids`` (one tenant's) carry a handled mark."""
        keys = [f"handled:{chat_id}" for chat_id in chat_ids]
        live = await self._store.kv_live_keys(tenant_id, NAMESPACE, keys, self._clock())
        return {key.removeprefix("handled:") for key in live}
