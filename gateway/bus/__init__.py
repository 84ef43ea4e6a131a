"""Message bus: in-process (default) or Redis (several nodes)."""

from __future__ import annotations

from crypto.envelope import Keyring
from gateway.bus.base import Bus, BusEvent, agent_topic, chat_topic, tenant_topic
from gateway.bus.memory import MemoryBus


def open_bus(url: str, keyring: Keyring | None = None) -> Bus:
    """Build the bus named by ``url``: ``memory://`` or ``redis://host:port/db``."""
    if url in ("", "memory://", "memory"):
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from gateway.bus.redis import RedisBus

        return RedisBus(url, keyring=keyring)
    raise ValueError(f"unknown bus url {url!r}: use memory:// or redis://host:port/db")


__all__ = ["Bus", "BusEvent", "MemoryBus", "agent_topic", "chat_topic", "open_bus", "tenant_topic"]
