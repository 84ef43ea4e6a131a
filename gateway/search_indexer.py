"""History search is indexed once per chat, after it closes, off the message path.

Why not per message: the index's lookup key is ``(tenant, token hash)``, a random key, so
every new word of every message dirtied its own B-tree page in the relay's transaction.
Measured on SQLite (``synchronous=FULL``, 20 chats writing at once, 13 new words a
message): ~750 µs of CPU per append against ~60 µs without the index — more than the rest
of the relay together, and in the latency of every message. History search only ever
lists *closed* chats (gateway/store/_history.py), so nothing is lost by indexing when the
chat closes: one transaction per chat, each distinct word once.

What is indexed is what was indexed before: the stored text of the customer's and the
agents' messages, i.e. the text *after* policy masking (a masked card number is never
searchable), an attachment's (masked) file name; never an end-to-end message (the gateway
has no text) nor the system's own lines. The words are hashed with the tenant's search
key (gateway/search_index.py).

Every close path (customer, agent, idle timeout, on any node) only has to leave the chat
closed: the indexer finds closed chats not yet indexed (a partial index on ``chats``)
every ``interval`` seconds and as soon as this node closes one (:meth:`kick`). Two nodes
indexing the same chat write the same rows (``ON CONFLICT DO NOTHING``); an erase between
the read and the write writes nothing (the store checks in the write's transaction).
"""

from __future__ import annotations

import structlog

from crypto.envelope import EnvelopeError
from gateway.e2e import is_sealed
from gateway.periodic import Periodic
from gateway.search_index import KeyedHasher, tokenize
from gateway.store.base import Chat, Store
from gateway.transcripts import ChatKeys, open_text

log = structlog.get_logger("cipherdesk.search_indexer")

MAX_TOKENS_PER_CHAT = 50_000
"""Bound on one chat's index rows (one transaction); a longer chat indexes its first words."""

_INDEXED_SENDERS = ("customer", "agent")


class SearchIndexer:
    """Adds closed chats' words to the history search index (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        keys: ChatKeys,
        hasher: KeyedHasher,
        *,
        interval: float = 2.0,
        batch: int = 20,
    ) -> None:
        self._store = store
        self._keys = keys
        self._hasher = hasher
        self._batch = batch
        self._periodic = Periodic(
            "search-indexer", interval, self.run_once, failure_event="search_index_failed"
        )

    def kick(self) -> None:
        """A chat closed on this node: index it now rather than at the next interval."""
        self._periodic.wake()

    async def run_once(self) -> int:
        """Index every chat waiting for it; returns how many were indexed."""
        done = 0
        while True:
            chats = await self._store.chats_to_index(self._batch)
            for chat in chats:
                if await self.index(chat):
                    done += 1
            if len(chats) < self._batch:
                return done

    async def index(self, chat: Chat) -> bool:
        """One closed chat's words into the index; False when it was erased meanwhile."""
        key = await self._keys.get(chat.id)
        words: dict[str, None] = {}
        if key is not None:
            after = 0
            while len(words) < MAX_TOKENS_PER_CHAT:
                batch = await self._store.messages_after(chat.id, after)
                for m in batch:
                    if m.sender in _INDEXED_SENDERS and not is_sealed(m):
                        try:
                            text = open_text(key, chat.id, m.msg_id, m.body_sealed)
                        except EnvelopeError:  # a damaged row must not stall every chat
                            log.warning("search_index_unreadable", chat=chat.id, seq=m.seq)
                            continue
                        words.update(dict.fromkeys(tokenize(text)))
                if len(batch) < 1000:
                    break
                after = batch[-1].seq
        hashes = self._hasher.tokens(chat.tenant_id, list(words)[:MAX_TOKENS_PER_CHAT])
        return await self._store.index_closed_chat(chat.id, hashes)

    # -- background worker ----------------------------------------------------------
    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
