"""Fuzz target: the policy engine through its public entry point only.

``PolicyRegistry().engine_for(tenant, settings).evaluate(text, direction)`` — the
normaliser and every detector behind it (another part of the code base owns the
internals; the harness depends on nothing but this API). Inputs become arbitrary
Unicode, lone surrogates included (JSON ``\\ud800`` escapes reach the engine as such).
Contract: never raises on text; the action is one of the four; masked or allowed text is
a string; a blocked message carries no text. libFuzzer's ``-timeout`` catches hangs
(catastrophic regex backtracking and the like).
"""

from __future__ import annotations

from gateway.policy import PolicyRegistry
from gateway.policy.types import ACTIONS

_REGISTRY = PolicyRegistry()
_ENGINE = _REGISTRY.engine_for("fuzz", {})


def _text(data: bytes) -> str:
    # Pairs of bytes as UTF-16 code units: reaches CJK, full-width digits and surrogates.
    if len(data) % 2:
        data = data[:-1]
    return data.decode("utf-16-le", "surrogatepass")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    direction = "agent" if data[0] & 1 else "customer"
    body = data[1:]
    text = _text(body) if data[0] & 2 else body.decode("utf-8", "surrogateescape")
    decision = _ENGINE.evaluate(text, direction)
    assert decision.action in ACTIONS
    if decision.action == "block":
        assert decision.text is None
    else:
        assert isinstance(decision.text, str)
