"""Master key rotation: add a new current key, then move every sealed value onto it.

What lives under the master keyring (``svc.keyring``) and is moved by :func:`rewrap_all`:

* chat data keys (``chat_keys`` table), walked in id order in batches of
  :data:`BATCH`; a chat erased meanwhile stays erased (``replace_chat_key`` only updates);
* agents' TOTP secrets (aad :func:`gateway.aad.totp_aad`);
* tenants' identity secrets (aad :func:`gateway.aad.tenant_identity_aad`);
* plugin configurations' secret fields (aad :func:`gateway.aad.plugin_secrets_aad`);
* tenants' single sign-on client secrets and the sessions' refresh tokens (aad
  :func:`gateway.aad.oidc_secret_aad`, :func:`gateway.aad.oidc_refresh_aad`).

Everything sealed *under a chat data key* (messages, identities, outbox payloads) does not
change: only the data key's wrapping does. Short-lived values (pending TOTP enrolment
tokens, Redis bus frames) are not stored and keep opening while the old key stays in
the ring.

Repeated rotations do not grow the key file without bound: when a rotation's rewrap
skipped nothing (every stored value now opens with the current key), the file keeps only
the current and the previous key (:data:`KEEP_KEYS`) — the previous one for values in
flight (enrolment tokens, bus frames) — and keys older than that are retired from the
file. The running process keeps them in memory until it restarts. A rewrap that skipped
something retires nothing.

:func:`rotate` is for a *file-managed* keyring (``<data dir>/master.key``) on one node:
it writes the new ring to the file, adopts it in place (every component holds the same
:class:`~crypto.envelope.Keyring` object) and rewraps. With ``CIPHERDESK_MASTER_KEY``
the operator rotates instead: prepend a new key to the value on every node, restart,
then run ``cipherdesk keys rewrap``.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from crypto.envelope import EnvelopeError, Keyring, KeyringError
from gateway.aad import (
    oidc_refresh_aad,
    oidc_secret_aad,
    plugin_secrets_aad,
    tenant_identity_aad,
    totp_aad,
)
from gateway.datadir import MASTER_KEY_FILE
from gateway.governance.wiring import rewrap_governance
from gateway.keyfiles import replace_secret_file, rotate_keyring
from gateway.store.base import NotFound

OIDC_SETTING = "oidc"
"""Where a tenant's single sign-on settings live (``gateway.oidc.SETTING``; not imported:
``gateway.oidc`` depends on the services this module must not pull in)."""
EVERY_SESSION = 1e18
"""A check time later than any: every single sign-on session is due."""

log = structlog.get_logger("cipherdesk.keyrotation")

BATCH = 500
"""Chat keys read per store round trip."""

KEEP_KEYS = 2
"""Keys left in the key file after a clean rotation: the current one and the previous."""


class RotationRefused(Exception):
    """Rotation cannot run here; ``code`` is stable (``env_managed``), ``str`` says why
    and what to do instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Report:
    """Counts of one rewrap pass (never key material or secret values)."""

    key_id: str = ""
    """Id of the current master key everything was moved to (public, not the key)."""
    chat_keys: int = 0
    totp_secrets: int = 0
    identity_secrets: int = 0
    plugin_secrets: int = 0
    audit_keys: int = 0
    """Audit roots (gateway/governance/auditchain.py) and tenants' sealed alert-channel secrets."""
    notify_secrets: int = 0
    oidc_secrets: int = 0
    """Single sign-on client secrets and refresh tokens (gateway/oidc.py)."""
    already_current: int = 0
    skipped: int = 0
    """Values that could not be opened (unknown key, tampered) or vanished meanwhile."""
    failures: list[str] = field(default_factory=list)
    """What was skipped, as ``kind:id`` (ids only), capped at 50 entries."""
    keys_in_file: int = 0
    """Keys the key file lists after :func:`rotate` (0 when not rotating)."""

    @property
    def moved(self) -> int:
        return (
            self.chat_keys
            + self.totp_secrets
            + self.identity_secrets
            + self.plugin_secrets
            + self.audit_keys
            + self.notify_secrets
            + self.oidc_secrets
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["moved"] = self.moved
        return data

    def _skip(self, kind: str, ident: str, exc: Exception | None = None) -> None:
        self.skipped += 1
        if len(self.failures) < 50:
            self.failures.append(f"{kind}:{ident}")
        log.warning(
            "rewrap_skipped", kind=kind, id=ident, error=type(exc).__name__ if exc else "gone"
        )


def key_file_path_of(config: Any) -> Path:
    """The deployment's key file (``<data dir>/master.key``)."""
    return Path(config.data_dir) / MASTER_KEY_FILE


def key_file_path(svc: Any) -> Path:
    return key_file_path_of(svc.config)


def env_managed(svc: Any) -> bool:
    """Whether the keyring comes from ``CIPHERDESK_MASTER_KEY`` (it wins over the file)."""
    return bool((svc.config.master_key or "").strip())


ENV_REFUSAL = (
    "the master keys come from CIPHERDESK_MASTER_KEY, so they cannot be rotated from "
    "here: generate a key (32 random bytes, base64), prepend it to the value on every "
    "node (\"NEW,OLD\"), restart every node, then run 'cipherdesk keys rewrap'"
)


async def rewrap_all(svc: Any, *, batch: int = BATCH) -> Report:
    """Move every value sealed by an older master key to ``svc.keyring.current``.

    Idempotent and safe to re-run (values already current are left alone); a value that
    cannot be opened is skipped and counted, never fatal.
    """
    keyring: Keyring = svc.keyring
    report = Report(key_id=keyring.current.key_id)
    await _chat_keys(svc.store, keyring, report, batch)
    await _totp_secrets(svc.store, keyring, report)
    await _identity_secrets(svc, keyring, report)
    await _plugin_secrets(svc.store, keyring, report)
    await _oidc_secrets(svc.store, keyring, report)
    report.audit_keys, report.notify_secrets = await rewrap_governance(svc)
    log.info("rewrap_done", **{k: v for k, v in report.as_dict().items() if k != "failures"})
    return report


async def _oidc_secrets(store: Any, keyring: Keyring, report: Report) -> None:
    for listed in await store.list_tenants():
        tenant = await store.get_tenant(listed.id)
        raw = tenant.settings.get(OIDC_SETTING) if tenant is not None else None
        if not isinstance(raw, dict) or not raw.get("secret_sealed"):
            continue
        try:
            sealed = base64.b64decode(str(raw["secret_sealed"]))
            if not keyring.needs_rewrap(sealed):
                report.already_current += 1
                continue
            fresh = keyring.reseal(sealed, oidc_secret_aad(tenant.id))
        except (EnvelopeError, ValueError) as exc:
            report._skip("oidc_secret", tenant.id, exc)
            continue
        moved = {**raw, "secret_sealed": base64.b64encode(fresh).decode()}
        tenant.settings = {**tenant.settings, OIDC_SETTING: moved}
        await store.update_tenant(tenant)
        report.oidc_secrets += 1
    for session in await store.oidc_sessions_due(EVERY_SESSION, 1_000_000):
        try:
            if not keyring.needs_rewrap(session.refresh_sealed):
                report.already_current += 1
                continue
            session.refresh_sealed = keyring.reseal(
                session.refresh_sealed, oidc_refresh_aad(session.token_hash)
            )
        except EnvelopeError as exc:
            report._skip("oidc_refresh", session.agent_id, exc)
            continue
        await store.save_oidc_session(session)
        report.oidc_secrets += 1


async def _chat_keys(store: Any, keyring: Keyring, report: Report, batch: int) -> None:
    after = ""
    while True:
        rows = await store.list_chat_keys(after, batch)
        for chat_id, wrapped in rows:
            try:
                if not keyring.needs_rewrap(wrapped):
                    report.already_current += 1
                    continue
                fresh = keyring.rewrap(wrapped)
            except EnvelopeError as exc:
                report._skip("chat", chat_id, exc)
                continue
            if await store.replace_chat_key(chat_id, fresh):
                report.chat_keys += 1
            else:
                report._skip("chat", chat_id)  # erased meanwhile: stays erased
        if len(rows) < batch:
            return
        after = rows[-1][0]


async def _totp_secrets(store: Any, keyring: Keyring, report: Report) -> None:
    for listed in await store.list_agents():
        if not listed.totp_secret_sealed:
            continue
        # Re-read right before writing: update_agent writes the whole row, so keep the
        # window against a concurrent change (login counters, password) as short as can be.
        agent = await store.get_agent(listed.id)
        if agent is None or not agent.totp_secret_sealed:
            continue
        try:
            if not keyring.needs_rewrap(agent.totp_secret_sealed):
                report.already_current += 1
                continue
            agent.totp_secret_sealed = keyring.reseal(agent.totp_secret_sealed, totp_aad(agent.id))
        except EnvelopeError as exc:
            report._skip("totp", agent.id, exc)
            continue
        try:
            await store.update_agent(agent)
        except NotFound:
            report._skip("totp", agent.id)
            continue
        report.totp_secrets += 1


async def _identity_secrets(svc: Any, keyring: Keyring, report: Report) -> None:
    store = svc.store
    for listed in await store.list_tenants():
        if not listed.identity_secrets_sealed:
            continue
        tenant = await store.get_tenant(listed.id)
        if tenant is None or not tenant.identity_secrets_sealed:
            continue
        try:
            if not keyring.needs_rewrap(tenant.identity_secrets_sealed):
                report.already_current += 1
                continue
            tenant.identity_secrets_sealed = keyring.reseal(
                tenant.identity_secrets_sealed, tenant_identity_aad(tenant.id)
            )
        except EnvelopeError as exc:
            report._skip("tenant", tenant.id, exc)
            continue
        try:
            await store.update_tenant(tenant)
        except NotFound:
            report._skip("tenant", tenant.id)
            continue
        svc.tenants.invalidate(tenant.id)
        report.identity_secrets += 1


async def _plugin_secrets(store: Any, keyring: Keyring, report: Report) -> None:
    for listed in await store.list_plugin_configs():
        if not listed.secrets_sealed:
            continue
        config = await store.get_plugin_config(listed.tenant_id, listed.plugin)
        if config is None or not config.secrets_sealed:
            continue
        ident = f"{config.tenant_id}/{config.plugin}"
        try:
            if not keyring.needs_rewrap(config.secrets_sealed):
                report.already_current += 1
                continue
            config.secrets_sealed = keyring.reseal(
                config.secrets_sealed, plugin_secrets_aad(config.tenant_id, config.plugin)
            )
        except EnvelopeError as exc:
            report._skip("plugin", ident, exc)
            continue
        try:
            await store.put_plugin_config(config)
        except NotFound:
            report._skip("plugin", ident)
            continue
        report.plugin_secrets += 1


async def rotate(
    svc: Any, *, actor: str = "cli", ip: str | None = None, tenant_id: str | None = None
) -> Report:
    """New current master key for a file-managed keyring, adopted in place, then rewrap.

    :raises RotationRefused: ``env_managed`` when the keys come from the environment.
    """
    if env_managed(svc):
        raise RotationRefused("env_managed", ENV_REFUSAL)
    keyring: Keyring = svc.keyring
    previous = keyring.current.key_id
    # The file is written first: if the process dies after this, the next start simply
    # loads the longer ring and a 'cipherdesk keys rewrap' finishes the job.
    keyring.adopt(rotate_keyring(keyring, key_file_path(svc)))
    log.info("master_key_rotated", key_id=keyring.current.key_id, previous=previous)
    report = await rewrap_all(svc)
    report.keys_in_file = len(keyring.key_ids)
    if report.skipped == 0:
        report.keys_in_file = _retire_old_keys(key_file_path(svc), keyring)
    await svc.auditor.record(
        "keys.rotated",
        tenant_id=tenant_id,
        actor=actor,
        ip=ip,
        key_id=keyring.current.key_id,
        previous_key_id=previous,
        keys_in_ring=report.keys_in_file,
        chat_keys=report.chat_keys,
        totp_secrets=report.totp_secrets,
        identity_secrets=report.identity_secrets,
        plugin_secrets=report.plugin_secrets,
        skipped=report.skipped,
    )
    return report


def _retire_old_keys(path: Path, keyring: Keyring) -> int:
    """Keep only the newest :data:`KEEP_KEYS` keys in the key file; returns how many it
    lists. The file's format is one base64 key per line, newest first."""
    lines = [line.strip() for line in path.read_bytes().decode("ascii").splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) <= KEEP_KEYS:
        return len(keys)
    kept = "".join(f"{line}\n" for line in keys[:KEEP_KEYS]).encode("ascii")
    trimmed = Keyring.from_file_content(kept, source=str(path))
    if trimmed.key_ids != keyring.key_ids[:KEEP_KEYS]:  # never write a ring we did not mean
        raise KeyringError("the key file does not match the running keyring")
    replace_secret_file(path, kept)
    log.info("master_keys_retired", kept=list(trimmed.key_ids), retired=len(keys) - KEEP_KEYS)
    return KEEP_KEYS
