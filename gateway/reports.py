"""Signed destruction reports: proof of what the gateway destroyed, without personal data.

Every chat erase (admin API, CLI) and every retention run yields a report: which data
class, when, by whom (an agent id, ``cli`` or ``retention``), how many rows, and for
crypto-shredded chats a hash of the chat id (an admin who holds the id can recompute it;
nobody else learns it). The report's canonical JSON is signed with the gateway's Ed25519
identity under the ``cipherdesk/v1/report`` domain (:meth:`GatewayIdentity.sign_report`),
stored, listed for admins (``GET /api/reports``) and exported as a JSON file that
``cipherdesk report verify`` checks offline against the published verify key. A data
protection officer can therefore show a regulator what was destroyed and that the record
was not edited afterwards.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crypto.identity import GatewayIdentity, verify_report
from gateway.store.base import ReportKind, Store, StoredReport

REPORT_VERSION = 1
CHAT_HASH_LABEL = b"cipherdesk/v1/report-chat|"
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest report file ``cipherdesk report verify`` reads (a run of many chats)."""


def chat_hash(chat_id: str) -> str:
    """How a report names a destroyed chat: 32 hex of SHA-256 over a label and the id.
    Chat ids are random, so the hash reveals nothing to whoever lacks the id."""
    return hashlib.sha256(CHAT_HASH_LABEL + chat_id.encode()).hexdigest()[:32]


def canonical(document: Mapping[str, Any]) -> bytes:
    """The one encoding that is signed: sorted keys, no spaces, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True, slots=True)
class DestructionReport:
    """What one erase or retention run destroyed (the signed content)."""

    id: str
    kind: ReportKind
    tenant_id: str
    actor: str
    at: float
    counts: dict[str, int]
    """Rows destroyed per data class (``chats``, ``flags``, ``audit_log`` ...)."""
    chats: list[str]
    """:func:`chat_hash` of every crypto-shredded chat (its data key is deleted)."""

    def document(self) -> dict[str, Any]:
        return {
            "v": REPORT_VERSION,
            "id": self.id,
            "kind": self.kind,
            "tenant": self.tenant_id,
            "actor": self.actor,
            "at": self.at,
            "counts": dict(sorted(self.counts.items())),
            "chats": sorted(self.chats),
        }


@dataclass(frozen=True, slots=True)
class SignedReport:
    """A stored report with its signature, as exported and verified."""

    stored: StoredReport

    def document(self) -> dict[str, Any]:
        """The exported file: the signed report, its signature and signer key."""
        return {
            "report": json.loads(self.stored.body),
            "signature": self.stored.signature,
            "signer": self.stored.signer,
        }

    def export(self) -> str:
        """The report file's text (``cipherdesk report export``)."""
        return json.dumps(self.document(), indent=2, sort_keys=True) + "\n"


class ReportBook:
    """Signs and stores destruction reports (one per erase or retention run)."""

    def __init__(
        self,
        store: Store,
        identity: GatewayIdentity,
        clock: Callable[[], float],
        on_issued: Callable[[ReportKind], None] | None = None,
    ) -> None:
        self._store = store
        self._identity = identity
        self._clock = clock
        self._on_issued = on_issued or (lambda kind: None)

    async def issue(
        self,
        kind: ReportKind,
        *,
        tenant_id: str,
        actor: str,
        counts: Mapping[str, int],
        chats: list[str] | None = None,
    ) -> SignedReport:
        """Sign and store a report; ``chats`` are chat ids (only their hashes are kept)."""
        report = DestructionReport(
            id=str(uuid.uuid4()),
            kind=kind,
            tenant_id=tenant_id,
            actor=actor,
            at=self._clock(),
            counts={k: int(v) for k, v in counts.items()},
            chats=[chat_hash(c) for c in chats or []],
        )
        body = canonical(report.document())
        stored = StoredReport(
            id=report.id,
            tenant_id=tenant_id,
            kind=kind,
            created_at=report.at,
            body=body.decode("ascii"),
            signature=self._identity.sign_report(body),
            signer=self._identity.verify_key_b64,
        )
        await self._store.add_report(stored)
        self._on_issued(kind)
        return SignedReport(stored)


class ReportInvalid(ValueError):
    """A report file that is malformed or whose signature does not verify."""


def verify_file(text: str, verify_key_b64: str) -> dict[str, Any]:
    """Check an exported report offline against the pinned verify key; returns the
    report on success, raises :class:`ReportInvalid` (a short reason) otherwise.

    The signature is checked over the report re-encoded canonically, so a file that was
    reformatted still verifies and any changed value fails. The key is the caller's
    (``--key``): the ``signer`` inside the file is a hint, never trusted."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ReportInvalid("not JSON") from None
    if not isinstance(data, dict):
        raise ReportInvalid("not a report file")
    report, signature = data.get("report"), data.get("signature")
    if not isinstance(report, dict) or not isinstance(signature, str):
        raise ReportInvalid("missing report or signature")
    if report.get("v") != REPORT_VERSION:
        raise ReportInvalid("unknown report version")
    if not verify_report(verify_key_b64, canonical(report), signature):
        raise ReportInvalid("signature does not verify with this key")
    return report
