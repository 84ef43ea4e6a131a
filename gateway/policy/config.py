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
id_document         mask        block       last4      passports, permits (cue-context numbers)
phone               allow       allow       last4      contact details customers choose to give
im_account          allow       allow       last4      QQ numbers and WeChat IDs (cue-context)
birth_date          allow       allow       full       dates of birth (cue-context): staff verify
vehicle_plate       allow       allow       full       licence plates (京A12345): parking, car hire
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
     "builtin_keywords": true,
     "builtin_categories": ["political"],
     "allowed_link_domains": ["example.com"],
     "phone_regions": ["CN"]}

The schema is STRICT (``schema.py``): an unknown key is refused with an error naming it and the
keys that exist. Tenants never name server files: keyword files are an operator setting
(``[policy] keyword_files`` in the config file) and a tenant's own lists are uploaded as data
(``lists.py``); ``keyword_files`` in tenant settings is refused on write and ignored (with a log
line by the gateway) when an old row still holds it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import schema
from .errors import PolicyConfigError
from .keywords import KeywordRule, rules_from_settings
from .masking import is_valid_style
from .types import ACTIONS, AUDIENCE_RULES, AUDIENCES, DIRECTIONS, Action, AudienceRule, Direction

FAMILIES: dict[str, tuple[str, ...]] = {"secret": ("otp", "password", "api_key", "private_key")}

_DEFAULTS: dict[str, tuple[Action, Action, str]] = {
    "card": ("mask", "block", "last4"),
    "cn_id": ("mask", "block", "last4"),
    "iban": ("mask", "block", "last4"),
    "bank_account": ("mask", "block", "last4"),
    "id_document": ("mask", "block", "last4"),
    "phone": ("allow", "allow", "last4"),
    "im_account": ("allow", "allow", "last4"),
    "birth_date": ("allow", "allow", "full"),
    "vehicle_plate": ("allow", "allow", "full"),
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
    "political": ("flag", "block", "keep"),
    "name": ("allow", "allow", "name"),
    "address": ("allow", "allow", "address"),
}
_FALLBACK: tuple[Action, Action, str] = ("flag", "flag", "full")

DEFAULT_ACTIONS: Mapping[str, Mapping[Direction, Action]] = MappingProxyType(
    {k: MappingProxyType({"customer": c, "agent": a}) for k, (c, a, _) in _DEFAULTS.items()}
)
DEFAULT_MASKS: Mapping[str, str] = MappingProxyType({k: s for k, (_, _, s) in _DEFAULTS.items()})

_AUDIENCE_DEFAULTS: dict[str, tuple[AudienceRule, AudienceRule, str]] = {
    # kind: (plugin, export, audience mask style). Whatever the recipient sees masked stays
    # masked for every audience; these rows mask MORE for audiences outside the chat.
    "phone": ("mask", "mask", "phone"),
    "im_account": ("mask", "mask", "last4"),
    "birth_date": ("mask", "mask", "full"),
    "vehicle_plate": ("mask", "mask", "full"),
    "email": ("mask", "mask", "email"),
    "name": ("mask", "mask", "name"),
    "address": ("mask", "mask", "address"),
    "card": ("mask", "mask", "last4"),
    "cn_id": ("mask", "mask", "last4"),
    "iban": ("mask", "mask", "last4"),
    "bank_account": ("mask", "mask", "last4"),
    "id_document": ("mask", "mask", "last4"),
}
DEFAULT_AUDIENCES: Mapping[str, Mapping[str, AudienceRule]] = MappingProxyType(
    {k: MappingProxyType({"plugin": p, "export": e}) for k, (p, e, _) in _AUDIENCE_DEFAULTS.items()}
)
AUDIENCE_MASKS: Mapping[str, str] = MappingProxyType(
    {k: s for k, (_, _, s) in _AUDIENCE_DEFAULTS.items()}
)
"""The mask style used for an audience when the recipient's own style shows everything
(e.g. an agent sees a phone number; the helpdesk gets ``138****5678``)."""


def _expand(key: str) -> tuple[str, ...]:
    return FAMILIES.get(key, (key,))


