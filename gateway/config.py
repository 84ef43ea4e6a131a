"""Configuration: one TOML file plus ``CIPHERDESK_*`` environment overrides.

Zero configuration must run: every field has a default that works on a laptop (SQLite in
the data dir, in-process bus, in-memory rate limits). Production sets a handful of keys
(see README, "Configuration"). Unknown keys and wrong types are refused with a message
that names the key, because a typo in a security setting must not be silently ignored.

Environment overrides use ``CIPHERDESK_<SECTION>_<KEY>`` (e.g. ``CIPHERDESK_STORE_URL``,
``CIPHERDESK_SERVER_PORT``); values are parsed as TOML scalars/arrays when they look like
one. ``CIPHERDESK_DATA_DIR`` and ``CIPHERDESK_MASTER_KEY`` are also honoured.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import msgspec

from gateway.attachments.files import ALL_TYPES
from plugins.clamd import parse_clamd_address

MAX_WORKERS = 64
"""Upper bound of ``server.workers`` (a typo of 1000 must not fork a thousand processes)."""


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Base URL browsers use to reach the gateway ("https://chat.example.com").
    # Empty: http://<host>:<port>. It seeds the demo tenant's allowed origins.
    public_url: str = ""
    data_dir: str = "./data"
    # Peers whose X-Forwarded-For is believed (CIDRs), e.g. ["127.0.0.1/32"] behind nginx.
    trusted_proxies: list[str] = field(default_factory=list)
    # Set when TLS terminates in front of the gateway: cookies get the Secure flag.
    behind_tls: bool = False
    # Frame-ancestors allowed to embed the console/admin pages ("'none'" by default).
    frame_ancestors: str = "'none'"
    # Seconds to wait for in-flight work on shutdown.
    shutdown_timeout: float = 5.0
    # Worker processes sharing the port (SO_REUSEPORT); more than one needs PostgreSQL
    # and Redis for the bus and rate limits (gateway/workers.py says why, at start-up).
    workers: int = 1
    # The event loop `cipherdesk serve` runs on: "uvloop" (libuv; the relay's messages
    # cost less CPU on it), "asyncio" (the standard library's loop), or "auto": uvloop
    # where it is installed (every platform with its wheels), asyncio elsewhere.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"


@dataclass(slots=True)
class StoreConfig:
    # "sqlite:///abs/path.db" or "postgresql://user@host/db"; empty = SQLite in data_dir.
    url: str = ""


@dataclass(slots=True)
class BusConfig:
    # "memory://" (one node) or "redis://host:6379/0" (several nodes).
    url: str = "memory://"


@dataclass(slots=True)
class RateLimitConfig:
    # "memory://" or "redis://..." (shared budgets across nodes).
    url: str = "memory://"
    # Key prefix in Redis (several installations may share one Redis).
    prefix: str = "cd:rl:"
    # Scope overrides, e.g. {"messages_per_chat" = "30/10s"}; see gateway/ratelimit/limits.py.
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class WebSocketConfig:
    max_frame_bytes: int = 64 * 1024
    max_text_chars: int = 4000
    handshake_timeout: float = 10.0
    idle_timeout: float = 600.0
    heartbeat: float = 30.0
    # Frames queued for one slow client before it is disconnected (bounded memory).
    send_queue: int = 256
    # A cut-off slow client gets this long without read progress to take its close frame
    # before its socket is aborted (at most 4x this in all).
    slow_consumer_grace: float = 7.0
    # Waiting chats each queue lists in a console's queue, longest-waiting first; the rest
    # are counted, not listed (``waiting_unlisted``), so a flood of openings cannot make
    # every console's queue frame unbounded.
    queue_listed: int = 500


@dataclass(slots=True)
class AuthConfig:
    idle_timeout: float = 1800.0
    absolute_lifetime: float = 12 * 3600.0
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Per (account, source address): free failures, then delays, then a temporary lock
    # of that pair only (auth/lockout.py, gateway/ratelimit/login.py).
    lock_after: int = 10
    lock_duration: float = 900.0
    free_failures: int = 3
    # One failure is forgotten every decay_every seconds (all throttle keys).
    decay_every: float = 300.0
    # Per account across all sources: above this many (decaying) failures every attempt
    # is slowed (never refused) by up to account_max_delay seconds, and an alert is
    # audited (login.account_throttled) at most once an hour.
    account_ceiling: int = 50
    account_max_delay: float = 8.0
    # Step-up re-authentication: credential changes need password + second factor
    # proven within this many seconds.
    reauth_window: float = 300.0


@dataclass(slots=True)
class MetricsConfig:
    enabled: bool = True
    # When set, /metrics requires "Authorization: Bearer <token>"; otherwise loopback only.
    token: str = ""


@dataclass(slots=True)
class RetentionConfig:
    """Installation defaults of the retention job (gateway/retention.py); each tenant may
    override every class in its governance settings (``retention``). 0 = keep forever
    (for idle chats: never auto-close). The audit log's default is ``audit.retention_days``."""

    # Closed chats older than this are crypto-shredded.
    closed_chat_days: float = 90.0
    # Open chats without a message for this long are closed (reason "idle").
    idle_close_minutes: float = 0.0
    # Policy flags (the sealed original of a flagged message) older than this are deleted.
    flag_days: float = 90.0
    # Delivered plugin events older than this are deleted from the outbox.
    delivered_outbox_days: float = 7.0
    # Dead letters (events that exhausted their retries) older than this are deleted.
    dead_letter_days: float = 30.0
    interval_seconds: float = 3600.0


