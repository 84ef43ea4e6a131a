"""A tenant's policy settings, validated once, with defaults that are safe with zero config.

Default actions (sender -> recipient) and mask styles:

==================  ==========  ==========  =========  =======================================
kind                customer    agent       mask       why
==================  ==========  ==========  =========  =======================================
card                mask        block       last4      customer told to use the payment page;
                                                       agents never send full card numbers
cn_id               mask        block       last4      ID numbers only travel verified channels
iban                mask        block       last4      same as cards
bank_account        mask        block       last4      (keyword-context account numbers)
phone               allow       allow       last4      contact details customers choose to give
email               allow       allow       email      support needs them to find accounts
otp                 mask        block       full       staff never ask for codes: an agent doing
password            mask        block       full       so is phishing or a compromised account
api_key             mask        block       full
private_key         mask        block       redact
link                mask        allow       defang     allowed domain (agents may link there)
link_external       mask        block       defang     agents: only the tenant's domains
link_homoglyph      flag        block       defang     punycode / mixed-script hosts
phishing            flag        block       keep       keyword categories of the built-in list
social_engineering  flag        block       keep
fraud               flag        block       keep
abuse               mask        block       full
(other category)    flag        flag        full
==================  ==========  ==========  =========  =======================================

``"secret"`` in ``policy.actions`` / ``policy.mask`` sets otp, password, api_key and
private_key at once. A keyword whose own action is set uses it in both directions.

Settings shape (all optional)::

    {"actions": {"card": {"customer": "mask", "agent": "block"}, "email": "mask"},
     "mask": {"card": "last4"},
     "keywords": [{"term": "刷单", "category": "fraud", "action": "block"}],
     "keyword_files": ["/etc/cipherdesk/words.tsv"],
     "builtin_keywords": true,
     "allowed_link_domains": ["example.com"],
     "phone_regions": ["CN"]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import PolicyConfigError
from .keywords import KeywordRule, rules_from_settings
from .masking import is_valid_style
from .types import ACTIONS, DIRECTIONS, Action, Direction

FAMILIES: dict[str, tuple[str, ...]] = {"secret": ("otp", "password", "api_key", "private_key")}

_DEFAULTS: dict[str, tuple[Action, Action, str]] = {
    "card": ("mask", "block", "last4"),
    "cn_id": ("mask", "block", "last4"),
    "iban": ("mask", "block", "last4"),
    "bank_account": ("mask", "block", "last4"),
    "phone": ("allow", "allow", "last4"),
    "email": ("allow", "allow", "email"),
    "otp": ("mask", "block", "full"),
    "password": ("mask", "block", "full"),
    "api_key": ("mask", "block", "full"),
    "private_key": ("mask", "block", "redact"),
    "link": ("mask", "allow", "defang"),
    "link_external": ("mask", "block", "defang"),
    "link_homoglyph": ("flag", "block", "defang"),
    "phishing": ("flag", "block", "keep"),
    "social_engineering": ("flag", "block", "keep"),
    "fraud": ("flag", "block", "keep"),
    "abuse": ("mask", "block", "full"),
}
_FALLBACK: tuple[Action, Action, str] = ("flag", "flag", "full")

DEFAULT_ACTIONS: Mapping[str, Mapping[Direction, Action]] = MappingProxyType(
    {k: MappingProxyType({"customer": c, "agent": a}) for k, (c, a, _) in _DEFAULTS.items()}
)
DEFAULT_MASKS: Mapping[str, str] = MappingProxyType({k: s for k, (_, _, s) in _DEFAULTS.items()})


def _expand(key: str) -> tuple[str, ...]:
    return FAMILIES.get(key, (key,))


def _parse_actions(raw: object) -> dict[str, dict[Direction, Action]]:
    if not isinstance(raw, Mapping):
        raise PolicyConfigError("policy.actions: expected an object of kind -> action")
    out: dict[str, dict[Direction, Action]] = {}
    for key, value in raw.items():
        where = f"policy.actions.{key}"
        if isinstance(value, str):
            value = dict.fromkeys(DIRECTIONS, value)
        if not isinstance(value, Mapping):
            raise PolicyConfigError(f"{where}: expected an action or {{customer, agent}}")
        per: dict[Direction, Action] = {}
        for direction, action in value.items():
            if direction not in DIRECTIONS:
                raise PolicyConfigError(f"{where}: unknown direction {direction!r}")
            if action not in ACTIONS:
                raise PolicyConfigError(
                    f"{where}.{direction}: unknown action {action!r} (use {', '.join(ACTIONS)})"
                )
            per[direction] = action
        for kind in _expand(str(key).lower()):
            out.setdefault(kind, {}).update(per)
    return out


def _parse_masks(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise PolicyConfigError("policy.mask: expected an object of kind -> style")
    out: dict[str, str] = {}
    for key, style in raw.items():
        if not isinstance(style, str) or not is_valid_style(style):
            raise PolicyConfigError(
                f"policy.mask.{key}: unknown style {style!r} "
                "(use lastN, full, email, keep, redact or defang)"
            )
        for kind in _expand(str(key).lower()):
            out[kind] = style
    return out


def _str_list(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise PolicyConfigError(f"{where}: expected a list of strings")
    items = tuple(raw)
    if not all(isinstance(i, str) for i in items):
        raise PolicyConfigError(f"{where}: expected a list of strings")
    return items


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that shapes a tenant's ``PolicyEngine``; immutable and fingerprintable."""

    actions: Mapping[str, Mapping[Direction, Action]] = field(
        default_factory=lambda: DEFAULT_ACTIONS)
    masks: Mapping[str, str] = field(default_factory=lambda: DEFAULT_MASKS)
    keywords: tuple[KeywordRule, ...] = ()
    keyword_files: tuple[str, ...] = ()
    builtin_keywords: bool = True
    allowed_link_domains: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ("CN",)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None,
                  allowed_link_domains: Iterable[str] = ()) -> PolicyConfig:
        """Validate ``tenant_settings["policy"]``; every error names the offending setting."""
        data = data or {}
        if not isinstance(data, Mapping):
            raise PolicyConfigError("policy: expected an object")
        actions = {k: dict(v) for k, v in DEFAULT_ACTIONS.items()}
        for kind, per in _parse_actions(data.get("actions", {})).items():
            actions.setdefault(kind, dict(zip(DIRECTIONS, _FALLBACK[:2], strict=True)))
            actions[kind].update(per)
        masks = dict(DEFAULT_MASKS)
        masks.update(_parse_masks(data.get("mask", {})))
        keywords = data.get("keywords", [])
        if not isinstance(keywords, list):
            raise PolicyConfigError("policy.keywords: expected a list")
        domains = _str_list(data.get("allowed_link_domains"), "policy.allowed_link_domains")
        regions = _str_list(data.get("phone_regions", ["CN"]), "policy.phone_regions")
        return cls(
            actions=MappingProxyType({k: MappingProxyType(v) for k, v in actions.items()}),
            masks=MappingProxyType(masks),
            keywords=tuple(rules_from_settings(keywords)),
            keyword_files=_str_list(data.get("keyword_files"), "policy.keyword_files"),
            builtin_keywords=bool(data.get("builtin_keywords", True)),
            allowed_link_domains=tuple(dict.fromkeys([*domains, *allowed_link_domains])),
            phone_regions=regions or ("CN",),
        )

    def action_for(self, kind: str, direction: Direction) -> Action:
        """The configured action for a finding kind (or keyword category) and sender."""
        per = self.actions.get(kind)
        if per is None:
            return _FALLBACK[0] if direction == "customer" else _FALLBACK[1]
        return per.get(direction, _FALLBACK[0])

    def mask_for(self, kind: str) -> str:
        """The mask style of a kind (``full`` for unknown keyword categories)."""
        return self.masks.get(kind, _FALLBACK[2])

    def fingerprint(self) -> str:
        """A stable digest of the settings: engines are cached by it."""
        payload = {
            "actions": {k: dict(v) for k, v in sorted(self.actions.items())},
            "masks": dict(sorted(self.masks.items())),
            "keywords": [(r.term, r.category, r.action) for r in self.keywords],
            "keyword_files": list(self.keyword_files),
            "builtin": self.builtin_keywords,
            "domains": list(self.allowed_link_domains),
            "regions": list(self.phone_regions),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
