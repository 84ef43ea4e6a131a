"""Per-tenant engines, built off the event loop and cached by a fingerprint of their inputs.

Building an engine compiles an automaton over thousands of terms, so it happens once per
change, never per message, and never on the event loop: ``engine`` (the gateway's path) runs
the build in a worker thread under a time budget, and every input is size-bounded (schema,
uploaded lists, operator files). While a new engine is built, or if building it fails, the
tenant keeps its previous engine -- never "no policy"; a tenant with none yet gets the
default policy.

Inputs of a tenant's engine: ``settings["policy"]`` (validated by ``PolicyConfig``), the
tenant's uploaded keyword lists (fetched through ``lists_loader`` when
``settings["keyword_lists_rev"]`` changes, so every node notices an upload) and the
operator's keyword files (config file only). ``reload`` re-reads operator files whose
modification time or size changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import PolicyConfig
from .engine import PolicyEngine
from .errors import PolicyConfigError
from .keywords import KeywordRule, load_keyword_file
from .lists import KeywordList, check_tenant_totals, parse_list

LISTS_REV = "keyword_lists_rev"
"""Key of ``tenant.settings`` holding the revision of the tenant's uploaded lists."""

ListsLoader = Callable[[str], Awaitable[Sequence[tuple[str, str]]]]
"""tenant id -> its uploaded lists as (name, text)."""

Stamp = tuple[tuple[str, int, int], ...]


class PolicyBuildTimeout(PolicyConfigError):
    """Building the engine took longer than its budget (the previous engine stays)."""


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
    engine: PolicyEngine


