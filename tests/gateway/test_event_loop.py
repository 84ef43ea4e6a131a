"""``server.event_loop``: the serving process's loop, and refusals that name the way on."""

from __future__ import annotations

import asyncio
import builtins
import re
from typing import Any

import pytest
import uvloop
from aiohttp import web

from gateway.config import ConfigError, load_config
from gateway.event_loop import new_event_loop


def test_the_default_is_auto_and_asyncio_can_be_chosen() -> None:
    assert load_config(environ={}).server.event_loop == "auto"
    chosen = load_config(environ={}, overrides={"server": {"event_loop": "asyncio"}})
    assert chosen.server.event_loop == "asyncio"


def test_an_unknown_loop_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="event_loop"):
        load_config(environ={}, overrides={"server": {"event_loop": "trio"}})


@pytest.mark.parametrize(
    ("name", "kind"), [("auto", uvloop.Loop), ("uvloop", uvloop.Loop), ("asyncio", None)]
)
def test_each_name_gives_its_loop(name: str, kind: type | None) -> None:
    loop = new_event_loop(name)
    try:
        if kind is None:
            assert type(loop).__module__.startswith("asyncio")
        else:
            assert isinstance(loop, kind)
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()


def test_uvloop_missing_is_a_config_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    loop = new_event_loop("auto")  # without uvloop, auto is the standard loop
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    with pytest.raises(
        ConfigError, match=re.escape('pip install uvloop, or set server.event_loop = "asyncio"')
    ):
        new_event_loop("uvloop")
    with pytest.raises(ConfigError, match="must be one of auto, uvloop, asyncio"):
        new_event_loop("trio")


async def test_serving_freezes_what_start_up_built() -> None:
    """``cipherdesk serve`` moves start-up objects out of the collector's way (gc.freeze),
    so full collections walk only what lives and dies while serving."""
    import gc

    from gateway.cli.main import _freeze_startup_objects

    gc.unfreeze()
    try:
        await _freeze_startup_objects(web.Application())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
