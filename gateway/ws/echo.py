"""The echo a client does not need: its own message, sent back unchanged.

A client that shows its own messages as it sends them (the widget, the console) says
``key.echo: false``. The echo of such a message is then one seal and one frame per
message for nothing -- the client has the text already and the ``ack`` carries seq and
time (issue 18). Both ends of the protocol use the same rule, so it lives here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Literal

from gateway.protocol import Msg

__all__ = ["MAX_AWAITED_ECHOES", "EchoFilter"]

MAX_AWAITED_ECHOES = 32
"""Messages a connection without echoes may have in flight; older ones age out (their echo
is then sent: one frame the client did not need, nothing lost)."""


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EchoFilter:
    """For a connection that said ``key.echo: false``: the messages it wrote whose echo is
    still due, with a digest of the text it wrote. An echo is swallowed only when it carries
    exactly the text written (nothing masked), so the client still learns what was delivered
    when the policy changed it; files, e2e messages, other senders' messages and every
    message on other connections pass. An echo that never comes (blocked, limited, or a
    duplicate the feed had passed) ages out. Kept as 16-byte digests keyed by chat and
    message id (an agent writes in several chats), so a connection holds at most ``limit``
    of them however long its messages were."""

    def __init__(
        self, sender: Literal["customer", "agent"], limit: int = MAX_AWAITED_ECHOES
    ) -> None:
        self._sender = sender
        self._limit = limit
        self._digests: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def expect(self, chat: str, msg_id: str, text: str) -> None:
        """``msg_id`` is about to be posted to ``chat`` with ``text``."""
        key = (chat, msg_id)
        self._digests[key] = _digest(text)
        self._digests.move_to_end(key)
        if len(self._digests) > self._limit:
            self._digests.popitem(last=False)

    def swallows(self, msg: Msg) -> bool:
        """True when ``msg`` is the unchanged echo of an expected message (forgotten then)."""
        if msg.sender != self._sender or msg.id is None or msg.chat is None:
            return False
        if msg.file is not None or msg.c:
            return False
        digest = self._digests.pop((msg.chat, msg.id), None)
        return digest is not None and digest == _digest(msg.text)
