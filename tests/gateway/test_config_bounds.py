"""Operator settings that bound what one tenant's traffic costs: validated at load, and
what the gateway runs with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from tests.gateway.helpers import start_gateway


@pytest.mark.parametrize(
    ("section", "key", "bad"),
    [
        ("plugins", "deliveries_per_plugin", 0),
        ("plugins", "deliveries_per_plugin", 65),
        ("websocket", "queue_listed", 0),
        ("websocket", "queue_listed", 5001),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(section: str, key: str, bad: int) -> None:
    with pytest.raises(ConfigError, match=f"{section}.{key} must be 1-"):
        load_config(environ={}, overrides={section: {key: bad}})


async def test_the_gateway_runs_with_the_configured_bounds(tmp_path: Path) -> None:
    runner, _, svc = await start_gateway(
        tmp_path, plugins={"deliveries_per_plugin": 9}, websocket={"queue_listed": 7}
    )
    try:
        assert svc.dispatcher.concurrency == 9
        assert svc.chats.queue_listed == 7
    finally:
        await runner.cleanup()
    defaults = load_config(environ={})
    assert (defaults.plugins.deliveries_per_plugin, defaults.websocket.queue_listed) == (4, 500)
