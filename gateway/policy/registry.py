"""Per-tenant engines, built lazily and cached by a fingerprint of the tenant's settings.

Building an engine compiles an automaton over thousands of terms, so it happens once per
settings change, not per message. ``reload`` re-reads keyword files whose modification time or
size changed, so lists edited on disk take effect without a restart; if a file became invalid
the tenant keeps its previous engine (never "no policy") and ``reload`` raises to say why.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import PolicyConfig
from .engine import PolicyEngine
from .errors import PolicyConfigError

Stamp = tuple[tuple[str, int, int], ...]


def _stamp(paths: Iterable[str]) -> Stamp:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((path, -1, -1))
    return tuple(out)


def _default_domains(settings: Mapping[str, Any]) -> Iterable[str]:
    domains = settings.get("allowed_link_domains") or ()
    return [d for d in domains if isinstance(d, str)]


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    config: PolicyConfig
    stamp: Stamp
    engine: PolicyEngine


class PolicyRegistry:
    """Hands out the right ``PolicyEngine`` for a tenant; thread-safe."""

    def __init__(self, link_domains: Callable[[Mapping[str, Any]], Iterable[str]]
                 = _default_domains) -> None:
        """``link_domains`` extracts a tenant's allowed link domains from its settings (by
        default ``tenant_settings["allowed_link_domains"]``, merged with
        ``policy.allowed_link_domains``)."""
        self._link_domains = link_domains
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # Hot path: the same settings *object* (the gateway caches tenant rows) maps straight
        # to its engine, skipping config parsing. The object is kept alive by the entry, so
        # its id cannot be reused while cached.
        self._by_identity: dict[str, tuple[Mapping[str, Any], PolicyEngine]] = {}

    def engine_for(self, tenant_id: str, tenant_settings: Mapping[str, Any]) -> PolicyEngine:
        """The tenant's engine, rebuilt only when its policy settings changed.

        Raises ``PolicyConfigError`` for invalid settings on first build; once a tenant has a
        working engine, invalid new settings raise too, and the old engine stays cached.
        """
        hit = self._by_identity.get(tenant_id)
        if hit is not None and hit[0] is tenant_settings:
            return hit[1]
        engine = self._engine_for(tenant_id, tenant_settings)
        self._by_identity[tenant_id] = (tenant_settings, engine)
        return engine

    def _engine_for(self, tenant_id: str, tenant_settings: Mapping[str, Any]) -> PolicyEngine:
        config = PolicyConfig.from_dict(tenant_settings.get("policy") or {},
                                        allowed_link_domains=self._link_domains(tenant_settings))
        fingerprint = config.fingerprint()
        entry = self._entries.get(tenant_id)
        if entry is not None and entry.fingerprint == fingerprint:
            return entry.engine
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is not None and entry.fingerprint == fingerprint:
                return entry.engine
            entry = self._build(config, fingerprint)
            self._entries[tenant_id] = entry
            return entry.engine

    def reload(self) -> None:
        """Rebuild engines whose keyword files changed on disk (mtime/size checked)."""
        errors: list[str] = []
        with self._lock:
            for tenant_id, entry in list(self._entries.items()):
                if _stamp(entry.config.keyword_files) == entry.stamp:
                    continue
                try:
                    self._entries[tenant_id] = self._build(entry.config, entry.fingerprint)
                    self._by_identity.pop(tenant_id, None)
                except PolicyConfigError as exc:
                    errors.append(f"tenant {tenant_id}: {exc}")
        if errors:
            raise PolicyConfigError("; ".join(errors))

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's cached engine (e.g. when the tenant is deleted)."""
        with self._lock:
            self._entries.pop(tenant_id, None)

    @staticmethod
    def _build(config: PolicyConfig, fingerprint: str) -> _Entry:
        stamp = _stamp(config.keyword_files)  # before reading: a later edit is seen next time
        return _Entry(fingerprint, config, stamp, PolicyEngine(config))
