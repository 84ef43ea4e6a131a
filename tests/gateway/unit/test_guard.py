"""Guard: where the gateway asks the limiter and what a refused client sees, with the
budgets on the test clock (no sockets)."""

from __future__ import annotations

import pytest

from gateway.protocol import CloseCode
from gateway.ratelimit.guard import SLOW_DOWN
from gateway.ratelimit.limits import Limits, Rate
from gateway.store import Store
from gateway.store.base import Tenant
from gateway.tenants import TenantDirectory
from gateway.ws.connection import ProtocolViolation
from tests.gateway.helpers import FakeClock
from tests.gateway.unit.conftest import TENANT, FakeConnection, GuardFactory


async def test_connects_per_address_are_budgeted_and_refill_with_the_clock(
    make_guard: GuardFactory, clock: FakeClock
) -> None:
    guard = make_guard(ws_connect_per_ip="2/60s")
    assert await guard.admit_connection("customer", "203.0.113.7") is None
    assert await guard.admit_connection("customer", "203.0.113.7") is None
    refused = await guard.admit_connection("customer", "203.0.113.7")
    assert refused is not None
    code, reason = refused
    assert code == CloseCode.RATE_LIMITED
    assert reason == "rate limited; retry-after=30"
    assert guard.metrics.value("cipherdesk_rate_limited_total", {"scope": "ws_connect"}) == 1
    # Another address has its own budget.
    assert await guard.admit_connection("customer", "198.51.100.1") is None
    clock.advance(30)
    assert await guard.admit_connection("customer", "203.0.113.7") is None


