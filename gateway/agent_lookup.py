"""Find agents of one tenant by what people type (e-mail, name, id) and label ids.

Why: the audit log stores agent ids (``agt_…``), which no admin recognises. The audit API
shows names next to ids and filters by name or e-mail through these two helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.base import Agent, Store


def agent_label(agent: Agent) -> str:
    """How an admin recognises an agent: the display name, else the e-mail address."""
    return agent.display_name or agent.email


def match_agents(agents: Sequence[Agent], query: str) -> list[Agent]:
    """Agents that ``query`` names: an exact id, e-mail or display name (case-insensitive)
    first; otherwise every agent whose e-mail or name contains it."""
    q = query.strip().casefold()
    if not q:
        return []
    exact = [
        a
        for a in agents
        if a.id == query.strip()
        or a.email.casefold() == q
        or (a.display_name or "").casefold() == q
    ]
    if exact:
        return exact
    return [a for a in agents if q in a.email.casefold() or q in (a.display_name or "").casefold()]


async def tenant_agents(store: Store, tenant_id: str) -> list[Agent]:
    """Every agent of the tenant, disabled ones included (they appear in old records)."""
    return await store.list_agents(tenant_id)
