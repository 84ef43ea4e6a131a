"""Message catalogues of the web UI (widget, console, admin) and language negotiation.

The catalogues live in ``gateway/web/i18n/<lang>.json`` (nested objects; i18next reads
them as one ``translation`` namespace, keys written ``section.name``). English and
Simplified Chinese are written by hand; Traditional Chinese (``zh-TW``) is generated from
``zh-CN`` with OpenCC's ``s2twp`` conversion (Taiwan vocabulary and phrases) when the
assets are built, so it can never fall behind. A hand-written ``zh-TW.json``, if present,
overrides single keys of the generated one.

Pages ask for a language with ``?lang=``, the ``cd_lang`` cookie (set by the language
menu) or ``Accept-Language``; the widget decides in the browser (``data-lang`` on the
embed snippet, else ``navigator.languages``) with the same rules as :func:`pick_language`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

I18N_DIR = Path(__file__).resolve().parent / "web" / "i18n"
DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "zh-CN", "zh-TW")
LANG_COOKIE = "cd_lang"

Catalogue = dict[str, Any]


def pick_language(*wanted: str | None) -> str:
    """The first supported language among ``wanted`` (language tags, or an
    ``Accept-Language`` header), ``en`` when none matches.

    ``zh-TW``/``zh-HK``/``zh-MO``/``zh-Hant`` map to Traditional Chinese, any other
    ``zh`` tag to Simplified Chinese, any ``en`` tag to English."""
    for item in wanted:
        if not item:
            continue
        for part in item.split(","):
            tag = part.split(";")[0].strip().lower().replace("_", "-")
            if not tag:
                continue
            if tag.startswith("zh"):
                traditional = any(x in tag for x in ("-tw", "-hk", "-mo", "-hant"))
                return "zh-TW" if traditional else "zh-CN"
            if tag == "en" or tag.startswith("en-"):
                return "en"
    return DEFAULT_LANGUAGE


def _to_traditional(value: Any, convert: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_traditional(v, convert) for k, v in value.items()}
    return convert(value) if isinstance(value, str) else value


def _merge(base: Catalogue, over: Catalogue) -> Catalogue:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_catalogues(directory: Path = I18N_DIR) -> dict[str, Catalogue]:
    """``{lang: catalogue}`` for every language in :data:`LANGUAGES`."""
    import opencc  # a runtime dependency already (policy normalisation)

    cats: dict[str, Catalogue] = {}
    for lang in ("en", "zh-CN"):
        cats[lang] = json.loads((directory / f"{lang}.json").read_text("utf-8"))
    convert = opencc.OpenCC("s2twp").convert
    traditional = _to_traditional(cats["zh-CN"], convert)
    override = directory / "zh-TW.json"
    if override.is_file():
        traditional = _merge(traditional, json.loads(override.read_text("utf-8")))
    cats["zh-TW"] = traditional
    return cats


@lru_cache(maxsize=1)
def catalogues() -> dict[str, Catalogue]:
    """The catalogues of the installed package, loaded once."""
    return load_catalogues()


def lookup(catalogue: Catalogue, key: str) -> str | None:
    """``catalogue["a"]["b"]`` for ``"a.b"``; None when missing or not a string."""
    node: Any = catalogue
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) else None


def translate(lang: str, key: str, cats: dict[str, Catalogue] | None = None, **values: str) -> str:
    """Server-side lookup with English fallback and ``{{name}}`` interpolation (the same
    syntax i18next uses in the browser)."""
    cats = cats or catalogues()
    text = lookup(cats.get(lang, cats[DEFAULT_LANGUAGE]), key)
    if text is None:
        text = lookup(cats[DEFAULT_LANGUAGE], key) or key
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def translate_count(
    lang: str, key: str, count: int, cats: dict[str, Catalogue] | None = None, **values: str
) -> str:
    """:func:`translate` of a counted phrase, as i18next picks it: ``key_one`` for 1 where
    the language has that form (English), else ``key_other``; ``{{count}}`` filled in."""
    cats = cats or catalogues()
    catalogue = cats.get(lang, cats[DEFAULT_LANGUAGE])
    form = "one" if count == 1 and lookup(catalogue, f"{key}_one") is not None else "other"
    return translate(lang, f"{key}_{form}", cats, count=str(count), **values)


def flatten(catalogue: Catalogue, prefix: str = "") -> dict[str, str]:
    """``{"a.b": text}`` for every string in a nested catalogue."""
    out: dict[str, str] = {}
    for key, value in catalogue.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out
