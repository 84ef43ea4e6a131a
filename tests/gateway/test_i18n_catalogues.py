"""The web UI's message catalogues are complete and nothing user-visible bypasses them.

* every language has the same keys (plural forms per language: English ``_one``/``_other``,
  Chinese ``_other`` only) and the same ``{{placeholders}}`` per key;
* every key the JS/HTML uses exists, every catalogue key is used (literally or through
  one of the few dynamic prefixes listed here);
* no user-visible string literal is left in the JS (text/placeholder/title/aria-label,
  h() children, toast/confirm/Error) or in the HTML pages.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from auth.roles import Permission
from gateway.http import web as http_web
from gateway.i18n import flatten, load_catalogues, pick_language, translate
from tests.gateway.helpers import start_gateway

WEB = http_web.WEB_DIR
REPO = WEB.parents[1]
JS_FILES = [
    "widget.js",
    "console.js",
    "admin.js",
    "governance.js",
    "common.js",
    "notify.js",
    "invite.js",
    "history.js",
    "quality.js",
    "i18n.js",
    "ui.js",
    "files.js",
    "protocol.js",
    "e2e.js",
    "e2e_admin.js",
    "policy.js",
    "roles.js",
    "customers_admin.js",
    "sso_admin.js",
]
HTML_FILES = ["admin.html", "console.html", "index.html", "demo.html", "invite.html"]
PLURAL = re.compile(r"_(zero|one|two|few|many|other)$")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

# Keys built at run time: prefix -> the suffixes the code can produce.
DYNAMIC = {
    "widget.topic.": ["general", "orders", "billing", "technical"],
    "common.roles.": ["agent", "supervisor", "admin"],
    "admin.permissions.": [p.value for p in Permission],
    "admin.customers.kind_": ["email", "sub", "chat_token"],
    "common.sso_errors.": [],
    "common.pw.weak.": [
        "too_short",
        "too_long",
        "common",
        "contains_email",
        "one_char",
        "guessable",
    ],
    "admin.invites.status_": ["pending", "used", "expired", "revoked"],
    "admin.tenant.mode_": ["off", "optional", "enforced"],
    "console.canned_default.c": ["1", "2", "3", "4", "5"],
    "server.lead.": ["block", "mask", "flag"],
    "admin.policy.actions.": ["allow", "mask", "flag", "block"],
    "admin.gov.rules.": [
        "bulk_transcript_access",
        "new_login_context",
        "off_hours_access",
        "mass_erasure",
        "login_spraying",
        "blocked_messages",
        "plugin_dead_letters",
        "sla_queue_wait",
        "sla_first_response",
    ],
    "admin.quality.group.": ["day", "agent", "queue"],
    "widget.export.sender.": ["customer", "agent", "system"],
    "admin.quality.target.": [
        "queue_wait_sla_seconds",
        "first_response_sla_seconds",
        "reopen_days",
    ],
    "admin.quality.col.": [
        "chats",
        "answered",
        "unanswered",
        "queue_wait_avg",
        "queue_wait_p90",
        "first_response_avg",
        "first_response_p90",
        "handle_avg",
        "transfers",
        "csat_avg",
        "reopen_rate",
        "sla_queue_breaches",
        "sla_first_response_breaches",
        "sla_breaches",
    ],
    "admin.gov.severities.": ["critical", "high", "medium", "low"],
    "admin.gov.alert_state.": ["open", "acknowledged", "resolved"],
    # open sets (codes sent by the gateway); every entry must still be under the prefix
    "server.what.": None,
    "server.advice.": None,
    "server.error.": None,
    "server.close.": None,
    "server.api.": None,
}
# Literal strings that are not language (brand, code names shown as code).
ALLOWED_LITERALS = {
    "cipherdesk",
    "cipherdesk --help",
    "data-gateway-key",
    "integrity",
    "data-lang",
    "English",
    "简体中文",
    "繁體中文",
}


@pytest.fixture(scope="module")
def cats():
    return {lang: flatten(cat) for lang, cat in load_catalogues(WEB / "i18n").items()}


def base_keys(flat: dict[str, str]) -> set[str]:
    return {PLURAL.sub("", k) for k in flat}


def web_sources() -> str:
    return "\n".join((WEB / n).read_text("utf-8") for n in JS_FILES + HTML_FILES)


def used_keys() -> set[str]:
    keys: set[str] = set()
    call = re.compile(r"(?<![\w.])(?:t|tr|I\.t|I18N\.t|I18N\.has|I\.has)\(\s*'([A-Za-z0-9_.]+)'")
    for name in JS_FILES:
        keys |= set(call.findall((WEB / name).read_text("utf-8")))
    for name in HTML_FILES:
        keys |= set(re.findall(r"\{\{t:([A-Za-z0-9_.]+)\}\}", (WEB / name).read_text("utf-8")))
    # Texts the gateway renders itself (the export PDF): translate(lang, "key", ...).
    server = re.compile(r"\btranslate(?:_count)?\(\s*\w+,\s*\"([A-Za-z0-9_.]+)\"")
    for path in (REPO / "gateway").rglob("*.py"):
        keys |= set(server.findall(path.read_text("utf-8")))
    return keys


def test_same_keys_in_every_language(cats):
    en = base_keys(cats["en"])
    for lang in ("zh-CN", "zh-TW"):
        assert base_keys(cats[lang]) == en, lang
        # Chinese has one plural form: every English plural key needs its _other.
        for key in cats["en"]:
            if PLURAL.search(key):
                assert PLURAL.sub("", key) + "_other" in cats[lang], (lang, key)


def test_same_placeholders_in_every_language(cats):
    for key, text in cats["en"].items():
        want = set(PLACEHOLDER.findall(text))
        base = PLURAL.sub("", key)
        for lang in ("zh-CN", "zh-TW"):
            other = cats[lang][key] if key in cats[lang] else cats[lang].get(base + "_other")
            assert other is not None, (lang, key)
            got = set(PLACEHOLDER.findall(other))
            # "{{count}} out of 5" may drop count in no language; all others must match
            assert got == want, (lang, key, want, got)


def test_chinese_catalogues_are_chinese(cats):
    han = re.compile(r"[\u4e00-\u9fff]")
    english_only = {k for k, v in cats["zh-CN"].items() if v.strip() and not han.search(v)}
    # Only values without words to translate (names, placeholders, codes) stay Latin.
    allowed = {"server.close.other", "server.sentence_gap", "admin.audit.ip"}
    assert english_only <= allowed | {
        k for k in english_only if not re.search(r"[A-Za-z]{3,}", cats["zh-CN"][k])
    }
    assert cats["zh-TW"]["widget.busy_text"].startswith("請在這裡留言")  # OpenCC s2twp
    assert cats["zh-TW"]["common.log_in"] == "登入"  # Taiwan phrasing, not just characters


def test_every_used_key_exists_and_every_key_is_used(cats):
    en = base_keys(cats["en"])
    used = used_keys()
    missing = set()
    for key in used:
        if key.endswith((".", "_", ".c")) or key in DYNAMIC:
            continue
        if key not in en:
            missing.add(key)
    assert not missing, f"keys used in JS/HTML but not in en.json: {sorted(missing)}"
    for prefix, suffixes in DYNAMIC.items():
        assert "'" + prefix in web_sources(), f"dynamic prefix {prefix} unused: drop it"
        if suffixes:
            for s in suffixes:
                assert prefix + s in en, prefix + s
    # keys also count as used when they appear as a quoted literal (t(cond ? 'a' : 'b'))
    literals = set(re.findall(r"'([a-z_]+(?:\.[A-Za-z0-9_]+)+)'", web_sources()))
    unused = {
        k for k in en if k not in used | literals and not any(k.startswith(p) for p in DYNAMIC)
    }
    assert not unused, f"catalogue keys nothing uses: {sorted(unused)}"


_VISIBLE_ATTR = re.compile(
    r"""(?:\btext|placeholder|title|alt|'aria-label'|label):\s*(['"`])((?:(?!\1).)*)\1"""
)
_CHILD_LITERAL = re.compile(r"""\}\s*,\s*'((?:[^'\\]|\\.)*)'\s*[,)]""")
_CALL_LITERAL = re.compile(
    r"""\b(?:toast|confirm|alert|Error|systemLine|line|setStatus|setConn)\("""
    r"""\s*(?:chat,\s*)?(['"`])((?:(?!\1).)+)\1"""
)


def _language(text: str) -> bool:
    text = re.sub(r"\$\{[^}]*\}+\)?\}?", "", text)  # template-literal expressions
    return bool(re.search(r"[A-Za-z]{2,}", text)) and text not in ALLOWED_LITERALS


@pytest.mark.parametrize(
    "name",
    [
        "widget.js",
        "console.js",
        "admin.js",
        "governance.js",
        "common.js",
        "notify.js",
        "invite.js",
        "history.js",
        "e2e_admin.js",
        "roles.js",
        "customers_admin.js",
        "sso_admin.js",
    ],
)
def test_no_hard_coded_user_visible_strings_in_js(name):
    src = (WEB / name).read_text("utf-8")
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"^\s*//.*$", "", src, flags=re.M)
    found = [m.group(2) for m in _VISIBLE_ATTR.finditer(src) if _language(m.group(2))]
    found += [m.group(1) for m in _CHILD_LITERAL.finditer(src) if _language(m.group(1))]
    found += [m.group(2) for m in _CALL_LITERAL.finditer(src) if _language(m.group(2))]
    assert not found, f"{name}: user-visible literals outside the catalogues: {found}"


