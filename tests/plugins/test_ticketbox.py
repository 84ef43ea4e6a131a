"""The example third-party package, installed with pip, found by entry point and driven
through the same dispatcher as the built-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from plugins.api import ChatClosed, CustomerIdentity
from plugins.outbox import Dispatcher
from plugins.registry import default_registry
from tests.plugins.fakes import FakeServer, decode, outbox_event


@dataclass
class TicketboxServer(FakeServer):
    token: str = "tb-token"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/tickets", self.create)

    async def create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"id": "TB-1"}, status=201)


@pytest.fixture
async def ticketbox() -> AsyncIterator[TicketboxServer]:
    server = await TicketboxServer().start()
    yield server
    await server.close()


async def test_example_plugin_end_to_end(ticketbox, http, store, clock):
    reg = default_registry()
    assert "ticketbox" in reg.names(), "pip install -e plugins/examples/ticketbox"
    config, secrets = reg.validate(
        "ticketbox", {"url": ticketbox.url, "token": ticketbox.token}, allow_private=True
    )
    assert secrets == {"token": ticketbox.token} and config["queue"] == "support"
    plugin = reg.create("ticketbox", config, secrets, http)

    async def plugin_for(tenant_id, name):
        return plugin if name == "ticketbox" else None

    event = ChatClosed(
        tenant_id="acme",
        chat_id="c1",
        occurred_at=1.0,
        event_id="e1",
        transcript=((1, "customer", 1.0, "hi [email]"),),
        csat=3,
        customer=CustomerIdentity(email="ann@example.com"),
    )
    await store.enqueue_events([outbox_event("ticketbox", event)])
    ticketbox.fail = [(503, {})]
    d = Dispatcher(store, decode, plugin_for, clock=clock, rng=lambda: 0.0)
    assert [r.outcome for r in await d.run_once()] == ["retry"]
    assert [r.outcome for r in await d.run_once()] == ["delivered"]
    first, second = ticketbox.requests
    assert second.path == "/v1/tickets" and second.method == "POST"
    assert second.headers["Authorization"] == "Bearer tb-token"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "ticketbox:e1"
    assert second.json == {
        "external_id": "c1",
        "queue": "support",
        "csat": 3,
        "messages": [{"seq": 1, "from": "customer", "at": 1.0, "text": "hi [email]"}],
    }
    assert "ann@example.com" not in second.body.decode()  # no identity scope: stripped
