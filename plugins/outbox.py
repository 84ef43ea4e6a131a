"""Durable delivery of outbox events to plugins.

The gateway writes one outbox row per (event, enabled plugin) in the same transaction as
the event's cause (a message, a chat close...). This module's :class:`Dispatcher` drains
those rows:

* **at-least-once**: a row is marked delivered only after the plugin returned; a crash or
  restart in between re-delivers it with the *same* idempotency key (``event.event_id``);
* **order per chat**: the store only hands out the oldest pending row of each
  (plugin, chat), so a later event of a chat waits while an earlier one backs off;
* **retries**: exponential backoff with full jitter (``rng() * min(max_delay, base_delay
  * 2**(attempts-1))``), or the vendor's ``Retry-After`` when that is longer;
* **dead letters**: once the event is older than ``retry_window`` (72 h in the gateway,
  like Stripe's three days of webhook retries) or after ``max_attempts`` failures when
  that is set, or at once on :class:`PermanentError`; an admin lists them and replays
  them (``store.replay_dead``);
* **fencing**: every claim carries the row's ``lease_token``; each settling call
  (delivered, rescheduled, dead) presents it, and the store refuses it once another
  dispatcher has re-claimed the row after the lease expired — the late dispatcher's
  outcome is ``"fenced"`` and it writes nothing. A delivery is never started with less
  than ``lease_margin`` seconds of its lease left and is cut at the lease's end, and
  ``delivery_timeout`` must be below the store's ``lease_seconds``, so two dispatchers
  never send the same row at the same time;
* **circuit breaker per (tenant, plugin)**: after ``failure_threshold`` consecutive
  failures the breaker opens, pending rows of that plugin are pushed to the end of the
  cooldown (not hammering a down helpdesk, not crowding the claim queue); after the
  cooldown one probe delivery is let through (half-open); success closes it, failure
  re-opens it;
* **isolation**: every row is delivered in its own task, with its own timeout, and at
  most ``concurrency_per_plugin`` rows per (tenant, plugin) run at once, so a slow or
  crashing plugin never delays another plugin (or chat traffic: nothing here runs on the
  chat path);
* **turns**: rows claimed while their plugin's deliveries are all taken wait in memory,
  leased, and take the next free delivery in the order they were claimed (up to
  ``held_per_plugin`` rows; beyond, a row is deferred ``busy_delay`` seconds). Chats take
  turns: before, such rows were deferred 2 s each time, while the few chats whose
  deliveries were running had their next events claimed at once, so those chats drained
  first and the others waited behind them.

Special outcomes (the row goes to the dead-letter list with a note, replayable):

* the payload cannot be decoded because the chat was crypto-shredded (``decode`` returned
  None): note ``"chat erased"`` — the data is intentionally gone, nothing is delivered;
* the plugin is no longer enabled/installed for the tenant: ``"plugin not available"``;
* the event type is outside the plugin's declared scopes: ``"outside plugin scopes"``;
* the payload is not a valid API v1 event: ``"malformed payload"``.

Nothing in logs, errors or metrics contains payload text or secrets: only ids, event
types, attempt counts and the plugin's (safe) error message or an exception class name.

This module imports nothing from the gateway: the store is typed by :class:`OutboxStore`
(the outbox subset of the gateway's Store protocol), rows by :class:`OutboxItemLike`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog

from plugins.api import (
    EVENT_SCOPES,
    Event,
    PermanentError,
    Plugin,
    PluginError,
    PluginInfo,
    RetryableError,
    Scope,
    event_from_dict,
)

log = structlog.get_logger("cipherdesk.plugins.outbox")


# --------------------------------------------------------------------------- protocols


class OutboxItemLike(Protocol):
    """The attributes of a stored outbox row the dispatcher reads."""

    id: int
    tenant_id: str
    plugin: str
    event_type: str
    idempotency_key: str
    payload_sealed: bytes
    chat_id: str | None
    attempts: int
    last_error: str | None


class OutboxStore(Protocol):
    """The outbox methods of the gateway's Store (structural typing; same signatures)."""

    async def enqueue_events(self, events: list[Any]) -> None: ...

    async def claim_due_events(self, now: float, limit: int = 100) -> list[Any]: ...

    async def mark_delivered(
        self, item_id: int, now: float, *, lease: int | None = None
    ) -> bool | None: ...

    async def reschedule_event(
        self,
        item_id: int,
        *,
        attempts: int,
        next_attempt_at: float,
        error: str,
        lease: int | None = None,
    ) -> bool | None: ...

    async def dead_letter(
        self, item_id: int, *, attempts: int, error: str, lease: int | None = None
    ) -> bool | None: ...

    async def list_events(
        self,
        *,
        tenant_id: str | None = None,
        plugin: str | None = None,
        state: Any = None,
        limit: int = 100,
    ) -> list[Any]: ...

    async def get_event(self, item_id: int) -> Any: ...

    async def replay_dead(self, item_id: int, now: float) -> bool: ...


