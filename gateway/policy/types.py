"""The values the policy engine hands to the gateway: who sent a message, what fired, what to do.

They are frozen so a decision can be logged, audited and shared across tasks without anyone
mutating it after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["customer", "agent"]
"""Who SENT the message: policy differs for what customers may send and what agents may send."""

Action = Literal["allow", "mask", "flag", "block"]
"""What happens to a finding (and, for the most severe one, to the whole message)."""

DIRECTIONS: tuple[Direction, ...] = ("customer", "agent")
ACTIONS: tuple[Action, ...] = ("allow", "mask", "flag", "block")
Audience = Literal["agent", "plugin", "export"]
"""Who reads a message besides its sender: the chat's recipient (``agent`` covers both
directions' live recipient), plugins/helpdesk vendors, exports and transcripts. Logs never get
message text at all."""
AUDIENCES: tuple[str, ...] = ("plugin", "export")
AudienceRule = Literal["show", "mask", "drop"]
"""``show``: what the recipient sees; ``mask``: masked with the audience mask style; ``drop``:
the finding's characters are replaced by ``[removed]``."""
AUDIENCE_RULES: tuple[str, ...] = ("show", "mask", "drop")
SEVERITY: dict[str, int] = {action: rank for rank, action in enumerate(ACTIONS)}
"""allow < mask < flag < block: the message takes the most severe action of its findings."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired, with offsets into the ORIGINAL text, for the audit log and admins.

    ``kind`` is the detector kind (``card``, ``cn_id``, ``link_external``...) or the keyword
    category; ``rule`` names the exact rule (``card.luhn``, ``keyword:刷单``) so an admin can
    see why a message was treated the way it was.
    """

    kind: str
    start: int
    end: int
    rule: str
    action: Action


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one policy pass: what the recipient sees and what the sender is told.

    ``text`` is exactly what the recipient sees (masked/defanged), ``None`` when blocked.
    ``findings`` include ``allow`` findings (useful in "test a message"); ``kinds`` lists only
    the kinds that changed something (masked, flagged or blocked) -- what a ``notice`` frame
    carries.
    """

    action: Action
    text: str | None
    findings: tuple[Finding, ...] = ()
    notice: str | None = None
    kinds: tuple[str, ...] = field(default=())
    split_kinds: tuple[str, ...] = field(default=())
    """Kinds completed across consecutive messages (``split.SplitWindow``): supervisors are
    alerted even when the kind's action is only ``mask``."""

    @property
    def blocked(self) -> bool:
        """True when the message must not be delivered."""
        return self.action == "block"