@dataclass(slots=True)
class PolicyFilesConfig:
    """Operator-only policy inputs. Tenants never name server files (they upload keyword
    lists as data); only the installation's config file may point at keyword files."""

    keyword_files: list[str] = field(default_factory=list)
    # Building one tenant's policy (off the event loop) must finish within this budget.
    build_timeout: float = 10.0


@dataclass(slots=True)
class AuditConfig:
    # Signed checkpoints of every audit chain that moved (gateway/governance/auditchain.py).
    checkpoint_interval: float = 3600.0
    # Audit rows older than this are purged (after a signed checkpoint). China's
    # Cybersecurity Law keeps network logs at least six months: never below 180.
    retention_days: float = 180.0
    # SIEM export of every audit event as JSON lines: a file path and/or stdout.
    siem_file: str = ""
    siem_stdout: bool = False


@dataclass(slots=True)
class NotifyConfig:
    # The operator's SMTP relay for alert e-mails (tenants only choose recipients).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "cipherdesk@localhost"
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""  # prefer CIPHERDESK_NOTIFY_SMTP_PASSWORD
    # Hosts tenants may reach over plain HTTP / on private addresses (in-house relays).
    allow_hosts: list[str] = field(default_factory=list)
    timeout: float = 10.0


@dataclass(slots=True)
class PluginsConfig:
    """Installation-wide plugin settings (operator only; tenants never set these)."""

    # Let plugins reach loopback/private/link-local addresses (tests, on-premise
    # helpdesks). Off: only public https targets, checked on every connect.
    allow_private_targets: bool = False
    # How long the dispatcher keeps retrying an event before it becomes a dead letter.
    retry_window_hours: float = 72.0
    # One delivery's time limit; must stay below the outbox lease (60 s).
    delivery_timeout: float = 30.0
    # Deliveries in flight at once per (tenant, plugin); further due rows wait. Each one
    # is a request to the vendor and a commit, so this bounds one plugin's throughput
    # (about 240 events/s at 4 on the development machine, bench/relay.py --webhook).
    deliveries_per_plugin: int = 4


@dataclass(slots=True)
class OidcConfig:
    """Single sign-on (issue 20.2), installation side: tenants may only use identity
    providers the operator lists here (exact issuer URLs), because the gateway fetches
    their metadata and keys -- a tenant admin must not make it call anything else."""

    allowed_issuers: list[str] = field(default_factory=list)
    # How often a single sign-on session's refresh token is used, to learn that the
    # account was disabled at the identity provider.
    check_interval: float = 60.0
    timeout: float = 10.0


