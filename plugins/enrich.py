"""Agent-side lookups ("enrich" hooks) with a strict time budget.

When an agent opens a chat, the console may show what the helpdesk knows about the
customer (open tickets...). That call sits on an agent's screen, so it gets a hard
timeout and never raises: a slow or failing plugin just shows nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from plugins.api import CustomerIdentity, Plugin, Scope

log = structlog.get_logger("cipherdesk.plugins.enrich")

DEFAULT_TIMEOUT = 1.5


def has_enrich(plugin: Any) -> bool:
    return callable(getattr(plugin, "enrich", None))


async def run_enrich(
    plugin: Plugin,
    customer: CustomerIdentity,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the documented API
) -> dict[str, Any] | None:
    """``plugin.enrich(customer)`` within ``timeout`` seconds.

    Returns None when the plugin has no enrich hook, lacks the ``customer.identity``
    scope (it may not see who the customer is), times out, fails, or returns a non-dict.
    """
    if not has_enrich(plugin):
        return None
    if Scope.CUSTOMER_IDENTITY.value not in plugin.info.scopes:
        return None
    try:
        async with asyncio.timeout(timeout):
            result = await plugin.enrich(customer)  # type: ignore[attr-defined]
    except TimeoutError:
        log.info("plugin.enrich_timeout", plugin=plugin.info.name)
        return None
    except Exception as exc:
        log.info("plugin.enrich_failed", plugin=plugin.info.name, error=type(exc).__name__)
        return None
    return result if isinstance(result, dict) else None
