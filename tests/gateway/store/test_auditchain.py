"""The tamper-evident audit chain on SQLite and PostgreSQL: every SQL tampering case a DBA
could try after dropping the append-only triggers is detected, appends from two store
connections (two nodes) never fork a chain, and retention keeps the chain verifiable."""

from __future__ import annotations

import asyncio

import pytest

from auth.clock import ManualClock
from crypto.envelope import Keyring, MasterKey
from crypto.identity import GatewayIdentity
from gateway.audit import Auditor
from gateway.governance.auditchain import AuditKeys, Checkpointer, purge_expired, verify_chain
from gateway.store import Store, Tenant, governance

T0 = 1_700_000_000.0

DROP_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER audit_log_no_update",
        "DROP TRIGGER audit_log_delete_only_checkpointed",
    ],
    "postgresql": [
        "DROP TRIGGER audit_log_no_update ON audit_log",
        "DROP TRIGGER audit_log_delete_only_checkpointed ON audit_log",
    ],
}


class Chain:
    """An auditor, keys and checkpointer over one store, like a gateway node has."""

    def __init__(
        self, store: Store, keyring: Keyring, identity: GatewayIdentity, clock: ManualClock
    ) -> None:
        self.store = store
        self.keys = AuditKeys(store, keyring, clock)
        self.auditor = Auditor(store, clock, seal=self.keys.seal)
        self.identity = identity
        self.checkpointer = Checkpointer(store, identity, clock)

    async def verify(self, chain: str = "t1"):
        return await verify_chain(self.store, self.keys, self.identity, chain)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def identity() -> GatewayIdentity:
    return GatewayIdentity.generate()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def chain(store: Store, keyring, identity, clock) -> Chain:
    await store.create_tenant(Tenant(id="t1", name="T1", created_at=T0))
    c = Chain(store, keyring, identity, clock)
    await c.keys.load()
    return c


async def _fill(chain: Chain, clock: ManualClock, n: int = 5) -> None:
    for i in range(n):
        await chain.auditor.record(
            "transcript.opened",
            tenant_id="t1",
            actor="a1",
            target=f"chat{i}",
            ip="10.0.0.1",
            via="watch",
            ratio=0.1 * i,
            count=i,
            中文="键",
        )
        clock.advance(1)


async def _ids(raw) -> list[int]:
    return [
        r[0] for r in await raw.fetch("SELECT id FROM audit_log WHERE chain = 't1' ORDER BY id")
    ]


async def test_intact_chain_verifies_and_round_trips_floats_and_unicode(chain, clock) -> None:
    await _fill(chain, clock)
    await chain.auditor.record("cli.thing", actor="cli")  # installation chain ""
    report = await chain.verify()
    assert report.ok, report.as_dict()
    assert report.rows == 5 and report.head_seq == 5
    assert (await chain.verify("")).ok


