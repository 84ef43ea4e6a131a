"""How a helpdesk's own words map onto the inbound API's commands (issue 17).

The gateway's inbound endpoint (``POST /api/inbound/{tenant}/{plugin}``) understands four
commands: ``reply`` (to the customer), ``note`` (agents only), ``handled`` (the console
shows the chat as dealt with in the helpdesk; the customer's chat stays open) and
``close``. Helpdesks do not speak that language: a Zendesk trigger knows whether the
latest comment is public and what the ticket status is called; a Freshdesk automation
rule knows a status number. Each built-in helpdesk plugin therefore declares an
:class:`InboundDialect` — the vendor knowledge (which statuses mean "handled", whether
the vendor can sign requests) lives with the vendor's plugin, and the gateway applies it
without knowing any vendor. Pure data and pure functions: no I/O, no gateway imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Command = Literal["reply", "note", "handled", "close", "ignored"]

#: How a command is written in the body; ``comment`` (with ``public``) and ``status``
#: (with ``status``) are translated by the dialect into one of the four commands.
Action = Literal["reply", "note", "handled", "close", "comment", "status"]

_TRUE = frozenset({"true", "1", "yes", "public"})
_FALSE = frozenset({"false", "0", "no", "private", "internal"})


class DialectError(ValueError):
    """The body's vendor fields cannot be understood (``str()`` is safe to show)."""


@dataclass(frozen=True, slots=True)
class InboundDialect:
    """One helpdesk's vocabulary.

    ``handled_statuses`` / ``close_statuses``: ticket statuses (lower-cased names or
    numbers as the vendor's placeholders print them) that mark the chat handled or close
    it; any other status is ``ignored`` (answered 200 so the vendor does not retry).
    ``setup``: the wiring instructions and body templates shown by ``cipherdesk plugins
    describe``. ``token_auth``: the vendor cannot compute an HMAC (Freshdesk automation
    webhooks), so the inbound secret may arrive as a bearer token — then the body must
    carry its own event id and timestamp for replay protection (gateway/http/inbound.py).
    """

    vendor: str
    handled_statuses: frozenset[str] = field(default_factory=frozenset)
    close_statuses: frozenset[str] = field(default_factory=frozenset)
    token_auth: bool = False
    #: How an admin wires the helpdesk to the inbound API (``cipherdesk plugins describe``).
    setup: str = ""

    def command(self, action: Action, public: bool | str | None, status: str | None) -> Command:
        """The command a body asks for; raises :class:`DialectError` when it is unclear."""
        if action == "comment":
            return "reply" if _visibility(public) else "note"
        if action == "status":
            if status is None or not status.strip():
                raise DialectError("a status action needs status")
            value = status.strip().lower()
            if value in self.close_statuses:
                return "close"
            if value in self.handled_statuses:
                return "handled"
            return "ignored"
        return action


def _visibility(public: bool | str | None) -> bool:
    """Zendesk placeholders print booleans as text ("true"/"false"); JSON bodies may send
    a real boolean. A comment of unknown visibility is treated as **private**: showing an
    internal note to a customer is the one mistake this must never make."""
    if isinstance(public, bool):
        return public
    if public is None:
        return False
    value = public.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise DialectError("public must be true or false")


#: Plugins without a dialect of their own (the signed webhook, third-party plugins).
GENERIC = InboundDialect(vendor="generic")