def _parse_actions(raw: object) -> dict[str, dict[Direction, Action]]:
    if not isinstance(raw, Mapping):
        raise PolicyConfigError("policy.actions: expected an object of kind -> action")
    out: dict[str, dict[Direction, Action]] = {}
    for key, value in raw.items():
        where = f"policy.actions.{str(key)[:40]}"
        if not isinstance(key, str) or not schema.CATEGORY.fullmatch(key.lower()):
            raise PolicyConfigError(f"{where}: a kind is a lower-case name of 1-32 characters")
        if isinstance(value, str):
            value = dict.fromkeys(DIRECTIONS, value)
        if not isinstance(value, Mapping):
            raise PolicyConfigError(f"{where}: expected an action or {{customer, agent}}")
        per: dict[Direction, Action] = {}
        for direction, action in value.items():
            if direction not in DIRECTIONS:
                raise PolicyConfigError(f"{where}: unknown direction {schema.shown(direction)}")
            if action not in ACTIONS:
                raise PolicyConfigError(
                    f"{where}.{direction}: unknown action {schema.shown(action)} "
                    f"(use {', '.join(ACTIONS)})"
                )
            per[direction] = action
        for kind in _expand(str(key).lower()):
            out.setdefault(kind, {}).update(per)
    return out


def _parse_masks(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise PolicyConfigError("policy.mask: expected an object of kind -> style")
    out: dict[str, str] = {}
    if len(raw) > schema.MAX_KIND_KEYS:
        raise PolicyConfigError(f"policy.mask: at most {schema.MAX_KIND_KEYS} kinds")
    for key, style in raw.items():
        if not isinstance(key, str) or not schema.CATEGORY.fullmatch(key.lower()):
            raise PolicyConfigError(
                f"policy.mask.{str(key)[:40]}: a kind is a lower-case name of 1-32 characters"
            )
        if not isinstance(style, str) or not is_valid_style(style):
            raise PolicyConfigError(
                f"policy.mask.{key}: unknown style {schema.shown(style)} "
                "(use lastN, firstNlastM, phone, full, email, keep, redact or defang)"
            )
        for kind in _expand(str(key).lower()):
            out[kind] = style
    return out


def _str_list(raw: object, where: str, limit: int, item_chars: int = 253) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyConfigError(f"{where}: expected a list of strings")
    if len(raw) > limit:
        raise PolicyConfigError(f"{where}: at most {limit} entries")
    if not all(isinstance(i, str) and 0 < len(i) <= item_chars for i in raw):
        raise PolicyConfigError(f"{where}: expected a list of strings of 1-{item_chars} chars")
    return tuple(raw)


def _parse_audiences(raw: object) -> dict[str, dict[str, AudienceRule]]:
    if not isinstance(raw, Mapping):
        raise PolicyConfigError("policy.audiences: expected an object of kind -> {plugin, export}")
    out: dict[str, dict[str, AudienceRule]] = {}
    for key, value in raw.items():
        where = f"policy.audiences.{str(key)[:40]}"
        if not isinstance(key, str) or not schema.CATEGORY.fullmatch(key):
            raise PolicyConfigError(f"{where}: a kind is a lower-case name")
        if isinstance(value, str):
            value = dict.fromkeys(AUDIENCES, value)
        if not isinstance(value, Mapping):
            raise PolicyConfigError(f"{where}: expected a rule or {{plugin, export}}")
        per: dict[str, AudienceRule] = {}
        for audience, rule in value.items():
            if audience not in AUDIENCES:
                raise PolicyConfigError(
                    f"{where}: unknown audience {schema.shown(audience)} (use plugin, export)"
                )
            if rule not in AUDIENCE_RULES:
                raise PolicyConfigError(
                    f"{where}.{audience}: unknown rule {schema.shown(rule)} "
                    f"(use {', '.join(AUDIENCE_RULES)})"
                )
            per[audience] = rule
        for kind in _expand(key):
            out.setdefault(kind, {}).update(per)
    return out


def _bool(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise PolicyConfigError(f"{where}: expected true or false")
    return raw


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that shapes a tenant's ``PolicyEngine``; immutable and fingerprintable."""

    actions: Mapping[str, Mapping[Direction, Action]] = field(
        default_factory=lambda: DEFAULT_ACTIONS
    )
    masks: Mapping[str, str] = field(default_factory=lambda: DEFAULT_MASKS)
    audiences: Mapping[str, Mapping[str, AudienceRule]] = field(
        default_factory=lambda: DEFAULT_AUDIENCES
    )
    keywords: tuple[KeywordRule, ...] = ()
    builtin_keywords: bool = True
    builtin_categories: tuple[str, ...] = ()
    allowed_link_domains: tuple[str, ...] = ()
    phone_regions: tuple[str, ...] = ("CN",)
    cross_message: bool = True

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any] | None,
        allowed_link_domains: Iterable[str] = (),
        *,
        strict: bool = True,
    ) -> PolicyConfig:
        """Validate ``tenant_settings["policy"]``; every error names the offending setting.

        ``strict`` (every write) refuses unknown keys; the read path passes ``strict=False``
        so a row stored before the schema became strict keeps working (unknown keys and the
        retired ``keyword_files`` are ignored -- never read)."""
        data = data or {}
        if not isinstance(data, Mapping):
            raise PolicyConfigError("policy: expected an object")
        if strict:
            schema.check_keys(data)
        raw_actions = data.get("actions", {})
        if isinstance(raw_actions, Mapping) and len(raw_actions) > schema.MAX_KIND_KEYS:
            raise PolicyConfigError(f"policy.actions: at most {schema.MAX_KIND_KEYS} kinds")
        actions = {k: dict(v) for k, v in DEFAULT_ACTIONS.items()}
        for kind, per in _parse_actions(raw_actions).items():
            actions.setdefault(kind, dict(zip(DIRECTIONS, _FALLBACK[:2], strict=True)))
            actions[kind].update(per)
        masks = dict(DEFAULT_MASKS)
        masks.update(_parse_masks(data.get("mask", {})))
        audiences = {k: dict(v) for k, v in DEFAULT_AUDIENCES.items()}
        for kind, rules in _parse_audiences(data.get("audiences", {})).items():
            audiences.setdefault(kind, {}).update(rules)
        keywords = data.get("keywords", [])
        if not isinstance(keywords, list):
            raise PolicyConfigError("policy.keywords: expected a list")
        if len(keywords) > schema.MAX_INLINE_KEYWORDS:
            raise PolicyConfigError(
                f"policy.keywords: at most {schema.MAX_INLINE_KEYWORDS} inline terms; "
                "upload bigger lists as keyword lists"
            )
        domains = _str_list(
            data.get("allowed_link_domains"), "policy.allowed_link_domains", schema.MAX_LINK_DOMAINS
        )
        regions = _str_list(
            data.get("phone_regions", ["CN"]), "policy.phone_regions", schema.MAX_PHONE_REGIONS, 2
        )
        categories = _str_list(
            data.get("builtin_categories", []),
            "policy.builtin_categories",
            len(schema.OPTIONAL_CATEGORIES),
        )
        for category in categories:
            if category not in schema.OPTIONAL_CATEGORIES:
                raise PolicyConfigError(
                    f"policy.builtin_categories: unknown category {schema.shown(category)} "
                    f"(use {', '.join(schema.OPTIONAL_CATEGORIES)})"
                )
        return cls(
            actions=MappingProxyType({k: MappingProxyType(v) for k, v in actions.items()}),
            masks=MappingProxyType(masks),
            audiences=MappingProxyType({k: MappingProxyType(v) for k, v in audiences.items()}),
            keywords=tuple(rules_from_settings(keywords)),
            builtin_keywords=_bool(data.get("builtin_keywords", True), "policy.builtin_keywords"),
            builtin_categories=categories,
            allowed_link_domains=tuple(dict.fromkeys([*domains, *allowed_link_domains])),
            phone_regions=tuple(r.upper() for r in regions) or ("CN",),
            cross_message=_bool(data.get("cross_message", True), "policy.cross_message"),
        )

    def action_for(self, kind: str, direction: Direction) -> Action:
        """The configured action for a finding kind (or keyword category) and sender."""
        per = self.actions.get(kind)
        if per is None:
            return _FALLBACK[0] if direction == "customer" else _FALLBACK[1]
        return per.get(direction, _FALLBACK[0])

    def audience_rule(self, kind: str, audience: str) -> AudienceRule:
        """What ``audience`` (plugin, export) gets of a finding of ``kind``."""
        return self.audiences.get(kind, {}).get(audience, "show")

    def mask_for(self, kind: str) -> str:
        """The mask style of a kind (``full`` for unknown keyword categories)."""
        return self.masks.get(kind, _FALLBACK[2])

    def fingerprint(self) -> str:
        """A stable digest of the settings: engines are cached by it."""
        payload = {
            "actions": {k: dict(v) for k, v in sorted(self.actions.items())},
            "masks": dict(sorted(self.masks.items())),
            "keywords": [(r.term, r.category, r.action) for r in self.keywords],
            "audiences": {k: dict(v) for k, v in sorted(self.audiences.items())},
            "builtin": self.builtin_keywords,
            "categories": list(self.builtin_categories),
            "cross": self.cross_message,
            "domains": list(self.allowed_link_domains),
            "regions": list(self.phone_regions),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
