"""Shared canned responses of a tenant: shortcuts such as ``/refund``, optionally for one
queue, with ``{customer_name}`` / ``{agent_name}`` variables.

Why shared: canned replies are the team's wording (refund policy, security reminders);
kept per browser tab they drift apart and vanish with the tab. They live in the tenant's
settings (``settings["canned"]``, no schema change) and are written by admins
(``tenant_manage``) through ``PUT /api/canned``; every agent reads them.

Every text is run through the tenant's policy as an *agent* message when it is saved: a
reply the policy would block (a card number, a link to an unapproved site) is refused
with the kinds it contains, so the list never offers something that cannot be sent. The
message is still checked again when it is sent, like any other.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

MAX_RESPONSES = 200
VARIABLES = ("customer_name", "agent_name")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Shortcut = Annotated[str, Meta(pattern=r"^/[a-z0-9_\-]{1,32}$")]
QueueName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
ReplyText = Annotated[str, Meta(min_length=1, max_length=2000)]


class CannedResponse(Struct, forbid_unknown_fields=True, omit_defaults=True):
    shortcut: Shortcut
    text: ReplyText
    queue: QueueName | None = None  # None: every queue


class CannedList(Struct, forbid_unknown_fields=True):
    responses: Annotated[list[CannedResponse], Meta(max_length=MAX_RESPONSES)]


class CannedError(ValueError):
    """A list that cannot be saved; ``code`` and ``index`` say what and where."""

    def __init__(self, code: str, message: str, index: int, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.index = index
        self.extra = extra


def load(settings: dict[str, Any]) -> list[CannedResponse]:
    """The tenant's responses (an unreadable stored value reads as none)."""
    try:
        return msgspec.convert({"responses": settings.get("canned", [])}, CannedList).responses
    except msgspec.ValidationError:
        return []


def check(responses: list[CannedResponse], engine: Any) -> None:
    """Refuse duplicate shortcuts (per queue), unknown variables and texts the policy
    would block when an agent sends them."""
    seen: set[tuple[str, str | None]] = set()
    for i, r in enumerate(responses):
        if (r.shortcut, r.queue) in seen:
            raise CannedError("duplicate_shortcut", f"{r.shortcut} is defined twice", i)
        seen.add((r.shortcut, r.queue))
        unknown = sorted({v for v in _VARIABLE.findall(r.text) if v not in VARIABLES})
        if unknown:
            raise CannedError(
                "unknown_variable",
                "unknown variable {"
                + unknown[0]
                + "}; use "
                + ", ".join("{" + v + "}" for v in VARIABLES),
                i,
            )
        decision = engine.evaluate(_VARIABLE.sub("x", r.text), "agent")
        if decision.action == "block":
            raise CannedError(
                "canned_blocked", "the policy would block this reply", i, kinds=list(decision.kinds)
            )


def to_settings(responses: list[CannedResponse]) -> list[dict[str, Any]]:
    return msgspec.to_builtins(responses)
