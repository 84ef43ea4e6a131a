"""Fuzz target: plugin configuration validation (``plugins/registry.py``).

The first byte picks a built-in plugin (webhook, Zendesk, Freshdesk). The rest is either
JSON (what the admin API hands over) or — to get past the JSON syntax quickly — decoded
field by field into values of every JSON type for the plugin's own schema names plus
stray keys. It goes through :func:`plugins.registry.validate_config` and, when valid,
the plugin's ``create`` (which checks what spans fields). Contract: a plugin or
:class:`plugins.api.ConfigError` naming a field — never another exception.
"""

from __future__ import annotations

import json
from typing import Any

from plugins.api import ConfigError
from plugins.registry import builtin_factories, validate_config

_FACTORIES = builtin_factories()
_SPECIAL = (
    float("inf"),
    float("nan"),
    -0.0,
    10**30,
    -1,
    0,
    True,
    None,
    "",
    " ",
    "http://[::1",
    "https://hooks.example.com/x",
    "a@b.co",
    "chat.opened,chat.closed",
)


class _Bytes:
    """Deterministic consumption of the fuzzer's bytes (no atheris needed to replay)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def text(self) -> str:
        n = self.byte() % 64
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk.decode("utf-8", "replace")

    def value(self, depth: int = 0) -> Any:
        kind = self.byte() % 8
        if kind == 0:
            return self.text()
        if kind == 1:
            return int.from_bytes(bytes(self.byte() for _ in range(4)), "big", signed=True)
        if kind == 2:
            return _SPECIAL[self.byte() % len(_SPECIAL)]
        if kind == 3:
            return bool(self.byte() & 1)
        if kind == 4 and depth < 3:
            return [self.value(depth + 1) for _ in range(self.byte() % 4)]
        if kind == 5 and depth < 3:
            return {self.text(): self.value(depth + 1) for _ in range(self.byte() % 3)}
        if kind == 6:
            return float(self.byte()) / 7
        return None


def _values(factory: Any, rest: bytes) -> dict[str, Any] | None:
    if rest[:1] == b"{":
        try:
            values = json.loads(rest)
        except (ValueError, RecursionError):
            return None
        return values if isinstance(values, dict) else None
    src = _Bytes(rest)
    values: dict[str, Any] = {}
    for f in factory.info.config_schema:
        if src.byte() % 4:
            values[f.name] = src.value()
    if src.byte() % 8 == 0:
        values[src.text()] = src.value()
    return values


def test_one_input(data: bytes) -> None:
    if not data:
        return
    factory = _FACTORIES[data[0] % len(_FACTORIES)]
    values = _values(factory, data[1:])
    if values is None:
        return
    try:
        config, secrets = validate_config(factory.info, values)
        factory.create(config, secrets, None)  # cross-field checks live in create()
    except ConfigError as exc:
        assert exc.args
        return