async def test_concurrent_sockets_per_address_are_capped_until_released(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(concurrent_per_ip=1)
    assert await guard.admit_connection("agent", "203.0.113.7") is None
    release = guard.connection_opened("agent", "203.0.113.7")
    assert await guard.admit_connection("agent", "203.0.113.7") == (
        CloseCode.RATE_LIMITED,
        "too many connections from your address; retry-after=30",
    )
    release()
    assert await guard.admit_connection("agent", "203.0.113.7") is None


async def test_node_at_its_global_cap_refuses_with_try_again_later(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(global_connections=1)
    assert await guard.admit_connection("customer", "203.0.113.7") is None
    guard.connection_opened("customer", "203.0.113.7")
    refused = await guard.admit_connection("customer", "198.51.100.1")
    assert refused == (CloseCode.TRY_AGAIN_LATER, "server at capacity; retry-after=5")


async def test_tenant_slots_use_the_tenants_override_and_release_once(
    make_guard: GuardFactory, store: Store, tenant: Tenant, tenants: TenantDirectory
) -> None:
    tenant.settings = {"limits": {"concurrent_per_tenant": 1}}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    guard = make_guard(concurrent_per_tenant=5)
    first = await guard.tenant_slot(TENANT)
    assert first is not None
    assert await guard.tenant_slot(TENANT) is None  # the override (1), not the default (5)
    first()
    first()  # a double release must not free a second slot
    second = await guard.tenant_slot(TENANT)
    assert second is not None
    assert await guard.tenant_slot(TENANT) is None
    refused = {"reason": "tenant_capacity"}
    assert guard.metrics.value("cipherdesk_connections_refused_total", refused) == 2


async def test_a_bad_tenant_override_keeps_the_installation_limits(
    make_guard: GuardFactory, store: Store, tenant: Tenant, tenants: TenantDirectory
) -> None:
    tenant.settings = {"limits": {"concurrent_per_tenant": "lots"}}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    guard = make_guard(concurrent_per_tenant=2)
    assert await guard.tenant_slot(TENANT) is not None
    assert await guard.tenant_slot(TENANT) is not None
    assert await guard.tenant_slot(TENANT) is None


async def test_a_tenants_limits_are_read_once_per_record_and_follow_a_change(
    make_guard: GuardFactory,
    store: Store,
    tenant: Tenant,
    tenants: TenantDirectory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages do not pay for the tenant's overrides: they are applied once per tenant
    record the directory hands out; a changed override applies with the next record, and
    a new record with the same overrides keeps the limits already made."""
    computed: list[object] = []
    real = Limits.for_tenant

    def for_tenant(self: Limits, overrides: object) -> Limits:
        computed.append(overrides)
        return real(self, overrides)  # type: ignore[arg-type]

    monkeypatch.setattr(Limits, "for_tenant", for_tenant)
    tenant.settings = {"limits": {"messages_per_chat": "3/10s"}}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    guard = make_guard()
    first = await guard._limits_for(TENANT)
    assert first.messages_per_chat == Rate(3, 10.0)
    for _ in range(5):
        assert await guard._limits_for(TENANT) is first
    assert len(computed) == 1
    tenants.invalidate(TENANT)  # a new record, the same overrides
    assert await guard._limits_for(TENANT) is first
    assert len(computed) == 1
    tenant.settings = {"limits": {"messages_per_chat": "5/10s"}}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    assert (await guard._limits_for(TENANT)).messages_per_chat == Rate(5, 10.0)
    tenant.settings = {}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    assert await guard._limits_for(TENANT) is guard.limits
    assert len(computed) == 2


async def test_fast_customer_gets_a_limited_notice_then_strikes_close_the_socket(
    make_guard: GuardFactory, tenant: Tenant
) -> None:
    guard = make_guard(messages_per_chat="2/10s", strike_threshold=2)
    conn = FakeConnection()
    args = (TENANT, "chat-1", "203.0.113.7")
    assert await guard.customer_message(conn, *args, "m1")  # type: ignore[arg-type]
    assert await guard.customer_message(conn, *args, "m2")  # type: ignore[arg-type]
    assert not await guard.customer_message(conn, *args, "m3")  # type: ignore[arg-type]
    [notice] = conn.sent
    assert (notice.id, notice.action, notice.chat, notice.message) == (
        "m3",
        "limited",
        "chat-1",
        SLOW_DOWN,
    )
    assert notice.retry_after == pytest.approx(5.0)
    with pytest.raises(ProtocolViolation) as raised:
        await guard.customer_message(conn, *args, "m4")  # type: ignore[arg-type]
    assert raised.value.code == CloseCode.RATE_LIMITED
    assert len(conn.sent) == 1  # the closing strike sends no notice


async def test_customer_budget_spans_chats_and_forget_clears_strikes(
    make_guard: GuardFactory, tenant: Tenant, clock: FakeClock
) -> None:
    guard = make_guard(messages_per_customer="1/60s", strike_threshold=2)
    conn = FakeConnection()
    assert await guard.customer_message(conn, TENANT, "c1", "203.0.113.7", "m1")  # type: ignore[arg-type]
    assert not await guard.customer_message(conn, TENANT, "c2", "203.0.113.7", "m2")  # type: ignore[arg-type]
    guard.forget(conn)  # type: ignore[arg-type]
    # Forgotten: the next refusal is a first strike again (a notice, not a close).
    assert not await guard.customer_message(conn, TENANT, "c3", "203.0.113.7", "m3")  # type: ignore[arg-type]
    assert [n.id for n in conn.sent] == ["m2", "m3"]
    clock.advance(60)
    assert await guard.customer_message(conn, TENANT, "c3", "203.0.113.7", "m4")  # type: ignore[arg-type]


async def test_agent_messages_have_a_budget_per_agent(make_guard: GuardFactory) -> None:
    guard = make_guard(messages_per_agent="1/60s")
    conn = FakeConnection()
    assert await guard.agent_message(conn, "agt_a", "m1", "chat-1")  # type: ignore[arg-type]
    assert await guard.agent_message(conn, "agt_b", "m2", "chat-1")  # type: ignore[arg-type]
    assert not await guard.agent_message(conn, "agt_a", "m3", "chat-1")  # type: ignore[arg-type]
    assert [(n.id, n.action) for n in conn.sent] == [("m3", "limited")]


async def test_inbound_bytes_over_the_burst_close_the_connection(
    make_guard: GuardFactory, clock: FakeClock
) -> None:
    guard = make_guard(bytes_per_connection={"limit": 2048, "period": 1.0, "burst": 4096})
    conn = FakeConnection()
    await guard.inbound_bytes(conn, 4096)  # type: ignore[arg-type]
    with pytest.raises(ProtocolViolation) as raised:
        await guard.inbound_bytes(conn, 1024)  # type: ignore[arg-type]
    assert raised.value.code == CloseCode.RATE_LIMITED
    assert raised.value.reason.startswith("rate limited; retry-after=")
    clock.advance(1.0)
    await guard.inbound_bytes(conn, 1024)  # type: ignore[arg-type]
    # Another connection is not affected by this one's flood.
    await guard.inbound_bytes(FakeConnection("conn-2"), 4096)  # type: ignore[arg-type]


def test_advertised_limits_are_what_the_guard_enforces(make_guard: GuardFactory) -> None:
    guard = make_guard(messages_per_chat="7/10s")
    advertised = guard.advertised_limits()
    assert advertised["messages_per_chat"] == str(guard.limits.messages_per_chat)
    assert "7" in advertised["messages_per_chat"]
    assert advertised["max_frame_bytes"] == guard.ws.max_frame_bytes
