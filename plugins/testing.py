"""A test kit for plugin authors: everything needed to test a cipherdesk plugin without a
gateway, shipped in the ``cipherdesk`` wheel (``from plugins.testing import ...``).

* :class:`Clock` — an injectable clock (``clock.advance(30)``);
* :class:`MemoryOutbox` — the outbox part of the gateway's store, in memory, with the
  *same* rules as the SQLite and PostgreSQL stores: only the oldest pending row of each
  (plugin, chat) is claimable, claims take a lease of ``lease_seconds``, every claim
  increments the row's ``lease_token`` and settling calls that present a stale token are
  refused (fencing), duplicates of (plugin, idempotency key) are ignored;
* :func:`outbox_row`, :func:`decode` — queue an event as the gateway would (plain JSON
  stands in for sealing) and read it back for :class:`plugins.outbox.Dispatcher`;
* event factories (:func:`chat_opened`, :func:`message_posted`, :func:`chat_closed`, ...)
  with sensible defaults and an :class:`~plugins.api.CustomerIdentity` helper;
* :func:`check_plugin_contract` — the checks every plugin must pass (hooks are
  coroutines, info is valid, config validates, health answers, delivery of each declared
  event type returns or raises only :class:`~plugins.api.PluginError`).

Ordering contract the kit reproduces: events of one chat reach a plugin in the order they
happened; a row that backs off holds back the later rows of *its* chat only. A row that
becomes a dead letter no longer holds anything back — later events of that chat are
delivered, and replaying the dead letter delivers it *after* them. Plugins must therefore
not assume that ``chat.closed`` is preceded by every earlier event (use ``event_id`` and
your own mapping, not arrival order across dead letters).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from plugins.api import (
    AgentAssigned,
    ChatClosed,
    ChatOpened,
    ChatRated,
    ChatTransferred,
    CustomerIdentity,
    Event,
    MessagePosted,
    PluginError,
    PluginInfo,
    PolicyFlagRaised,
    event_to_dict,
)

T0 = 1_700_000_000.0
State = Literal["pending", "delivered", "dead"]


class Clock:
    """A settable clock: pass it where a plugin or the dispatcher takes ``clock=``."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- outbox


@dataclass(slots=True)
class QueuedEvent:
    """What the gateway writes for one (event, plugin): the input of :class:`MemoryOutbox`."""

    tenant_id: str
    plugin: str
    event_type: str
    idempotency_key: str
    payload_sealed: bytes
    chat_id: str | None = None
    created_at: float = 0.0


@dataclass(slots=True)
class OutboxRow:
    """A stored outbox row, as the dispatcher sees it."""

    id: int
    tenant_id: str
    plugin: str
    event_type: str
    idempotency_key: str
    payload_sealed: bytes
    chat_id: str | None
    created_at: float
    state: State = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    delivered_at: float | None = None
    lease_token: int = 0
    leased_until: float | None = None


