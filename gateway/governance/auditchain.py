"""The audit chain in the gateway: keys, sealing, signed checkpoints, verification, purge.

The cryptography is in :mod:`crypto.auditchain` (pure); this module wires it to the
store and the master keyring:

* :class:`AuditKeys` loads the audit root(s) from the store, unwrapping them with the
  master keyring; the first node to start creates the root (one current root per
  installation, first writer wins) and :meth:`AuditKeys.rewrap` moves it onto a new
  master key during rotation.
* :meth:`AuditKeys.seal` is the :data:`gateway.store.base.AuditSeal` the auditor hands to
  ``Store.append_audit``: it runs inside the append's transaction.
* :func:`verify_chain` walks one chain and reports the *first* broken row.
* :class:`Checkpointer` signs ``(chain, seq, mac)`` with the gateway's Ed25519 key,
  periodically and before every retention purge (:func:`purge_chain`), so a purged chain
  stays verifiable from its newest checkpoint.

What the chain proves, and what it does not: an edited, deleted (not at the tail) or
inserted row is detected by anyone holding the master key. Rows removed from the *tail*
after the last checkpoint leave a shorter but consistent chain; the signed checkpoints
and the SIEM export (an outside copy) are what catch that, so keep the checkpoint
interval short and ship the export off the host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from crypto import auditchain as ac
from crypto.encoding import b64decode
from crypto.envelope import EnvelopeError, Keyring, KeyringError
from crypto.identity import GatewayIdentity
from gateway.periodic import Periodic
from gateway.store.base import AuditCheckpoint, AuditEvent, Store

log = structlog.get_logger("cipherdesk.auditchain")

PAGE = 1000


class AuditKeys:
    """The installation's audit root(s), unwrapped, and the chain keys derived from them."""

    def __init__(self, store: Store, keyring: Keyring, clock: Callable[[], float]) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._roots: dict[str, bytes] = {}
        self._current: str | None = None
        self._chain_keys: dict[tuple[str, str], bytes] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Load every root; create the installation's root if there is none yet."""
        async with self._lock:
            rows = await self._store.list_audit_keys()
            if not any(current for _, _, current in rows):
                root = ac.new_audit_root()
                await self._store.add_audit_key(
                    ac.root_key_id(root), self._keyring.wrap(root), self._clock()
                )
                rows = await self._store.list_audit_keys()  # another node may have won
            for key_id, wrapped, current in rows:
                try:
                    self._roots[key_id] = self._keyring.unwrap(wrapped)
                except EnvelopeError:
                    if current:  # nothing could be audited: refuse to start, clearly
                        raise KeyringError(
                            "the audit key cannot be unwrapped with the configured master "
                            "keys: start with the master key it was wrapped with (keep old "
                            "keys in the ring until 'cipherdesk keys rewrap' has run)"
                        ) from None
                    log.warning("audit_root_unreadable", key_id=key_id)
                    continue
                if current:
                    self._current = key_id

    @property
    def current_id(self) -> str:
        if self._current is None:
            raise RuntimeError("audit keys not loaded (or the current root is unreadable)")
        return self._current

    def chain_key(self, key_id: str, chain: str) -> bytes | None:
        """The chain key under root ``key_id``; None when that root is unknown here."""
        cached = self._chain_keys.get((key_id, chain))
        if cached is None:
            root = self._roots.get(key_id)
            if root is None:
                return None
            cached = ac.derive_chain_key(root, chain)
            self._chain_keys[(key_id, chain)] = cached
        return cached

    def seal(self, event: AuditEvent, seq: int, prev_mac: bytes) -> tuple[str, bytes]:
        """:data:`~gateway.store.base.AuditSeal`: MAC the new row under the current root."""
        key_id = self.current_id
        chain = event.chain or ""
        key = self.chain_key(key_id, chain)
        assert key is not None
        return key_id, ac.row_mac(key, prev_mac, canonical(event, seq=seq, key_id=key_id))

    async def rewrap(self) -> int:
        """Re-wrap every root under the current master key; returns how many moved."""
        moved = 0
        for key_id, wrapped, _ in await self._store.list_audit_keys():
            if self._keyring.needs_rewrap(wrapped):
                await self._store.replace_audit_key(key_id, self._keyring.rewrap(wrapped))
                moved += 1
        return moved


def canonical(event: AuditEvent, *, seq: int | None = None, key_id: str | None = None) -> bytes:
    """The MAC'd bytes of a stored or about-to-be-stored row."""
    return ac.canonical_row(
        chain=event.chain or "",
        seq=seq if seq is not None else int(event.seq or 0),
        key_id=key_id if key_id is not None else (event.key_id or ""),
        ts=event.ts,
        action=event.action,
        tenant_id=event.tenant_id,
        actor=event.actor,
        target=event.target,
        ip=event.ip,
        details=event.details,
    )


