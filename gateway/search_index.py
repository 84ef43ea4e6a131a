"""Keyed-hash search tokens for chat history (issue 16 item 5).

Why keyed hashes and not a plaintext index: the store must never hold chat text in clear
(DESIGN.md), yet agents need to find a past chat by a word it contained. Each stored
message (inspect mode, the text *after* policy masking, so a masked card number is never
indexed) is split into tokens; the store keeps only ``HMAC(tenant search key, token)`` per
(chat, token). A query is tokenised and hashed the same way and matches chats holding all
of its tokens. Without the master key the rows reveal neither words nor which tenant's
words two rows share. (A customer's previous chats are found through the customer keys of
:mod:`gateway.customers`, the same keyed hashes an erase request uses.)

Tokens: lowercase words of letters/digits (2..64 characters); runs of CJK characters give
overlapping character bigrams (a single CJK character is its own token), since Chinese has
no spaces and jieba is not a dependency. A query's tokens are produced by the same code,
so "退款" finds a chat that said "我要退款".

Limit to know: the per-tenant key is derived from the *current* master key
(:mod:`gateway.derived_keys`), so after a master-key rotation older rows no longer match
new queries until they are re-indexed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crypto.envelope import Keyring
from gateway.derived_keys import PreparedHmacs

SEARCH_LABEL = "cipherdesk/history-search-key/v1"
"""Label of the secret from which each tenant's search-token key is derived."""


MAX_TOKENS_PER_MESSAGE = 256
"""Bound on the rows one message can add (a long message indexes its first distinct tokens)."""

MAX_QUERY_TOKENS = 16
"""Bound on the tokens of one search query (each one is a join condition)."""

_WORD = re.compile(r"[^\W_]{2,64}", re.UNICODE)


_CJK_RUN = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\u3040-\u30ff"  # kana: no spaces either
    "\uac00-\ud7af]+"  # hangul syllables
)
"""Runs of characters written without spaces (indexed as bigrams)."""


def tokenize(text: str, limit: int = MAX_TOKENS_PER_MESSAGE) -> list[str]:
    """Distinct search tokens of ``text`` in first-seen order, at most ``limit``.

    Regular expressions do the character classification in C: this runs for every stored
    message, and a per-character Python loop cost more than sealing the message."""
    seen: dict[str, None] = {}
    lowered = text.casefold()
    # Non-CJK words: split the CJK runs out first so "abc退款" gives "abc" and "退款".
    for word in _WORD.findall(_CJK_RUN.sub(" ", lowered)):
        seen.setdefault(word, None)
    for run in _CJK_RUN.findall(lowered):
        if len(run) == 1:
            seen.setdefault(run, None)
        for i in range(len(run) - 1):
            seen.setdefault(run[i : i + 2], None)
    return list(seen)[:limit]


class KeyedHasher:
    """Keyed hashes of search tokens for one installation.

    The key is ``HMAC(search secret, tenant id)``, from the keyring's current master key
    (:class:`gateway.derived_keys.PreparedHmacs`): two tenants' rows for the same word
    differ."""

    def __init__(self, keyring: Keyring) -> None:
        self._hmacs = PreparedHmacs(keyring, SEARCH_LABEL)

    def tokens(self, tenant_id: str, tokens: Iterable[str]) -> list[str]:
        """The stored form of each token (hex HMAC-SHA256)."""
        tenant_mac = self._hmacs.new(tenant_id)
        hashed = []
        for token in tokens:
            mac = tenant_mac.copy()
            mac.update(token.encode("utf-8", "surrogatepass"))
            hashed.append(mac.hexdigest())
        return hashed

    def query(self, tenant_id: str, query: str) -> list[str]:
        """The stored forms of a search query's tokens (empty when it has none)."""
        return self.tokens(tenant_id, tokenize(query, MAX_QUERY_TOKENS))
