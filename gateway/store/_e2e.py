# ruff: noqa: S608
# (S608: SQL text here is built only from constant fragments and placeholders; every value
# is a bound parameter.)
"""SQL of end-to-end mode (issue 13): agents' device keys and their certificates, the
agents taking part in an e2e chat, and chat keys wrapped to devices. Written once in
SQLite's spelling for both engines. Nothing here is secret: public keys, signed
certificates, and chat keys encrypted to devices the gateway has no key of."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import E2EDevice

DEVICE_COLS = (
    "id, agent_id, tenant_id, public_key, name, created_at, certificate, signature,"
    " expires_at, revoked_at"
)
INSERT_DEVICE = f"INSERT INTO e2e_devices ({DEVICE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
DEVICE_BY_ID = f"SELECT {DEVICE_COLS} FROM e2e_devices WHERE id = ?"
DEVICES_OF_TENANT = (
    f"SELECT {DEVICE_COLS} FROM e2e_devices WHERE tenant_id = ? ORDER BY created_at, id"
)
DEVICES_OF_AGENT = (
    f"SELECT {DEVICE_COLS} FROM e2e_devices WHERE agent_id = ? ORDER BY created_at, id"
)
# Only a live (unrevoked) device of the tenant takes a certificate.
CERTIFY = (
    "UPDATE e2e_devices SET certificate = ?, signature = ?, expires_at = ?"
    " WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL"
)
REVOKE = (
    "UPDATE e2e_devices SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL"
)
COUNT_PENDING_OF_AGENT = (
    "SELECT COUNT(*) AS n FROM e2e_devices WHERE agent_id = ? AND certificate IS NULL"
    " AND revoked_at IS NULL"
)

ADD_MEMBER = (
    "INSERT INTO e2e_members (chat_id, agent_id, reason, added_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (chat_id, agent_id) DO NOTHING"
)
REMOVE_MEMBER = "DELETE FROM e2e_members WHERE chat_id = ? AND agent_id = ?"
MEMBERS = "SELECT agent_id, reason FROM e2e_members WHERE chat_id = ? ORDER BY added_at, agent_id"

# The epoch moves forward by exactly one, once: of two ends re-keying at once, one wins.
NEXT_EPOCH = "UPDATE chats SET e2e_epoch = ? WHERE id = ? AND e2e_epoch = ? AND NOT erased"
CURRENT_EPOCH = "SELECT e2e_epoch FROM chats WHERE id = ? AND NOT erased AND mode = 'e2e'"
ADD_WRAP = (
    "INSERT INTO e2e_wraps (chat_id, device_id, epoch, wrapped, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_id, device_id, epoch) DO NOTHING"
)
WRAPS_FOR_DEVICE = (
    "SELECT epoch, wrapped FROM e2e_wraps WHERE chat_id = ? AND device_id = ? ORDER BY epoch"
)
WRAPPED_DEVICES = "SELECT device_id FROM e2e_wraps WHERE chat_id = ? AND epoch = ?"

ERASE = (
    "DELETE FROM e2e_wraps WHERE chat_id = ?",
    "DELETE FROM e2e_members WHERE chat_id = ?",
)


def device_params(d: E2EDevice) -> tuple[object, ...]:
    return (
        d.id,
        d.agent_id,
        d.tenant_id,
        d.public_key,
        d.name,
        d.created_at,
        d.certificate,
        d.signature,
        d.expires_at,
        d.revoked_at,
    )


def device(r: Row) -> E2EDevice:
    return E2EDevice(
        id=r["id"],
        agent_id=r["agent_id"],
        tenant_id=r["tenant_id"],
        public_key=r["public_key"],
        name=r["name"],
        created_at=r["created_at"],
        certificate=r["certificate"],
        signature=r["signature"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )
