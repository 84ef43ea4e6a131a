"""SQL and row conversion for privacy notices and consent (migration 0010), shared by
both store backends (written once in SQLite's spelling, see :mod:`gateway.store.sql`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.store.base import PrivacyNotice
from gateway.store.sql import Json

INSERT = (
    "INSERT INTO privacy_notices (tenant_id, version, required, texts, created_by, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
BY_TENANT = (
    "SELECT tenant_id, version, required, texts, created_by, created_at FROM privacy_notices"
    " WHERE tenant_id = ? ORDER BY version DESC LIMIT ?"
)
SET_CONSENT = "UPDATE chats SET consent_sealed = ? WHERE id = ? AND NOT erased"


def params(n: PrivacyNotice) -> tuple[Any, ...]:
    """Column values in column order."""
    return (n.tenant_id, n.version, n.required, Json(dict(n.texts)), n.created_by, n.created_at)


def record(row: Any, load_json: Callable[[Any], Any]) -> PrivacyNotice:
    """A row (sqlite3.Row / asyncpg.Record) as a record."""
    return PrivacyNotice(
        tenant_id=row["tenant_id"],
        version=int(row["version"]),
        required=bool(row["required"]),
        texts={str(k): str(v) for k, v in load_json(row["texts"]).items()},
        created_by=row["created_by"],
        created_at=float(row["created_at"]),
    )