Decode = Callable[[Any], Awaitable[dict[str, Any] | None]]
PluginFor = Callable[[str, str], Awaitable[Plugin | None]]
Outcome = Literal["delivered", "retry", "dead", "deferred", "fenced"]


# --------------------------------------------------------------------------- scopes


def wants(info: PluginInfo, event_type: str) -> bool:
    """Whether a plugin declared (and so may receive) events of ``event_type``.

    The gateway calls this before enqueueing; the dispatcher checks again before
    delivering.
    """
    return event_type in EVENT_SCOPES and event_type in info.scopes


def may_see_identity(info: PluginInfo) -> bool:
    return Scope.CUSTOMER_IDENTITY.value in info.scopes


def strip_identity(event: Event) -> Event:
    """The event without customer identity fields."""
    if event.customer is None:
        return event
    return dataclasses.replace(event, customer=None)


# --------------------------------------------------------------------------- breaker


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    cooldown: float = 30.0  # seconds open before a half-open probe
    max_cooldown: float = 600.0  # cooldown doubles on each failed probe, up to this


class CircuitBreaker:
    """closed → (threshold failures) → open → (cooldown) → half-open: one probe →
    success: closed / failure: open again with a doubled cooldown."""

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float]):
        self.policy = policy
        self._clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self._cooldown = policy.cooldown
        self._probing = False

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self.open_until is None:
            return "closed"
        return "open" if self._clock() < self.open_until else "half_open"

    def acquire(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def release(self) -> None:
        """Give back a probe slot without a verdict (e.g. the payload could not be read)."""
        self._probing = False

    def success(self) -> None:
        self.failures = 0
        self.open_until = None
        self._cooldown = self.policy.cooldown
        self._probing = False

    def failure(self) -> None:
        self.failures += 1
        if self._probing:
            self._probing = False
            self._cooldown = min(self.policy.max_cooldown, self._cooldown * 2)
            self.open_until = self._clock() + self._cooldown
        elif self.open_until is None and self.failures >= self.policy.failure_threshold:
            self.open_until = self._clock() + self._cooldown


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    item_id: int
    tenant_id: str
    plugin: str
    event_type: str
    outcome: Outcome
    attempts: int
    error: str | None = None  # safe text only
    next_attempt_at: float | None = None
    duration: float = 0.0


def redacted_traceback(exc: BaseException, *, frames: int = 3) -> str:
    """Where an exception was raised, without what it said: the innermost ``frames``
    frames as ``module-file:line in function`` (file names only, never a server path,
    never the exception's message or local values, which may hold payload text)."""
    import traceback

    own = __file__.replace("\\", "/")
    summary = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.replace("\\", "/") != own  # the dispatcher's own frames say nothing
    ][-frames:]
    parts = [
        f"{'/'.join(f.filename.replace(chr(92), '/').split('/')[-2:])}:{f.lineno} in {f.name}"
        for f in reversed(summary)
    ]
    return " <- ".join(parts)


