"""In-memory rate limiting, config values, concurrency caps, strikes, metrics.

Decisions are exact: every limiter runs on a hand-driven clock (no sleeps).
"""

from __future__ import annotations

import math

import pytest

from gateway.metrics import Metrics
from gateway.ratelimit.limits import (
    ConcurrencyLimiter,
    Decision,
    Limits,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    Strikes,
)


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --------------------------------------------------------------------------- Rate


@pytest.mark.parametrize(
    ("text", "limit", "period", "burst"),
    [
        ("20/10s", 20, 10.0, 20),
        ("5/m", 5, 60.0, 5),
        ("100/h", 100, 3600.0, 100),
        ("3/s", 3, 1.0, 3),
        ("2/d", 2, 86400.0, 2),
        ("5/15min", 5, 900.0, 5),
        (" 7 / 2 minutes ", 7, 120.0, 7),
        ("1/0.5s", 1, 0.5, 1),
        ("16384/s burst=65536", 16384, 1.0, 65536),
        ("10/M burst 30", 10, 60.0, 30),
    ],
)
def test_rate_parse(text: str, limit: int, period: float, burst: int) -> None:
    rate = Rate.parse(text)
    assert (rate.limit, rate.period, rate.burst) == (limit, period, burst)
    assert Rate.parse(str(rate)) == rate  # str() round-trips


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "20",
        "20/",
        "/10s",
        "20/10",
        "20/10x",
        "-1/s",
        "0/s",
        "20/0s",
        "1.5/s",
        "20/10s burst=0",
        "20/10s burst=x",
        "20/10s 30",
        "20 per minute",
    ],
)
def test_rate_parse_rejects_garbage_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_rate_defaults_and_validation() -> None:
    assert Rate(20, 10.0) == Rate(20, 10, 20)
    assert Rate(20, 10.0).burst == 20
    assert str(Rate(20, 10.0)) == "20/10s"
    assert str(Rate(100, 3600.0, 150)) == "100/h burst=150"
    for bad in [(0, 1.0), (1, 0.0), (1, -1.0), (1, math.inf), (1, 1.0, 0), (True, 1.0)]:
        with pytest.raises(ValueError):
            Rate(*bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Rate.parse(20)  # type: ignore[arg-type]
    assert Rate(100_000, 1.0).emission == 1e-5
    with pytest.raises(ValueError, match="coarser unit"):
        Rate.parse("1000000/s")


def test_rate_coerce_tables() -> None:
    assert Rate.coerce({"limit": 20, "period": 10}) == Rate(20, 10.0)
    assert Rate.coerce({"limit": 20, "period": "10s", "burst": 40}) == Rate(20, 10.0, 40)
    assert Rate.coerce("5/m") == Rate(5, 60.0)
    with pytest.raises(ValueError, match="rate table"):
        Rate.coerce({"limit": 20})
    with pytest.raises(ValueError, match="rate table"):
        Rate.coerce({"limit": 20, "period": 1, "brust": 3})
    with pytest.raises(ValueError):
        Rate.coerce(20)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- GCRA


async def test_memory_limiter_is_a_rate_limiter(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    assert isinstance(limiter, RateLimiter)
    assert await limiter.hit("k", Rate(1, 1.0)) == Decision(True, 0.0, 0)


def test_burst_then_limited_then_exact_retry_after(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(20, 10.0)  # one unit every 0.5 s, 20 at once

    for expected_remaining in range(19, -1, -1):
        assert limiter.hit_now("ip", rate) == Decision(True, 0.0, expected_remaining)
    assert limiter.hit_now("ip", rate) == Decision(False, 0.5, 0)

    clock.advance(0.25)  # half an interval: still too early, exactly 0.25 s to go
    assert limiter.hit_now("ip", rate) == Decision(False, 0.25, 0)
    clock.advance(0.25)  # exactly at retry_after: allowed, and the next one waits again
    assert limiter.hit_now("ip", rate) == Decision(True, 0.0, 0)
    assert limiter.hit_now("ip", rate) == Decision(False, 0.5, 0)

    clock.advance(4.5)  # 9 units refilled
    assert limiter.hit_now("ip", rate) == Decision(True, 0.0, 8)

    clock.advance(3600)  # long idle: a full burst again, never more
    assert limiter.hit_now("ip", rate) == Decision(True, 0.0, 19)


def test_refused_hits_do_not_consume(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(2, 2.0)
    assert limiter.hit_now("k", rate).allowed
    assert limiter.hit_now("k", rate).allowed
    for _ in range(100):  # hammering while limited does not push the retry time out
        assert limiter.hit_now("k", rate) == Decision(False, 1.0, 0)
    clock.advance(1.0)
    assert limiter.hit_now("k", rate) == Decision(True, 0.0, 0)


def test_inexact_intervals_keep_the_whole_burst(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate.parse("3/s")  # 1/3 s is not a binary fraction
    assert [limiter.hit_now("k", rate).allowed for _ in range(4)] == [True, True, True, False]
    clock.advance(1 / 3)
    assert limiter.hit_now("k", rate).allowed
    assert not limiter.hit_now("k", rate).allowed
    clock.t = 1_000_000_000.0  # epoch-sized clock values keep the burst too
    assert [limiter.hit_now("k", rate).allowed for _ in range(4)] == [True, True, True, False]


def test_cost_counts_bytes(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(1024, 1.0, burst=4096)  # 1 KiB/s, 4 KiB burst

    assert limiter.hit_now("conn", rate, cost=3072) == Decision(True, 0.0, 1024)
    # 1500 more bytes would need 476 bytes of refill: 476/1024 s
    assert limiter.hit_now("conn", rate, cost=1500) == Decision(False, 476 / 1024, 1024)
    assert limiter.hit_now("conn", rate, cost=1024) == Decision(True, 0.0, 0)
    clock.advance(0.5)
    assert limiter.hit_now("conn", rate, cost=512) == Decision(True, 0.0, 0)
    assert limiter.hit_now("conn", rate, cost=0) == Decision(True, 0.0, 0)  # peek
    # larger than the burst: can never pass, says so without touching the state
    assert limiter.hit_now("conn", rate, cost=4097) == Decision(False, math.inf, 0)
    with pytest.raises(ValueError):
        limiter.hit_now("conn", rate, cost=-1)


def test_keys_are_isolated(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(2, 60.0)
    assert [limiter.hit_now("ip:a", rate).allowed for _ in range(3)] == [True, True, False]
    assert [limiter.hit_now("ip:b", rate).allowed for _ in range(3)] == [True, True, False]
    assert not limiter.hit_now("ip:a", rate).allowed


async def test_reset_gives_a_fresh_budget(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    rate = Rate(1, 60.0)
    assert (await limiter.hit("k", rate)).allowed
    assert not (await limiter.hit("k", rate)).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k", rate)).allowed


def test_memory_is_bounded_under_a_key_flood(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=100)
    rate = Rate(5, 60.0)
    for i in range(10_000):
        limiter.hit_now(f"flood:{i}", rate)
        assert len(limiter) <= 100
    assert len(limiter) == 100
    assert limiter.evicted_live == 9_900


def test_recently_used_keys_survive_eviction(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=10)
    rate = Rate(1, 60.0)
    assert limiter.hit_now("abuser", rate).allowed
    for i in range(50):
        # a refused hit counts as use, so a key being limited stays remembered
        assert not limiter.hit_now("abuser", rate).allowed
        limiter.hit_now(f"other:{i}", rate)
    assert not limiter.hit_now("abuser", rate).allowed


def test_expired_keys_are_dropped_as_new_keys_arrive(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=1_000)
    rate = Rate(1, 1.0)  # a key's state expires 1 s after its hit
    for i in range(100):
        limiter.hit_now(f"old:{i}", rate)
    assert len(limiter) == 100
    clock.advance(10)
    for i in range(50):  # each new key drops up to two expired ones
        limiter.hit_now(f"new:{i}", rate)
    assert len(limiter) == 50
    assert limiter.evicted_live == 0


def test_sweep_drops_every_expired_key(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(10):
        limiter.hit_now(f"short:{i}", Rate(1, 1.0))
    for i in range(5):
        limiter.hit_now(f"long:{i}", Rate(1, 3600.0))
    clock.advance(2)
    assert limiter.sweep() == 10
    assert len(limiter) == 5


def test_limited_hits_are_counted_by_scope(clock: FakeClock) -> None:
    metrics = Metrics()
    limiter = MemoryRateLimiter(clock=clock, metrics=metrics)
    rate = Rate(1, 60.0)
    limiter.hit_now("k", rate, scope="ws_connect")
    limiter.hit_now("k", rate, scope="ws_connect")
    limiter.hit_now("k", rate, scope="ws_connect")
    limiter.hit_now("j", rate, scope="login")
    assert metrics.value("cipherdesk_rate_limited_total", {"scope": "ws_connect"}) == 2
    assert metrics.value("cipherdesk_rate_limited_total", {"scope": "login"}) == 0


# --------------------------------------------------------------------------- concurrency


def test_concurrency_limiter_caps_and_releases() -> None:
    metrics = Metrics()
    conc = ConcurrencyLimiter(metrics=metrics)
    assert conc.try_acquire("ip:a", 2, scope="concurrent_per_ip")
    assert conc.try_acquire("ip:a", 2, scope="concurrent_per_ip")
    assert not conc.try_acquire("ip:a", 2, scope="concurrent_per_ip")
    assert conc.try_acquire("ip:b", 2)
    conc.release("ip:a")
    assert conc.count("ip:a") == 1
    assert conc.try_acquire("ip:a", 2)
    for _ in range(5):  # over-release never opens extra room
        conc.release("ip:a")
    assert conc.count("ip:a") == 0
    assert len(conc) == 1  # idle keys take no memory
    assert metrics.value("cipherdesk_rate_limited_total", {"scope": "concurrent_per_ip"}) == 1


def test_concurrency_acquire_all_is_all_or_nothing() -> None:
    conc = ConcurrencyLimiter()
    claims = [("global", 3, "global"), ("tenant:t1", 2, "tenant"), ("ip:a", 1, "ip")]
    assert conc.try_acquire_all(claims) is None
    assert conc.try_acquire_all(claims) == "ip"  # ip full: global and tenant rolled back
    assert (conc.count("global"), conc.count("tenant:t1")) == (1, 1)
    assert (
        conc.try_acquire_all(
            [("global", 3, "global"), ("tenant:t1", 2, "tenant"), ("ip:b", 1, "ip")]
        )
        is None
    )
    assert (
        conc.try_acquire_all(
            [("global", 3, "global"), ("tenant:t1", 2, "tenant"), ("ip:c", 1, "ip")]
        )
        == "tenant"
    )
    conc.release_all(["global", "tenant:t1", "ip:a"])
    assert (
        conc.try_acquire_all(
            [("global", 3, "global"), ("tenant:t1", 2, "tenant"), ("ip:c", 1, "ip")]
        )
        is None
    )
    assert conc.count("global") == 2


# --------------------------------------------------------------------------- strikes


def test_strikes_notice_first_close_on_sustained_abuse(clock: FakeClock) -> None:
    strikes = Strikes(threshold=3, window=10.0, clock=clock)
    assert strikes.strike("conn") is False  # notice
    clock.advance(4)
    assert strikes.strike("conn") is False  # notice
    clock.advance(6)
    assert strikes.strike("conn") is True  # third within 10 s: close

    strikes.clear("conn")
    assert strikes.strike("conn") is False
    clock.advance(6)
    assert strikes.strike("conn") is False
    clock.advance(6)
    assert strikes.strike("conn") is False  # spread out: first one fell out of the window
    assert strikes.strike("conn") is True
    assert strikes.strike("other") is False


def test_strikes_memory_is_bounded(clock: FakeClock) -> None:
    strikes = Strikes(threshold=2, window=10.0, clock=clock, max_keys=10)
    for i in range(1000):
        strikes.strike(f"k{i}")
    assert len(strikes) == 10
    assert Strikes(threshold=1, clock=clock).strike("x") is True
    with pytest.raises(ValueError):
        Strikes(threshold=0)


# --------------------------------------------------------------------------- Limits


def test_limits_defaults_cover_every_scope() -> None:
    limits = Limits()
    for name in [
        "ws_connect_per_ip",
        "messages_per_chat",
        "messages_per_customer",
        "bytes_per_connection",
        "messages_per_agent",
        "login_per_ip",
        "login_per_account",
        "api_per_token",
    ]:
        assert isinstance(getattr(limits, name), Rate)
    for name in ["concurrent_per_ip", "concurrent_per_tenant", "global_connections"]:
        assert isinstance(getattr(limits, name), int)
    assert limits.bytes_per_connection.burst >= 65_536  # one maximum frame fits a burst
    assert Limits.from_dict(limits.to_dict()) == limits
    assert Limits.from_dict(None) == limits


def test_limits_from_dict_and_tenant_overrides() -> None:
    base = Limits.from_dict(
        {
            "messages_per_chat": "10/5s",
            "login_per_account": {"limit": 3, "period": "15m"},
            "bytes_per_connection": "8192/s burst=32768",
            "concurrent_per_ip": 5,
            "strike_window": 60,
        }
    )
    assert base.messages_per_chat == Rate(10, 5.0)
    assert base.login_per_account == Rate(3, 900.0)
    assert base.bytes_per_connection == Rate(8192, 1.0, 32768)
    assert base.concurrent_per_ip == 5
    assert base.ws_connect_per_ip == Limits().ws_connect_per_ip  # untouched default

    tenant = base.for_tenant({"messages_per_chat": "40/10s", "concurrent_per_tenant": 50})
    assert tenant.messages_per_chat == Rate(40, 10.0)
    assert tenant.concurrent_per_tenant == 50
    assert tenant.login_per_account == base.login_per_account  # inherited
    assert base.messages_per_chat == Rate(10, 5.0)  # the base is not modified
    assert base.for_tenant(None) is base
    assert base.for_tenant({}) is base

    strikes = tenant.strikes(clock=FakeClock())
    assert [strikes.strike("k") for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"messages_per_chta": "1/s"}, r"limits\.messages_per_chta: unknown"),
        ({"messages_per_chat": "lots"}, r"limits\.messages_per_chat: invalid rate"),
        ({"concurrent_per_ip": 0}, "concurrent_per_ip must be a positive integer"),
        ({"concurrent_per_ip": "5"}, "concurrent_per_ip must be a positive integer"),
        ({"strike_window": 0}, "strike_window"),
        ({"bytes_per_connection": "100/s"}, "burst must be at least 1024"),
    ],
)
def test_limits_reject_bad_config_clearly(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limits.from_dict(data)


def test_tenants_cannot_raise_node_wide_caps() -> None:
    with pytest.raises(ValueError, match="node-wide"):
        Limits().for_tenant({"global_connections": 10**9})
    with pytest.raises(ValueError, match=r"tenant limits\.api_per_token"):
        Limits().for_tenant({"api_per_token": "x"})


# --------------------------------------------------------------------------- metrics


def test_metrics_render_own_registry() -> None:
    first, second = Metrics(), Metrics()  # two apps in one process: no clash
    first.limited("ws_connect")
    first.set_degraded(True)
    first.connections.labels(kind="customer").inc()
    first.messages_total.labels(direction="in", action="masked").inc()
    first.ws_closed_total.labels(code="4429").inc()
    first.logins_total.labels(result="ok").inc()
    first.plugin_deliveries_total.labels(plugin="zendesk", result="ok").inc()
    first.connections_refused_total.labels(reason="origin").inc()
    first.outbox_pending.set(3)
    first.backend_error()
    body, content_type = first.render()
    assert content_type.startswith("text/plain")
    text = body.decode()
    for line in [
        'cipherdesk_rate_limited_total{scope="ws_connect"} 1.0',
        "cipherdesk_ratelimit_degraded 1.0",
        "cipherdesk_ratelimit_backend_errors_total 1.0",
        'cipherdesk_connections{kind="customer"} 1.0',
        'cipherdesk_ws_closed_total{code="4429"} 1.0',
        "cipherdesk_outbox_pending 3.0",
    ]:
        assert line in text
    assert b"ws_connect" not in second.render()[0]
