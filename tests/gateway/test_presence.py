"""Agent presence across nodes on a real Redis, with an injectable clock."""

from __future__ import annotations

from gateway.presence import UNKNOWN, MemoryPresence, RedisPresence


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_presence_counts_connections_per_tenant() -> None:
    presence = MemoryPresence()
    await presence.connected("a", "c1")
    await presence.connected("a", "c2")
    await presence.connected("b", "c3")
    await presence.disconnected("a", "c1")
    assert (await presence.online("a"), await presence.online("b")) == (1, 1)
    assert await presence.online("nobody") == 0


async def test_redis_presence_is_shared_and_dead_nodes_age_out(
    redis_url: str, redis_prefix: str
) -> None:
    clock = Clock()
    node_a = RedisPresence(redis_url, prefix=redis_prefix, ttl=30, clock=clock)
    node_b = RedisPresence(redis_url, prefix=redis_prefix, ttl=30, clock=clock)
    try:
        await node_a.connected("demo", "agent-1")
        await node_b.connected("demo", "agent-2")
        assert await node_b.online("demo") == 2 and await node_a.online("demo") == 2
        await node_b.disconnected("demo", "agent-2")
        assert await node_a.online("demo") == 1
        # node A dies (no heartbeat, no cleanup): its entry expires after the ttl
        clock.now += 31
        assert await node_b.online("demo") == 0
        assert await node_b.online("other") == 0
    finally:
        await node_b.close()
        await node_a._redis.aclose()


async def test_unreachable_redis_reports_unknown_not_an_error() -> None:
    presence = RedisPresence("redis://127.0.0.1:1/0")
    try:
        await presence.connected("demo", "agent-1")  # swallowed, logged
        assert await presence.online("demo") == UNKNOWN
    finally:
        await presence.close()


async def test_memory_presence_names_online_agents() -> None:
    presence = MemoryPresence()
    await presence.connected("a", "c1", agent_id="agt_1")
    await presence.connected("a", "c2", agent_id="agt_1")  # second console tab
    await presence.connected("a", "c3", agent_id="agt_2")
    await presence.connected("b", "c4", agent_id="agt_9")
    assert await presence.agents("a") == {"agt_1": 2, "agt_2": 1}
    await presence.disconnected("a", "c1")
    await presence.disconnected("a", "c3")
    assert await presence.agents("a") == {"agt_1": 1}
    assert await presence.agents("nobody") == {}


async def test_redis_presence_names_online_agents_across_nodes(
    redis_url: str, redis_prefix: str
) -> None:
    clock = Clock()
    node_a = RedisPresence(redis_url, prefix=redis_prefix, ttl=30, clock=clock)
    node_b = RedisPresence(redis_url, prefix=redis_prefix, ttl=30, clock=clock)
    try:
        await node_a.connected("demo", "c1", agent_id="agt_1")
        await node_b.connected("demo", "c2", agent_id="agt_2")
        await node_b.connected("demo", "c3")  # a connection that named no agent
        assert await node_a.agents("demo") == {"agt_1": 1, "agt_2": 1}
        assert await node_a.online("demo") == 3
        await node_b.disconnected("demo", "c2")
        assert await node_a.agents("demo") == {"agt_1": 1}
        clock.now += 31  # node A stopped heart-beating: its agent ages out
        assert await node_b.agents("demo") == {}
    finally:
        await node_b.close()
        await node_a._redis.aclose()


async def test_unreachable_redis_cannot_name_agents() -> None:
    presence = RedisPresence("redis://127.0.0.1:1/0")
    try:
        assert await presence.agents("demo") is None
    finally:
        await presence.close()
