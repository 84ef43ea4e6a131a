"""Rate and concurrency limits: shed abuse cheaply, keep serving honest clients.

Rate limits use GCRA (the generic cell rate algorithm, a token bucket without a refill
timer): per key only the *theoretical arrival time* (TAT) is stored — one float — and a
decision is a handful of arithmetic operations. That makes the in-memory limiter O(1) in
memory and time per key, and the Redis limiter a single small Lua script (one atomic
round trip, no read-modify-write race between nodes).

For a :class:`Rate` of ``limit`` per ``period`` with ``burst`` ``b``:

* the emission interval is ``T = period / limit`` (one unit of cost "refills" every T s);
* a hit of cost ``c`` at time ``now`` moves ``tat = max(tat, now) + c·T``;
* it is allowed while ``tat - now <= b·T`` — up to ``b`` units at once, then ``limit``
  per ``period`` on average;
* a refused hit changes nothing and says when it would be allowed (``retry_after``).

Both backends run *the same* float arithmetic in the same order (the Lua script mirrors
:func:`_gcra`), so for the same times they return identical decisions — the tests check
that bit for bit. A 1 µs tolerance (``_EPS``) absorbs float rounding (``3/s`` has an
inexact interval), so a burst never loses its last unit to a rounding error.

Keys are used verbatim: give each scope its own key space (``f"ws:{ip}"``,
``f"login:{ip}"``). ``scope`` on :meth:`RateLimiter.hit` is only the metrics label.
Sharing a key between two scopes on purpose is fine (the login limit shares its keys with
the agent-authentication lockout).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import structlog

from gateway.group_commit import GroupCommit

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from gateway.metrics import Metrics

__all__ = [
    "ConcurrencyLimiter",
    "Decision",
    "Limits",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
    "Strikes",
]

Clock = Callable[[], float]

_log = structlog.get_logger("gateway.ratelimit.limits")

#: Float tolerance of a decision, in seconds (see module docstring).
_EPS = 1e-6
#: Smallest emission interval: at 10x the tolerance, rounding stays below 0.1 unit.
_MIN_EMISSION = 10 * _EPS


# --------------------------------------------------------------------------- values


_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_RATE_RE = re.compile(
    r"^\s*(?P<limit>\d+)\s*/\s*(?P<n>\d+(?:\.\d+)?)?\s*(?P<unit>[a-z]+)"
    r"(?:\s+burst\s*=?\s*(?P<burst>\d+))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rate:
    """``limit`` units of cost per ``period`` seconds, with up to ``burst`` at once.

    ``burst`` defaults to ``limit``: a fresh key may spend its whole period's budget at
    once, then refills smoothly (one unit every ``period / limit`` s).
    """

    limit: int
    period: float
    burst: int = None  # type: ignore[assignment]  # set to ``limit`` in __post_init__
    # Precomputed for the hot path; not part of equality or repr.
    emission: float = field(init=False, repr=False, compare=False)
    tolerance: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"rate limit must be a positive integer, got {self.limit!r}")
        if (
            not isinstance(self.period, int | float)
            or not self.period > 0
            or math.isinf(self.period)
        ):
            raise ValueError(
                f"rate period must be a positive number of seconds, got {self.period!r}"
            )
        if self.burst is None:
            object.__setattr__(self, "burst", self.limit)
        elif isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"rate burst must be a positive integer, got {self.burst!r}")
        object.__setattr__(self, "period", float(self.period))
        emission = self.period / self.limit
        if emission < _MIN_EMISSION:
            raise ValueError(
                f"rate {self.limit}/{self.period:g}s is finer than one unit per "
                f"{_MIN_EMISSION * 1e6:g} µs; count in a coarser unit (e.g. KiB, not bytes)"
            )
        object.__setattr__(self, "emission", emission)
        object.__setattr__(self, "tolerance", emission * self.burst)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"20/10s"``, ``"5/m"``, ``"100/h"``, ``"3/s"``, ``"5/15min"``, and an
        optional burst: ``"16384/s burst=65536"``."""
        if not isinstance(text, str):
            raise ValueError(f"rate must be a string like '20/10s', got {text!r}")
        m = _RATE_RE.match(text)
        unit = m and _UNITS.get(m["unit"].lower())
        if not m or unit is None:
            raise ValueError(
                f"invalid rate {text!r}: expected LIMIT/[N]UNIT with UNIT one of s, m, h, d "
                "and an optional ' burst=N', e.g. '20/10s', '5/m', '16384/s burst=65536'"
            )
        n = float(m["n"]) if m["n"] else 1.0
        burst = int(m["burst"]) if m["burst"] else None
        try:
            return cls._of(int(m["limit"]), n * unit, burst)
        except ValueError as exc:
            raise ValueError(f"invalid rate {text!r}: {exc}") from None

    @classmethod
    def _of(cls, limit: int, period: float, burst: int | None) -> Rate:
        """``burst`` given or left to its default (the limit)."""
        return cls(limit, period) if burst is None else cls(limit, period, burst)

    @classmethod
    def coerce(cls, value: Rate | str | Mapping[str, Any]) -> Rate:
        """A :class:`Rate` from a rate, a rate string or a ``{limit, period[, burst]}``
        table (config files)."""
        if isinstance(value, Rate):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"limit", "period", "burst"}
            if unknown or "limit" not in value or "period" not in value:
                raise ValueError(
                    f"invalid rate table {dict(value)!r}: "
                    "expected keys limit, period and optionally burst"
                )
            period = value["period"]
            if isinstance(period, str):  # {"limit": 20, "period": "10s"}
                period = cls.parse(f"1/{period}").period
            return cls._of(value["limit"], period, value.get("burst"))
        raise ValueError(f"invalid rate {value!r}: expected a string like '20/10s'")

    def __str__(self) -> str:
        period = f"{self.period:g}s"
        for name, seconds in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
            if self.period % seconds == 0:
                n = self.period / seconds
                period = name if n == 1 else f"{n:g}{name}"
                break
        else:
            if self.period == 1.0:
                period = "s"
        text = f"{self.limit}/{period}"
        return text if self.burst == self.limit else f"{text} burst={self.burst}"


