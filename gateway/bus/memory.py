"""In-process bus: the embedded default for a single gateway node."""

from __future__ import annotations

from collections import defaultdict

import structlog

from gateway.bus.base import BusEvent, Handler

log = structlog.get_logger("cipherdesk.bus")


class _MemorySubscription:
    __slots__ = ("_bus", "_handler", "_topic")

    def __init__(self, bus: MemoryBus, topic: str, handler: Handler) -> None:
        self._bus, self._topic, self._handler = bus, topic, handler

    def cancel(self) -> None:
        self._bus._remove(self._topic, self._handler)


class MemoryBus:
    """Delivers each published event synchronously to this process's subscribers."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    async def subscribe(self, topic: str, handler: Handler) -> _MemorySubscription:
        self._handlers[topic].append(handler)
        return _MemorySubscription(self, topic, handler)

    def _remove(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.get(topic)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[topic]

    def deliver(self, topic: str, event: BusEvent) -> None:
        """Call every local handler of ``topic``; one failing handler never stops the rest."""
        for handler in tuple(self._handlers.get(topic, ())):
            try:
                handler(event)
            except Exception:  # a broken connection must not break fan-out
                log.exception("bus_handler_failed", topic=topic.split(":", 1)[0])

    async def publish(self, topic: str, event: BusEvent) -> None:
        self.deliver(topic, event)

    def topic_count(self) -> int:
        return len(self._handlers)
