"""An in-memory :class:`plugins.api.KeyValueStore`: what a plugin gets when it runs
outside the gateway (its own tests, ``plugins.testing``), with the same limits and TTL
rules as the gateway's store-backed one (:class:`gateway.plugin_host.StoreKV`)."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_KEY = 200
MAX_VALUE = 16 * 1024


def check_kv(key: str, value: str | None = None) -> None:
    """Refuse keys/values outside the documented limits (ValueError)."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"key must be 1-{MAX_KEY} characters")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_VALUE):
        raise ValueError(f"value must be text of at most {MAX_VALUE} characters")


class MemoryKV:
    """Values in a dict, expiring by ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._data: dict[str, tuple[str, float | None]] = {}

    async def get(self, key: str) -> str | None:
        check_kv(key)
        hit = self._data.get(key)
        if hit is None or (hit[1] is not None and hit[1] <= self._clock()):
            return None
        return hit[0]

    async def put(
        self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        check_kv(key, value)
        if only_if_absent and await self.get(key) is not None:
            return False
        self._data[key] = (value, None if ttl is None else self._clock() + ttl)
        return True

    async def delete(self, key: str) -> bool:
        check_kv(key)
        return self._data.pop(key, None) is not None
