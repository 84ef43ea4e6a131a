"""Bounded JSON for everything that arrives from outside (frames, HTTP bodies).

Why: a JSON parser recurses once per nesting level. ``[[[[…]]]]`` a few thousand levels
deep fits easily in a websocket frame or an admin request body and made msgspec (and the
stdlib) raise ``RecursionError`` — a traceback and a 1011/500 from an unauthenticated
client. Every parse of outside input therefore checks an explicit nesting limit *before*
decoding and answers the documented "malformed" error instead. Sizes are bounded where
the bytes are read (aiohttp's ``max_msg_size``, the API's body cap); this module checks
what is left: depth.

Hand-written (about 20 lines) because neither msgspec nor the stdlib exposes a depth
limit; it costs two ``bytes.count`` calls on an ordinary frame (the full scan only runs
when a document has more brackets than the limit).
"""

from __future__ import annotations

import re

#: Websocket frames: the protocol itself nests at most 2 levels (``key.resume``,
#: ``open.profile``); 16 leaves room for future optional fields.
MAX_FRAME_DEPTH = 16
#: HTTP request bodies (admin settings such as a policy table nest a few levels).
MAX_BODY_DEPTH = 32

# A complete JSON string literal (escapes included); brackets inside strings don't nest.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed (safe to show a client)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def exceeds_depth(data: bytes | str, max_depth: int) -> bool:
    """True when ``data`` nests arrays/objects deeper than ``max_depth`` (brackets inside
    strings ignored).

    Strings are cut out, every other byte but brackets dropped, then innermost ``[]``
    pairs are removed level by level with ``bytes.replace`` (C speed: a 64 KiB document
    of brackets costs well under a millisecond per level), at most ``max_depth + 1``
    times. Malformed documents count their unclosed brackets as levels (the parser
    descends into them before it notices the missing end).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    brackets = _STRING.sub(b"", raw).translate(_SQUARE, _NOT_BRACKETS)
    levels = 0
    while b"[]" in brackets:
        if b"[" * (max_depth + 1 - levels) in brackets:
            return True  # that many opens in a row nest at least that deep
        levels += 1
        if levels > max_depth:
            return True
        brackets = brackets.replace(b"[]", b"")
    return levels + brackets.count(b"[") > max_depth


def check_depth(data: bytes | str, max_depth: int) -> None:
    """Raise :class:`JsonTooDeep` when ``data`` nests deeper than ``max_depth``."""
    if isinstance(data, str):
        opens = data.count("[") + data.count("{")
    else:
        opens = data.count(b"[") + data.count(b"{")
    if opens > max_depth and exceeds_depth(data, max_depth):
        raise JsonTooDeep(max_depth)