# ---------------------------------------------------------------------- verification


@dataclass(slots=True)
class ChainReport:
    """Outcome of verifying one chain. ``ok`` is False at the first problem found."""

    chain: str
    ok: bool = True
    rows: int = 0
    legacy_rows: int = 0
    """Rows written before the chain existed (never MAC'd; counted, not verified)."""
    checkpoints: int = 0
    first_broken_id: int | None = None
    first_broken_seq: int | None = None
    problem: str | None = None
    """``mac_mismatch`` | ``seq_gap`` | ``unchained_row`` | ``unknown_key`` |
    ``missing_anchor`` | ``bad_checkpoint`` | ``checkpoint_mismatch`` | ``head_mismatch``"""
    detail: str = ""
    head_seq: int = 0

    def broken(self, problem: str, detail: str, row: AuditEvent | None = None) -> ChainReport:
        self.ok = False
        self.problem = problem
        self.detail = detail
        if row is not None:
            self.first_broken_id = row.id
            self.first_broken_seq = row.seq
        return self

    def as_dict(self) -> dict[str, object]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "rows": self.rows,
            "legacy_rows": self.legacy_rows,
            "checkpoints": self.checkpoints,
            "head_seq": self.head_seq,
            "first_broken_id": self.first_broken_id,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "detail": self.detail,
        }


@dataclass(slots=True)
class _Walk:
    expected_seq: int = 1
    prev_mac: bytes = ac.GENESIS_MAC
    started: bool = False
    macs_at: dict[int, bytes] = field(default_factory=dict)


async def verify_chain(
    store: Store, keys: AuditKeys, identity: GatewayIdentity, chain: str
) -> ChainReport:
    """Verify one chain end to end: checkpoint signatures, then every row in id order.

    Rows are walked in id order because appends to a chain are serialised while the id
    is assigned, so ids and seqs rise together; any row out of step is reported.
    """
    report = ChainReport(chain=chain)
    checkpoints = {cp.seq: cp for cp in await store.list_audit_checkpoints(chain)}
    report.checkpoints = len(checkpoints)
    for cp in checkpoints.values():
        transcript = ac.checkpoint_transcript(cp.chain, cp.seq, cp.mac, cp.ts)
        try:
            signer = b64decode(cp.signer, expected_len=32)
        except ValueError:
            signer = b""
        if signer != identity.verify_key_bytes or not ac.verify_checkpoint(
            signer, transcript, cp.signature
        ):
            return report.broken(
                "bad_checkpoint", f"checkpoint at seq {cp.seq} has no valid gateway signature"
            )
    walk = _Walk()
    after = 0
    while True:
        rows = await store.audit_chain_rows(chain, after_id=after, limit=PAGE)
        if not rows:
            break
        for row in rows:
            after = row.id
            problem = _check_row(row, walk, keys, checkpoints, report)
            if problem is not None:
                return report.broken(problem[0], problem[1], row)
        if len(rows) < PAGE:
            break
    heads = {c: (s, m) for c, s, m in await store.audit_chain_heads()}
    head_seq, head_mac = heads.get(chain, (0, ac.GENESIS_MAC))
    report.head_seq = head_seq
    last_seq = walk.expected_seq - 1
    if walk.started and (head_seq != last_seq or head_mac != walk.prev_mac):
        return report.broken(
            "head_mismatch", f"chain head says seq {head_seq}, the rows end at {last_seq}"
        )
    if not walk.started and head_seq > 0 and head_seq not in checkpoints:
        return report.broken("head_mismatch", f"chain head at seq {head_seq} but no rows")
    for seq, cp in checkpoints.items():
        seen = walk.macs_at.get(seq)
        if seen is not None and seen != cp.mac:
            return report.broken(
                "checkpoint_mismatch", f"row seq {seq} differs from its signed checkpoint"
            )
        if seq > last_seq and walk.started:
            return report.broken(
                "checkpoint_mismatch",
                f"signed checkpoint at seq {seq} but the rows end at "
                f"{last_seq} (rows removed from the tail)",
            )
    return report


