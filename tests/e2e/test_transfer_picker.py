"""Transfer targets over real sockets, and ``GET /api/team`` (the console's picker).

Regression: a mistyped ``to_agent`` (an e-mail address) used to fail frame decoding and
close the agent's socket with 1008; it is now an ``unknown_agent`` error frame and the
socket stays usable.
"""

from __future__ import annotations

import aiohttp
import pytest

from gateway.protocol import ChatEvent
from gateway.sdk.client import AgentClient, ServerError
from gateway.store.base import Tenant
from tests.e2e.conftest import SocketGateway
from tests.gateway.helpers import bearer


async def _active_chat(gw: SocketGateway, agent: AgentClient) -> str:
    _customer, welcome = await gw.accepted_chat(agent, profile={"name": "Ada"})
    return welcome.chat


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ({"to_agent": "bob@example.com"}, "unknown_agent"),  # an e-mail, not an id
        ({"to_agent": "agt_does_not_exist"}, "unknown_agent"),
        ({"to_agent": "x" * 150}, "unknown_agent"),
        ({"to_queue": "billing desk!"}, "unknown_queue"),
    ],
)
async def test_invalid_transfer_target_is_an_error_frame_not_a_close(gw, target, code):
    await gw.login("alice@example.com")
    alice = await gw.connect("alice@example.com")
    chat = await _active_chat(gw, alice)
    with pytest.raises(ServerError) as refused:
        await alice.transfer(chat, **target)
    assert refused.value.code == code
    await alice.ping()  # the socket is still open and serving
    assert alice.close_code is None
    stored = await gw.svc.store.get_chat(chat)
    assert stored is not None and stored.assigned_agent_id == alice.ready.agent


async def test_transfer_to_an_offline_or_foreign_agent_is_refused(gw):
    await gw.login("alice@example.com")
    bob_id = await gw.login("bob@example.com")  # exists, but has no console open
    await gw.svc.store.create_tenant(Tenant(id="other", name="Other", allowed_origins=[]))
    eve_id = await gw.login("eve@example.com", tenant="other")
    eve = await gw.connect("eve@example.com")
    alice = await gw.connect("alice@example.com")
    chat = await _active_chat(gw, alice)
    with pytest.raises(ServerError) as offline:
        await alice.transfer(chat, to_agent=bob_id)
    assert offline.value.code == "agent_offline"
    with pytest.raises(ServerError) as foreign:
        await alice.transfer(chat, to_agent=eve_id)  # online, but another tenant
    assert foreign.value.code == "unknown_agent"
    # Bob opens his console: now the transfer goes through.
    bob = await gw.connect("bob@example.com")
    removed = await alice.transfer(chat, to_agent=bob_id)
    assert removed.event == "removed"
    await bob.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "assigned")
    await eve.aclose()


async def test_team_lists_online_agents_and_queues_with_load(gw):
    alice_id = await gw.login("alice@example.com", name="Alice")
    bob_id = await gw.login("bob@example.com", name="Bob")
    carol_id = await gw.login("carol@example.com", name="Carol")
    await gw.svc.store.create_tenant(Tenant(id="other", name="Other", allowed_origins=[]))
    await gw.login("eve@example.com", tenant="other", name="Eve")
    await gw.connect("eve@example.com")
    bob = await gw.connect("bob@example.com")
    await gw.connect("alice@example.com")
    await _active_chat(gw, bob)
    waiting = gw.customer()
    await waiting.connect()
    await waiting.open(profile={"name": "Bo"})

    async with aiohttp.ClientSession() as http:
        async with http.get(
            gw.base + "/api/team", headers=bearer(gw.tokens["alice@example.com"])
        ) as resp:
            assert resp.status == 200
            team = await resp.json()
        async with http.get(gw.base + "/api/team") as resp:
            assert resp.status == 401
    assert team["presence_known"] is True
    by_id = {a["id"]: a for a in team["agents"]}
    assert alice_id not in by_id  # not yourself
    assert set(by_id) == {bob_id, carol_id}  # not another tenant's agents
    assert by_id[bob_id] == {
        "id": bob_id,
        "name": "Bob",
        "role": "agent",
        "online": True,
        "consoles": 1,
        "active_chats": 1,
    }
    assert by_id[carol_id]["online"] is False and by_id[carol_id]["active_chats"] == 0
    assert [a["id"] for a in team["agents"]] == [bob_id, carol_id]  # online first
    assert "email" not in by_id[bob_id]
    assert team["queues"] == [{"name": "default", "waiting": 1, "active": 1}]
