"""The tenant policy schema: which keys exist, their types, bounds and defaults.

Why a schema of its own: tenant admins are not trusted with the installation, so a setting
that is misspelt or unknown must be refused (not stored and silently ignored), a setting
that could reach outside the tenant (``keyword_files``: a server path) must be refused with
an explanation, and every list must be bounded so that building a policy has a known cost.
The admin page renders ``describe()`` so admins see the same schema the server enforces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PolicyConfigError

MAX_INLINE_KEYWORDS = 200
"""Terms in ``policy.keywords`` (bigger lists are uploaded as keyword lists, see lists.py)."""
MAX_TERM_CHARS = 64
MAX_LINK_DOMAINS = 500
MAX_PHONE_REGIONS = 10
MAX_KIND_KEYS = 64
CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A keyword category / finding kind name: lower-case identifier, at most 32 characters."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One key of ``tenant.settings.policy``: its JSON type, default and meaning (en, zh)."""

    key: str
    type: str
    default: Any
    en: str
    zh: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "actions",
        "object: kind -> action | {customer, agent}",
        {},
        "Action per finding kind and sender: allow, mask, flag or block.",
        "按发现类型和发送方设置处理动作：allow / mask / flag / block。",
    ),
    SettingSpec(
        "mask",
        "object: kind -> style",
        {},
        "Mask style per kind: lastN, full, email, phone, keep, redact, defang.",
        "按类型设置遮盖样式：lastN、full、email、phone、keep、redact、defang。",
    ),
    SettingSpec(
        "audiences",
        "object: kind -> {plugin, export}",
        {},
        "What plugins/helpdesks and exports see per kind: show, mask or drop.",
        "按类型设置插件/工单系统和导出可见内容：show（原文）、mask（遮盖）、drop（删除）。",
    ),
    SettingSpec(
        "keywords",
        f"list (max {MAX_INLINE_KEYWORDS}) of {{term, category, action}}",
        [],
        "A few inline terms; upload larger lists under Keyword lists.",
        "少量内联关键词；较大的词表请在“关键词列表”中上传。",
    ),
    SettingSpec(
        "builtin_keywords",
        "boolean",
        True,
        "Use the built-in fraud / phishing / social-engineering / abuse lexicon.",
        "启用内置的诈骗、钓鱼、社会工程和辱骂词库。",
    ),
    SettingSpec(
        "builtin_categories",
        "list of optional built-in categories",
        [],
        'Opt-in built-in categories, e.g. "political" (politically sensitive terms).',
        '可选的内置类别，例如 "political"（政治敏感词），默认关闭。',
    ),
    SettingSpec(
        "allowed_link_domains",
        f"list (max {MAX_LINK_DOMAINS}) of domains",
        [],
        "Domains agents may link to (subdomains included).",
        "坐席可以发送链接的域名（含子域名）。",
    ),
    SettingSpec(
        "phone_regions",
        f"list (max {MAX_PHONE_REGIONS}) of region codes",
        ["CN"],
        "Regions whose national phone formats are recognised.",
        "识别本地电话号码格式的地区代码。",
    ),
    SettingSpec(
        "cross_message",
        "boolean",
        True,
        "Find numbers split over consecutive messages of one sender, and values a customer "
        "gives in answer to an agent's question (passport number? -> E12345678).",
        "检测被拆分到同一发送方连续多条消息中的号码，以及客户回答坐席提问时给出的信息"
        "（护照号码？-> E12345678）。",
    ),
)
KNOWN_KEYS = frozenset(s.key for s in SETTINGS)
OPTIONAL_CATEGORIES = ("political",)

_REFUSED: dict[str, str] = {
    "keyword_files": (
        "policy.keyword_files: tenants cannot name server files; upload the list as data "
        "(PUT /api/policy/keyword-lists/{name}) or ask the operator to configure a file"
    ),
}


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Keys of ``data`` the schema does not know (for the lenient read path's log line)."""
    return sorted(str(k)[:40] for k in data if k not in KNOWN_KEYS)


def check_keys(data: Mapping[str, Any]) -> None:
    """Refuse unknown keys; the message names at most the key the admin sent (truncated)."""
    for key in data:
        if key in _REFUSED:
            raise PolicyConfigError(_REFUSED[key])
        if key not in KNOWN_KEYS:
            shown = str(key)[:40]
            raise PolicyConfigError(
                f"policy: unknown setting {shown!r} (known: {', '.join(sorted(KNOWN_KEYS))})"
            )


def shown(value: object) -> str:
    """A value quoted for an error message, never longer than 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe() -> list[dict[str, Any]]:
    """The schema as JSON for the admin page (``GET /api/policy/schema``)."""
    return [
        {"key": s.key, "type": s.type, "default": s.default, "en": s.en, "zh": s.zh}
        for s in SETTINGS
    ]