def _check_row(
    row: AuditEvent,
    walk: _Walk,
    keys: AuditKeys,
    checkpoints: dict[int, AuditCheckpoint],
    report: ChainReport,
) -> tuple[str, str] | None:
    if row.seq is None or row.mac is None or row.chain is None:
        if not walk.started:
            report.legacy_rows += 1
            return None
        return "unchained_row", "a row without a chain MAC after the chain began (inserted)"
    if not walk.started:
        walk.started = True
        if row.seq != 1:
            anchor = checkpoints.get(row.seq - 1)
            if anchor is None:
                return (
                    "missing_anchor",
                    f"the chain starts at seq {row.seq} without a checkpoint at "
                    f"seq {row.seq - 1} (rows deleted from the start)",
                )
            walk.expected_seq, walk.prev_mac = row.seq, anchor.mac
    if row.seq != walk.expected_seq:
        return "seq_gap", f"expected seq {walk.expected_seq}, found {row.seq}"
    key = keys.chain_key(row.key_id or "", row.chain)
    if key is None:
        return "unknown_key", "the row's audit key id is unknown"
    if not ac.verify_row(key, walk.prev_mac, canonical(row), row.mac):
        return "mac_mismatch", "the row's content does not match its MAC (edited)"
    report.rows += 1
    if row.seq in checkpoints:
        walk.macs_at[row.seq] = row.mac
    walk.prev_mac = row.mac
    walk.expected_seq += 1
    return None


async def chains_of(store: Store, tenant_id: str | None) -> list[str]:
    """The chains to verify: one tenant's, or every chain known to the store."""
    if tenant_id is not None:
        return [tenant_id]
    return [c for c, _, _ in await store.audit_chain_heads()]


# ---------------------------------------------------------------------- checkpoints


class Checkpointer:
    """Signs chain heads every ``interval`` seconds and before each purge. Audit retention
    itself (:func:`purge_expired`) runs in the retention job with every other data
    class (:mod:`gateway.retention`), so one run reports everything destroyed."""

    def __init__(
        self,
        store: Store,
        identity: GatewayIdentity,
        clock: Callable[[], float],
        interval: float = 3600.0,
    ) -> None:
        self._store = store
        self._identity = identity
        self._clock = clock
        self._periodic = Periodic(
            "audit-checkpoints",
            interval,
            self._round,
            failure_event="audit_checkpoint_failed",
            delay_first=True,
        )

    async def sign(self, chain: str, seq: int, mac: bytes, reason: str) -> AuditCheckpoint:
        ts = self._clock()
        cp = AuditCheckpoint(
            chain=chain,
            seq=seq,
            mac=mac,
            ts=ts,
            signer=self._identity.verify_key_b64,
            signature=self._identity.sign_checkpoint(chain, seq, mac, ts),
            reason=reason,
        )
        await self._store.add_audit_checkpoint(cp)
        return cp

    async def checkpoint_all(self, reason: str = "periodic") -> int:
        """Sign the head of every chain that moved since its last checkpoint."""
        signed = 0
        for chain, seq, mac in await self._store.audit_chain_heads():
            if seq == 0:
                continue
            existing = await self._store.list_audit_checkpoints(chain)
            if existing and existing[-1].seq >= seq:
                continue
            await self.sign(chain, seq, mac, reason)
            signed += 1
        return signed

    @property
    def interval(self) -> float:
        return self._periodic.interval

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _round(self) -> None:
        await self.checkpoint_all()


async def purge_chain(store: Store, checkpointer: Checkpointer, chain: str, cutoff: float) -> int:
    """Retention: delete the chain's rows older than ``cutoff`` after signing a checkpoint
    at the newest of them, so the remaining chain is anchored and still verifies."""
    last = await store.audit_last_before(chain, cutoff)
    if last is None or last.seq is None or last.mac is None:
        return 0
    await checkpointer.sign(chain, last.seq, last.mac, "purge")
    return await store.purge_audit(chain, last.seq)


MIN_RETENTION_DAYS = 180.0
"""China's Cybersecurity Law (art. 21) keeps network logs at least six months."""


def retention_days(settings: dict[str, object], default: float) -> float:
    """A tenant's audit retention (``settings["audit_retention_days"]``), never < 180."""
    raw = settings.get("audit_retention_days")
    days = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else default
    return max(MIN_RETENTION_DAYS, days)


async def purge_expired(
    store: Store, checkpointer: Checkpointer, now: float, default_days: float
) -> dict[str, int]:
    """Apply every chain's retention; returns rows purged per chain (non-zero only)."""
    purged: dict[str, int] = {}
    for chain, _, _ in await store.audit_chain_heads():
        settings: dict[str, object] = {}
        if chain:
            tenant = await store.get_tenant(chain)
            settings = tenant.settings if tenant is not None else {}
        cutoff = now - retention_days(settings, default_days) * 86400.0
        count = await purge_chain(store, checkpointer, chain, cutoff)
        if count:
            purged[chain] = count
    return purged
