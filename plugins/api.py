"""The plugin API that helpdesk vendors code against (version 1).

This module is the *whole* contract between cipherdesk and a plugin. It imports nothing
from the gateway and will only change in backwards-compatible ways while ``API_VERSION``
stays 1 (new optional fields, new event types a plugin has not declared). A plugin states
the version it was written for in :attr:`PluginInfo.api_version`; the registry refuses a
plugin whose version it does not support.

What a plugin sees:

* **events** — frozen dataclasses below. Chat text in them is always *masked* by the
  policy pipeline (card numbers, ID numbers, e-mails... replaced); originals of flagged
  messages are never included.
* only the event types its :class:`PluginInfo` declares in ``scopes``;
* the customer's identity (:class:`CustomerIdentity`) only when it declares the
  ``customer.identity`` scope; otherwise ``event.customer`` is ``None``.

What a plugin does: ``deliver(event)`` returns normally on success, raises
:class:`RetryableError` for transient failures (HTTP 5xx, 429, timeouts, network) and
:class:`PermanentError` for failures that will not heal by retrying (HTTP 4xx such as bad
credentials or a rejected payload). Anything else raised counts as retryable. Delivery is
at-least-once: ``event.event_id`` is the idempotency key, stable across retries and
restarts — send it to your vendor (``Idempotency-Key``) or de-duplicate on it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only; plugins need aiohttp at run time anyway
    import aiohttp

API_VERSION = 1
SUPPORTED_API_VERSIONS: frozenset[int] = frozenset({1})

ENTRY_POINT_GROUP = "cipherdesk.plugins"


class Scope(enum.StrEnum):
    """What a plugin may receive. Event scopes equal the event ``type`` strings."""

    CHAT_OPENED = "chat.opened"
    CHAT_MESSAGE = "chat.message"
    CHAT_ASSIGNED = "chat.assigned"
    CHAT_TRANSFERRED = "chat.transferred"
    CHAT_CLOSED = "chat.closed"
    CHAT_RATED = "chat.rated"
    POLICY_FLAG = "policy.flag"
    AUDIT_RECORDED = "audit.recorded"
    CUSTOMER_ERASED = "customer.erased"
    CUSTOMER_IDENTITY = "customer.identity"


EVENT_SCOPES: frozenset[str] = frozenset(s.value for s in Scope if s is not Scope.CUSTOMER_IDENTITY)
CHAT_EVENT_SCOPES: frozenset[str] = EVENT_SCOPES - {
    Scope.AUDIT_RECORDED.value,
    Scope.CUSTOMER_ERASED.value,
}
"""The events of chats; ``audit.recorded`` (the tenant's audit log, for a SIEM) and
``customer.erased`` (deletion requests) are asked for explicitly, never part of a default."""
ALL_SCOPES: frozenset[str] = frozenset(s.value for s in Scope)

Sender = Literal["customer", "agent", "system"]


# --------------------------------------------------------------------------- errors


class PluginError(Exception):
    """Base class. Messages must be *safe*: status codes and ids, never payload text or
    secrets — they are stored in the outbox (``last_error``) and shown to admins.

    ``status`` / ``vendor_code``: the HTTP status and the vendor's error code when the
    error came from a vendor's answer (set by the built-ins' HTTP helper)."""

    status: int | None = None
    vendor_code: str | None = None


class RetryableError(PluginError):
    """A transient failure; the dispatcher retries with backoff.

    ``retry_after`` (seconds) is the vendor's hint (HTTP ``Retry-After``); the dispatcher
    waits at least that long when it is larger than its own backoff.
    """

    def __init__(self, message: str = "retryable failure", *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PluginError):
    """A failure retrying will not fix (bad credentials, rejected payload): the event goes
    straight to the dead-letter list, where an admin can inspect and replay it."""


class ConfigError(PluginError, ValueError):
    """Invalid plugin configuration; ``field`` names the offending setting."""

    def __init__(self, plugin: str, field_name: str | None, message: str):
        where = f"plugin {plugin!r}" + (f", field {field_name!r}" if field_name else "")
        super().__init__(f"{where}: {message}")
        self.plugin = plugin
        self.field = field_name


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerIdentity:
    """Who the customer is, as verified by the widget identity (or typed in the pre-chat
    form when ``verified`` is False). Only given to plugins with ``customer.identity``."""

    user_id: str | None = None
    name: str | None = None
    email: str | None = None
    verified: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptLine:
    """One message of a closed chat as plugins get it: ``text`` is policy-masked for the
    plugin audience. In an end-to-end chat the gateway has no text: ``e2e`` is True,
    ``text`` is empty and ``size`` is the sealed message's length in bytes -- unless the
    agent's console released a masked transcript at close, then ``text`` is that masked
    text (screened once more by the gateway's policy) and ``released`` is True."""

    seq: int
    sender: Sender
    ts: float
    text: str  # masked
    e2e: bool = False
    size: int | None = None
    released: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event carries.

    ``event_id`` is the idempotency key: unique per (plugin, event), identical on every
    retry of the same delivery. ``occurred_at`` is UNIX seconds.
    """

    type: ClassVar[str] = ""

    tenant_id: str
    chat_id: str
    occurred_at: float
    event_id: str
    customer: CustomerIdentity | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatOpened(Event):
    type: ClassVar[str] = Scope.CHAT_OPENED.value

    queue: str = "default"
    verified: bool = False  # the widget identity was verified (HMAC)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagePosted(Event):
    type: ClassVar[str] = Scope.CHAT_MESSAGE.value

    seq: int
    sender: Sender
    text: str  # masked by policy; never the original
    policy_action: str | None = None  # "mask" | "flag" | None
    policy_kinds: tuple[str, ...] = ()
    # A file message: ``text`` is the file's (masked) name; the bytes never reach plugins.
    attachment_type: str | None = None
    attachment_size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAssigned(Event):
    type: ClassVar[str] = Scope.CHAT_ASSIGNED.value

    agent_id: str
    agent_name: str | None = None
    queue_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatTransferred(Event):
    type: ClassVar[str] = Scope.CHAT_TRANSFERRED.value

    from_agent_id: str | None
    to_agent_id: str | None = None
    to_queue: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeConsent:
    """The customer accepted version ``notice_version`` of the tenant's privacy notice at
    ``at`` (Unix time): the record a helpdesk may need to show the processing was lawful."""

    notice_version: int
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatClosed(Event):
    type: ClassVar[str] = Scope.CHAT_CLOSED.value

    transcript: tuple[TranscriptLine, ...] = ()  # masked
    csat: int | None = None  # 1..5 when the customer rated the chat
    queue_seconds: float | None = None
    close_reason: str | None = None
    agent_id: str | None = None
    consent: NoticeConsent | None = None  # None: no privacy notice was accepted in the chat

    def __post_init__(self) -> None:
        # Accept plain (seq, sender, ts, text) tuples or dicts for convenience.
        lines = tuple(_transcript_line(line) for line in self.transcript)
        object.__setattr__(self, "transcript", lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRated(Event):
    """The customer rated a closed chat (once per chat): with their own close (then
    ``with_close`` and ``chat.closed`` carries ``csat`` too) or afterwards, when the
    agent had closed first."""

    type: ClassVar[str] = Scope.CHAT_RATED.value

    csat: int  # 1..5
    comment: str | None = None  # masked for plugins, like message text
    agent_id: str | None = None
    with_close: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyFlagRaised(Event):
    type: ClassVar[str] = Scope.POLICY_FLAG.value

    seq: int
    kinds: tuple[str, ...]  # what the policy found ("card", "keyword:...")
    action: str = "flag"  # the original text is never part of the event


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecorded(Event):
    """One row of the tenant's audit log, for a SIEM through the durable outbox (signed,
    retried, dead-lettered like every event). ``chat_id`` is empty: the row belongs to the
    tenant. ``details`` are the audit row's, already redacted (never message text);
    ``chain``/``seq``/``mac`` place the row in the tamper-evident chain, so a copy kept in
    the SIEM is evidence against later edits."""

    type: ClassVar[str] = Scope.AUDIT_RECORDED.value

    audit_id: int
    action: str
    actor: str | None = None
    target: str | None = None
    ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    chain: str | None = None
    seq: int | None = None
    key_id: str | None = None
    mac: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerErased(Event):
    """A customer's erasure request (right to erasure): the gateway crypto-shredded
    ``chats`` and asks the helpdesk to delete the customer too. ``customer`` (needs the
    ``customer.identity`` scope, masked per the tenant's plugin audience like every
    identity) names whom; ``chat_id`` is empty. A helpdesk plugin deletes only when its
    tenant configuration enables it."""

    type: ClassVar[str] = Scope.CUSTOMER_ERASED.value

    chats: tuple[str, ...] = ()


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        ChatOpened,
        MessagePosted,
        AgentAssigned,
        ChatTransferred,
        ChatClosed,
        ChatRated,
        PolicyFlagRaised,
        AuditRecorded,
        CustomerErased,
    )
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict with a ``"type"`` discriminator and ``"api_version"``."""
    out: dict[str, Any] = {"type": event.type, "api_version": API_VERSION}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name in ("customer", "consent"):
            value = None if value is None else dataclasses.asdict(value)
        elif f.name == "transcript":
            value = [_line_dict(line) for line in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _line_dict(line: TranscriptLine) -> dict[str, Any]:
    """A transcript line as JSON: the e2e fields only on e2e lines (an inspect chat's lines
    look as they always did)."""
    out = dataclasses.asdict(line)
    if not line.e2e:
        for name in ("e2e", "size", "released"):
            del out[name]
    return out


def _transcript_line(raw: Any) -> TranscriptLine:
    if isinstance(raw, TranscriptLine):
        return raw
    if isinstance(raw, Mapping):
        size = raw.get("size")
        return TranscriptLine(
            seq=int(raw["seq"]),
            sender=raw["sender"],
            ts=float(raw["ts"]),
            text=str(raw.get("text") or ""),
            e2e=bool(raw.get("e2e", False)),
            size=None if size is None else int(size),
            released=bool(raw.get("released", False)),
        )
    seq, sender, ts, text = raw  # (seq, sender, ts, text)
    return TranscriptLine(seq=int(seq), sender=sender, ts=float(ts), text=str(text))


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Inverse of :func:`event_to_dict`. Unknown keys are ignored (forward compatibility);
    a missing required field or unknown ``type`` raises ``ValueError``."""
    type_name = data.get("type")
    cls = EVENT_TYPES.get(type_name)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event type {type_name!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "customer":
            value = None if value is None else CustomerIdentity(**dict(value))
        elif f.name == "consent":
            value = None if value is None else NoticeConsent(**dict(value))
        elif f.name == "transcript":
            value = tuple(_transcript_line(line) for line in value)
        elif f.name in ("policy_kinds", "kinds", "chats"):
            value = tuple(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"malformed {type_name} event: {exc}") from None


# --------------------------------------------------------------------------- metadata

FieldType = Literal["str", "int", "float", "bool", "url", "email", "list"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigField:
    """One setting of a plugin. ``secret`` fields (API tokens, signing secrets) are stored
    sealed by the master key, never logged and never shown back by the admin API."""

    name: str
    type: FieldType = "str"
    required: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None  # for "str"/"list": allowed values (one-of)
    minimum: float | None = None  # for "int"/"float": smallest allowed value
    maximum: float | None = None  # for "int"/"float": largest allowed value
    pattern: str | None = None  # for "str"/"list" items: a regex the whole value must match
    max_length: int = 2048  # for "str"/"url"/"email" and each "list" item


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginInfo:
    name: str  # [a-z0-9_-]+, unique among installed plugins
    version: str
    api_version: int = API_VERSION
    scopes: frozenset[str] = field(default_factory=frozenset)
    config_schema: tuple[ConfigField, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", frozenset(str(s) for s in self.scopes))
        object.__setattr__(self, "config_schema", tuple(self.config_schema))

    def get_field(self, name: str) -> ConfigField | None:
        return next((f for f in self.config_schema if f.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    ok: bool
    detail: str = ""  # safe text: status codes, never secrets


# --------------------------------------------------------------------------- context


@runtime_checkable
class KeyValueStore(Protocol):
    """A small durable key-value store of one plugin for one tenant (chat → ticket
    mappings, OAuth tokens). The gateway keeps values sealed by its master key; keys are
    at most 200 characters, values at most 16 KiB of text. ``ttl`` (seconds) lets a value
    expire. Nothing here is shared with other tenants or plugins."""

    async def get(self, key: str) -> str | None: ...

    async def put(
        self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool: ...

    async def delete(self, key: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginContext:
    """What the gateway hands a plugin besides its configuration: who it runs for, its
    own key-value store and the clock to use. Passed as the fourth argument of
    ``create(config, secrets, http, context)`` to factories whose ``create`` takes one."""

    tenant_id: str
    plugin: str
    kv: KeyValueStore
    clock: Callable[[], float]


# --------------------------------------------------------------------------- plugin


@runtime_checkable
class Plugin(Protocol):
    """A configured plugin instance, one per (tenant, plugin).

    Optional extra hook: ``async def enrich(self, customer: CustomerIdentity) -> dict`` —
    a quick lookup shown to the agent (e.g. the customer's open tickets). cipherdesk runs
    it through :func:`plugins.enrich.run_enrich` with a strict timeout (1.5 s by default)
    and only for plugins that declare ``customer.identity``.
    """

    info: PluginInfo

    async def deliver(self, event: Event) -> None: ...

    async def health(self) -> Health: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- file scanning


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    """What a malware scanner said about one file: ``clean``, or the ``signature`` found."""

    clean: bool
    signature: str | None = None


class ScanUnavailable(PluginError):
    """The scanner could not give a verdict (down, timed out, refused the size); the
    gateway then refuses the upload unless the operator allowed unscanned files."""


@runtime_checkable
class FileScanner(Protocol):
    """Optional hook for inspect-mode attachments: scan a file's bytes before it is stored.

    The operator names the scanner (``[attachments] clamd`` selects
    :class:`plugins.clamd.ClamdScanner`); tenants cannot, because a scanner receives the
    file as the customer sent it (images already without metadata). End-to-end chats are
    never scanned: the gateway does not have their bytes.
    """

    async def scan(self, data: bytes) -> ScanVerdict: ...


PluginCreate = Callable[..., Any]  # (config, secrets, http[, context]) -> Plugin | Awaitable


def create_accepts_context(fn: Callable[..., Any]) -> bool:
    """Whether a ``create`` callable takes the optional fourth ``context`` argument."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4 or any(p.name == "context" for p in params)


@runtime_checkable
class PluginFactory(Protocol):
    """What an entry point in group ``cipherdesk.plugins`` resolves to: an object (or a
    module) with ``info`` and ``create(config, secrets, http[, context]) -> Plugin``.

    ``create`` may be ``async def`` (e.g. to fetch an OAuth token) and may take a fourth
    argument, the :class:`PluginContext`. It runs when the gateway first needs the
    tenant's instance (first event, health check, ``plugins test``) and again after each
    configuration change — never on a chat's path: if it raises, the plugin is marked
    unhealthy (shown in the admin API and ``cipherdesk plugins list --health``) and its
    events wait and retry. Optional: ``validate(config, secrets)`` (sync or async), run
    by ``plugins enable`` and the admin API before a configuration is stored; raise
    :class:`ConfigError` to refuse it."""

    @property
    def info(self) -> PluginInfo:
        """Name, version, API version, scopes and config schema of the plugin."""
        ...

    # ``create`` takes three or four positional arguments and may be async: typed as a
    # read-only callable so a module-level function and Factory.create both conform.
    @property
    def create(self) -> Callable[..., Plugin | Awaitable[Plugin]]:
        """``create(config, secrets, http[, context])``."""
        ...


@dataclass(frozen=True, slots=True)
class Factory:
    """Convenience :class:`PluginFactory`: ``plugin = Factory(INFO, MyPlugin)``."""

    info: PluginInfo
    create_fn: PluginCreate

    def create(
        self,
        config: dict[str, Any],
        secrets: dict[str, Any],
        http: aiohttp.ClientSession,
        context: PluginContext | None = None,
    ) -> Any:
        if context is not None and create_accepts_context(self.create_fn):
            return self.create_fn(config, secrets, http, context)
        return self.create_fn(config, secrets, http)


__all__ = [
    "ALL_SCOPES",
    "API_VERSION",
    "CHAT_EVENT_SCOPES",
    "ENTRY_POINT_GROUP",
    "EVENT_SCOPES",
    "EVENT_TYPES",
    "SUPPORTED_API_VERSIONS",
    "AgentAssigned",
    "AuditRecorded",
    "ChatClosed",
    "ChatOpened",
    "ChatRated",
    "ChatTransferred",
    "ConfigError",
    "ConfigField",
    "CustomerErased",
    "CustomerIdentity",
    "Event",
    "Factory",
    "Health",
    "KeyValueStore",
    "MessagePosted",
    "NoticeConsent",
    "PermanentError",
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginFactory",
    "PluginInfo",
    "PolicyFlagRaised",
    "RetryableError",
    "Scope",
    "TranscriptLine",
    "create_accepts_context",
    "event_from_dict",
    "event_to_dict",
]
