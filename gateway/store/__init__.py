"""Persistent storage: the :class:`Store` contract and its two engines.

``open_store(url, data_dir)`` picks the engine from the configured URL and returns an
*unopened* store; ``await store.open()`` connects and applies pending migrations.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import (
    Agent,
    AgentSession,
    AppendResult,
    AuditEvent,
    Chat,
    ChatState,
    Conflict,
    LockoutRecord,
    NewMessage,
    NotFound,
    OutboxEvent,
    OutboxItem,
    OutboxState,
    PluginConfig,
    PolicyFlag,
    Sender,
    Store,
    StoredMessage,
    StoreError,
    Tenant,
)

DEFAULT_SQLITE_NAME = "cipherdesk.db"

__all__ = [
    "DEFAULT_SQLITE_NAME",
    "Agent",
    "AgentSession",
    "AppendResult",
    "AuditEvent",
    "Chat",
    "ChatState",
    "Conflict",
    "LockoutRecord",
    "NewMessage",
    "NotFound",
    "OutboxEvent",
    "OutboxItem",
    "OutboxState",
    "PluginConfig",
    "PolicyFlag",
    "Sender",
    "Store",
    "StoreError",
    "StoredMessage",
    "Tenant",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str, data_dir: Path) -> Path:
    """The database file a ``sqlite:`` URL names.

    - ``""``, ``"sqlite://"`` or ``"sqlite:///"`` → ``<data_dir>/cipherdesk.db`` (the default)
    - ``"sqlite:///abs/path.db"`` → ``/abs/path.db``
    - ``"sqlite://rel/path.db"`` → ``<data_dir>/rel/path.db``
    """
    if url in ("", "sqlite://", "sqlite:///"):
        return Path(data_dir) / DEFAULT_SQLITE_NAME
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://") :]
    if "?" in rest or "#" in rest:
        raise ValueError(f"sqlite URL takes no query or fragment: {url!r}")
    if rest.startswith("/"):
        path = Path(rest)
    else:
        path = Path(data_dir) / rest
    if path.name in ("", ":memory:") or rest.endswith("/"):
        raise ValueError(
            f"sqlite URL must name a database file (in-memory databases are not supported): {url!r}"
        )
    return path


def open_store(url: str, data_dir: Path) -> Store:
    """Build the store a configuration URL names (not yet opened).

    Accepted: ``sqlite:///abs/path.db``, ``sqlite://relative/path.db`` (under ``data_dir``),
    ``sqlite://`` or an empty string (``<data_dir>/cipherdesk.db``), and
    ``postgresql://...`` / ``postgres://...`` (any libpq-style DSN asyncpg accepts).
    """
    url = (url or "").strip()
    if url == "" or url.startswith("sqlite:"):
        if url and not url.startswith("sqlite://"):
            raise ValueError(f"malformed sqlite URL {url!r}: use sqlite:///absolute/path.db")
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url, data_dir))
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: expected sqlite:///path/to/file.db or "
        "postgresql://user@host/dbname"
    )