def safe_error(exc: BaseException) -> str:
    """A message fit for storage and logs: the plugin's own (contractually safe) message
    for PluginErrors, the exception class and a redacted traceback for anything else."""
    if isinstance(exc, PluginError):
        msg = str(exc) or type(exc).__name__
        return f"{type(exc).__name__}: {msg}"[:300]
    if isinstance(exc, TimeoutError):
        return "timeout"
    where = redacted_traceback(exc)
    return (f"plugin crashed: {type(exc).__name__}" + (f" at {where}" if where else ""))[:300]


class _Dead(Exception):
    def __init__(self, note: str):
        super().__init__(note)
        self.note = note


# --------------------------------------------------------------------------- dispatcher


class Dispatcher:
    def __init__(
        self,
        store: OutboxStore,
        decode: Decode,
        plugin_for: PluginFor,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        max_attempts: int | None = 12,
        retry_window: float | None = None,
        lease_margin: float = 2.0,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        poll_interval: float = 0.5,
        concurrency_per_plugin: int = 4,
        delivery_timeout: float = 30.0,
        batch_size: int = 100,
        max_scan: int = 5000,
        busy_delay: float = 2.0,
        held_per_plugin: int = 64,
        breaker: BreakerPolicy | None = None,
        on_result: Callable[[str, DeliveryResult], Any] | None = None,
        paused: Callable[[str], Awaitable[bool]] | None = None,
        pause_recheck: float = 30.0,
    ):
        self.store = store
        # Kill switch: a tenant whose plugins are paused keeps its events, deferred.
        self._paused = paused
        self.pause_recheck = pause_recheck
        self._decode = decode
        self._plugin_for = plugin_for
        self._clock = clock
        self._rng = rng
        if max_attempts is None and retry_window is None:
            raise ValueError("give max_attempts or retry_window (or both)")
        if retry_window is not None and not 0 < retry_window <= 30 * 86400:
            raise ValueError("retry_window must be between 0 and 30 days")
        lease_seconds = getattr(store, "lease_seconds", None)
        if lease_seconds is not None and not delivery_timeout + lease_margin < lease_seconds:
            raise ValueError(
                f"delivery_timeout ({delivery_timeout} s) plus lease_margin ({lease_margin} s)"
                f" must be below the outbox lease ({lease_seconds} s): a delivery outliving"
                " its lease could be sent again by another dispatcher"
            )
        self.lease_seconds: float | None = lease_seconds
        self.lease_margin = lease_margin
        self.max_attempts = max_attempts
        self.retry_window = retry_window
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.concurrency = concurrency_per_plugin
        self.delivery_timeout = delivery_timeout
        self.batch_size = batch_size
        self.max_scan = max_scan
        self.busy_delay = busy_delay
        self.held_per_plugin = held_per_plugin
        self.breaker_policy = breaker or BreakerPolicy()
        self._on_result = on_result
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._running: dict[tuple[str, str], int] = {}
        # Rows claimed while their plugin's deliveries were all taken, in claim order.
        self._held: dict[tuple[str, str], collections.deque[Any]] = {}
        # While ``run_once`` runs: the deliveries started from ``_held``, for it to await.
        self._collected: list[asyncio.Task[DeliveryResult | None]] | None = None
        self._inflight: set[int] = set()
        self._lease_ends: dict[int, float] = {}
        self._tasks: dict[asyncio.Task[DeliveryResult | None], Any] = {}
        self._scan = batch_size
        self._loop_task: asyncio.Task[None] | None = None
        self._claiming: asyncio.Future[Any] | None = None
        self._aux: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    # -- public -------------------------------------------------------------------------
    def breaker(self, tenant_id: str, plugin: str) -> CircuitBreaker:
        key = (tenant_id, plugin)
        br = self._breakers.get(key)
        if br is None:
            br = self._breakers[key] = CircuitBreaker(self.breaker_policy, self._clock)
        return br

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Delay before attempt ``attempts + 1`` (full jitter; Retry-After wins if longer)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempts - 1)))
        delay = self._rng() * ceiling
        if retry_after is not None and retry_after > delay:
            delay = float(retry_after)
        return delay

    async def run_once(self) -> list[DeliveryResult]:
        """Claim the due rows once, deliver them all (those waiting for a free delivery
        too), and wait for the results."""
        self._collected = []
        try:
            tasks = await self._claim_and_spawn()
            results: list[DeliveryResult | None] = []
            while tasks:
                results.extend(await asyncio.gather(*tasks))
                tasks, self._collected = self._collected, []
        finally:
            self._collected = None
        return [r for r in results if r is not None]

    def notify(self) -> None:
        """Wake the worker loop now (the gateway calls this after enqueueing)."""
        self._wake.set()

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="cipherdesk-outbox")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop polling; let running deliveries finish for ``grace`` seconds, then cancel
        them. Rows of cancelled deliveries are handed back to the store at once (not left
        leased), so the next dispatcher retries them with the same idempotency key."""
        self._stopping = True
        self._wake.set()
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None:
            # Let an in-progress claim finish (cancelling it would lose leased rows).
            done, _ = await asyncio.wait({loop_task}, timeout=grace)
            if not done:
                loop_task.cancel()
            await asyncio.gather(loop_task, return_exceptions=True)
        claiming, self._claiming = self._claiming, None
        if claiming is not None and not claiming.done():
            # A claim the store is still answering: its rows are leased to us, so let
            # it finish and hand them back below with the other running deliveries.
            await asyncio.gather(claiming, return_exceptions=True)
        held = [item for queue in self._held.values() for item in queue]
        self._held.clear()  # no delivery that ends from now on starts one of them
        for item in held:
            self._forget(item.id)
            await self._release(item)
        tasks = dict(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks.keys(), timeout=grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for t in pending:
            await self._release(tasks[t])

    async def _hand_back(self, item: Any) -> None:
        try:
            await self.store.reschedule_event(
                item.id,
                attempts=item.attempts,
                next_attempt_at=getattr(item, "next_attempt_at", None) or self._clock(),
                error=getattr(item, "last_error", None) or "",
                lease=_lease(item),
            )
        except Exception as exc:  # the lease then simply expires
            log.warning("outbox.store_failed", item_id=item.id, error=type(exc).__name__)

    async def _release(self, item: Any) -> None:
        try:
            await self.store.reschedule_event(
                item.id,
                attempts=item.attempts,
                next_attempt_at=self._clock(),
                error=getattr(item, "last_error", None) or "interrupted by shutdown",
                lease=_lease(item),
            )
        except Exception as exc:  # the store's lease then simply expires
            log.warning("outbox.store_failed", item_id=item.id, error=type(exc).__name__)

    # -- loop ---------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self._stopping:
            # Cleared *before* the claim: a notify or a settled delivery during the claim
            # (rows its snapshot may not hold) then makes the next claim start at once
            # instead of after a poll interval.
            self._wake.clear()
            try:
                # Shielded: cancelling the loop mid-claim would leave rows leased (for a
                # whole lease) with nobody delivering them; stop() awaits the claim.
                self._claiming = asyncio.ensure_future(self._claim_and_spawn())
                await asyncio.shield(self._claiming)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: keep polling
                log.warning("outbox.claim_failed", error=type(exc).__name__)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def _claim_and_spawn(self) -> list[asyncio.Task[DeliveryResult | None]]:
        now = self._clock()
        limit = self._scan + len(self._inflight)
        items = await self.store.claim_due_events(now, limit)
        spawned: list[asyncio.Task[DeliveryResult | None]] = []
        busy = 0
        for item in items:
            if item.id in self._inflight:
                # Its delivery has just settled (the row was claimable again) but the task
                # is not finished yet: hand back the lease this claim took, or the row
                # would sit leased, undelivered, for a whole lease.
                hand_back = asyncio.create_task(self._hand_back(item))
                self._aux.add(hand_back)
                hand_back.add_done_callback(self._aux.discard)
                continue
            if self.lease_seconds is not None:
                self._lease_ends[item.id] = now + self.lease_seconds
            key = (item.tenant_id, item.plugin)
            if self.breaker(*key).state == "open":
                # Do not take a slot, do not call the vendor: push to the cooldown's end.
                spawned.append(self._spawn(item, key, self._defer_open))
                continue
            if self._running.get(key, 0) >= self.concurrency:
                held = self._held.setdefault(key, collections.deque())
                if len(held) < self.held_per_plugin:
                    held.append(item)  # leased; starts when a delivery of its plugin ends
                    self._inflight.add(item.id)
                    continue
                busy += 1
                spawned.append(self._spawn(item, key, self._defer_busy))
                continue
            spawned.append(self._spawn(item, key, self._deliver_one, counted=True))
        # A full batch dominated by busy plugins: look further next time so other
        # plugins' rows are reached (fairness without a per-plugin claim in the store).
        if len(items) >= limit and busy > len(items) // 2:
            self._scan = min(self.max_scan, self._scan * 2)
        else:
            self._scan = self.batch_size
        return spawned

    def _spawn(
        self,
        item: Any,
        key: tuple[str, str],
        fn: Callable[[Any], Awaitable[DeliveryResult | None]],
        *,
        counted: bool = False,
    ) -> asyncio.Task[DeliveryResult | None]:
        self._inflight.add(item.id)
        if counted:
            self._running[key] = self._running.get(key, 0) + 1

        async def run() -> DeliveryResult | None:
            result = await fn(item)
            if result is not None:
                await self._report(result)
            return result

        def done(task: asyncio.Task[DeliveryResult | None]) -> None:
            # A done-callback, not ``finally``: it also runs for a task cancelled
            # before it ever started.
            self._tasks.pop(task, None)
            self._forget(item.id)
            if counted:
                self._running[key] -= 1
                self._start_held(key)
                # A slot is free and the chat's next event (ordered behind this one) may
                # be due now: claim again at once. Before, it waited for the next poll,
                # so a chat's events reached the helpdesk two a second at most.
                self._wake.set()

        task = asyncio.create_task(run())
        self._tasks[task] = item
        task.add_done_callback(done)
        return task

    def _forget(self, item_id: int) -> None:
        self._inflight.discard(item_id)
        self._lease_ends.pop(item_id, None)

    def _start_held(self, key: tuple[str, str]) -> None:
        """Give the free deliveries of ``key`` to the rows waiting longest. A row whose
        lease would end before a delivery could finish is handed back to the store
        instead (no attempt counted): the next claim leases it afresh."""
        held = self._held.get(key)
        while held and self._running.get(key, 0) < self.concurrency:
            item = held.popleft()
            lease_end = self._lease_ends.get(item.id)
            if lease_end is not None and (
                lease_end - self._clock() < self.delivery_timeout + self.lease_margin
            ):
                task = self._spawn(item, key, self._defer_lease_short)
            else:
                task = self._spawn(item, key, self._deliver_one, counted=True)
            if self._collected is not None:
                self._collected.append(task)
        if not held:
            self._held.pop(key, None)

    async def _report(self, result: DeliveryResult) -> None:
        log.info(
            "outbox.result",
            item_id=result.item_id,
            tenant_id=result.tenant_id,
            plugin=result.plugin,
            event_type=result.event_type,
            outcome=result.outcome,
            attempts=result.attempts,
            error=result.error,
        )
        if self._on_result is None:
            return
        try:
            ret = self._on_result(result.plugin, result)
            if inspect.isawaitable(ret):
                await ret
        except Exception as exc:
            log.warning("outbox.on_result_failed", error=type(exc).__name__)

    # -- one row ------------------------------------------------------------------------
    def _result(self, item: Any, outcome: Outcome, attempts: int, **kw: Any) -> DeliveryResult:
        return DeliveryResult(
            item_id=item.id,
            tenant_id=item.tenant_id,
            plugin=item.plugin,
            event_type=item.event_type,
            outcome=outcome,
            attempts=attempts,
            **kw,
        )

    def _fenced(self, item: Any, attempts: int) -> DeliveryResult:
        log.warning("outbox.fenced", item_id=item.id, plugin=item.plugin, lease=_lease(item))
        return self._result(item, "fenced", attempts, error="lease lost to another dispatcher")

    async def _defer(self, item: Any, until: float, reason: str) -> DeliveryResult | None:
        try:
            settled = await self.store.reschedule_event(
                item.id,
                attempts=item.attempts,
                next_attempt_at=until,
                error=getattr(item, "last_error", None) or reason,
                lease=_lease(item),
            )
        except Exception as exc:
            log.warning("outbox.store_failed", item_id=item.id, error=type(exc).__name__)
            return None
        if settled is False:
            return self._fenced(item, item.attempts)
        return self._result(item, "deferred", item.attempts, error=reason, next_attempt_at=until)

    async def _defer_open(self, item: Any) -> DeliveryResult | None:
        until = self.breaker(item.tenant_id, item.plugin).open_until or self._clock()
        return await self._defer(item, until, "circuit open")

    async def _defer_busy(self, item: Any) -> DeliveryResult | None:
        return await self._defer(item, self._clock() + self.busy_delay, "plugin busy")

    async def _defer_lease_short(self, item: Any) -> DeliveryResult | None:
        return await self._defer(item, self._clock(), "lease ran short while waiting")

    async def _prepare(self, item: Any, plugin: Plugin) -> Event:
        """Decode and check the payload; raises _Dead for rows that can never succeed."""
        data = await self._decode(item)
        if data is None:
            raise _Dead("chat erased (crypto-shredded): nothing to deliver")
        try:
            event = event_from_dict(data)
        except (ValueError, TypeError, KeyError):
            raise _Dead("malformed payload") from None
        if event.type != item.event_type or not wants(plugin.info, event.type):
            raise _Dead("outside plugin scopes")
        event = dataclasses.replace(event, event_id=item.idempotency_key)
        if not may_see_identity(plugin.info):
            event = strip_identity(event)
        return event

    async def _deliver_one(self, item: Any) -> DeliveryResult | None:
        started = self._clock()
        if self._paused is not None and await self._paused(item.tenant_id):
            return await self._defer(item, started + self.pause_recheck, "paused")
        try:
            plugin = await self._plugin_for(item.tenant_id, item.plugin)
        except Exception as exc:  # the gateway could not build it (store down...)
            return await self._failed(item, exc)
        if plugin is None:
            return await self._dead(item, item.attempts, "plugin not available")
        if not wants(plugin.info, item.event_type):
            return await self._dead(item, item.attempts, "outside plugin scopes")

        breaker = self.breaker(item.tenant_id, item.plugin)
        if not breaker.acquire():
            until = breaker.open_until if breaker.state == "open" else None
            if until is None:  # half-open, the probe is out: try again shortly
                until = self._clock() + max(self.poll_interval, 0.1)
            return await self._defer(item, until, "circuit open")

        try:
            event = await self._prepare(item, plugin)
        except _Dead as dead:
            breaker.release()
            return await self._dead(item, item.attempts, dead.note)
        except asyncio.CancelledError:
            breaker.release()
            raise
        except Exception as exc:  # decode failed (store/keys unavailable)
            breaker.release()
            return await self._failed(item, exc)

        budget = self.delivery_timeout
        lease_end = self._lease_ends.get(item.id)
        if lease_end is not None:
            left = lease_end - self._clock() - self.lease_margin
            if left <= 0:  # too little lease left to send safely: hand the row back
                breaker.release()
                return await self._defer(item, self._clock(), "lease expired before delivery")
            budget = min(budget, left)
        try:
            async with asyncio.timeout(budget):
                await plugin.deliver(event)
        except asyncio.CancelledError:
            breaker.release()
            raise
        except PermanentError as exc:
            breaker.success()  # the vendor answered; it is the request that is wrong
            return await self._dead(item, item.attempts + 1, safe_error(exc))
        except Exception as exc:
            breaker.failure()
            return await self._failed(item, exc)

        breaker.success()
        try:
            settled = await self.store.mark_delivered(item.id, self._clock(), lease=_lease(item))
        except Exception as exc:  # delivered but not recorded: it will be sent again
            log.warning("outbox.store_failed", item_id=item.id, error=type(exc).__name__)
            return None
        if settled is False:
            return self._fenced(item, item.attempts + 1)
        return self._result(item, "delivered", item.attempts + 1, duration=self._clock() - started)

    async def _dead(self, item: Any, attempts: int, note: str) -> DeliveryResult | None:
        try:
            settled = await self.store.dead_letter(
                item.id, attempts=attempts, error=note, lease=_lease(item)
            )
        except Exception as exc:
            log.warning("outbox.store_failed", item_id=item.id, error=type(exc).__name__)
            return None
        if settled is False:
            return self._fenced(item, attempts)
        return self._result(item, "dead", attempts, error=note)

    async def _failed(self, item: Any, exc: BaseException) -> DeliveryResult | None:
        attempts = item.attempts + 1
        error = safe_error(exc)
        if not isinstance(exc, PluginError | TimeoutError):
            # A crash in plugin code: one log line with where it happened (no message).
            log.warning("outbox.plugin_crashed", item_id=item.id, plugin=item.plugin, error=error)
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return await self._dead(item, attempts, f"gave up after {attempts} attempts: {error}")
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        when = self._clock() + self.backoff(attempts, retry_after)
        if self.retry_window is not None and when > item.created_at + self.retry_window:
            return await self._dead(
                item, attempts, f"gave up after the retry window ({attempts} attempts): {error}"
            )
        try:
            settled = await self.store.reschedule_event(
                item.id, attempts=attempts, next_attempt_at=when, error=error, lease=_lease(item)
            )
        except Exception as store_exc:
            log.warning("outbox.store_failed", item_id=item.id, error=type(store_exc).__name__)
            return None
        if settled is False:
            return self._fenced(item, attempts)
        return self._result(item, "retry", attempts, error=error, next_attempt_at=when)


def _lease(item: Any) -> int | None:
    """The fencing token the row was claimed with (None for stores without fencing)."""
    token = getattr(item, "lease_token", None)
    return None if token is None else int(token)


async def find_dead_letter(store: OutboxStore, item_id: int, tenant_id: str | None) -> Any:
    """The dead letter ``item_id`` of ``tenant_id`` (of any tenant when None), read by its
    key: what an admin replays by id. Another tenant's row, a missing one and one not dead
    all answer None alike, so a tenant admin cannot tell another tenant's ids apart."""
    item = await store.get_event(item_id)
    if item is None or item.state != "dead" or tenant_id not in (None, item.tenant_id):
        return None
    return item


async def replay_dead_letters(
    store: OutboxStore,
    now: float,
    *,
    tenant_id: str | None = None,
    plugin: str | None = None,
    limit: int = 100,
) -> int:
    """Move dead rows back to pending (admin "replay all"); returns how many."""
    dead = await store.list_events(tenant_id=tenant_id, plugin=plugin, state="dead", limit=limit)
    n = 0
    for item in dead:
        if await store.replay_dead(item.id, now):
            n += 1
    return n