class Decision(NamedTuple):
    """Outcome of one hit.

    ``retry_after``: seconds until the same hit would be allowed (0 when allowed; ``inf``
    when ``cost`` exceeds the burst and can never be allowed). ``remaining``: whole units
    that could still be spent right now (after this hit, when allowed). A named tuple: one
    is made for every hit of every message (0.1 us, against 0.25 for a frozen dataclass).
    """

    allowed: bool
    retry_after: float
    remaining: int


def _gcra(
    tat: float | None, now: float, emission: float, tolerance: float, cost: int
) -> tuple[bool, float, int, float]:
    """One GCRA step: ``(allowed, retry_after, remaining, new_tat)``.

    KEEP IN STEP with ``_LUA_GCRA`` — same operations, same order, same constants.
    """
    if tat is None or tat < now:
        tat = now
    new_tat = tat + emission * cost
    allow_at = new_tat - tolerance
    if allow_at - now > _EPS:
        remaining = math.floor((tolerance - (tat - now) + _EPS) / emission)
        return False, allow_at - now, max(remaining, 0), tat
    remaining = math.floor((tolerance - (new_tat - now) + _EPS) / emission)
    return True, 0.0, max(remaining, 0), new_tat


def _check_cost(cost: int) -> None:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ValueError(f"cost must be a non-negative integer, got {cost!r}")


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class RateLimiter(Protocol):
    """What handlers code against; both backends implement it."""

    async def hit(self, key: str, rate: Rate, cost: int = 1, *, scope: str = "default") -> Decision:
        """Spend ``cost`` units of ``key``'s budget under ``rate`` if it allows."""
        ...

    async def hit_many(self, hits: Sequence[tuple[str, Rate, str]]) -> list[Decision]:
        """Several ``(key, rate, scope)`` hits of cost 1 at once — one Redis round trip.

        Each is decided on its own (a refused one spends nothing; an allowed one spends
        even if another of the batch is refused)."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key``'s state (a fresh, full budget)."""
        ...