class MemoryOutbox:
    """In-memory outbox with the real stores' claim, lease and fencing rules."""

    def __init__(self, lease_seconds: float = 60.0):
        self.items: dict[int, OutboxRow] = {}
        self.lease_seconds = lease_seconds
        self._ids = itertools.count(1)

    async def enqueue_events(self, events: list[Any]) -> None:
        for e in events:
            if any(
                i.plugin == e.plugin and i.idempotency_key == e.idempotency_key
                for i in self.items.values()
            ):
                continue
            row_id = next(self._ids)
            self.items[row_id] = OutboxRow(
                id=row_id,
                tenant_id=e.tenant_id,
                plugin=e.plugin,
                event_type=e.event_type,
                idempotency_key=e.idempotency_key,
                payload_sealed=e.payload_sealed,
                chat_id=e.chat_id,
                created_at=e.created_at,
                next_attempt_at=e.created_at,
            )

    async def claim_due_events(self, now: float, limit: int = 100) -> list[OutboxRow]:
        pending = sorted(
            (i for i in self.items.values() if i.state == "pending"), key=lambda i: i.id
        )
        lines: set[tuple[str, str]] = set()
        due: list[OutboxRow] = []
        for item in pending:
            line = None if item.chat_id is None else (item.plugin, item.chat_id)
            heads = line is None or line not in lines
            if line is not None:
                lines.add(line)
            if not heads or item.next_attempt_at > now:
                continue
            if item.leased_until is not None and item.leased_until > now:
                continue
            due.append(item)
        due.sort(key=lambda i: (i.next_attempt_at, i.id))  # longest overdue first
        out: list[OutboxRow] = []
        for item in sorted(due[: max(0, limit)], key=lambda i: i.id):
            item.leased_until = now + self.lease_seconds
            item.lease_token += 1
            out.append(dataclasses.replace(item))
        return out

    def _settle(self, item_id: int, lease: int | None) -> OutboxRow | None:
        item = self.items.get(item_id)
        if item is None or item.state != "pending":
            return None
        if lease is not None and item.lease_token != lease:
            return None
        item.leased_until = None
        return item

    async def mark_delivered(self, item_id: int, now: float, *, lease: int | None = None) -> bool:
        item = self._settle(item_id, lease)
        if item is None:
            return False
        item.state = "delivered"
        item.delivered_at = now
        return True

    async def reschedule_event(
        self,
        item_id: int,
        *,
        attempts: int,
        next_attempt_at: float,
        error: str,
        lease: int | None = None,
    ) -> bool:
        item = self._settle(item_id, lease)
        if item is None:
            return False
        item.attempts = attempts
        item.next_attempt_at = next_attempt_at
        item.last_error = error
        return True

    async def dead_letter(
        self, item_id: int, *, attempts: int, error: str, lease: int | None = None
    ) -> bool:
        item = self._settle(item_id, lease)
        if item is None:
            return False
        item.state = "dead"
        item.attempts = attempts
        item.last_error = error
        return True

    async def list_events(
        self,
        *,
        tenant_id: str | None = None,
        plugin: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[OutboxRow]:
        return [
            dataclasses.replace(i)
            for i in sorted(self.items.values(), key=lambda i: i.id)
            if (tenant_id is None or i.tenant_id == tenant_id)
            and (plugin is None or i.plugin == plugin)
            and (state is None or i.state == state)
        ][: max(0, limit)]

    async def get_event(self, item_id: int) -> OutboxRow | None:
        item = self.items.get(item_id)
        return None if item is None else dataclasses.replace(item)

    async def replay_dead(self, item_id: int, now: float) -> bool:
        item = self.items.get(item_id)
        if item is None or item.state != "dead":
            return False
        item.state = "pending"
        item.attempts = 0
        item.next_attempt_at = now
        item.leased_until = None
        return True

    def by_state(self, state: State) -> list[OutboxRow]:
        return [i for i in self.items.values() if i.state == state]


def outbox_row(plugin: str, event: Event, key: str | None = None) -> QueuedEvent:
    """The row the gateway would queue for ``plugin`` (payload: plain JSON)."""
    return QueuedEvent(
        tenant_id=event.tenant_id,
        plugin=plugin,
        event_type=event.type,
        idempotency_key=key or f"{plugin}:{event.event_id}",
        payload_sealed=json.dumps(event_to_dict(event)).encode(),
        chat_id=event.chat_id,
        created_at=event.occurred_at,
    )


async def decode(item: Any) -> dict[str, Any] | None:
    """The dispatcher's ``decode`` for rows made by :func:`outbox_row`; a payload of
    ``b"ERASED"`` stands for a crypto-shredded chat (None)."""
    if item.payload_sealed == b"ERASED":
        return None
    return json.loads(item.payload_sealed)


def plugin_table(*plugins: Any) -> Callable[[str, str], Awaitable[Any]]:
    """The dispatcher's ``plugin_for`` serving fixed instances by name."""
    table = {p.info.name: p for p in plugins}

    async def plugin_for(tenant_id: str, name: str) -> Any:
        return table.get(name)

    return plugin_for


async def dispatch(
    plugin: Any,
    *events: Event,
    clock: Clock,
    store: MemoryOutbox | None = None,
    rounds: int = 1,
    **dispatcher_options: Any,
) -> tuple[MemoryOutbox, list[Any]]:
    """Queue ``events`` for ``plugin`` and run the real dispatcher ``rounds`` times
    (advance ``clock`` between calls to reach retries). Returns the outbox and every
    :class:`plugins.outbox.DeliveryResult`: what the gateway would do, minus the gateway."""
    from plugins.outbox import Dispatcher

    store = store if store is not None else MemoryOutbox()
    await store.enqueue_events([outbox_row(plugin.info.name, e) for e in events])
    dispatcher_options.setdefault("rng", lambda: 0.0)
    dispatcher = Dispatcher(store, decode, plugin_table(plugin), clock=clock, **dispatcher_options)
    results: list[Any] = []
    for _ in range(rounds):
        results += await dispatcher.run_once()
    return store, results


# --------------------------------------------------------------------------- events

_seq = itertools.count(1)


def customer(
    name: str = "Ann Lee", email: str | None = "ann@example.com", *, verified: bool = True
) -> CustomerIdentity:
    return CustomerIdentity(
        user_id="u-" + (email or name).split("@")[0], name=name, email=email, verified=verified
    )


def _base(kw: dict[str, Any], prefix: str) -> dict[str, Any]:
    kw.setdefault("tenant_id", "acme")
    kw.setdefault("chat_id", "chat-1")
    kw.setdefault("occurred_at", T0)
    kw.setdefault("event_id", f"{prefix}:{kw['chat_id']}:{next(_seq)}")
    return kw


def chat_opened(**kw: Any) -> ChatOpened:
    return ChatOpened(**_base(kw, "chat.opened"))


def message_posted(text: str = "hello", **kw: Any) -> MessagePosted:
    kw.setdefault("seq", 1)
    kw.setdefault("sender", "customer")
    return MessagePosted(text=text, **_base(kw, "chat.message"))


def agent_assigned(**kw: Any) -> AgentAssigned:
    kw.setdefault("agent_id", "agent-1")
    return AgentAssigned(**_base(kw, "chat.assigned"))


def chat_transferred(**kw: Any) -> ChatTransferred:
    kw.setdefault("from_agent_id", "agent-1")
    return ChatTransferred(**_base(kw, "chat.transferred"))


def chat_closed(**kw: Any) -> ChatClosed:
    kw.setdefault("transcript", ((1, "customer", T0, "hello"), (2, "agent", T0 + 5, "hi")))
    kw.setdefault("close_reason", "resolved")
    return ChatClosed(**_base(kw, "chat.closed"))


def chat_rated(**kw: Any) -> ChatRated:
    kw.setdefault("csat", 5)
    return ChatRated(**_base(kw, "chat.rated"))


def policy_flag(**kw: Any) -> PolicyFlagRaised:
    kw.setdefault("seq", 1)
    kw.setdefault("kinds", ("card",))
    return PolicyFlagRaised(**_base(kw, "policy.flag"))


EVENT_FACTORIES: dict[str, Callable[..., Event]] = {
    "chat.opened": chat_opened,
    "chat.message": message_posted,
    "chat.assigned": agent_assigned,
    "chat.transferred": chat_transferred,
    "chat.closed": chat_closed,
    "chat.rated": chat_rated,
    "policy.flag": policy_flag,
}


# --------------------------------------------------------------------------- contract


async def check_plugin_contract(
    factory: Any,
    config: dict[str, Any],
    secrets: dict[str, Any],
    http: Any,
    *,
    events: dict[str, Event] | None = None,
) -> list[str]:
    """Run the checks every plugin must pass; returns the problems found (empty = ok).

    ``factory`` is what the entry point resolves to. The plugin is built (``create`` may
    be sync or async), its hooks must be coroutines, ``health`` must answer a
    :class:`~plugins.api.Health`, and delivering one event of each declared type must
    return or raise a :class:`~plugins.api.PluginError` — never another exception.
    """
    from plugins.registry import check_factory, validate_config

    problems: list[str] = []
    try:
        info: PluginInfo = check_factory(factory)
    except ValueError as exc:
        return [f"factory: {exc}"]
    try:
        config, secrets2 = validate_config(info, {**config, **secrets}, allow_private=True)
    except PluginError as exc:
        return [f"config: {exc}"]
    validate = getattr(factory, "validate", None)
    if validate is not None:
        try:
            result = validate(dict(config), dict(secrets2))
            if inspect.isawaitable(result):
                await result
        except PluginError as exc:
            problems.append(f"validate(): {exc}")
    instance = factory.create(config, secrets2, http)
    if inspect.isawaitable(instance):
        instance = await instance
    for hook in ("deliver", "health", "aclose"):
        if not inspect.iscoroutinefunction(getattr(instance, hook, None)):
            problems.append(f"{hook}() must be 'async def'")
    if problems:
        return problems
    health = await instance.health()
    if not hasattr(health, "ok"):
        problems.append("health() must return plugins.api.Health")
    chosen = dict(events or {})
    for scope in sorted(instance.info.scopes):
        if scope in EVENT_FACTORIES and scope not in chosen:
            chosen[scope] = EVENT_FACTORIES[scope](customer=customer())
    for scope, event in chosen.items():
        try:
            await instance.deliver(event)
        except PluginError:
            pass
        except Exception as exc:  # the contract: only PluginError may escape
            problems.append(f"deliver({scope}) raised {type(exc).__name__}, not a PluginError")
    await instance.aclose()
    return problems


__all__ = [
    "EVENT_FACTORIES",
    "T0",
    "Clock",
    "MemoryOutbox",
    "OutboxRow",
    "QueuedEvent",
    "agent_assigned",
    "chat_closed",
    "chat_opened",
    "chat_rated",
    "chat_transferred",
    "check_plugin_contract",
    "customer",
    "decode",
    "dispatch",
    "message_posted",
    "outbox_row",
    "plugin_table",
    "policy_flag",
]
