"""The example plugin's own tests, written the way a vendor would: only the shipped test
kit (``plugins.testing``), the plugin itself, and a local fake of the vendor's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cipherdesk_ticketbox import plugin as factory

from plugins.testing import Clock, chat_closed, check_plugin_contract, customer, dispatch


class Ticketbox:
    """A tiny fake of the Ticketbox API: 201 with an id, 401 for a wrong token, and a
    queue of canned failures."""

    def __init__(self) -> None:
        self.token = "tb-token"  # noqa: S105 - a test fixture
        self.requests: list[dict[str, Any]] = []
        self.fail: list[int] = []
        self.url = ""

    async def create(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "json": await request.json()})
        if self.fail:
            return web.json_response({"error": "unavailable"}, status=self.fail.pop(0))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"id": "TB-1"}, status=201)


@pytest.fixture
async def ticketbox() -> AsyncIterator[Ticketbox]:
    fake = Ticketbox()
    app = web.Application()
    app.router.add_post("/v1/tickets", fake.create)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield fake
    await runner.cleanup()


async def test_passes_the_plugin_contract(ticketbox):
    async with aiohttp.ClientSession() as http:
        problems = await check_plugin_contract(
            factory, {"url": ticketbox.url}, {"token": ticketbox.token}, http
        )
    assert problems == []


async def test_retries_then_delivers_with_a_stable_idempotency_key(ticketbox):
    clock = Clock()
    ticketbox.fail = [503]
    event = chat_closed(chat_id="c1", csat=3, customer=customer(email="ann@example.com"))
    async with aiohttp.ClientSession() as http:
        instance = factory.create(
            {"url": ticketbox.url, "queue": "support"}, {"token": ticketbox.token}, http
        )
        store, results = await dispatch(instance, event, clock=clock, rounds=2)
    assert [r.outcome for r in results] == ["retry", "delivered"]
    first, second = ticketbox.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert second["json"]["external_id"] == "c1" and second["json"]["csat"] == 3
    assert [i.state for i in store.by_state("delivered")] == ["delivered"]


async def test_wrong_token_is_a_dead_letter(ticketbox):
    async with aiohttp.ClientSession() as http:
        instance = factory.create(
            {"url": ticketbox.url, "queue": "support"}, {"token": "wrong"}, http
        )
        store, results = await dispatch(instance, chat_closed(), clock=Clock())
    assert [r.outcome for r in results] == ["dead"]
    [dead] = store.by_state("dead")
    assert "401" in (dead.last_error or "")