async def test_edited_row_is_detected(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    ids = await _ids(raw)
    for sql in DROP_TRIGGERS[backend]:
        await raw.execute(sql)
    await raw.execute(f"UPDATE audit_log SET actor = 'someone-else' WHERE id = {ids[2]}")
    report = await chain.verify()
    assert not report.ok
    assert report.problem == "mac_mismatch"
    assert report.first_broken_id == ids[2]


async def test_edited_details_are_detected(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    ids = await _ids(raw)
    for sql in DROP_TRIGGERS[backend]:
        await raw.execute(sql)
    await raw.execute(f'UPDATE audit_log SET details = \'{{"via": "api"}}\' WHERE id = {ids[1]}')
    report = await chain.verify()
    assert (report.ok, report.problem, report.first_broken_id) == (False, "mac_mismatch", ids[1])


async def test_deleted_row_is_detected(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    ids = await _ids(raw)
    for sql in DROP_TRIGGERS[backend]:
        await raw.execute(sql)
    await raw.execute(f"DELETE FROM audit_log WHERE id = {ids[2]}")
    report = await chain.verify()
    assert (report.ok, report.problem, report.first_broken_id) == (False, "seq_gap", ids[3])


async def test_deleted_first_row_is_detected(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    ids = await _ids(raw)
    for sql in DROP_TRIGGERS[backend]:
        await raw.execute(sql)
    await raw.execute(f"DELETE FROM audit_log WHERE id = {ids[0]}")
    report = await chain.verify()
    assert (report.ok, report.problem, report.first_broken_id) == (False, "missing_anchor", ids[1])


async def test_deleted_tail_is_detected_by_head_or_checkpoint(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    await chain.checkpointer.checkpoint_all()
    ids = await _ids(raw)
    for sql in DROP_TRIGGERS[backend]:
        await raw.execute(sql)
    await raw.execute(f"DELETE FROM audit_log WHERE id = {ids[-1]}")
    report = await chain.verify()
    assert (report.ok, report.problem) == (False, "head_mismatch")
    # A DBA who also rewinds the head table is caught by the signed checkpoint.
    mac_hex = (await raw.fetch(f"SELECT mac FROM audit_log WHERE id = {ids[-2]}"))[0][0].hex()
    literal = f"X'{mac_hex}'" if backend == "sqlite" else f"'\\x{mac_hex}'::bytea"
    await raw.execute(f"UPDATE audit_chains SET seq = 4, mac = {literal} WHERE chain = 't1'")
    report = await chain.verify()
    assert (report.ok, report.problem) == (False, "checkpoint_mismatch")


async def test_inserted_row_without_mac_is_detected(chain, clock, raw) -> None:
    await _fill(chain, clock)
    await raw.execute(
        "INSERT INTO audit_log (ts, action, tenant_id, actor, details) "
        "VALUES (1700000002.5, 'login.ok', 't1', 'intruder', '{}')"
    )
    ids = await _ids(raw)
    report = await chain.verify()
    assert not report.ok and report.problem == "unchained_row"
    tail = await raw.fetch("SELECT id FROM audit_log WHERE actor = 'intruder'")
    assert report.first_broken_id == tail[0][0]
    assert ids  # the chained rows are still there


async def test_inserted_row_with_copied_mac_is_detected(chain, clock, raw, backend) -> None:
    await _fill(chain, clock)
    # Copy row 3 verbatim (MAC included) into seq 6: the content/prev MAC do not fit.
    await raw.execute(
        "INSERT INTO audit_log (ts, action, tenant_id, actor, target, ip, details, chain, seq,"
        " key_id, mac) SELECT ts, action, tenant_id, actor, target, ip, details, chain, 6,"
        " key_id, mac FROM audit_log WHERE chain = 't1' AND seq = 3"
    )
    report = await chain.verify()
    assert (report.ok, report.problem, report.first_broken_seq) == (False, "mac_mismatch", 6)


async def test_concurrent_appends_from_two_nodes_never_fork(
    store, second_store, keyring, identity, clock, chain
) -> None:
    other = Chain(second_store, keyring, identity, clock)
    await other.keys.load()
    assert other.keys.current_id == chain.keys.current_id  # first node's root is shared

    async def burst(c: Chain, who: str) -> None:
        for i in range(15):
            await c.auditor.record("chat.assigned", tenant_id="t1", actor=who, target=str(i))

    await asyncio.gather(
        burst(chain, "n1"), burst(other, "n2"), burst(chain, "n1b"), burst(other, "n2b")
    )
    report = await chain.verify()
    assert report.ok, report.as_dict()
    assert report.rows == 60 and report.head_seq == 60


async def test_retention_purge_keeps_the_chain_verifiable(chain, clock, raw) -> None:
    await _fill(chain, clock, 3)
    clock.advance(200 * 86400)
    await _fill(chain, clock, 2)
    # The trigger refuses a delete that no checkpoint covers...
    with pytest.raises(Exception, match="append-only"):
        await chain.store.purge_audit("t1", 2)
    purged = await purge_expired(chain.store, chain.checkpointer, clock(), 180)
    assert purged == {"t1": 3}
    assert len(await _ids(raw)) == 2
    report = await chain.verify()
    assert report.ok, report.as_dict()
    assert report.rows == 2 and report.checkpoints == 1


async def test_a_long_purge_goes_in_batches_and_keeps_the_chain_verifiable(
    chain, clock, raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several short transactions instead of one that holds SQLite's writer for months
    of rows; every row below the checkpoint goes, and the count covers all batches."""
    monkeypatch.setattr(governance, "AUDIT_PURGE_BATCH", 2)
    await _fill(chain, clock, 5)
    clock.advance(200 * 86400)
    await _fill(chain, clock, 2)
    assert await purge_expired(chain.store, chain.checkpointer, clock(), 180) == {"t1": 5}
    assert len(await _ids(raw)) == 2
    report = await chain.verify()
    assert report.ok and report.rows == 2, report.as_dict()


async def test_forged_checkpoint_is_detected(chain, clock) -> None:
    await _fill(chain, clock)
    forger = Checkpointer(chain.store, GatewayIdentity.generate(), clock)
    await forger.checkpoint_all()
    report = await chain.verify()
    assert (report.ok, report.problem) == (False, "bad_checkpoint")


async def test_master_key_rotation_keeps_rows_verifiable(
    store, chain, clock, identity, keyring
) -> None:
    await _fill(chain, clock)
    rotated = Keyring([MasterKey.generate(), keyring.current])  # new key first
    after_rotation = AuditKeys(store, rotated, clock)
    await after_rotation.load()
    assert await after_rotation.rewrap() == 1
    retired = Keyring([rotated.current])  # the old master key is gone
    fresh = AuditKeys(store, retired, clock)
    await fresh.load()
    assert fresh.current_id == chain.keys.current_id
    assert (await verify_chain(store, fresh, identity, "t1")).ok
