"""The event loop a serving process runs on (``server.event_loop``).

Why a choice: uvloop (libuv, maintained by the asyncio core developers' circle and used by
uvicorn) runs the same aiohttp application with less CPU per relayed message; the standard
loop stays available for platforms without uvloop wheels and for telling a loop bug from
ours. Only ``cipherdesk serve`` and its workers use this; tests and tools that call
``asyncio.run`` keep the standard loop.
"""

from __future__ import annotations

import asyncio

from gateway.config import ConfigError

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
"""The values ``server.event_loop`` accepts."""


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new loop of the kind ``name`` names (``auto``: uvloop if installed, else asyncio).

    :raises ConfigError: an unknown name, or uvloop asked for by name where it is not
        installed (the message says how to go on: install it or choose ``asyncio``).
    """
    if name == "asyncio":
        return asyncio.new_event_loop()
    if name not in EVENT_LOOPS:
        raise ConfigError(f"server.event_loop must be one of {', '.join(EVENT_LOOPS)}")
    try:
        import uvloop
    except ImportError:
        if name == "auto":  # uvloop has no wheels here (Windows): the standard loop
            return asyncio.new_event_loop()
        raise ConfigError(
            'server.event_loop = "uvloop" but uvloop is not installed here '
            '(pip install uvloop, or set server.event_loop = "asyncio")'
        ) from None
    return uvloop.new_event_loop()