@pytest.mark.parametrize("name", HTML_FILES)
def test_no_hard_coded_text_in_html(name):
    src = (WEB / name).read_text("utf-8")
    src = re.sub(r"<!--.*?-->", "", src, flags=re.S)
    src = re.sub(r"<(script|style|pre)\b.*?</\1>", "", src, flags=re.S)
    texts = [t.strip() for t in re.findall(r">([^<]+)<", src)]
    attrs = re.findall(r"""(?:aria-label|title|alt|placeholder)="([^"]*)\"""", src)
    bad = [
        t
        for t in texts + attrs
        if t
        and _language(re.sub(r"\{\{[^}]*\}\}", "", t))
        and t not in {"cipherdesk", "Northwind Outfitters"}
    ]
    assert not bad, f"{name}: {bad}"


@pytest.mark.parametrize(
    ("wanted", "lang"),
    [
        (("zh-CN,zh;q=0.9,en;q=0.8",), "zh-CN"),
        (("zh-TW",), "zh-TW"),
        (("zh-Hant-HK",), "zh-TW"),
        (("zh_hk",), "zh-TW"),
        (("zh",), "zh-CN"),
        (("zh-Hans-SG",), "zh-CN"),
        (("fr-FR,en-GB;q=0.5",), "en"),
        (("fr",), "en"),
        ((None, "", "de, zh-CN"), "zh-CN"),
        (("en-US,zh-CN",), "en"),
    ],
)
def test_pick_language(wanted, lang):
    assert pick_language(*wanted) == lang


