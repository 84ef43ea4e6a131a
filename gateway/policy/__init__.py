"""cipherdesk's policy engine: keywords, personal data and links, checked on every message.

Self-contained (imports nothing else from ``gateway``); the gateway wires it::

    registry = PolicyRegistry()
    engine = registry.engine_for(tenant_id, tenant_settings)
    decision = engine.evaluate(text, "customer")   # Decision(action, text, findings, notice)

See ``config`` for the default actions per kind and direction.
"""

from .config import DEFAULT_ACTIONS, DEFAULT_MASKS, PolicyConfig
from .engine import PolicyEngine
from .errors import PolicyConfigError
from .keywords import KeywordRule, load_keyword_file
from .registry import PolicyRegistry
from .types import Action, Decision, Direction, Finding

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_MASKS",
    "Action",
    "Decision",
    "Direction",
    "Finding",
    "KeywordRule",
    "PolicyConfig",
    "PolicyConfigError",
    "PolicyEngine",
    "PolicyRegistry",
    "load_keyword_file",
]
