"""Policy at the ends (issue 13) in real Chromium: the JavaScript engine
(gateway/web/policy.js) passes the shared vectors and agrees with the Python engine on an
evasion corpus, and in an e2e chat the widget masks or blocks with the tenant's signed
policy BEFORE it seals, the console blocks an agent's card number, and the gateway stores
neither in clear."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import random
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crypto.e2e import TenantSigningKey
from gateway.policy.config import PolicyConfig
from gateway.policy.detectors.birth_date import BIRTH_DATE_PHRASES
from gateway.policy.detectors.email import ADDRESS, AFTER_CUE, SPELT_ADDRESS
from gateway.policy.end import END_CONTEXT_RULES, END_KINDS, end_document, end_document_text
from gateway.policy.engine import PolicyEngine
from gateway.policy.jsregex import to_js
from gateway.policy.split import (
    ANSWERS,
    ENDING,
    LEAD_IN,
    MAX_PARTS,
    SPLIT_KINDS,
    TAIL_CHARS,
    SplitWindow,
)
from gateway.policy.types import SEVERITY, Decision
from tests.e2e import browser as bx
from tests.e2e.browser import (
    agent_says,
    customer_says,
    expect,
    login_console,
    new_page,
    open_widget,
)
from tests.e2e.test_browser_e2e import _certify_console, _database_bytes, _e2e_tenant
from tests.policy.pii_score import KINDS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

browser = bx.browser
gateway = bx.gateway

ROOT = Path(__file__).resolve().parents[2]
VECTORS = [
    json.loads(line)
    for line in (ROOT / "tests" / "policy" / "vectors.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]
_EVALUATE = """([doc, cases]) => {
  const engine = CipherdeskPolicy.engine(doc);
  return cases.map(([text, direction]) => {
    const d = engine.evaluate(text, direction);
    const findings = d.findings.map(
      (f) => [f.kind, f.start, f.end, f.action, f.start_utf16, f.end_utf16]);
    return { action: d.action, text: d.text, findings };
  });
}"""


def _bench_filter() -> ModuleType:
    """bench/filter.py's corpus builders (evasions of every class, look-alike decoys,
    ordinary chat lines): the same corpus the Python engine's recall is measured on."""
    spec = importlib.util.spec_from_file_location("bench_filter", ROOT / "bench" / "filter.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_filter", module)
    spec.loader.exec_module(module)
    return module


def _end_kinds(engine: PolicyEngine) -> set[str]:
    return set(END_KINDS) | {r.category for r in engine.rules}


async def test_the_browser_engine_passes_the_policy_vectors(browser, gateway):
    """tests/policy/vectors.jsonl: every finding of a kind the end engine implements, at
    the same code point and UTF-16 offsets with the same action; where every finding is
    such a kind, the same decision and the same masked text."""
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        checked = 0
        for vector in VECTORS:
            engine = PolicyEngine(PolicyConfig.from_dict(vector["policy"]))
            kinds = _end_kinds(engine)
            doc = end_document(engine, None, 0)
            (got,) = await page.evaluate(_EVALUATE, [doc, [[vector["text"], vector["direction"]]]])
            want = [
                [f["kind"], f["start"], f["end"], f["action"], f["start_utf16"], f["end_utf16"]]
                for f in vector["findings"]
                if f["kind"] in kinds
            ]
            assert got["findings"] == want, vector["text"]
            if all(f["kind"] in kinds for f in vector["findings"]):
                assert (got["action"], got["text"]) == (vector["action"], vector["masked"])
                checked += 1
        assert checked >= 30  # all but the name/address/link vectors
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()


