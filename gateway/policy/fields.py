"""One free-text field through the policy, as a message would go.

Chat fields (profile, verified identity, close reason) and staff-entered text (incident
titles, approval reasons, API-token names) are shown to other people, queued for plugins,
written to the audit log: a card number typed into one of them must be masked exactly as
in a message. A value the policy would block is replaced, never stored as typed.
"""

from __future__ import annotations

from gateway.policy.engine import PolicyEngine
from gateway.policy.types import Direction

REMOVED = "[removed]"
"""What a blocked field becomes (the field stays, so the record keeps its shape)."""


def screen_text(
    engine: PolicyEngine,
    value: str,
    direction: Direction,
    audience: str | None = None,
    *,
    expected: frozenset[str] = frozenset(),
) -> str:
    """``value`` masked by ``engine`` for ``direction`` -- and further for ``audience``
    (``export``: records kept outside the chat) when given; :data:`REMOVED` if blocked.
    Findings of the ``expected`` kinds are what the field is for and are left alone."""
    if not value:
        return value
    decision = engine.evaluate(value, direction)
    if expected:
        decision = engine.without(value, decision, expected, direction)
    if decision.text is None:
        return REMOVED
    if audience is None:
        return decision.text
    shown = engine.for_audience(value, decision, audience)
    return shown if shown is not None else REMOVED
