"""Crashes the fuzzers found, each pinned by a direct test (the inputs also live in
``tests/fuzz/corpus`` and are replayed by ``test_fuzz_smoke.py``)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError as GatewayConfigError
from gateway.config import parse_config
from plugins.api import ConfigError, ConfigField, PluginInfo
from plugins.registry import validate_config

INFO = PluginInfo(
    name="probe",
    version="1",
    config_schema=(
        ConfigField(name="url", type="url"),
        ConfigField(name="count", type="int"),
        ConfigField(name="ratio", type="float"),
    ),
)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"url": "http://[::1"}, "url"),  # urlsplit: ValueError("Invalid IPv6 URL")
        ({"count": float("inf")}, "count"),  # int(inf): OverflowError
        ({"count": float("nan")}, "count"),
        ({"ratio": float("inf")}, "ratio"),  # accepted before: an endless timeout
        ({"ratio": "nan"}, "ratio"),
    ],
)
def test_plugin_config_rejects_with_config_error(values: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(INFO, values)
    assert field in str(err.value)


@pytest.mark.parametrize(
    "doc",
    [
        b"a = " + b"[" * 3000 + b"]" * 3000,  # tomllib: RecursionError
        b"a = " + b"{x=" * 3000 + b"1" + b"}" * 3000,
        b'[server]\ndata_dir = "~nosuchuser/x"\n',  # Path.expanduser: RuntimeError
        b'[server]\ndata_dir = "a\\u0000b"\n',  # Path.resolve: ValueError (NUL)
    ],
)
def test_config_errors_are_config_errors(doc: bytes) -> None:
    with pytest.raises(GatewayConfigError):
        parse_config(doc, environ={})