@dataclass(slots=True)
class AttachmentsConfig:
    """Files in chats (issue 16.6), installation side. Tenants may switch attachments off
    or lower the size; the scanner address is the operator's alone (a tenant must never
    make the gateway connect anywhere)."""

    enabled: bool = True
    # Largest file a sender may upload (after sealing for transport: +40 bytes).
    max_bytes: int = 5 * 1024 * 1024
    # Of gateway.attachments.files.ALL_TYPES, the ones accepted.
    types: list[str] = field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
        ]
    )
    # ClamAV's clamd, when present: "tcp:127.0.0.1:3310" or "unix:/run/clamav/clamd.ctl".
    clamd: str = ""
    # With a scanner set: refuse uploads while it cannot answer (false: accept unscanned).
    scan_required: bool = True
    # How long an upload or download ticket is good for after it is issued.
    ticket_seconds: float = 120.0
    # Uploads one node reads at once (each up to max_bytes in memory); more wait their
    # turn with 503 busy + Retry-After instead of growing memory without bound.
    concurrent_uploads: int = 16


@dataclass(slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    policy: PolicyFilesConfig = field(default_factory=PolicyFilesConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    oidc: OidcConfig = field(default_factory=OidcConfig)
    attachments: AttachmentsConfig = field(default_factory=AttachmentsConfig)
    # Master key material (comma-separated base64 keys, newest first); normally from the
    # environment or the key file in data_dir, never from the config file on disk.
    master_key: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.server.host
        shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host  # noqa: S104
        return f"http://{shown}:{self.server.port}"

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'cipherdesk.db'}"


def _parse_env_value(raw: str) -> Any:
    """Interpret an environment value as a TOML scalar/array when it parses as one."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    sections = {name for name in Config.__dataclass_fields__ if name != "master_key"}
    overrides: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith("CIPHERDESK_"):
            continue
        rest = name[len("CIPHERDESK_") :].lower()
        section, _, key = rest.partition("_")
        if section in sections and key:
            overrides.setdefault(section, {})[key] = _parse_env_value(raw)
    if "CIPHERDESK_DATA_DIR" in environ:
        overrides.setdefault("server", {})["data_dir"] = environ["CIPHERDESK_DATA_DIR"]
    return overrides


def _refuse_unknown_keys(data: dict[str, Any]) -> None:
    sections = Config.__dataclass_fields__
    for section, values in data.items():
        if section not in sections or section == "master_key":
            raise ConfigError(f"unknown config section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        make_section = cast(Callable[[], Any], sections[section].default_factory)
        known = make_section().__dataclass_fields__
        for key in values:
            if key not in known:
                raise ConfigError(f"unknown config key {section}.{key}")


def load_config(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """Build the configuration: defaults ← file ← environment ← explicit overrides (CLI)."""
    text = None
    if path is not None:
        try:
            text = Path(path).read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    return parse_config(text, source=str(path), environ=environ, overrides=overrides)


def parse_config(
    text: bytes | None,
    *,
    source: str = "config",
    environ: dict[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """:func:`load_config` once the file is read: any bytes in, a :class:`Config` or a
    :class:`ConfigError` out (``tests/fuzz`` holds it to that)."""
    environ = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = {}
    if text is not None:
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses per nested array/table (tests/fuzz)
            raise ConfigError(f"config file {source} nests arrays or tables too deeply") from None
        if "master_key" in data:
            raise ConfigError(
                "master_key must not be stored in the config file; "
                "use CIPHERDESK_MASTER_KEY or the key file in the data dir"
            )
    for layer in (_env_overrides(environ), overrides or {}):
        for section, values in layer.items():
            data.setdefault(section, {}).update(values)
    _refuse_unknown_keys(data)
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    config.master_key = environ.get("CIPHERDESK_MASTER_KEY", "")
    _check_retention(config.retention)
    if config.audit.retention_days < 180:
        raise ConfigError("audit.retention_days must be at least 180 (six months)")
    if not 1 <= config.server.workers <= MAX_WORKERS:
        raise ConfigError(f"server.workers must be 1-{MAX_WORKERS}, got {config.server.workers}")
    if not 0 < config.server.port < 65536:
        raise ConfigError(f"server.port must be 1-65535, got {config.server.port}")
    try:
        _ = config.data_dir  # "~nosuchuser/x" cannot be expanded (RuntimeError)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ConfigError(f"server.data_dir {config.server.data_dir!r}: {exc}") from None
    if config.oidc.check_interval < 0 or not config.oidc.timeout > 0:
        raise ConfigError("oidc.check_interval must be >= 0 and oidc.timeout > 0 seconds")
    for issuer in config.oidc.allowed_issuers:
        if not issuer.startswith(("https://", "http://")) or len(issuer) > 512:
            raise ConfigError(f"oidc.allowed_issuers: not an http(s) URL: {issuer[:80]!r}")
    if not config.websocket.slow_consumer_grace > 0:
        raise ConfigError("websocket.slow_consumer_grace must be a positive number of seconds")
    if not 1 <= config.plugins.deliveries_per_plugin <= MAX_DELIVERIES_PER_PLUGIN:
        raise ConfigError(f"plugins.deliveries_per_plugin must be 1-{MAX_DELIVERIES_PER_PLUGIN}")
    if not 1 <= config.websocket.queue_listed <= MAX_QUEUE_LISTED:
        raise ConfigError(f"websocket.queue_listed must be 1-{MAX_QUEUE_LISTED}")
    _check_attachments(config.attachments)
    return config


MAX_DELIVERIES_PER_PLUGIN = 64
"""The most ``plugins.deliveries_per_plugin`` may be: each is a task, a connection to the
vendor and a lease held at once."""
MAX_QUEUE_LISTED = 5000
"""The most ``websocket.queue_listed`` may be: every queue change re-reads that many rows
per queue and sends changes of them to every console of the tenant."""

MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
"""The most ``attachments.max_bytes`` may be: uploads are read into memory once."""


def _check_attachments(cfg: AttachmentsConfig) -> None:
    if not 1024 <= cfg.max_bytes <= MAX_ATTACHMENT_BYTES:
        raise ConfigError(f"attachments.max_bytes must be 1024-{MAX_ATTACHMENT_BYTES}")
    unknown = sorted(set(cfg.types) - ALL_TYPES)
    if unknown:
        raise ConfigError(f"attachments.types: unknown {unknown!r}; known: {sorted(ALL_TYPES)}")
    if not 10 <= cfg.ticket_seconds <= 3600:
        raise ConfigError("attachments.ticket_seconds must be 10-3600")
    if not 1 <= cfg.concurrent_uploads <= 1024:
        raise ConfigError("attachments.concurrent_uploads must be 1-1024")
    if cfg.clamd:
        try:
            parse_clamd_address(cfg.clamd)
        except ValueError as exc:
            raise ConfigError(f"attachments.clamd: {exc}") from None


RETENTION_BOUNDS: dict[str, float] = {
    "closed_chat_days": 3650.0,
    "idle_close_minutes": 43200.0,
    "flag_days": 3650.0,
    "delivered_outbox_days": 3650.0,
    "dead_letter_days": 3650.0,
}
"""Upper bound of each retention setting (the same bounds apply to tenant overrides)."""


def _check_retention(retention: RetentionConfig) -> None:
    for name, upper in RETENTION_BOUNDS.items():
        value = getattr(retention, name)
        if not 0 <= value <= upper:
            raise ConfigError(f"retention.{name} must be between 0 and {upper:g}")
    if not retention.interval_seconds > 0:
        raise ConfigError("retention.interval_seconds must be a positive number of seconds")