WINDOW_VECTORS = [
    json.loads(line)
    for line in (ROOT / "tests" / "policy" / "window_vectors.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]
_WINDOW = """([doc, messages]) => {
  const engine = CipherdeskPolicy.engine(doc);
  let now = 0;
  const window = CipherdeskPolicyWindow.create(() => now);
  return messages.map(([direction, text, at]) => {
    now = at * 1000;
    const d = window.check(engine, direction, text, engine.evaluate(text, direction));
    const findings = d.findings.map(
      (f) => [f.kind, f.start, f.end, f.action, f.rule, f.start_utf16, f.end_utf16]);
    return { action: d.action, text: d.text, findings, split: d.split_kinds || [],
             flags: CipherdeskPolicy.flags(d) };
  });
}"""


async def test_the_browser_window_passes_the_window_vectors(browser, gateway):
    """tests/policy/window_vectors.jsonl: a number split across one sender's messages, and
    a customer's answer to a question (an agent's, or the customer's own phrase), are found
    by the browser's window (policy_window.js) on the same message, with the same masked
    text, findings, split kinds and flag kinds as by the gateway's; its constants are
    split.py's."""
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        constants = await page.evaluate(
            "() => [CipherdeskPolicyWindow.SPLIT_KINDS, CipherdeskPolicyWindow.TAIL_CHARS,"
            " CipherdeskPolicyWindow.MAX_PARTS, CipherdeskPolicyWindow.TTL_MS,"
            " CipherdeskPolicyWindow.ANSWERS]"
        )
        ttl = SplitWindow(clock=lambda: 0.0).ttl
        assert constants == [sorted(SPLIT_KINDS), TAIL_CHARS, MAX_PARTS, ttl * 1000, ANSWERS]
        for vector in WINDOW_VECTORS:
            doc = end_document(PolicyEngine(PolicyConfig.from_dict(vector["policy"])), None, 0)
            messages = [[m["direction"], m["text"], m["at"]] for m in vector["messages"]]
            got = await page.evaluate(_WINDOW, [doc, messages])
            for message, result in zip(vector["messages"], got, strict=True):
                want = [
                    [f[k] for k in ("kind", "start", "end", "action", "rule")]
                    + [f["start_utf16"], f["end_utf16"]]
                    for f in message["findings"]
                ]
                assert result == {
                    "action": message["action"],
                    "text": message["masked"],
                    "findings": want,
                    "split": message["split_kinds"],
                    "flags": message["flags"] or [],
                }, message["text"]
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()


async def test_the_browser_engine_agrees_with_the_python_engine(browser, gateway):
    """bench/filter.py's evasion corpus (every class of the policy issue, numbers written
    with separators, numerals, digit words, homoglyphs, escapes, bidi, long runs), its
    look-alike decoys and ordinary lines, both directions. The ends may find MORE than the
    gateway (international numbers are checked against each country's general pattern,
    libphonenumber's full per-type data being too large for a widget), never less: every
    Python finding is covered by a JavaScript finding of the same kind and action, and the
    JavaScript decision is never milder. Nearly every line agrees exactly."""
    bench = _bench_filter()
    positives, decoys = bench.build_evasions(400, 11)
    lines = [p[0] for p in positives] + decoys + [line for line, _ in bench.build_corpus(800, 5)]
    engine = PolicyEngine()
    kinds = _end_kinds(engine)
    cases = [[text, d] for text in lines for d in ("customer", "agent")]
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        got = await page.evaluate(_EVALUATE, [end_document(engine, None, 0), cases])
    finally:
        await ctx.close()
    exact = 0
    for (text, direction), js in zip(cases, got, strict=True):
        decision = engine.evaluate(text, direction)
        want = [[f.kind, f.start, f.end, f.action] for f in decision.findings if f.kind in kinds]
        found = [f[:4] for f in js["findings"]]
        if found == want:
            exact += 1
            if all(f.kind in kinds for f in decision.findings):
                assert (js["action"], js["text"]) == (decision.action, decision.text), text
            continue
        for kind, start, end, action in want:
            assert any(
                f[0] == kind and f[1] <= start and f[2] >= end and f[3] == action for f in found
            ), (text, want, found)
        assert SEVERITY[js["action"]] >= SEVERITY[decision.action], text
    assert exact / len(cases) >= 0.99, exact / len(cases)


def _address_like(rng: random.Random) -> str:
    """A text with an address, or nearly one, written the ways chats hold them: divisions
    chained or spaced, a road and number, a lane, a Taiwan road's section, an estate and a
    flat, a building's name, a flat's bare number, Traditional forms (臺北市, 號, 樓), the
    words that lead to an address, prose that is no address (朝阳区的门店3号开门, 我知道3号发货,
    3楼2个人), English street addresses with a flat before or after and a postcode, Hong Kong
    flats with their floor and tower, PO boxes; one piece in seven dropped or swapped."""
    pieces = [
        rng.choice(["", "", "地址：", "送到", "寄到", "我住在", "请发到 ", "ship to ", "Addr: "]),
        rng.choice(
            [
                "",
                "北京市朝阳区",
                "上海市 浦东新区 ",
                "广东省深圳市南山区",
                "浙江省杭州市西湖区",
                "臺北市信義區",
                "香港九龙",
                "延边朝鲜族自治州",
                "朝阳区的门店",
                "江苏",
                "阳光",
            ]
        ),
        rng.choice(
            [
                "",
                "建国路",
                "张江路",
                "信义路五段",
                "文三路",
                "广东道",
                "我知道",
                "中关村大街",
                "阳光小区",
                "万科城市花园3期",
                "SOHO现代城",
            ]
        ),
        rng.choice(["", "88", "123", "五", "7", "3 ", "十二", "2024"]),
        rng.choice(["号", "弄", "號", "栋", "号楼", "号院", "楼", "室", "个", "号开门", ""]),
        rng.choice(
            [
                "",
                "3栋2单元501室",
                "东部软件园",
                "百度大厦",
                "5号楼1201",
                "B座12楼",
                "2单元801",
                "15层 1503",
                "2个人",
                "3天",
                "的医院",
                "創意產業園2-B501",
            ]
        ),
        rng.choice(
            [
                "",
                "",
                " 12 Baker Street",
                " Apt 5B, 120 West 45th St, New York, NY 10036",
                " 1600 Amphitheatre Parkway, Mountain View, CA 94043",
                " Flat A, 12/F, Tower 2",
                " Room 1203, Building 5",
                " PO Box 1234",
                " P.O. Box 88",
                " 3 in a row",
                " 221b Baker St., London NW1 6XE",
                " 4 Queen's Road\n",
            ]
        ),
        rng.choice(["", "，谢谢", "。", "\n", " 明天到", "!"]),
    ]
    for i in range(len(pieces)):
        if rng.random() < 0.15:
            pieces[i] = rng.choice(["", " ", pieces[rng.randrange(len(pieces))]])
    return "".join(pieces)


def _name_like(rng: random.Random) -> str:
    """A text with a person's name, or nearly one: the Chinese cues (我叫, 收件人, 持卡人 …),
    a relation before the name, 寄给, 我姓…叫, an honorific, a possession, a pasted label (a
    name before a mobile), a spaced given name, Traditional forms, names in Latin letters
    after a Chinese cue; English cues, titles, closings, "my wife", a caller before "here",
    delivery words, in the cases a name is written in (lower case too: a given name and a
    surname of the lexicons) and the words that are no name (我是房东, 我是苏宁的, 李老师, 江苏,
    江西人, Customer Service here, Dr. Smith said, send it to New York, ship it to will call)."""
    pieces = [
        rng.choice(
            [
                "",
                "我叫",
                "收件人：",
                "持卡人 ",
                "联系人是我老公",
                "寄给我妈妈",
                "我姓王，叫",
                "我是",
                "本人",
                "查一下",
                "我老婆",
                "名字是",
                "收件人是",
                "My name is ",
                "this is ",
                "Mr. ",
                "Dr. ",
                "Regards,\n",
                "Thanks, ",
                "my wife ",
                "ship it to ",
                "attn: ",
                "It's ",
            ]
        ),
        rng.choice(
            [
                "张伟",
                "欧阳娜娜",
                "李 明",
                "王建国",
                "建国",
                "房东",
                "苏宁",
                "江苏",
                "江西人",
                "张",
                "陳大文",
                "Zhang San",
                "LI NA",
                "zhangsan",
                "Jane Doe",
                "jane doe",
                "Smith",
                "New York",
                "Customer Service",
                "unknown",
                "Mary Jones",
                "mary jones",
                "james robert brown",
                "linda wang",
                "will call",
                "grace church",
            ]
        ),
        rng.choice(
            [
                "",
                "",
                "先生",
                "女士",
                "老师",
                "的订单",
                "的",
                "的朋友",
                " here",
                " speaking",
                " said",
                "，13800138000",
                " 139 0013 9000",
                ", thanks",
                ".",
                "\n",
            ]
        ),
        rng.choice(["", "，谢谢", "。", " please", " and", "!"]),
    ]
    if rng.random() < 0.2:  # a pasted shipping label: the name starts the text
        pieces = [rng.choice(["张三", "王五", "明天", "金额"]), "，", "13800138000", pieces[-1]]
    for i in range(len(pieces)):
        if rng.random() < 0.1:
            pieces[i] = rng.choice(["", " ", pieces[rng.randrange(len(pieces))]])
    return "".join(pieces)


async def test_the_browser_engine_finds_and_masks_names_and_addresses_as_the_gateway_does(
    browser, gateway
):
    """detectors/names.py and address.py at the ends: with a tenant's ``name: mask`` and
    ``address: mask``, the labelled lines of the names-and-addresses corpus
    (tests/policy/pii_corpus.jsonl), 3,000 address-like texts (``_address_like``) and 3,000
    name-like ones (``_name_like``) give the same findings, at the same offsets, in Chromium
    as in Python, and the same masked text: the divisions kept (北京市朝阳区****), a name's
    first character (张**, J*** D**), a given name said alone hidden whole."""
    rng = random.Random(20261207)
    corpus = [
        json.loads(line)["text"]
        for line in (ROOT / "tests" / "policy" / "pii_corpus.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    addresses = [_address_like(rng) for _ in range(3000)]
    names = [_name_like(rng) for _ in range(3000)]
    texts = corpus + addresses + names
    engine = PolicyEngine(PolicyConfig.from_dict({"actions": {"address": "mask", "name": "mask"}}))
    decisions = await _alike_in_both_engines(browser, gateway, engine, texts)
    found = {k: sum(any(f.kind == k for f in d.findings) for d in decisions) for k in KINDS}
    # the texts reach addresses and names, not only the misses
    assert found["address"] >= 1000 and found["name"] >= 1000, found
    # and names in lower case where a capital is asked for ("Thanks, mary jones"), which only
    # the lexicons find
    asking = ("Regards,\n", "Thanks, ", "my wife ", "ship it to ", "attn: ")
    lower = sum(
        any(
            f.kind == "name"
            and text[f.start : f.end] in ("mary jones", "linda wang", "james robert brown")
            and text[: f.start].endswith(asking)
            for f in d.findings
        )
        for text, d in zip(texts, decisions, strict=True)
    )
    assert lower >= 10, lower


async def _alike_in_both_engines(
    browser, gateway, engine: PolicyEngine, texts: list[str]
) -> list[Decision]:
    """The Python decisions on ``texts`` (a customer's), once Chromium running ``engine``'s
    end document has found the same findings at the same offsets in each, and the same
    masked text."""
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        cases = [[text, "customer"] for text in texts]
        got = await page.evaluate(_EVALUATE, [end_document(engine, None, 0), cases])
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()
    decisions = []
    for text, js in zip(texts, got, strict=True):
        decision = engine.evaluate(text, "customer")
        want = [[f.kind, f.start, f.end] for f in decision.findings]
        assert [f[:3] for f in js["findings"]] == want, text
        assert js["text"] == decision.text, text
        decisions.append(decision)
    return decisions


_DATE_CUES = (*BIRTH_DATE_PHRASES, "出生於", "生辰", "Date of Birth", "DOB", "D.O.B.", "Born")
_DATES = (
    "1990-01-01",
    "1990/1/1",
    "1990.01.31",
    "19900101",
    "05/03/1990",
    "12/25/90",
    "1990.01",
    "1990-1",
    "1990年1月1日",
    "1990年1月",
    "一九九〇年十二月三十一日",
    "三月五号",
    "3月5号",
    "3 月 5 日",
    "March 5, 1990",
    "march 5th",
    "5th of March, 1990",
    "nov 5",
    "Sept 1990",
    "１９９０－０１－０１",
    # no date: a 13th month, a 32nd day, a year alone, a phone, a card's expiry
    "1990-13-01",
    "1990-02-32",
    "1990年",
    "18000000000",
    "12/26",
    "20241990",
)
_DATE_FILLERS = ("", "：", ": ", "是", "为", " is ", " was ", " on the ", "，", " - ", "于")
_BEFORE_FILLERS = ("", "是我的", " is my ", " 是 我的 ", "的", "过", " ", "，")
_PLATES = (
    "京A12345",
    "粤B·D12345",
    "粤B 12345D",
    "沪C1234学",
    "浙A 8B8B8",
    "川AF1234",
    "新A12345",
    "京Ａ１２３４５",
    "苏E-12345",
    "鲁B•A1234",
    # no plate: too short or long, too few digits, I or O, a model after 全新
    "京A1234",
    "京A123456789",
    "京ABCDE1",
    "京AI2345",
    "全新X10000",
    "北京a1234",
    "京东A12345",
)
_OTHER = ("发货", "生日快乐", "谢谢", "订单号 20240101", "my order", "车牌", "停在B2", "生产日期")


def _date_or_plate_like(rng: random.Random) -> str:
    """A text with dates of birth and plates, or nearly: the cues (Traditional and English
    ones too) with every filler before and after, the forms of a date and the dates that are
    none, the plates and the codes that are none, and other words between them."""
    pieces = []
    for _ in range(rng.randint(1, 4)):
        shape = rng.randrange(4)
        if shape == 0:  # cue, filler, date
            pieces.append(rng.choice(_DATE_CUES) + rng.choice(_DATE_FILLERS) + rng.choice(_DATES))
        elif shape == 1:  # date, filler, cue
            pieces.append(rng.choice(_DATES) + rng.choice(_BEFORE_FILLERS) + rng.choice(_DATE_CUES))
        elif shape == 2:
            pieces.append(rng.choice(("", "车牌", "车是", "我的车牌號：", "全", "iphone")))
            pieces[-1] += rng.choice(_PLATES)
        else:
            pieces.append(rng.choice(_OTHER + _DATES))
    return rng.choice(("", " ", "，", "。", "; ")).join(pieces)


def _cued(text: str) -> bool:
    return any(cue.lower() in text.lower() for cue in _DATE_CUES)


async def test_the_browser_engine_finds_birth_dates_and_plates_as_the_gateway_does(
    browser, gateway
):
    """detectors/birth_date.py and vehicle_plate.py at the ends (context rules the document
    carries, the date also before its cue): with a tenant's ``birth_date: mask`` and
    ``vehicle_plate: mask``, 3,000 texts (``_date_or_plate_like``) give the same findings at
    the same offsets in Chromium as in Python, and the same masked text."""
    rng = random.Random(20261207)
    texts = [_date_or_plate_like(rng) for _ in range(3000)]
    engine = PolicyEngine(
        PolicyConfig.from_dict({"actions": {"birth_date": "mask", "vehicle_plate": "mask"}})
    )
    decisions = await _alike_in_both_engines(browser, gateway, engine, texts)
    found = {k: sum(any(f.kind == k for f in d.findings) for d in decisions) for k in KINDS}
    # a date no cue precedes (within the longest filler) was found by the cue after it
    before = sum(
        any(
            f.kind == "birth_date" and not _cued(text[max(0, f.start - 12) : f.start])
            for f in decision.findings
        )
        for text, decision in zip(texts, decisions, strict=True)
    )
    # the texts reach both kinds and dates before their cue, not only the misses
    assert found["birth_date"] >= 1000 and found["vehicle_plate"] >= 500, found
    assert before >= 300, before


def _link_like(rng: random.Random) -> str:
    """A link written one of the ways links reach a chat: a scheme or none, full-width, an
    allowed domain or a subdomain of one, hosts in Cyrillic, Greek, accented Latin or Han,
    punycode, a user before the host, a port, IPv6 in brackets, a path and query, the
    sentence's punctuation after it, the ideographic full stop; one piece in seven dropped
    or swapped, so texts hit and miss near the pattern's edges."""
    pieces = [
        rng.choice(["", "看这个 ", "see ", "链接：", "login at ", "(", "「"]),
        rng.choice(
            ["", "", "https://", "http://", "ftp://", "ＨＴＴＰＳ：／／", "hxxps://", "HTTP://"]
        ),
        rng.choice(["", "", "user@", "bank.com@", "a:b@"]),
        rng.choice(
            [
                "example.com",
                "help.example.com",
                "example.com.evil.net",
                "pаypal.com",  # Cyrillic а
                "αpple.com",
                "pàypal.com",
                "例子.中国",
                "例子.com",
                "xn--pple-43d.com",
                "Straße.de",
                "[2001:db8::1]",
                "[::1",
                "192.168.0.1",
                "evil。com",
                "shop.example.co",
                "a.b",
                "ＥＸＡＭＰＬＥ．ＣＯＭ",
            ]
        ),
        rng.choice(["", "", ":8080", ":x", ":"]),
        rng.choice(["", "/", "/login?next=/a#f", "/路径", "/a b", "?q=1"]),
        rng.choice(["", ".", "，谢谢", ")", "!", "」", " ok", "*"]),
    ]
    for i in range(len(pieces)):
        if rng.random() < 0.15:
            pieces[i] = rng.choice(["", " ", pieces[rng.randrange(len(pieces))]])
    return "".join(pieces)


async def test_the_browser_engine_finds_and_judges_links_as_the_gateway_does(browser, gateway):
    """Links at the ends (links.py's twin in policy.js): on 1,500 generated links, both
    directions, with an allowed domain, the browser finds every link at the same offsets,
    judges its host the same way (allowed, external, homoglyph) and shows the same
    defanged text; a document without ``link_domains`` (signed before links were found at
    the ends) finds none."""
    rng = random.Random(23)
    engine = PolicyEngine(PolicyConfig.from_dict({"allowed_link_domains": ["example.com"]}))
    texts = [_link_like(rng) for _ in range(1500)]
    cases = [[text, d] for text in texts for d in ("customer", "agent")]
    doc = end_document(engine, None, 0)
    older = copy.deepcopy(doc)
    del older["link_domains"]
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        got = await page.evaluate(_EVALUATE, [doc, cases])
        got_older = await page.evaluate(_EVALUATE, [older, cases])
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()
    kinds = {"link": 0, "link_external": 0, "link_homoglyph": 0}
    for (text, direction), js, js_older in zip(cases, got, got_older, strict=True):
        decision = engine.evaluate(text, direction)
        want = [[f.kind, f.start, f.end, f.action] for f in decision.findings]
        assert [f[:4] for f in js["findings"]] == want, (text, direction)
        assert (js["action"], js["text"]) == (decision.action, decision.text), text
        assert not any(f[0].startswith("link") for f in js_older["findings"]), text
        for f in decision.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
    assert min(kinds.values()) >= 100, kinds  # every judgement, many times


_SEARCH = """(cases) => cases.map(([source, texts, flags]) => {
  const pattern = new RegExp(source, 'du' + (flags || ''));
  return texts.map((text) => {
    const m = pattern.exec(text);
    if (m === null) return null;
    const groups = m.indices.groups;
    const value = groups ? groups.value || groups.address : null;
    const cp = (i) => Array.from(text.slice(0, i)).length;  // Python counts code points
    return [cp(m.index), cp(m.index + m[0].length), value ? cp(value[0]) : -1,
            value ? cp(value[1]) : -1];
  });
})"""
_ALPHABET = (
    "0123456789" * 4
    + "abcdeinostuwxyz"
    + "  \t\n\r\u3000\x1c\ufeff\xa0"
    + "-.:：,，#=()+/_'\"“”;；!！?？"
    + "号码编号是为香港的至到為"
)


def _email_like(rng: random.Random) -> str:
    """An e-mail address written one of the ways people write them (the at and the dots as
    typed, bracketed, spelt or set apart; after a cue or not), one piece in seven dropped or
    swapped, so the texts hit and miss near the patterns' edges."""
    pieces = [
        rng.choice(["", "邮箱", "邮箱是 ", "邮件地址：", "mail: ", "email address is ", "email "]),
        rng.choice(["zhang", "zhang.san", "a_1", "li-na", "x", "Zhang"]),
        rng.choice(["", "", " dot san", "点san", " . san"]),
        rng.choice(["@", " @ ", "(at)", " [at] ", "【at】", " at ", "艾特", "#", "(a)", "＠"]),
        rng.choice(["163", "qq", "gmail", "mail.example", "sub-d"]),
        rng.choice([".", " dot ", "点", " . ", "(dot)", " [dot] ", ""]),
        rng.choice(["com", "cn", "org", "c0m", "", "comx"]),
        rng.choice(["", "，谢谢", " thanks", "-", ".", "\u3000ok"]),
    ]
    for i in range(len(pieces)):
        if rng.random() < 0.15:
            pieces[i] = rng.choice(["", " ", pieces[rng.randrange(len(pieces))]])
    if rng.random() < 0.15:  # letter by letter: "z h a n g @ q q . c o m"
        pieces[1:-1] = [" ".join("".join(pieces[1:-1]).replace(" ", ""))]
    return "".join(pieces)


def _python_search(pattern: re.Pattern[str], text: str) -> list[int] | None:
    m = pattern.search(text)
    if m is None:
        return None
    group = next((g for g in ("value", "address") if g in pattern.groupindex), None)
    value = m.span(group) if group else (-1, -1)
    return [m.start(), m.end(), *value]


async def test_the_translated_rule_patterns_match_as_in_python(browser, gateway):
    """policy/jsregex.py: each context rule's filler and value, as the end document carries
    them, finds in Chromium exactly what the Python pattern finds (the whole match and the
    value), and so does the pattern of a value joined to it, on 400 random texts per rule
    drawn from the characters the rules care about (digits, the announcing words, every kind
    of space, including those the two dialects' \\s disagree on); the e-mail patterns on
    400 texts each made of the pieces of addresses and their dodges; the window's ending
    and lead-in patterns on texts of words, letters, marks and symbols."""
    rng = random.Random(20261207)
    cases = []
    for rule in END_CONTEXT_RULES:
        texts = ["".join(rng.choices(_ALPHABET, k=rng.randint(0, 40))) for _ in range(400)]
        cases.append((rule.after, texts))
        joins = (" or ", "和", "、", " / ", "还有", "and")
        cases.append((rule.more, [rng.choice(joins) + text for text in texts]))
        if rule.before is not None:  # a value before its phrase: the text ends at the phrase
            cases.append((rule.before, [rng.choice(_DATES) + text[-6:] for text in texts]))
    for pattern in (ADDRESS, SPELT_ADDRESS, *AFTER_CUE.values()):
        cases.append((pattern, [_email_like(rng) for _ in range(400)]))
    # the window's (end.py ``window``): what may end a message after a phrase, and the
    # acknowledgement an answer may start with (matched ignoring case)
    answers = [*"_-,，：:。!！ \u3000🙂\u0301é٣ЖE1", "好的", "嗯", "OK", "Okay", "It Is", "sure"]
    for pattern in (ENDING, LEAD_IN):
        cases.append(
            (pattern, ["".join(rng.choices(answers, k=rng.randint(0, 8))) for _ in range(400)])
        )
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        got = await page.evaluate(
            _SEARCH,
            [
                [to_js(pattern.pattern), texts, "i" if pattern.flags & re.IGNORECASE else ""]
                for pattern, texts in cases
            ],
        )
    finally:
        await ctx.close()
    matched = 0
    for (pattern, texts), results in zip(cases, got, strict=True):
        for text, result in zip(texts, results, strict=True):
            assert result == _python_search(pattern, text), (pattern.pattern, text)
            matched += result is not None
    assert matched >= 600  # the texts reach the values, not only the misses


async def _on_each_document(
    browser, gateway, script: str, documents: dict[str, dict], texts: list[str]
) -> dict[str, object]:
    """What ``script`` gives for ``[document, texts]`` with each of ``documents``, in the
    console's page (no script error)."""
    ctx, page = await new_page(browser)
    try:
        await page.goto(gateway.base_url + "/console")
        got = {name: await page.evaluate(script, [doc, texts]) for name, doc in documents.items()}
        assert page.js_errors == [], page.js_errors
    finally:
        await ctx.close()
    return got


_RULES = """([doc, cases]) => {
  let engine;
  try { engine = CipherdeskPolicy.engine(doc); } catch (e) { return String(e.message); }
  return cases.map(
    (text) => engine.evaluate(text, 'customer').findings.map((f) => [f.kind, f.rule]));
}"""


async def test_the_documents_rules_drive_the_browser_engine(browser, gateway):
    """The browser runs the context rules the document carries: a cue added there is found
    without a new bundle, a rule the bundle does not know runs after the others, a rule
    needing a check the bundle lacks does not run, an expiry date counts in a message about
    what the document's words say, a signed document from before the rules (or those
    words) were carried runs the bundled default's, and a malformed rule refuses the
    document."""
    base = end_document(PolicyEngine(), None, 0)
    added = copy.deepcopy(base)
    added["rules"]["card.cvv"]["phrases"].append("verify digits")
    added["rules"]["bank_account.member"] = {
        "kind": "bank_account",
        "phrases": ["member no"],
        "after": to_js(r"\s{0,3}+(?P<value>[0-9]{6}+)(?![0-9])"),
        "letters": False,
        "checked": False,
    }
    added["rules"]["bank_account.checked"] = {**added["rules"]["bank_account.member"]}
    added["rules"]["bank_account.checked"].update(phrases=["loyalty no"], checked=True)
    added["rules"]["card.expiry"]["about"] = ["会员卡"]  # a narrower subject than a card
    older = copy.deepcopy(base)
    del older["rules"]
    before_about = copy.deepcopy(base)  # signed before the expiry rule carried its words
    del before_about["rules"]["card.expiry"]["about"]
    malformed = copy.deepcopy(base)
    malformed["rules"]["card.cvv"]["phrases"] = "cvv"
    texts = ["verify digits 123", "member no 123456", "loyalty no 123456", "cvv 123"]
    texts += ["visa 有效期 12/28"]
    documents = {"base": base, "added": added, "older": older, "before_about": before_about}
    got = await _on_each_document(browser, gateway, _RULES, {**documents, "bad": malformed}, texts)
    refused = got["bad"]
    cvv = [["card", "card.cvv"]]
    expiry = [["card", "card.expiry"]]
    assert got["base"] == [[], [], [], cvv, expiry]
    member = [["bank_account", "bank_account.member"]]
    assert got["added"] == [cvv, member, [], cvv, []]  # "visa" is not about a 会员卡
    assert got["older"] == got["before_about"] == got["base"]
    assert refused == "policy_document_invalid"


_SHOWN = """([doc, cases]) => {
  let engine;
  try { engine = CipherdeskPolicy.engine(doc); } catch (e) { return String(e.message); }
  return cases.map((text) => engine.evaluate(text, 'customer').text);
}"""


async def test_the_rules_masked_whole_come_from_the_document(browser, gateway):
    """A security code is masked whole although the card style shows the last four digits:
    the browser reads the rules masked whole from the document (``hidden``), a signed
    document from before it was carried runs the bundled default's, and a malformed list
    refuses the document."""
    base = end_document(PolicyEngine(), None, 0)
    base["masks"]["card"] = "last4"
    older = copy.deepcopy(base)
    del older["hidden"]
    none_hidden = copy.deepcopy(base)  # what a gateway refuses to store (test_end_policy)
    none_hidden["hidden"] = []
    malformed = copy.deepcopy(base)
    malformed["hidden"] = ["card.cvv", "<script>"]
    texts = ["cvv 1234", "4111 1111 1111 1111"]
    documents = {"base": base, "older": older, "none_hidden": none_hidden}
    got = await _on_each_document(
        browser, gateway, _SHOWN, {**documents, "malformed": malformed}, texts
    )
    assert got["base"] == got["older"] == ["cvv ****", "**** **** **** 1111"]
    assert got["none_hidden"] == ["cvv 1234", "**** **** **** 1111"]  # the list decides
    assert got["malformed"] == "policy_document_invalid"


async def test_names_and_addresses_come_from_the_document(browser, gateway):
    """The browser finds names and addresses with the document's ``names`` and ``address``;
    a signed document from before they were carried runs the bundled default's for the
    kinds its tenant had set an action for, finds neither when it has none (an unknown
    kind would flag every such message), and a malformed one refuses the document."""
    base = end_document(
        PolicyEngine(PolicyConfig.from_dict({"actions": {"name": "mask", "address": "mask"}})),
        None,
        0,
    )
    older = copy.deepcopy(base)
    del older["names"], older["address"]
    oldest = copy.deepcopy(older)  # its tenant had set no action for either kind
    del oldest["actions"]["name"], oldest["actions"]["address"]
    bad_names = copy.deepcopy(base)
    bad_names["names"]["words"]["relations"] = ["x" * 65]
    bad_address = copy.deepcopy(base)
    bad_address["address"]["divisions"] = "北京市  朝阳区"  # an empty name between two spaces
    texts = ["收件人张伟，寄到北京市朝阳区建国路88号", "ok"]
    documents = {"base": base, "older": older, "oldest": oldest, "bad_names": bad_names}
    got = await _on_each_document(
        browser, gateway, _SHOWN, {**documents, "bad_address": bad_address}, texts
    )
    assert got["base"] == got["older"] == ["收件人张*，寄到北京市朝阳区******", "ok"]
    assert got["oldest"] == texts  # neither found, nothing flagged
    assert got["bad_names"] == got["bad_address"] == "policy_document_invalid"


async def test_a_number_after_its_named_head_is_found_as_the_document_says(browser, gateway):
    """The browser finds a number given after its named head ("138开头，后面是…") with the
    document's ``parts.head``; a signed document from before it was carried finds the tail
    forms only, and a malformed head refuses the document."""
    base = end_document(PolicyEngine(), None, 0)
    older = copy.deepcopy(base)
    del older["parts"]["head"]
    malformed = copy.deepcopy(base)
    malformed["parts"]["head"]["leading"] = ["开头"] * 9
    texts = ["我手机是138开头，后面是00138000", "身份证前六位110105，后面是19491231002X"]
    documents = {"base": base, "older": older, "malformed": malformed}
    got = await _on_each_document(browser, gateway, _RULES, documents, texts)
    assert got["base"] == [[["phone", "parts"]] * 2, [["cn_id", "parts"]] * 2]
    assert got["older"] == [[], []]
    assert got["malformed"] == "policy_document_invalid"


async def _sign_policy(gateway: bx.Gateway, signing: TenantSigningKey, policy: dict) -> None:
    """What `cipherdesk e2e sign-policy` leaves in the tenant's settings."""
    tenant = await gateway.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "policy": policy}
    engine = PolicyEngine(PolicyConfig.from_dict(policy))
    text = end_document_text(engine, "demo", 1_700_000_000)
    tenant.settings["e2e_policy"] = {
        "body": text,
        "sig": signing.sign_policy(text),
        "issued": 1_700_000_000,
    }
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")


async def _ana_and_a_customer(
    browser: Any, gateway: bx.Gateway, signing: TenantSigningKey, console_locale: str | None = None
) -> list[tuple[Any, Any]]:
    """Agent Ana's console with a certified device, and a customer's widget in an e2e chat
    she accepted: [(context, console page), (context, widget page)]."""
    await gateway.agent("ana@example.com", name="Ana")
    pages = [await new_page(browser, locale=console_locale), await new_page(browser)]
    (_, ana), (_, customer) = pages
    await login_console(ana, gateway, "ana@example.com")
    await _certify_console(gateway, ana, "ana@example.com", signing)
    await open_widget(customer, gateway, name="Ada")
    await expect(customer.locator(".e2e-badge")).to_be_visible()
    await ana.locator(".queue-item button").first.click()
    await expect(customer.locator(".log")).to_contain_text("Ana can read this chat")
    return pages


@contextlib.asynccontextmanager
async def _e2e_chat(
    browser: Any, gateway: bx.Gateway, signing: TenantSigningKey, console_locale: str | None = None
) -> AsyncIterator[tuple[Any, Any]]:
    """Ana's console page and the customer's widget page of an e2e chat she accepted
    (``_ana_and_a_customer``), closed on leaving."""
    pages = await _ana_and_a_customer(browser, gateway, signing, console_locale)
    try:
        yield pages[0][1], pages[1][1]
    finally:
        for ctx, _ in pages:
            await ctx.close()


async def _customer_sends(customer: Any, ana: Any, text: str, shown: str) -> Any:
    """The customer sends ``text``; both ends show it once more, as ``shown`` (what the
    widget sealed). Answers Ana's open chat pane."""
    pane = ana.locator(".chat-pane:not([hidden])")
    sent, received = customer.locator(".msg.me .text"), pane.locator(".msg.them .text")
    counts = await sent.count(), await received.count()
    await customer_says(customer, text)
    for shown_at, count in ((sent, counts[0]), (received, counts[1])):
        await expect(shown_at).to_have_count(count + 1)
        await expect(shown_at.last).to_have_text(shown)
    return pane


def _in_clear(gateway: bx.Gateway, *needles: str) -> list[str]:
    """Those of ``needles`` the gateway's database files hold in clear."""
    data = _database_bytes(Path(gateway.svc.config.server.data_dir))
    return [needle for needle in needles if needle.encode() in data]


async def test_the_ends_mask_names_and_addresses_before_sealing(browser, gateway):
    """The tenant masks person names and postal addresses (signed policy): the widget sends
    a customer's name with its first character shown and an address with only its
    divisions shown, the console masks the agent's the same way, and the gateway stores
    none of them in clear."""
    signing = await _e2e_tenant(gateway)
    await _sign_policy(gateway, signing, {"actions": {"address": "mask", "name": "mask"}})
    async with _e2e_chat(browser, gateway, signing) as (ana, customer):
        await _customer_sends(
            customer,
            ana,
            "收件人张伟，寄到北京市朝阳区建国路88号3栋2单元501室，谢谢",
            "收件人张*，寄到北京市朝阳区***************，谢谢",
        )

        await agent_says(ana, "Mr. Zhang, 请到 Flat A, 12/F, Tower 2 取件")
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["Mr. Z****, 请到 **** *, **/*, ***** * 取件"]
        )
        assert _in_clear(gateway, "张伟", "建国路88号", "Zhang", "Tower 2") == []
        for page in (ana, customer):
            assert page.js_errors == [], page.js_errors


async def test_the_ends_mask_and_block_before_sealing(browser, gateway):
    """The tenant masks phones and blocks fraud scripts from customers (signed policy):
    the widget sends a card and a phone masked and never sends the fraud line; the
    console refuses an agent's card number; the gateway stores none of it in clear."""
    signing = await _e2e_tenant(gateway)
    await _sign_policy(
        gateway, signing, {"actions": {"phone": "mask", "fraud": {"customer": "block"}}}
    )
    async with _e2e_chat(browser, gateway, signing) as (ana, customer):
        pane = await _customer_sends(
            customer,
            ana,
            "card 4111 1111 1111 1111, phone 13812345678",
            "card **** **** **** 1111, phone *******5678",
        )
        await expect(customer.locator(".sys.notice.masked")).to_have_count(1)

        await customer_says(customer, "兼职刷单，日结返利")
        await expect(customer.locator(".msg.me").last).to_have_attribute("data-state", "failed")
        await expect(customer.locator(".sys.notice.blocked")).to_have_count(1)

        # A flagged line is sent, and supervisors get the kinds (no text).
        await customer_says(customer, "they said your account has been suspended")
        await expect(pane.locator(".msg.them .text").last).to_have_text(
            "they said your account has been suspended"
        )
        (flag,) = await gateway.svc.store.list_flags("demo")
        assert flag.kinds == ["phishing"]

        await agent_says(ana, "the card on file is 5555 5555 5555 4444")
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "failed")
        await expect(pane.locator(".notice.blocked")).to_have_count(1)
        await agent_says(ana, "好的，已处理")
        await expect(customer.locator(".msg.agent .text")).to_have_text(["好的，已处理"])

        chat = (await gateway.svc.store.list_chats("demo"))[0]
        stored = await gateway.svc.store.messages_after(chat.id, 0)
        assert [m.sender for m in stored] == ["customer", "customer", "agent"]  # none blocked
        assert (
            _in_clear(
                gateway,
                "4111 1111 1111 1111",
                "13812345678",
                "兼职刷单，日结返利",
                "5555 5555 5555 4444",
            )
            == []
        )
        for page in (ana, customer):
            assert page.js_errors == [], page.js_errors


async def test_the_ends_defang_links_and_keep_agents_to_the_tenants_domains(browser, gateway):
    """Links at the ends, with the tenant's signed allowed domains: a customer's link
    reaches the agent defanged with its real host (``bank.com@evil.com`` shows
    ``evil[.]com``), the console refuses an agent's link to another domain and sends one
    to the tenant's own (saying why, in the console's Chinese), and the gateway stores the
    customer's link only sealed."""
    signing = await _e2e_tenant(gateway)
    await _sign_policy(gateway, signing, {"allowed_link_domains": ["example.com"]})
    async with _e2e_chat(browser, gateway, signing, console_locale="zh-CN") as (ana, customer):
        pane = await _customer_sends(
            customer,
            ana,
            "login at https://bank.com@evil.com/reset please",
            "login at hxxps://evil[.]com/reset please",
        )

        await agent_says(ana, "please verify at https://examp1e-support.net/login")
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "failed")
        await expect(pane.locator(".notice.blocked")).to_have_count(1)
        await expect(pane.locator(".notice.blocked")).to_contain_text("只能发送公司批准网站的链接")
        await agent_says(ana, "see https://help.example.com/faq")
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["see https://help.example.com/faq"]
        )

        chat = (await gateway.svc.store.list_chats("demo"))[0]
        stored = await gateway.svc.store.messages_after(chat.id, 0)
        assert [m.sender for m in stored] == ["customer", "agent"]  # the phishing link never left
        assert _in_clear(gateway, "bank.com@evil.com", "examp1e-support", "help.example.com") == []
        for page in (ana, customer):
            assert page.js_errors == [], page.js_errors