class PolicyRegistry:
    """Hands out the right ``PolicyEngine`` for a tenant; thread-safe."""

    def __init__(
        self,
        link_domains: Callable[[Mapping[str, Any]], Iterable[str]] = _default_domains,
        *,
        operator_files: Sequence[str] = (),
        lists_loader: ListsLoader | None = None,
        build_timeout: float = 10.0,
    ) -> None:
        """``link_domains`` extracts a tenant's allowed link domains from its settings (by
        default ``tenant_settings["allowed_link_domains"]``, merged with
        ``policy.allowed_link_domains``); ``operator_files`` are the installation's keyword
        files (config file ``[policy] keyword_files``); ``lists_loader`` fetches a tenant's
        uploaded lists from the store."""
        self._link_domains = link_domains
        self._operator_files = tuple(operator_files)
        self._lists_loader = lists_loader
        self.build_timeout = build_timeout
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._operator: tuple[Stamp, tuple[KeywordRule, ...]] | None = None
        self._pending: dict[tuple[str, str], asyncio.Future[PolicyEngine]] = {}
        self._default: PolicyEngine | None = None
        # Hot path: the same settings *object* (the gateway caches tenant rows) maps straight
        # to its engine, skipping config parsing. The object is kept alive by the entry, so
        # its id cannot be reused while cached.
        self._by_identity: dict[str, tuple[Mapping[str, Any], PolicyEngine]] = {}

    # ------------------------------------------------------------------ inputs

    def config_for(
        self, tenant_settings: Mapping[str, Any], *, strict: bool = False
    ) -> PolicyConfig:
        """The tenant's ``PolicyConfig``: ``strict`` for writes (the admin API); the lenient
        read keeps rows written before the schema became strict working."""
        return PolicyConfig.from_dict(
            tenant_settings.get("policy") or {},
            allowed_link_domains=self._link_domains(tenant_settings),
            strict=strict,
        )

    _config = config_for

    def _operator_rules(self) -> tuple[KeywordRule, ...]:
        stamp = _stamp(self._operator_files)
        cached = self._operator
        if cached is not None and cached[0] == stamp:
            return cached[1]
        rules: list[KeywordRule] = []
        for path in self._operator_files:
            rules.extend(load_keyword_file(path))
        self._operator = (stamp, tuple(rules))
        return self._operator[1]

    def _fingerprint(self, config: PolicyConfig, lists_rev: str) -> str:
        blob = "|".join((config.fingerprint(), lists_rev, repr(_stamp(self._operator_files))))
        return hashlib.sha256(blob.encode()).hexdigest()

    def _make(self, config: PolicyConfig, lists: Sequence[KeywordList]) -> PolicyEngine:
        check_tenant_totals(lists)
        extra = [*self._operator_rules(), *(r for k in lists for r in k.rules)]
        return PolicyEngine(config, extra_rules=extra)

    # ------------------------------------------------------------------ sync (threads, CLI)

    def engine_for(
        self, tenant_id: str, tenant_settings: Mapping[str, Any], lists: Sequence[KeywordList] = ()
    ) -> PolicyEngine:
        """The tenant's engine, built synchronously (worker threads, CLI, tests).

        Raises ``PolicyConfigError`` for invalid settings; the old engine stays cached.
        """
        hit = self._by_identity.get(tenant_id)
        if hit is not None and hit[0] is tenant_settings:
            return hit[1]
        config = self._config(tenant_settings)
        fingerprint = self._fingerprint(config, "|".join(k.digest for k in lists))
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is None or entry.fingerprint != fingerprint:
                entry = _Entry(fingerprint, self._make(config, lists))
                self._entries[tenant_id] = entry
        self._by_identity[tenant_id] = (tenant_settings, entry.engine)
        return entry.engine

    # ------------------------------------------------------------------ async (the gateway)

    async def engine(self, tenant_id: str, tenant_settings: Mapping[str, Any]) -> PolicyEngine:
        """The tenant's engine for live traffic: never blocks the loop, never "no policy".

        A rebuild runs in a worker thread (one per tenant and fingerprint, shared by
        concurrent callers) under ``build_timeout``; on failure or timeout the previous
        engine (or the default policy) is returned.
        """
        hit = self._by_identity.get(tenant_id)
        if hit is not None and hit[0] is tenant_settings:
            return hit[1]
        try:
            return await self.build(tenant_id, tenant_settings)
        except PolicyConfigError:
            entry = self._entries.get(tenant_id)
            return entry.engine if entry is not None else await self.default_engine()

    async def build(
        self,
        tenant_id: str,
        tenant_settings: Mapping[str, Any],
        *,
        config: PolicyConfig | None = None,
    ) -> PolicyEngine:
        """Build (or reuse) the tenant's engine off-loop; raises ``PolicyConfigError`` on
        invalid inputs and ``PolicyBuildTimeout`` when the budget runs out. The admin API
        calls this before storing new settings, so what is stored is known to build."""
        config = config or self._config(tenant_settings)
        rev = str(tenant_settings.get(LISTS_REV) or "")
        fingerprint = self._fingerprint(config, rev)
        entry = self._entries.get(tenant_id)
        if entry is not None and entry.fingerprint == fingerprint:
            self._by_identity[tenant_id] = (tenant_settings, entry.engine)
            return entry.engine
        key = (tenant_id, fingerprint)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build_entry(tenant_id, config, rev, fingerprint))
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        try:
            engine = await asyncio.wait_for(asyncio.shield(pending), self.build_timeout)
        except TimeoutError:
            raise PolicyBuildTimeout(
                f"policy: building the policy took longer than {self.build_timeout:g} s"
            ) from None
        self._by_identity[tenant_id] = (tenant_settings, engine)
        return engine

    async def _build_entry(
        self, tenant_id: str, config: PolicyConfig, rev: str, fingerprint: str
    ) -> PolicyEngine:
        raw: Sequence[tuple[str, str]] = ()
        if rev and self._lists_loader is not None:
            raw = await self._lists_loader(tenant_id)

        def work() -> PolicyEngine:
            lists = [parse_list(name, text) for name, text in raw]
            return self._make(config, lists)

        engine = await asyncio.to_thread(work)
        with self._lock:
            self._entries[tenant_id] = _Entry(fingerprint, engine)
        return engine

    async def default_engine(self) -> PolicyEngine:
        """The default policy (built once, off-loop)."""
        if self._default is None:
            self._default = await asyncio.to_thread(PolicyEngine, PolicyConfig())
        return self._default

    # ------------------------------------------------------------------ maintenance

    def reload(self) -> None:
        """Re-read operator keyword files that changed on disk (mtime/size checked); engines
        are rebuilt lazily on their next use. Raises when a file became invalid (the engines
        built from the old content stay in force)."""
        with self._lock:
            self._operator_rules()
            self._by_identity.clear()

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's cached engine (e.g. when the tenant is deleted)."""
        with self._lock:
            self._entries.pop(tenant_id, None)
            self._by_identity.pop(tenant_id, None)
