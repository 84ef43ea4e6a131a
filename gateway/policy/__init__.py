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
from .lists import KeywordList, parse_list
from .registry import LISTS_REV, PolicyBuildTimeout, PolicyRegistry
from .types import Action, Decision, Direction, Finding

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_MASKS",
    "LISTS_REV",
    "Action",
    "Decision",
    "Direction",
    "Finding",
    "KeywordList",
    "KeywordRule",
    "PolicyBuildTimeout",
    "PolicyConfig",
    "PolicyConfigError",
    "PolicyEngine",
    "PolicyRegistry",
    "load_keyword_file",
    "parse_list",
]