def test_translate_falls_back_to_english_and_interpolates():
    assert translate("zh-CN", "common.joined", name="小王") == "小王 加入了会话"
    assert translate("xx", "common.joined", name="Ana") == "Ana joined the chat"
    assert translate("zh-CN", "no.such.key") == "no.such.key"


@pytest.fixture
async def gw(tmp_path):
    runner, base_url, _svc = await start_gateway(tmp_path)
    async with aiohttp.ClientSession() as http:
        yield http, base_url
    await runner.cleanup()


async def test_pages_are_rendered_in_the_negotiated_language(gw):
    http, base = gw
    async with http.get(base + "/admin", headers={"Accept-Language": "zh-CN,zh;q=0.9"}) as r:
        body = await r.text()
        assert r.headers["Content-Language"] == "zh-CN"
        assert "Accept-Language" in r.headers["Vary"]
    assert '<html lang="zh-CN">' in body and "<title>cipherdesk — 管理后台</title>" in body
    async with http.get(base + "/console?lang=zh-TW", headers={"Accept-Language": "en"}) as r:
        body = await r.text()
    assert '<html lang="zh-TW">' in body and "<title>cipherdesk — 客服工作臺</title>" in body
    http.cookie_jar.update_cookies({"cd_lang": "zh-CN"})
    async with http.get(base + "/", headers={"Accept-Language": "en"}) as r:
        body = await r.text()
    assert '<html lang="zh-CN">' in body and "安全的在线客服网关" in body
    http.cookie_jar.update_cookies({"cd_lang": "<script>"})  # not a language: ignored
    async with http.get(base + "/", headers={"Accept-Language": "en-GB"}) as r:
        body = await r.text()
    assert '<html lang="en">' in body and "A secure gateway for customer chat." in body
    assert "{{" not in body
    # The demo's embed snippet carries data-lang only when asked for explicitly.
    async with http.get(base + "/demo?lang=zh-CN") as r:
        assert 'data-lang="zh-CN"' in await r.text()
    async with http.get(base + "/demo", headers={"Accept-Language": "zh-CN"}) as r:
        assert "data-lang" not in await r.text()