async def test_the_ends_read_a_message_with_the_ones_before(browser, gateway):
    """A customer sends a card in two messages: the widget masks the part in the second
    before sealing it and flags it (``split:card``) for supervisors; an agent's card in
    two replies: the console does not send the second. The agent asks for a passport
    number: the widget masks the bare number the customer answers with."""
    signing = await _e2e_tenant(gateway)
    async with _e2e_chat(browser, gateway, signing) as (ana, customer):
        await customer_says(customer, "my card 4111 1111")
        await customer_says(customer, "1111 1111 thanks")
        sent = ["my card 4111 1111", "**** **** thanks"]
        await expect(customer.locator(".msg.me .text")).to_have_text(sent)
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(sent)
        (flag,) = await gateway.svc.store.list_flags("demo")
        assert (flag.seq, flag.kinds) == (2, ["card", "split:card"])

        await agent_says(ana, "the card on file is 5555 5555")
        await agent_says(ana, "5555 4444")
        await expect(pane.locator(".msg.me").last).to_have_attribute("data-state", "failed")
        await expect(pane.locator(".notice.blocked")).to_have_count(1)
        await expect(customer.locator(".msg.agent .text")).to_have_text(
            ["the card on file is 5555 5555"]
        )

        await agent_says(ana, "请提供您的护照号码")
        await expect(customer.locator(".msg.agent .text").last).to_have_text("请提供您的护照号码")
        await customer_says(customer, "好的，E12345678")
        await expect(customer.locator(".msg.me .text").last).to_have_text("好的，*****5678")
        await expect(pane.locator(".msg.them .text").last).to_have_text("好的，*****5678")
        for page in (ana, customer):
            assert page.js_errors == [], page.js_errors


