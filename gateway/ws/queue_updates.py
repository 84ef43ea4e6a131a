"""What a console is told when the queue changes: the rows that changed, not the queue.

Why: a queue change (a chat opened, accepted, transferred, closed) used to send every
console of the tenant its whole queue. With 1,000 waiting chats and 50 consoles, a
burst of accepts made the node build, seal and send each console a list of up to 1,000
entries every 50 ms (and every console parse it) to tell it about a few rows: p99
148–277 ms in bench/latency.py when started during the burst, 26–36 ms without it.
``QueueView`` remembers what one console was last shown and turns the next snapshot into
a ``queue_update`` holding only the difference, or nothing when the console's view did
not change (a chat of a queue the agent does not serve, an active chat a non-supervisor
never lists).
"""

from __future__ import annotations

from gateway.protocol import QueueEntry, QueueSnapshot, QueueUpdate

__all__ = ["QueueView"]


class QueueView:
    """The queue one console has been shown; one per agent socket, no I/O.

    ``shown`` and ``changes`` must be called in the order their frames are sent (no await
    between the call and the send), so what is remembered is what the console has."""

    def __init__(self) -> None:
        # chat id -> (listed in ``mine``, the entry as last sent)
        self._shown: dict[str, tuple[bool, QueueEntry]] = {}
        self._unlisted = 0

    def shown(self, snapshot: QueueSnapshot) -> QueueSnapshot:
        """``snapshot`` is about to be sent whole: it replaces what the console has."""
        self._shown = self._index(snapshot)
        self._unlisted = snapshot.waiting_unlisted
        return snapshot

    def changes(self, snapshot: QueueSnapshot) -> QueueUpdate | None:
        """The ``queue_update`` that takes the console from what it was shown to
        ``snapshot`` (remembered as shown), or ``None`` when nothing it lists changed."""
        now = self._index(snapshot)
        before = self._shown
        chats: list[QueueEntry] = []
        mine: list[QueueEntry] = []
        for chat_id, placed in now.items():
            if before.get(chat_id) != placed:
                (mine if placed[0] else chats).append(placed[1])
        gone = [chat_id for chat_id in before if chat_id not in now]
        unlisted_before, self._unlisted = self._unlisted, snapshot.waiting_unlisted
        self._shown = now
        if not chats and not mine and not gone and unlisted_before == self._unlisted:
            return None
        return QueueUpdate(
            chats=chats, mine=mine, gone=gone, waiting_unlisted=snapshot.waiting_unlisted
        )

    @staticmethod
    def _index(snapshot: QueueSnapshot) -> dict[str, tuple[bool, QueueEntry]]:
        shown = {entry.chat: (False, entry) for entry in snapshot.chats}
        shown.update((entry.chat, (True, entry)) for entry in snapshot.mine)
        return shown
