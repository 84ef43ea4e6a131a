"""Shared engines: building one compiles the keyword automaton, so tests reuse them."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine


@pytest.fixture(scope="session")
def engine() -> PolicyEngine:
    return PolicyEngine(PolicyConfig.from_dict({}, allowed_link_domains=["example.com"]))
