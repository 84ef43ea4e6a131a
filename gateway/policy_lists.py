"""Tenant keyword lists: the gateway side (store access, revision bump, audit-free helpers).

Why a module: the admin API and the policy registry both need "a tenant's lists"; this is
the one place that reads and writes them, so the bounds of ``gateway.policy.lists`` are
applied on every write and the tenant's ``keyword_lists_rev`` setting always matches the
stored lists (every node rebuilds its engine when it changes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.policy import LISTS_REV, PolicyConfigError, parse_list
from gateway.policy.lists import MAX_LISTS, MAX_TENANT_TERMS, KeywordList, lists_revision
from gateway.policy.registry import ListsLoader
from gateway.store.base import KeywordListRecord, Store, Tenant


def keyword_lists_loader(store: Store) -> ListsLoader:
    """The registry's loader: a tenant's lists as (name, text)."""

    async def load(tenant_id: str) -> Sequence[tuple[str, str]]:
        return [(r.name, r.body) for r in await store.list_keyword_lists(tenant_id)]

    return load


async def save_keyword_list(
    store: Store, tenant: Tenant, name: str, text: str, actor: str, now: float
) -> KeywordList:
    """Validate (off the event loop) and store a list, then bump the tenant's revision.

    Raises ``PolicyConfigError`` (messages name the list and line, never its content)."""
    parsed = await asyncio.to_thread(parse_list, name, text)
    existing = [r for r in await store.list_keyword_lists(tenant.id) if r.name != name]
    if len(existing) + 1 > MAX_LISTS:
        raise PolicyConfigError(f"keyword lists: at most {MAX_LISTS} lists per tenant")
    total = sum(r.terms for r in existing) + len(parsed.rules)
    if total > MAX_TENANT_TERMS:
        raise PolicyConfigError(
            f"keyword lists: at most {MAX_TENANT_TERMS} terms per tenant (this upload would "
            f"make {total})"
        )
    await store.put_keyword_list(
        KeywordListRecord(
            tenant_id=tenant.id,
            name=name,
            body=text,
            terms=len(parsed.rules),
            digest=parsed.digest,
            updated_at=now,
            updated_by=actor,
        )
    )
    await _bump_revision(store, tenant)
    return parsed


async def delete_keyword_list(store: Store, tenant: Tenant, name: str) -> bool:
    """Remove a list (and bump the revision); False when there was none."""
    deleted = await store.delete_keyword_list(tenant.id, name)
    if deleted:
        await _bump_revision(store, tenant)
    return deleted


async def _bump_revision(store: Store, tenant: Tenant) -> None:
    records = await store.list_keyword_lists(tenant.id)
    settings = dict(tenant.settings)
    if records:
        settings[LISTS_REV] = lists_revision((r.name, r.digest) for r in records)
    else:
        settings.pop(LISTS_REV, None)
    tenant.settings = settings
    await store.update_tenant(tenant)