async def test_a_policy_the_tenant_did_not_sign_is_not_run(browser, gateway):
    """A gateway serving a policy signed by another key (say, one that allows cards)
    gets the bundled default instead: the card is still masked."""
    signing = await _e2e_tenant(gateway)
    await _sign_policy(gateway, TenantSigningKey.generate(), {"actions": {"card": "allow"}})
    async with _e2e_chat(browser, gateway, signing) as (ana, customer):
        await customer_says(customer, "我的卡号 4111 1111 1111 1111")
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(["我的卡号 **** **** **** 1111"])
        assert customer.js_errors == [], customer.js_errors


async def test_the_console_releases_a_masked_transcript_at_close(browser, gateway):
    """The tenant lets agents release e2e transcripts: the agent ticks "Send masked
    transcript to helpdesk" and closes; the helpdesk event carries the texts the console
    masked (the console in zh-CN)."""
    signing = await _e2e_tenant(gateway)
    tenant = await gateway.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "e2e_release_transcripts": True}
    await gateway.svc.store.update_tenant(tenant)
    gateway.svc.tenants.invalidate("demo")
    await gateway.svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "https://hooks.example.test/e2e", "secret": "s" * 32, "events": ["chat.closed"]},
    )
    async with _e2e_chat(browser, gateway, signing, console_locale="zh-CN") as (ana, customer):
        await customer_says(customer, "我的卡号 4111 1111 1111 1111")
        pane = ana.locator(".chat-pane:not([hidden])")
        await expect(pane.locator(".msg.them .text")).to_have_text(["我的卡号 **** **** **** 1111"])
        await agent_says(ana, "好的")
        await expect(customer.locator(".msg.agent .text")).to_have_text(["好的"])
        release = pane.locator("label.release")
        await expect(release).to_have_text("将脱敏聊天记录发送到工单系统")
        await release.locator("input").check()
        await pane.locator("button.btn.danger").click()
        await expect(pane.locator(".log")).to_contain_text(
            "已将脱敏聊天记录发送到工单系统（2 条消息）"
        )
        items = [
            i
            for i in await gateway.svc.store.list_events(tenant_id="demo")
            if i.event_type == "chat.closed"
        ]
        (closed,) = [await gateway.svc.plugins.decode(i) for i in items]
        texts = {row["seq"]: row.get("text") for row in closed["transcript"]}
        assert texts == {1: "我的卡号 **** **** **** 1111", 2: "好的"}
        assert all(row["released"] for row in closed["transcript"])
        assert ana.js_errors == [], ana.js_errors
