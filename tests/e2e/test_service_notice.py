"""Freezing a tenant tells every live customer and agent socket (``service`` frame), on
the in-process bus and across two nodes sharing Redis; unfreezing says ``live``."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import Service
from gateway.sdk.client import AgentClient, CustomerClient, ServerError
from tests.gateway.helpers import bearer, login, make_agent, start_gateway


async def _freeze(http: aiohttp.ClientSession, base: str, token: str, frozen: bool) -> None:
    async with http.post(
        base + "/api/emergency/freeze", json={"frozen": frozen}, headers=bearer(token)
    ) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("bus", ["memory", "redis"])
async def test_freeze_and_unfreeze_reach_live_sockets(
    tmp_path: Path, bus: str, redis_url: str, redis_prefix: str
):
    # Two nodes share the Redis bus and one SQLite data directory (store, master key).
    extra = {} if bus == "memory" else {"bus": {"url": f"{redis_url}?prefix={redis_prefix}bus:"}}
    runner_a, base_a, svc_a = await start_gateway(tmp_path, **extra)
    runner_b, base_b, svc_b = (
        (runner_a, base_a, svc_a) if bus == "memory" else await start_gateway(tmp_path, **extra)
    )
    try:
        _, secret, password = await make_agent(svc_a, "root@example.com", role="admin")
        async with aiohttp.ClientSession() as http:
            token = await login(http, base_a, "root@example.com", password, secret, time.time())
            agent = AgentClient(base_a, token=token, gateway_key=svc_a.identity.verify_key_b64)
            await agent.connect()
            # The customer is on the other node when there are two.
            customer = CustomerClient(
                base_b, "demo", origin=base_b, gateway_key=svc_b.identity.verify_key_b64
            )
            await customer.connect()
            await customer.open(profile={"name": "Ada"})

            await _freeze(http, base_a, token, True)
            assert (await customer.wait_for(Service)).state == "paused"
            assert (await agent.wait_for(Service)).state == "paused"
            with pytest.raises(ServerError) as refused:
                await customer.send_text("hello?")
            assert refused.value.code == "tenant_frozen"
            await customer.ping()  # still connected: the banner, not a dead socket

            await _freeze(http, base_a, token, False)
            assert (
                await customer.wait_for(lambda f: isinstance(f, Service) and f.state == "live")
            ).state == "live"
            ack = await customer.send_text("hello again")
            assert ack.seq >= 1
            await agent.aclose()
            await customer.aclose()
    finally:
        await runner_a.cleanup()
        if runner_b is not runner_a:
            await runner_b.cleanup()