# --------------------------------------------------------------------------- memory


class MemoryRateLimiter:
    """Node-local GCRA limiter: one float per key, an O(1) decision, bounded memory.

    Memory stays bounded under key floods (random source ports, spoofed XFF from a
    misconfigured proxy, many IPv6 /64s): keys live in an LRU (``OrderedDict``); every
    new key opportunistically drops up to two expired keys from the cold end (a key whose
    TAT has passed is identical to an absent one), and past ``max_keys`` the least
    recently used key is evicted even if unexpired. Such a live eviction forgets a budget
    early (counted in ``evicted_live``) — a key flood big enough to cause it is itself
    limited per IP upstream, and the alternative, refusing unknown keys, would lock out
    honest clients. :meth:`sweep` drops every expired key (run it on a timer if memory
    should shrink after a flood without new traffic).

    Not thread-safe by design: the gateway calls it from its event loop only.
    """

    def __init__(
        self, clock: Clock = time.monotonic, max_keys: int = 100_000, metrics: Metrics | None = None
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._clock = clock
        self._max_keys = max_keys
        self._metrics = metrics
        self._tats: OrderedDict[str, float] = OrderedDict()
        self.evicted_live = 0

    def __len__(self) -> int:
        return len(self._tats)

    def decide(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """The decision without metrics (used by :class:`RedisRateLimiter` as fallback)."""
        if cost > rate.burst:
            return Decision(False, math.inf, 0)
        now = self._clock()
        tats = self._tats
        tat = tats.get(key)
        allowed, retry_after, remaining, new_tat = _gcra(
            tat, now, rate.emission, rate.tolerance, cost
        )
        if tat is None:
            if allowed and cost:
                tats[key] = new_tat
                self._make_room(now)
        elif allowed and cost:
            tats[key] = new_tat
            tats.move_to_end(key)
        else:
            tats.move_to_end(key)  # a key being refused is the one worth remembering
        return Decision(allowed, retry_after, remaining)

    def hit_now(self, key: str, rate: Rate, cost: int = 1, *, scope: str = "default") -> Decision:
        """Synchronous :meth:`hit` for the hot path (per-frame byte and message limits)."""
        if cost < 0:
            _check_cost(cost)
        decision = self.decide(key, rate, cost)
        if not decision.allowed and self._metrics is not None:
            self._metrics.limited(scope)
        return decision

    async def hit(self, key: str, rate: Rate, cost: int = 1, *, scope: str = "default") -> Decision:
        return self.hit_now(key, rate, cost, scope=scope)

    async def hit_many(self, hits: Sequence[tuple[str, Rate, str]]) -> list[Decision]:
        return [self.hit_now(key, rate, scope=scope) for key, rate, scope in hits]

    def reset_now(self, key: str) -> None:
        self._tats.pop(key, None)

    async def reset(self, key: str) -> None:
        self.reset_now(key)

    def sweep(self) -> int:
        """Drop every expired key; returns how many. O(keys) — run it off the hot path."""
        now = self._clock()
        expired = [k for k, tat in self._tats.items() if tat <= now]
        for k in expired:
            del self._tats[k]
        return len(expired)

    def _make_room(self, now: float) -> None:
        tats = self._tats
        for _ in range(2):  # amortised O(1) expiry at the cold end
            oldest = next(iter(tats), None)
            if oldest is None:
                break
            if tats[oldest] > now:
                break
            del tats[oldest]
        while len(tats) > self._max_keys:
            _, tat = tats.popitem(last=False)
            if tat > now:
                self.evicted_live += 1


# --------------------------------------------------------------------------- redis


# KEYS[i] = key of hit i; ARGV[1] = now ("" = use the Redis server clock); ARGV[3i-1],
# ARGV[3i], ARGV[3i+1] = emission, tolerance, cost of hit i. Hits are decided one after
# the other, each on its own, so two hits of one key in a batch see each other's spend.
# The loop body mirrors _gcra() operation for operation; floats cross the wire as %.17g
# (exact). Each reply is "ALLOWED RETRY_AFTER REMAINING": cheaper to parse than an array.
_LUA_GCRA = """
local now
if ARGV[1] ~= nil and ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local eps = 1e-6
local replies = {}
for i = 1, #KEYS do
  local emission = tonumber(ARGV[3 * i - 1])
  local tolerance = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + emission * cost
  local allow_at = new_tat - tolerance
  if allow_at - now > eps then
    local remaining = math.floor((tolerance - (tat - now) + eps) / emission)
    if remaining < 0 then remaining = 0 end
    replies[i] = string.format('0 %.17g %d', allow_at - now, remaining)
  else
    if cost > 0 then
      local ttl = math.ceil((new_tat - now) * 1000) + 1
      redis.call('SET', KEYS[i], string.format('%.17g', new_tat), 'PX', ttl)
    end
    local remaining = math.floor((tolerance - (new_tat - now) + eps) / emission)
    if remaining < 0 then remaining = 0 end
    replies[i] = string.format('1 0 %d', remaining)
  end
end
return replies
"""

#: Most hits one ``EVALSHA`` carries; more waiting hits leave in the next round trip. A
#: batch this size runs in about a millisecond on the Redis server.
MAX_HITS_PER_CALL = 256

_Hit = tuple[str, Rate, int]


class RedisRateLimiter:
    """GCRA on Redis: several gateway nodes share one budget per key.

    Decisions are taken by a small Lua script (loaded once, reloaded by redis-py if the
    server lost it): atomic on the server, so concurrent nodes never race, and each key
    carries a ``PEXPIRE`` equal to the time its state stays meaningful.

    Why decisions are batched: a node asks for several decisions per customer message
    (chat and customer budgets), from every connection at once, and with redis-py each
    command costs the event loop far more CPU than the script costs Redis. So the limiter
    works like a group commit: while one ``EVALSHA`` is on the wire, every decision asked
    for meanwhile waits in a queue, and the next call carries all of them (up to
    :data:`MAX_HITS_PER_CALL`) — one command per round trip for the whole node, however
    many connections ask. An idle node pays exactly one round trip per decision, as
    before; a busy one pays at most two. Hits are decided in the order they were asked,
    each on its own, so a budget is spent exactly as if they had been sent one by one.
    All keys of a call go to one Redis: a Redis Cluster is not supported.

    Time: by default the script reads the Redis server's ``TIME``, so nodes with skewed
    clocks agree. A ``clock`` passed here is sent as ``now`` instead — for exact tests
    (and for deployments that prefer their own NTP-synchronised clocks); all nodes sharing
    keys must then use the same kind of clock.

    When Redis fails (unreachable, timeout, error reply) a decision is taken by the
    node-local ``fallback`` limiter instead — never "allow everything", never an exception
    to the caller. The outage is logged once (``ratelimit.redis_unavailable``), every failed
    call increments ``ratelimit_backend_errors_total``, ``ratelimit_degraded`` is 1, and
    Redis is tried again after ``retry_interval`` seconds (not on every hit: a dead Redis
    must not add a connect timeout to every request). While degraded each node enforces
    the full budget locally, so N nodes admit up to N× the shared limit; the fallback's
    state starts empty. Both are the price of staying up.

    Configure the client with short timeouts and without redis-py's retries (its default
    retries with back-off for seconds) — :meth:`from_url` does. ``timeout`` is a hard cap
    per call on top of that.
    """

    def __init__(
        self,
        redis_client: aioredis.Redis,
        prefix: str = "cd:rl:",
        fallback: MemoryRateLimiter | None = None,
        clock: Clock | None = None,
        retry_interval: float = 5.0,
        *,
        metrics: Metrics | None = None,
        timeout: float | None = 0.5,
        monotonic: Clock | None = None,
    ) -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._clock = clock
        # Drives the retry timer; defaults to the test clock when one is given.
        self._monotonic = monotonic or clock or time.monotonic
        self._fallback = (
            fallback if fallback is not None else MemoryRateLimiter(clock=clock or time.monotonic)
        )
        self._retry_interval = retry_interval
        self._metrics = metrics
        self._timeout = timeout
        self._script = redis_client.register_script(_LUA_GCRA)
        self._degraded = False
        self._retry_at = 0.0
        # One caller's hits (a hit_many) always travel in one call.
        self._calls: GroupCommit[Sequence[_Hit], list[Decision]] = GroupCommit(
            self._decide_batch, max_weight=MAX_HITS_PER_CALL, weight=len
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRateLimiter:
        """A limiter with its own client tuned for a limiter: fail fast, no retries."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = aioredis.Redis.from_url(
            url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return cls(client, **kwargs)

    @property
    def degraded(self) -> bool:
        """True while decisions come from the local fallback."""
        return self._degraded

    @property
    def fallback(self) -> MemoryRateLimiter:
        return self._fallback

    async def hit(self, key: str, rate: Rate, cost: int = 1, *, scope: str = "default") -> Decision:
        _check_cost(cost)
        if cost > rate.burst:
            decision = Decision(False, math.inf, 0)
        else:
            (decision,) = await self._decide([(key, rate, cost)])
        if not decision.allowed and self._metrics is not None:
            self._metrics.limited(scope)
        return decision

    async def hit_many(self, hits: Sequence[tuple[str, Rate, str]]) -> list[Decision]:
        decisions = await self._decide([(key, rate, 1) for key, rate, _ in hits])
        if self._metrics is not None:
            for (_, _, scope), decision in zip(hits, decisions, strict=True):
                if not decision.allowed:
                    self._metrics.limited(scope)
        return decisions

    async def _decide(self, hits: Sequence[_Hit]) -> list[Decision]:
        """Queue ``hits`` for the next call to Redis (or decide locally while degraded)."""
        if self._degraded and self._monotonic() < self._retry_at:
            return self._decide_locally(hits)
        return await self._calls.submit(hits)

    def _decide_locally(self, hits: Sequence[_Hit]) -> list[Decision]:
        return [self._fallback.decide(key, rate, cost) for key, rate, cost in hits]

    async def _decide_batch(self, callers: list[Sequence[_Hit]]) -> list[list[Decision]]:
        """One call deciding every queued caller's hits (locally if Redis fails)."""
        hits = [hit for caller in callers for hit in caller]
        try:
            decisions = await self._remote(hits)
        except Exception as exc:  # any backend failure degrades, none reaches a caller
            self._failed(exc)
            decisions = self._decide_locally(hits)
        else:
            if self._degraded:
                self._recovered()
        per_caller = []
        start = 0
        for caller in callers:
            per_caller.append(decisions[start : start + len(caller)])
            start += len(caller)
        return per_caller

    async def _remote(self, hits: Sequence[_Hit]) -> list[Decision]:
        """One ``EVALSHA`` deciding ``hits`` in order."""
        args: list[str | int] = ["" if self._clock is None else repr(float(self._clock()))]
        for _, rate, cost in hits:
            args += (repr(rate.emission), repr(rate.tolerance), cost)
        async with asyncio.timeout(self._timeout):
            replies = await self._script(keys=[self._prefix + key for key, _, _ in hits], args=args)
        decisions = []
        for reply in replies:
            allowed, retry_after, remaining = (
                reply.decode() if isinstance(reply, bytes) else reply
            ).split()
            decisions.append(Decision(allowed == "1", float(retry_after), int(remaining)))
        if len(decisions) != len(hits):
            raise RuntimeError(f"{len(decisions)} replies for {len(hits)} hits")
        return decisions

    async def reset(self, key: str) -> None:
        self._fallback.reset_now(key)
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(self._prefix + key)
        except Exception as exc:
            self._failed(exc)

    async def aclose(self) -> None:
        """Close the Redis client (when this limiter owns it, e.g. from :meth:`from_url`)."""
        await self._redis.aclose()

    def _failed(self, exc: BaseException) -> None:
        if self._metrics is not None:
            self._metrics.backend_error()
        self._retry_at = self._monotonic() + self._retry_interval
        if not self._degraded:
            self._degraded = True
            if self._metrics is not None:
                self._metrics.set_degraded(True)
            _log.warning(
                "ratelimit.redis_unavailable",
                error=type(exc).__name__,
                detail=str(exc)[:200],
                retry_interval=self._retry_interval,
                fallback="local",
            )

    def _recovered(self) -> None:
        self._degraded = False
        if self._metrics is not None:
            self._metrics.set_degraded(False)
        _log.info("ratelimit.redis_recovered")


# --------------------------------------------------------------------------- concurrency


class ConcurrencyLimiter:
    """Caps on simultaneous connections (per IP, per tenant, global) — node-local.

    Deliberately per node: an open socket costs memory, file descriptors and event-loop
    time on *this* node, so its cap protects this node; nginx spreads clients over nodes,
    and a cluster-wide cap would add a Redis round trip (and a leak on node crash) to
    every connect and disconnect for no protection gained. Size per-node caps as
    "cluster cap / nodes" when a cluster-wide figure is wanted.

    Counts only exist for keys in use (a key at zero is deleted), so memory is bounded by
    the open connections themselves.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._counts: dict[str, int] = {}
        self._metrics = metrics

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def try_acquire(self, key: str, limit: int, *, scope: str = "default") -> bool:
        """Take one slot of ``key`` if fewer than ``limit`` are held; False otherwise."""
        held = self._counts.get(key, 0)
        if held >= limit:
            if self._metrics is not None:
                self._metrics.limited(scope)
            return False
        self._counts[key] = held + 1
        return True

    def release(self, key: str) -> None:
        """Give one slot back. Releasing a key with no slot held is ignored (idempotent
        cleanup paths must not push a count negative and open a hole in the cap)."""
        held = self._counts.get(key, 0)
        if held <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = held - 1

    def try_acquire_all(self, claims: Iterable[tuple[str, int, str]]) -> str | None:
        """All-or-nothing acquire of ``(key, limit, scope)`` claims, e.g. global, tenant
        and IP for one connection. Returns None on success, else the ``scope`` that was
        full (a ready-made refusal reason); nothing stays held on failure."""
        taken: list[str] = []
        for key, limit, scope in claims:
            if not self.try_acquire(key, limit, scope=scope):
                for k in taken:
                    self.release(k)
                return scope
            taken.append(key)
        return None

    def release_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.release(key)


# --------------------------------------------------------------------------- strikes


class Strikes:
    """ "Notice first, close on sustained abuse": counts limited hits per key.

    A client that trips a limit once gets a ``notice`` (it may be a human pasting fast);
    :meth:`strike` returns True — close with 4429 — when ``threshold`` strikes fall within
    ``window`` seconds. Keeps at most ``threshold`` timestamps per key and at most
    ``max_keys`` keys (LRU), so memory is bounded.
    """

    def __init__(
        self,
        threshold: int = 3,
        window: float = 30.0,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if threshold < 1 or window <= 0:
            raise ValueError("threshold must be >= 1 and window > 0")
        self._threshold = threshold
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def strike(self, key: str) -> bool:
        """Record one limited hit of ``key``; True when the client should be closed."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self._threshold)
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(now)
        return len(hits) == self._threshold and now - hits[0] <= self._window

    def clear(self, key: str) -> None:
        """Forget ``key`` (call when its connection closes)."""
        self._hits.pop(key, None)

    def __len__(self) -> int:
        return len(self._hits)


# --------------------------------------------------------------------------- config


_RATE_FIELDS = frozenset(
    {
        "ws_connect_per_ip",
        "messages_per_chat",
        "messages_per_customer",
        "bytes_per_connection",
        "messages_per_agent",
        "login_per_ip",
        "login_per_account",
        "api_per_token",
    }
)
_COUNT_FIELDS = frozenset(
    {
        "concurrent_per_ip",
        "concurrent_per_tenant",
        "global_connections",
        "strike_threshold",
    }
)
#: Node-wide resources a tenant cannot override.
_NODE_FIELDS = frozenset({"global_connections"})


@dataclass(frozen=True)
class Limits:
    """Every abuse limit of the gateway, with defaults that suit a small deployment.

    Built from the ``[limits]`` config table with :meth:`from_dict`; a tenant's own
    ``limits`` table overrides single values through :meth:`for_tenant`. Rates are
    :class:`Rate` values; concurrency caps are plain counts.
    """

    #: new websocket connections per client IP (reconnect storms, scanners)
    ws_connect_per_ip: Rate = Rate(30, 60.0)
    #: simultaneous sockets per client IP (offices behind one NAT need some room)
    concurrent_per_ip: int = 20
    #: simultaneous sockets per tenant, customers and agents together, on one node
    concurrent_per_tenant: int = 2_000
    #: simultaneous sockets on one node; above it connects are refused cleanly
    global_connections: int = 10_000
    #: messages into one chat (both customer sessions of the chat)
    messages_per_chat: Rate = Rate(20, 10.0)
    #: messages from one customer identity across all of their chats
    messages_per_customer: Rate = Rate(60, 60.0)
    #: inbound bytes/s per connection, cost = frame length; burst >= max frame size
    bytes_per_connection: Rate = Rate(16_384, 1.0, 65_536)
    #: messages sent by one agent (canned answers are quick, floods are not)
    messages_per_agent: Rate = Rate(120, 60.0)
    #: login and OTP attempts per client IP
    login_per_ip: Rate = Rate(20, 60.0)
    #: login and OTP attempts per account (credential stuffing against one account)
    login_per_account: Rate = Rate(5, 60.0)
    #: API calls per bearer token
    api_per_token: Rate = Rate(600, 60.0)
    #: limited hits within ``strike_window`` seconds before a socket is closed (4429)
    strike_threshold: int = 3
    strike_window: float = 30.0

    def __post_init__(self) -> None:
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limits.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.strike_window, int | float) or self.strike_window <= 0:
            raise ValueError(
                f"limits.strike_window must be positive seconds, got {self.strike_window!r}"
            )
        if self.bytes_per_connection.burst < 1024:
            raise ValueError(
                "limits.bytes_per_connection burst must be at least 1024 bytes "
                "(a frame longer than the burst could never be sent)"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Limits:
        """Limits from a config table: rates as strings (``"20/10s"``) or tables, caps as
        integers; unknown names are errors (a typo must not silently keep a default)."""
        return cls()._replace(data or {}, where="limits")

    def for_tenant(self, tenant_settings: Mapping[str, Any] | None) -> Limits:
        """These limits with a tenant's overrides (its ``limits`` table) applied.

        ``global_connections`` is a node resource and cannot be overridden per tenant.
        """
        if not tenant_settings:
            return self
        node = _NODE_FIELDS & set(tenant_settings)
        if node:
            raise ValueError(f"tenant limits cannot override node-wide {sorted(node)}")
        return self._replace(tenant_settings, where="tenant limits")

    def strikes(self, clock: Clock = time.monotonic) -> Strikes:
        """A :class:`Strikes` counter configured by these limits."""
        return Strikes(self.strike_threshold, self.strike_window, clock=clock)

    def to_dict(self) -> dict[str, str | int | float]:
        """Plain values (rates as strings): for the ``hello`` frame and config dumps."""
        out: dict[str, str | int | float] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Rate) else value
        return out

    def _replace(self, data: Mapping[str, Any], where: str) -> Limits:
        changes: dict[str, Any] = {}
        for name, value in data.items():
            try:
                if name in _RATE_FIELDS:
                    changes[name] = Rate.coerce(value)
                elif name in _COUNT_FIELDS or name == "strike_window":
                    changes[name] = value
                else:
                    raise ValueError("unknown limit name")
            except ValueError as exc:
                raise ValueError(f"{where}.{name}: {exc}") from None
        return dataclasses.replace(self, **changes)
