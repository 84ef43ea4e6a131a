"""Benchmark of the full policy pass (gateway/policy) against Microsoft Presidio.

Presidio is the baseline and is installed ONLY for this benchmark:

    .venv/bin/pip install -r bench/requirements-presidio.txt
    .venv/bin/python bench/filter.py [--lines 20000] [--seed 7]

Presidio pulls spaCy, but no model is needed: its pattern recognizers (CreditCardRecognizer,
EmailRecognizer, PhoneRecognizer, IbanRecognizer) are called directly with
``nlp_artifacts=None``. Without Presidio installed, only our figures are printed.

What is measured, in one run and one process:

* a deterministic corpus of realistic chat lines, Chinese and English, ~1% carrying personal
  data (cards, PRC IDs, phones, e-mails, IBANs), plus decoys (order numbers, checksum-invalid
  cards and IDs, prices, dates) that must NOT be reported;
* our full policy pass (normalise, 10,000 keywords, all detectors, links, masking) vs Presidio
  running only the entity recognizers for the same types: MB/s, lines/s and the ratio;
* precision/recall per system on the labelled lines, (line, entity type) pairs, overall and
  for the types Presidio supports (it has no PRC ID recognizer);
* p50/p99 of one policy pass on 500-character lines (the first pass; the best of three in a
  row; and each line's least over five rounds through all lines, which drops the VM's
  scheduler noise but not the cost of running after other lines);
* adversarial inputs (regex-backtracking bait) with a time bound: each must finish in < 1 s at
  100k characters and scale linearly;
* the evasion corpus (issue 12): cards, PRC IDs and mobiles written with every evasion class
  (separators, dashes, Chinese numerals and capitals, English/pinyin digit words, homoglyphs,
  homoglyphs mixed with Chinese numerals,
  HTML entities, percent escapes, bidi override + reversed digits, long digit prefixes) --
  recall, target >= 0.99 -- and look-alike decoys written the same ways (Luhn-invalid cards,
  wrong ID check characters, order and tracking numbers, prices, dates) -- precision, target
  >= 0.97; Presidio runs on the same corpus for comparison;
* names and addresses (and dates of birth, plates) on the labelled corpus
  ``tests/policy/pii_corpus.jsonl`` (P/R >= 0.90);
* the worst case of one pass on 4,000-character adversarial messages (target < 50 ms), as
  CPU time of the pass (wall time on a shared machine measures the neighbours too).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stdnum import luhn
from stdnum.cn import ric

from gateway.policy import KeywordRule, PolicyConfig, PolicyEngine

TYPES = ("card", "cn_id", "phone", "email", "iban")
PRESIDIO_TYPES = {
    "CREDIT_CARD": "card",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IBAN_CODE": "iban",
}

EN = [
    "Hi, I placed an order yesterday and it still says processing, can you check?",
    "Thanks for the quick reply, that solved it.",
    "The app keeps logging me out every few minutes on my phone.",
    "Can I change the delivery address for order {order}?",
    "I was charged twice for the same subscription this month.",
    "My package arrived damaged, the box was completely crushed.",
    "How long does a refund usually take to show up on my statement?",
    "The discount code from your newsletter does not work at checkout.",
    "Is there a way to export my invoices as PDF?",
    "I need to cancel my plan before the renewal on the {day}th.",
    "Your website says in stock but the cart says unavailable.",
    "The total was {price} but I expected the sale price.",
    "ok thanks, have a nice day!",
    "I tried resetting it but the email never arrives.",
    "Order {order} shipped on {date} but tracking shows nothing.",
]
ZH = [
    "你好，我昨天下的订单到现在还显示处理中，能帮我查一下吗？",
    "谢谢你的快速回复，问题已经解决了。",
    "我的手机上的应用每隔几分钟就自动退出登录。",
    "订单{order}可以修改收货地址吗？",
    "这个月同一个会员被扣了两次钱。",
    "包裹到的时候外箱已经压坏了，里面的东西也碎了。",
    "退款一般多久能到账？",
    "优惠券在结算的时候用不了，提示已过期。",
    "請問發票可以開成公司抬頭嗎？",
    "我想在{day}号续费之前取消套餐。",
    "网页上显示有货，但是购物车里说缺货。",
    "总价是{price}元，和活动价不一样。",
    "好的，谢谢，祝你工作顺利！",
    "物流单号{order}，{date}发货的，一直没有更新。",
    "客服您好，我的账户登录不上去了，一直提示密码错误。",
]
EN_PII = [
    ("card", "my card number is {v}, please charge it"),
    ("card", "you can use {v} for the payment"),
    ("phone", "call me back at {v} please"),
    ("email", "my email is {v}"),
    ("iban", "please refund to IBAN {v}"),
    ("cn_id", "my Chinese ID is {v}"),
]
ZH_PII = [
    ("card", "我的银行卡号是{v}，麻烦帮我退款"),
    ("card", "卡号 {v} 请核实"),
    ("phone", "我的手机号是{v}，请回电"),
    ("email", "邮箱是{v}"),
    ("cn_id", "身份证号{v}，请帮我实名认证"),
    ("iban", "请退款到这个账户 IBAN {v}"),
]
IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "ES9121000418450200051332",
]


def _card(rng: random.Random) -> str:
    prefix = rng.choice(["4", "51", "53", "55", "6222", "6011", "3528"])
    body = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
    number = body + luhn.calc_check_digit(body)
    style = rng.randrange(3)
    if style == 0:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if style == 1:
        return "-".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _cn_id(rng: random.Random) -> str:
    area = rng.choice(["110105", "310104", "440305", "510107", "330106"])
    birth = f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = area + birth + f"{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum ignores the last character


def _phone(rng: random.Random, zh: bool) -> str:
    if zh or rng.random() < 0.5:
        n = rng.choice(["138", "139", "186", "150", "177"]) + f"{rng.randint(0, 99999999):08d}"
        return rng.choice([n, f"{n[:3]} {n[3:7]} {n[7:]}", f"+86 {n}"])
    return rng.choice(["+44 20 7946 {:04d}", "+1 415 555 {:04d}", "+49 30 1234 {:04d}"]).format(
        rng.randint(1000, 9999)
    )


def _email(rng: random.Random) -> str:
    user = rng.choice(["li.wei", "zhang_san", "john.smith", "mary88", "k.tanaka"])
    domain = rng.choice(["gmail.com", "qq.com", "163.com", "outlook.com"])
    return f"{user}{rng.randint(1, 999)}@{domain}"


def _value(kind: str, rng: random.Random, zh: bool) -> str:
    return {
        "card": lambda: _card(rng),
        "cn_id": lambda: _cn_id(rng),
        "phone": lambda: _phone(rng, zh),
        "email": lambda: _email(rng),
        "iban": lambda: rng.choice(IBANS),
    }[kind]()


def _order(rng: random.Random) -> str:
    """Order/tracking numbers as shops issue them -- date-prefixed, or 10-12 digits starting
    with 9 (so that ground truth is unambiguous: a random 11-digit number starting 13x IS a
    valid Chinese mobile number) -- or a near-miss: a card-shaped number with a wrong check
    digit, an ID with a wrong one."""
    kind = rng.random()
    if kind < 0.4:
        return f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999999):06d}"
    if kind < 0.8:
        return "9" + str(rng.randint(10**8, 10**11))
    if kind < 0.9:
        card = _card(rng).replace(" ", "").replace("-", "")
        return card[:-1] + str((int(card[-1]) + 1) % 10)
    cn_id = _cn_id(rng)
    return cn_id[:-1] + ("0" if cn_id[-1] != "0" else "1")


def _decoy_fill(rng: random.Random) -> dict[str, str]:
    """Numbers that must not be reported: order numbers, prices, dates."""
    return {
        "order": _order(rng),
        "price": f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
        "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "day": str(rng.randint(1, 28)),
    }


def build_corpus(n: int, seed: int) -> list[tuple[str, frozenset[str]]]:
    """(line, expected entity types) pairs; ~1% of lines carry personal data."""
    rng = random.Random(seed)
    lines: list[tuple[str, frozenset[str]]] = []
    for _ in range(n):
        zh = rng.random() < 0.5
        if rng.random() < 0.01:
            kind, template = rng.choice(ZH_PII if zh else EN_PII)
            lines.append((template.format(v=_value(kind, rng, zh)), frozenset({kind})))
        else:
            template = rng.choice(ZH if zh else EN)
            lines.append((template.format(**_decoy_fill(rng)), frozenset()))
    return lines


def build_keywords(n: int, seed: int) -> list[dict[str, str]]:
    """n synthetic terms (half Chinese, half English) plus the built-in list in the engine."""
    rng = random.Random(seed)
    pool = "诈骗刷单返利赌博贷款套现代办假证发票走私枪支毒品黑客破解外挂裸聊色情传销邪教"
    words = [
        "crypto",
        "giveaway",
        "wire",
        "bitcoin",
        "casino",
        "loan",
        "bonus",
        "pharma",
        "replica",
        "escort",
        "hack",
        "cheat",
        "jackpot",
        "lottery",
        "investment",
    ]
    terms: set[str] = set()
    while len(terms) < n:
        if len(terms) % 2:
            terms.add("".join(rng.choice(pool) for _ in range(rng.randint(3, 5))))
        else:
            terms.add(f"{rng.choice(words)} {rng.choice(words)} {rng.randint(10, 9999)}")
    return [{"term": t, "category": "bulk", "action": "block"} for t in sorted(terms)]


def score(
    predicted: list[frozenset[str]], expected: list[frozenset[str]], types: tuple[str, ...]
) -> tuple[float, float]:
    tp = fp = fn = 0
    for p, e in zip(predicted, expected, strict=True):
        p, e = p & set(types), e & set(types)
        tp += len(p & e)
        fp += len(p - e)
        fn += len(e - p)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def timed(
    fn: Callable[[str], frozenset[str]], lines: list[str]
) -> tuple[float, list[frozenset[str]]]:
    start = time.perf_counter()
    out = [fn(line) for line in lines]
    return time.perf_counter() - start, out


_CJK = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
_CAPS = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖", strict=True))
_WORDS = dict(
    zip("0123456789", "zero one two three four five six seven eight nine".split(), strict=True)
)
_PINYIN = dict(zip("0123456789", "ling yao er san si wu liu qi ba jiu".split(), strict=True))
_SEPS = ["\n", "\t", "/", ",", "_", "    ", "\u2212", "\u2013", "\u2014", "\u2015", " - ", "\u3000"]
_DINGBATS = dict(zip("0123456789", "⓿❶➁➌⓸❺➅➐⓼❾", strict=True))
"""Circled digits without a compatibility mapping (dingbats, double circled), mixed."""
_NUMERAL_WORDS = ["一直打不通", "两个都行", "一张", "一下", "三天了"]
"""Chinese words that start with a numeral, written right after the number."""


def _spoken(number: str, rng: random.Random) -> str:
    """``number`` read aloud: zero as "oh" or "zero", repeated digits as "double"/"triple"."""
    words = []
    i = 0
    while i < len(number):
        run = len(number[i:]) - len(number[i:].lstrip(number[i]))
        take = min(run, 3)
        digit = (
            "oh" if number[i] == "0" and rng.random() < 0.7 else _WORDS.get(number[i], number[i])
        )
        words.append({1: "", 2: "double ", 3: "triple "}[take] + digit)
        i += take
    return rng.choice([" ", ", "]).join(words)


def _evade(number: str, rng: random.Random) -> tuple[str, str]:
    """(evasion class, the number written that way)."""
    cls = rng.choice(
        [
            "separator",
            "cjk",
            "capitals",
            "words",
            "pinyin",
            "homoglyph",
            "mixed",
            "entity",
            "percent",
            "bidi",
            "long-prefix",
            "blank",
            "numeral-word",
            "dingbat",
            "spoken",
            "parts",
        ]
    )
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    if cls == "separator":
        return cls, rng.choice(_SEPS).join(groups)
    if cls in ("cjk", "capitals"):
        table = _CJK if cls == "cjk" else _CAPS
        return cls, rng.choice(["", " "]).join(table.get(c, c) for c in number)
    if cls in ("words", "pinyin"):
        table = _WORDS if cls == "words" else _PINYIN
        return cls, " ".join(table.get(c, c) for c in number)
    if cls == "homoglyph":
        chars = list(number)
        for i in rng.sample(range(1, len(chars) - 1), 2):
            chars[i] = {"0": "O", "1": "l"}.get(chars[i], chars[i])
        return cls, " ".join("".join(chars[i : i + 4]) for i in range(0, len(chars), 4))
    if cls == "mixed":  # homoglyphs for 0 and 1, Chinese numerals for the rest: "l三八OO…"
        return cls, "".join({"0": "O", "1": "l"}.get(c) or _CJK.get(c, c) for c in number)
    if cls == "entity":
        return cls, "".join(f"&#{ord(c)};" if rng.random() < 0.5 else c for c in number)
    if cls == "percent":
        return cls, "".join(f"%{ord(c):02X}" for c in number)
    if cls == "bidi":
        return cls, "\u202e" + number[::-1] + "\u202c"
    if cls == "blank":  # groups further apart than any separator run: whitespace only
        return cls, "".join(g + rng.choice([" ", "\n"]) * rng.randint(13, 40) for g in groups)
    if cls == "numeral-word":
        return cls, number + rng.choice(_NUMERAL_WORDS)
    if cls == "dingbat":
        return cls, " ".join("".join(_DINGBATS[c] for c in g) if g.isdigit() else g for g in groups)
    if cls == "spoken":  # read aloud: "one three eight double oh …", "triple one"
        return cls, _spoken(number, rng)
    if cls == "parts":  # its head or tail named apart, the rest elsewhere in the message
        template = rng.choice(
            [
                "尾号{tail}，前面是{rest}",
                "{head}开头，后面是{body}",
                "前三位{head}，其余{body}",
                "前四位{head4}，中间{middle}，后四位{tail}",
                "starts with {head4}, the rest {body4}",
                "尾号{tail_cjk}，前面是{rest}",  # the tail in Chinese numerals
                "starts with {head_words}, then {body}",  # the head in digit words
                "it ends in {tail_words}, the rest is {rest}",
            ]
        )
        return cls, template.format(
            tail_cjk="".join(_CJK.get(c, c) for c in number[-4:]),
            head_words=" ".join(_WORDS.get(c, c) for c in number[:3]),
            tail_words=" ".join(_WORDS.get(c, c) for c in number[-4:]),
            head=number[:3],
            body=number[3:],
            head4=number[:4],
            body4=number[4:],
            middle=number[4:-4],
            tail=number[-4:],
            rest=number[:-4],
        )
    # The attack: more than 48 digits before the number (a filler run, not random
    # digits -- random digits hold real-looking cards and phones by chance).
    return cls, " ".join("0" for _ in range(rng.randint(49, 200))) + " " + " ".join(groups)


def build_evasions(n: int, seed: int) -> tuple[list[tuple[str, str, str]], list[str]]:
    """([(line, kind, class)], [decoy lines]) -- every decoy is written with an evasion too."""
    rng = random.Random(seed)
    positives = []
    makers = {
        "card": lambda: _card(rng).replace(" ", "").replace("-", ""),
        "cn_id": lambda: _cn_id(rng),
        "phone": lambda: (
            rng.choice(["138", "139", "186", "150", "177"]) + f"{rng.randint(0, 99999999):08d}"
        ),
    }
    templates = ["我的号码是{v}，请核实", "number: {v} thanks", "{v}", "卡号：{v}。"]
    for _ in range(n):
        kind = rng.choice(list(makers))
        cls, written = _evade(makers[kind](), rng)
        positives.append((rng.choice(templates).format(v=written), kind, cls))
    decoys = []
    for _ in range(n):
        pick = rng.random()
        if pick < 0.3:  # Luhn-invalid card
            card = makers["card"]()
            number = card[:-1] + str((int(card[-1]) + 1) % 10)
        elif pick < 0.5:  # wrong ID check character
            cn_id = _cn_id(rng)
            number = cn_id[:-1] + ("0" if cn_id[-1] != "0" else "1")
        elif pick < 0.7:  # order numbers, tracking numbers
            number = rng.choice(
                [
                    f"2024{rng.randint(1, 12):02d}{rng.randint(0, 99999999):08d}",
                    "9" + str(rng.randint(10**9, 10**11)),
                    f"77{rng.randint(10**10, 10**11)}",
                ]
            )
        else:
            decoys.append(
                rng.choice(
                    [
                        f"价格 {rng.randint(1, 9999)}.{rng.randint(0, 99):02d} 元 "
                        f"x {rng.randint(1, 9)}",
                        f"日期 2024/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d} "
                        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                        f"运单号 SF{rng.randint(10**11, 10**12)}",
                        f"订单 #{rng.randint(10**5, 10**7)}",
                        f"共 {rng.randint(1, 9)} 件，{rng.randint(1, 99)} 号楼 "
                        f"{rng.randint(100, 2999)} 室",
                    ]
                )
            )
            continue
        _, written = _evade(number, rng)
        if written.startswith(" ") or "\u202e" in written:
            written = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        # no "卡号" here: a number announced as a card/account number is masked on purpose
        decoys.append(
            rng.choice(["订单号：{v}", "单号 {v} 查一下", "number: {v} thanks", "{v}"]).format(
                v=written
            )
        )
    return positives, decoys


def evasion_report(
    engine: PolicyEngine, presidio: Callable[[str], frozenset[str]] | None, n: int, seed: int
) -> tuple[float, float]:
    positives, decoys = build_evasions(n, seed)
    numeric = {"card", "cn_id", "phone", "bank_account"}  # "卡号：…" makes any number an account
    per_class: dict[str, list[int]] = {}
    found_total = 0
    pres_found = 0
    for line, kind, cls in positives:
        kinds = {f.kind for f in engine.evaluate(line, "customer").findings}
        hit = kind in kinds or bool(kinds & {"bank_account"})
        found_total += hit
        per_class.setdefault(cls, []).append(hit)
        if presidio is not None and kind in ("card", "phone"):
            pres_found += kind in presidio(line)
    recall = found_total / len(positives)
    fp = sum(
        bool({f.kind for f in engine.evaluate(d, "customer").findings} & numeric) for d in decoys
    )
    precision = found_total / (found_total + fp) if found_total + fp else 1.0
    print(f"evasion corpus: {len(positives)} evasive numbers, {len(decoys)} look-alike decoys")
    print(
        f"  recall {recall:.3f} (target >= 0.99), precision {precision:.3f} (target >= 0.97), "
        f"{fp} decoy(s) reported"
    )
    print(
        "  per class: " + ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in sorted(per_class.items()))
    )
    if presidio is not None:
        eligible = sum(1 for _, k, _ in positives if k in ("card", "phone"))
        print(
            f"  Presidio on the same evasive cards and phones: recall {pres_found / eligible:.3f}"
        )
    return recall, precision


def worst_case_4000(engine: PolicyEngine) -> float:
    units = [
        "4 ",
        "1\n",
        "one ",
        "一",
        "一 ",
        "1l",
        "&#52;",
        "%34",
        "\u202e4 1",
        "4111111111111111",
        "4" + " " * 12,
        "1x",
        "4111 1111 1111 1111 ",
        "138 0013 8000, ",
        "收件人张三，地址北京市朝阳区建国路88号，",
        "我叫",
        "号",
        "a.",
        "http://a.",
        "验证码",
        "1月1日出生",
        "生日 1990年1月",
        "京A12345",
    ]
    worst, worst_name = 0.0, ""
    for unit in units:
        text = (unit * (4000 // len(unit) + 1))[:4000]
        best = min(_cpu(engine, text) for _ in range(3))
        if best > worst:
            worst, worst_name = best, unit
    print(
        f"worst case of one pass on a 4,000-char adversarial message: {worst * 1000:.1f} ms CPU "
        f"({worst_name!r} repeated; target < 50 ms)"
    )
    return worst


def _cpu(engine: PolicyEngine, text: str) -> float:
    start = time.thread_time()
    engine.evaluate(text, "customer")
    return time.thread_time() - start


def names_addresses_report(engine: PolicyEngine) -> None:
    from tests.policy.pii_score import score as pii_score

    scores, size, _ = pii_score(engine)
    print(
        f"names/addresses/dates of birth/plates corpus: {size} labelled lines "
        "(tests/policy/pii_corpus.jsonl)"
    )
    for kind, sc in scores.items():
        print(
            f"  {kind:13s} precision {sc.precision:.3f} recall {sc.recall:.3f} "
            f"(tp {sc.tp}, fp {sc.fp}, fn {sc.fn}; target >= 0.90/0.90)"
        )


def presidio_runner() -> Callable[[str], frozenset[str]] | None:
    try:
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            PhoneRecognizer,
        )
    except ImportError:
        return None
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: bundled suffix list
    recognizers = [
        CreditCardRecognizer(),
        EmailRecognizer(),
        IbanRecognizer(),
        PhoneRecognizer(supported_regions=("CN", "GB", "US", "DE")),
    ]

    def run(text: str) -> frozenset[str]:
        found = set()
        for r in recognizers:
            for res in r.analyze(text, entities=r.supported_entities, nlp_artifacts=None):
                if res.score > 0:
                    found.add(PRESIDIO_TYPES[res.entity_type])
        return frozenset(found)

    run("warm up a@example.com 4111111111111111")
    return run


def adversarial(engine: PolicyEngine) -> list[tuple[str, float, float]]:
    cases = {
        "digits+spaces": "1 ",
        "dots": "a.",
        "at-signs": "a@",
        "url": "http://a",
        "email-ish": "a.b@c.",
        "separators": "-.",
        "zero-width": "\u200b",
        "pem": "-----begin ",
        "password": "password: ",
        "otp": "验证码",
        "ids": "1" * 17 + "x ",
        "parens": "(1) ",
        "cjk-dots": "銀。",
    }
    out = []
    for name, unit in cases.items():
        times = []
        for size in (10_000, 100_000):
            text = unit * (size // len(unit))
            start = time.perf_counter()
            engine.evaluate(text, "customer")
            engine.evaluate(text, "agent")
            times.append(time.perf_counter() - start)
        out.append((name, times[0], times[1]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--keywords", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--evasions", type=int, default=2000)
    args = parser.parse_args()

    corpus = build_corpus(args.lines, args.seed)
    lines = [c[0] for c in corpus]
    expected = [c[1] for c in corpus]
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    t0 = time.perf_counter()
    engine = PolicyEngine(
        PolicyConfig.from_dict({"actions": {"phone": "mask", "email": "mask"}}),
        extra_rules=[
            KeywordRule(k["term"], k["category"], "block", "bench")
            for k in build_keywords(args.keywords, args.seed)
        ],
    )
    build = time.perf_counter() - t0
    print(
        f"corpus: {len(lines)} lines, {megabytes:.2f} MB, "
        f"{sum(bool(e) for e in expected)} with personal data; "
        f"{engine.keywords.size} keywords (engine built in {build * 1000:.0f} ms)"
    )

    def ours(text: str) -> frozenset[str]:
        return frozenset(f.kind for f in engine.evaluate(text, "customer").findings)

    ours(lines[0])
    ours_time, ours_pred = min((timed(ours, lines) for _ in range(3)), key=lambda r: r[0])
    print(
        f"cipherdesk policy pass : {megabytes / ours_time:8.2f} MB/s "
        f"{len(lines) / ours_time:10.0f} lines/s"
    )
    p, r = score(ours_pred, expected, TYPES)
    print(f"  precision {p:.3f} recall {r:.3f} (all types: {', '.join(TYPES)})")
    for lang, pick in (
        ("zh", lambda s: any("\u4e00" <= c <= "\u9fff" for c in s)),
        ("en", lambda s: not any("\u4e00" <= c <= "\u9fff" for c in s)),
    ):
        idx = [i for i, s in enumerate(lines) if pick(s)]
        lp, lr = score([ours_pred[i] for i in idx], [expected[i] for i in idx], TYPES)
        print(f"  {lang}: precision {lp:.3f} recall {lr:.3f}")
    shared = tuple(PRESIDIO_TYPES.values())
    p2, r2 = score(ours_pred, expected, shared)
    print(f"  precision {p2:.3f} recall {r2:.3f} (types Presidio supports)")

    run = presidio_runner()
    if run is None:
        print("presidio-analyzer not installed: pip install -r bench/requirements-presidio.txt")
    else:
        pres_time, pres_pred = timed(run, lines)
        print(
            f"presidio recognizers   : {megabytes / pres_time:8.2f} MB/s "
            f"{len(lines) / pres_time:10.0f} lines/s"
        )
        pp, pr = score(pres_pred, expected, shared)
        _pa, ra = score(pres_pred, expected, TYPES)
        print(
            f"  precision {pp:.3f} recall {pr:.3f} (types it supports); "
            f"recall {ra:.3f} over all types"
        )
        print(
            f"ratio: cipherdesk is {pres_time / ours_time:.1f}x Presidio's throughput "
            "(ours includes 10k keywords, links and masking)"
        )

    evasion_report(engine, run, args.evasions, args.seed)
    names_addresses_report(engine)
    worst_4000 = worst_case_4000(engine)

    rng = random.Random(args.seed + 1)
    long_lines = []
    while len(long_lines) < 3000:
        text = ""
        while len(text) < 500:
            text += rng.choice(lines) + " "
        long_lines.append(text[:500])
    for text in long_lines[:200]:
        engine.evaluate(text, "customer")  # warm caches and the allocator, as a server is
    samples = []
    best = []
    for text in long_lines:
        runs = []
        for _ in range(3):
            start = time.perf_counter_ns()
            engine.evaluate(text, "customer")
            runs.append((time.perf_counter_ns() - start) / 1000)
        samples.append(runs[0])
        best.append(min(runs))
    # Rounds over all lines: each line's pass follows other lines' (as in a server, not
    # warmed by itself); its least of the rounds drops scheduler noise, which on a shared
    # VM moves single passes by a third.
    rounds = [math.inf] * len(long_lines)
    for _ in range(5):
        for k, text in enumerate(long_lines):
            start = time.perf_counter_ns()
            engine.evaluate(text, "customer")
            rounds[k] = min(rounds[k], (time.perf_counter_ns() - start) / 1000)
    rounds.sort()
    samples.sort()
    best.sort()
    p99 = samples[int(len(samples) * 0.99)]
    print(
        f"500-char line (chat lines joined), one pass each: p50 {statistics.median(samples):.0f}"
        f" us, p99 {p99:.0f} us, max {samples[-1]:.0f} us (target p99 < 200 us)"
    )
    print(
        f"  same lines, best of 3 passes each (the line's own cost, without scheduler noise): "
        f"p50 {statistics.median(best):.0f} us, p99 {best[int(len(best) * 0.99)]:.0f} us"
    )
    print(
        f"  one pass per line in each of 5 rounds over all lines, each line's least: "
        f"p50 {statistics.median(rounds):.0f} us, p99 {rounds[int(len(rounds) * 0.99)]:.0f} us"
    )

    worst = 0.0
    print("adversarial input (both directions), 10k -> 100k chars:")
    for name, small, big in adversarial(engine):
        worst = max(worst, big)
        print(f"  {name:14s} {small * 1000:7.1f} ms -> {big * 1000:7.1f} ms")
    ok = worst < 1.0 and worst_4000 < 0.05
    verdict = "OK" if ok else "TOO SLOW"
    print(f"  worst {worst * 1000:.0f} ms at 100k chars: {verdict} (bound 1000 ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
