"""Writes ``vectors.jsonl`` and ``window_vectors.jsonl``: the policy test vectors every
engine must pass (the Python one here, the browser one of the end-to-end mode). Run
``python -m tests.policy.make_vectors`` after a deliberate behaviour change and review the
diff line by line -- the files are the contract, this script only saves typing.

Each line: ``policy`` (tenant policy settings), ``text``, ``direction``, ``action``,
``findings`` (kind, start, end, action; offsets in Unicode code points and, for JavaScript,
``start_utf16``/``end_utf16``), ``masked`` (what the recipient sees, null when blocked) and
``plugin`` (what plugins get).

``window_vectors.jsonl`` is the same for the cross-message window (``split.py`` and
``gateway/web/policy_window.js``): each line a ``policy`` and the ``messages`` of one chat,
each with its ``direction``, ``at`` (seconds on the window's clock) and what the window
makes of it: ``action``, ``masked``, ``findings`` (with ``rule``),
``split_kinds`` and ``flags`` (what a supervisors' flag names).
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.split import SplitWindow, flag_kinds

OUT = Path(__file__).with_name("vectors.jsonl")
WINDOW_OUT = Path(__file__).with_name("window_vectors.jsonl")
PHONE_MASK = {"actions": {"phone": "mask"}}

CASES: list[tuple[dict, str, str]] = [
    ({}, "my card is 4111 1111 1111 1111, charge it", "customer"),
    ({}, "card 4111 1111 1111 1111", "agent"),
    ({}, "身份证号11010519491231002X，请帮我实名认证", "customer"),
    ({}, "call me 13812345678 or zhang.san@example.com", "customer"),
    (PHONE_MASK, "手机 138 0013 8000，谢谢", "customer"),
    ({}, "4111\n1111\n1111\n1111", "customer"),
    ({}, "4111\t1111\t1111\t1111", "customer"),
    ({}, "4111/1111/1111/1111", "customer"),
    ({}, "4111,1111,1111,1111", "customer"),
    ({}, "4111_1111_1111_1111", "customer"),
    ({}, "4111    1111    1111    1111", "customer"),
    ({}, "4111\u22121111\u22121111\u22121111", "customer"),
    ({}, "4111\u20141111\u20131111\u20151111", "customer"),
    ({}, "卡号四一一一一一一一一一一一一一一一", "customer"),
    ({}, "卡号肆壹壹壹壹壹壹壹壹壹壹壹壹壹壹壹", "customer"),
    ({}, "four one one one one one one one one one one one one one one one", "customer"),
    (PHONE_MASK, "yao san ba ling ling yao san ba ling ling ling", "customer"),
    ({}, "card 4111 l111 1111 1111 thanks", "customer"),
    (PHONE_MASK, "电话 l三八〇〇一三八〇〇〇 谢谢", "customer"),
    ({}, "身份证 I一〇一〇五一九四九一二三一〇〇二X", "customer"),
    ({}, "number: 4403 0519 8503 1294 lX thanks", "customer"),
    ({}, "卡号 6011050040404849 ba", "customer"),
    ({}, "card &#52;111 1111 1111 1111", "customer"),
    ({}, "%34%31%31%31%31%31%31%31%31%31%31%31%31%31%31%31", "customer"),
    ({}, "号码\u202e1111111111111114\u202c。", "customer"),
    ({}, " ".join("7" * 1 for _ in range(70)) + " 4111 1111 1111 1111", "customer"),
    ({}, "4111 1111 1111 1112", "customer"),
    ({}, "11010519491231002Y", "customer"),
    ({}, "订单号 2024031212345678901，运单号 SF1234567890123", "customer"),
    ({}, "价格 ¥1,299.00 x 3，日期 2024/05/01", "customer"),
    ({}, "你好，我叫张三，收货地址：北京市朝阳区建国路88号", "customer"),
    (
        {"actions": {"name": "mask", "address": "mask"}},
        "收件人：欧阳娜娜，地址：上海市浦东新区张江路123弄4号楼501室",
        "customer",
    ),
    ({}, "My name is John Smith, I live at 12 Baker Street.", "customer"),
    ({}, "你的验证码是多少？把验证码发给我", "agent"),
    ({}, "我们这里兼職刷單返利，日结", "customer"),
    ({}, "see https://evil.example.net/login", "agent"),
    ({}, "password: hunter2!", "customer"),
    ({}, "卡号 😀4111 1111 1111 1111", "customer"),
    ({}, "please refund to IBAN DE89 3704 0044 0532 0130 00 thanks", "customer"),
    ({}, "IBAN: BG61 BUIN 9863 90JQ C0TD AU, 谢谢", "customer"),
    ({}, "IBAN DE89\n3704\n0044\n0532\n0130\n00", "customer"),
    (
        {},
        "IBAN DE89/3704/0044/0532/0130/00 或 DE89\u20133704\u20130044\u20130532\u20130130\u201300",
        "customer",
    ),
    ({}, "IBAN DE89 3 7 0 4  0 0 4 4  0 5 3 2  0 1 3 0  0 0 thanks", "customer"),
    ({}, "ab12 DE89370400440532013000 GB82WEST12345698765432", "customer"),
    ({}, "IBAN DE89 37O4 OO44 O532 Ol3O OO, GB82 WEST l234 5698 7654 32", "customer"),
    (PHONE_MASK, "手机13800138000一直打不通，卡号4111111111111111一张", "customer"),
    ({}, "card ❹❶❶❶ ➊➊➊➊ ⓵⓵⓵⓵ ➀➀➀➀", "customer"),
    ({}, "卡号 4111 1111 1111 1111 有效期 12/26 安全码 123", "customer"),
    (
        {},
        "card 4111" + "\n" * 20 + "1111" + " " * 30 + "1111\n\n\n\n\n\n\n\n\n\n\n\n\n\n1111",
        "customer",
    ),
    ({}, "what is the CVV 123 on the back?", "agent"),
    (PHONE_MASK, "手机138零零13八000，身份证11010519491231002X两张", "customer"),
    ({"actions": {"email": "mask"}}, "email zhang.san at example dot com", "customer"),
    (
        {"actions": {"email": "mask"}},
        "邮箱 zhangsan at qq.com，email me at example.com",
        "customer",
    ),
    (
        {"actions": {"email": "mask"}},
        "郵箱 zhangsan 艾特 163 點 com，look at example.com",
        "customer",
    ),
    ({}, "我的護照號碼是：E12345678，港澳通行证 C12345678", "customer"),
    ({}, "passport no. 123456789, SSN 123-45-6789", "customer"),
    ({}, "護照還沒辦好，订单 12345678；passport photos 2", "customer"),
    ({}, "老身份证号：110105 491231 002，ID card number is 110105491231002", "customer"),
    ({}, "身份证 110105194912310，订单 110105491231002", "customer"),
    ({}, "please send your passport number E12345678 again", "agent"),
    ({}, "社保卡号 1234 5678 9，银行卡号 6222 0212 3456 7890", "customer"),
    (
        PHONE_MASK,
        "call one three eight double oh one three eight triple oh, oh and thanks",
        "customer",
    ),
    (PHONE_MASK, "Oh, 13800138000 is mine; double check it. one three eight oh oh one", "customer"),
    (
        {},
        "订单号 five three four double two eight five three one seven one nine three two five two",
        "customer",
    ),
    (
        {"actions": {"email": "mask"}},
        "邮箱 zhangsan @ qq . com 或 li@126 dot com，see you @ 5pm. thanks",
        "customer",
    ),
    (PHONE_MASK, "手机 138 0013 8000 139 0013 9000，订单 12 137 0013 7000 5", "customer"),
    (PHONE_MASK, "卡号 6222 0212 3456 7890 123，账户 6217 0013 8000 1234", "customer"),
    ({}, "护照号码是E 1234 5678，passport number: E-1234-5678", "customer"),
    (
        {"actions": {"im_account": "mask"}},
        "我的QQ是123456789，加我微信 zhang_san88；微信支付，my wechat account is zhangsan",
        "customer",
    ),
    ({}, "加我vx：wxid_abc123456，邮箱 zhangsan@qq.com", "customer"),
    ({}, "香港身份证 A123456(3)，另一张 AB987654（3），错的 A123456(4)", "customer"),
    (
        PHONE_MASK,
        "call me at (415) 555-2671; my cell is 415.555.2671, my number in HK is 9123 4567",
        "customer",
    ),
    (PHONE_MASK, "香港电话 9123 4567，台湾手机 0912 345 678，订单号 91234567", "customer"),
    (PHONE_MASK, "phone: 12345678 is my order, call me at 5pm", "customer"),
    (
        {"actions": {"email": "mask"}},
        "email me at john dot smith at gmail dot com，邮箱 zhang 点 san 艾特 163 点 com",
        "customer",
    ),
    (
        {},
        "IBAN G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2, my iban is de 89 3704 0044 0532 0130 00",
        "customer",
    ),
    ({}, "G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2 without the word", "customer"),
    ({"actions": {"im_account": "mask"}}, "qq 号 123 456 789，QQ群 12345 678 人", "customer"),
    ({}, "刷単返利，転账到安全账户", "customer"),
    ({}, "卡号 4111111111111111 有效期 12/26 安全码 123；my visa expires 09/2027", "customer"),
    ({}, "优惠券有效期 12/26，会员有效期到12/31", "customer"),
    (
        {"actions": {"im_account": "mask"}},
        "加薇 zhang_san88，扣扣 123456789，加vip会员",
        "customer",
    ),
    (
        {"actions": {"email": "mask"}},
        "邮箱 zhangsan#qq.com（#换成@），email: li(a)163.com，zhangsan【at】163.com，邮箱 wang@qq",
        "customer",
    ),
    (
        {},
        "SSN 123-45-6789 or 666-12-3456, order 123-45-6789-1, 驾驶证号 110105194912310021",
        "customer",
    ),
    ({}, "my hkid is A1234563, NRIC S1234567D, driver's license D1234567", "customer"),
    (PHONE_MASK, "call me at (415) 555-2671 or (415) 555-2672", "customer"),
    (
        {},
        "my QQ is 123456789 or 987654321，账号 6222 0202 0001 2345 678 和 6228 4800 1234 5678 912",
        "customer",
    ),
    ({}, "护照号 E12345678 和 G87654321，验证码 123456，8888元的订单", "customer"),
    ({}, "我的银行卡 6217 0000 1000 0000 123，my card number is 4111 1111 1111 1112", "customer"),
    (
        {},
        "身份证号 110105 19491231 0021，订单号 110105194912310021，身份证 110105194913310021",
        "customer",
    ),
    (
        {"actions": {"email": "mask"}},
        "邮箱 z h a n g s a n @ q q . c o m，a b c @ d e f . g h i",
        "customer",
    ),
    (
        {"actions": {"name": "mask"}},
        "收件人是我老公张伟，寄给我妈妈刘秀英，我姓李，名字叫明",
        "customer",
    ),
    # English names typed in lower case: a given name and a surname both lexicons hold
    (
        {"actions": {"name": "mask"}},
        "ship to mary jones please. thanks,\nlinda wang",
        "customer",
    ),
    ({"actions": {"name": "mask"}}, "ship to will call, deliver to grace church", "customer"),
    (
        {"actions": {"address": "mask"}},
        "Ship it to 1600 Amphitheatre Parkway, Mountain View, CA 94043",
        "customer",
    ),
    ({"actions": {"address": "mask"}}, "地址：浙江省杭州市西湖区文三路90号东部软件园", "customer"),
    # a number given in two parts, its last digits named apart (detectors/parts.py)
    ({}, "身份证后四位002X，前面11010519491231", "customer"),
    ({}, "身份证后四位002x，前15位110105194912310", "customer"),
    ({}, "身份证号码的后六位是31002X，前面是110105194912", "customer"),
    (PHONE_MASK, "尾号5678或5679，前七位1380013", "customer"),
    (PHONE_MASK, "手机尾号5678，前面是138 0013", "customer"),
    ({}, "my card ends in 1111, the rest is 4111 1111 1111", "customer"),
    ({}, "订单号20240101123，尾号1234", "customer"),
    # in three parts: two consecutive parts before (or around) the tail
    ({}, "身份证前六位110105，中间19491231，后四位002X", "customer"),
    ({}, "my card starts with 4111, then 1111 1111, last four 1111", "customer"),
    (PHONE_MASK, "手机前三位138，中间0013，尾号8000", "customer"),
    ({}, "订单12345678，金额99元，尾号1234", "customer"),
    # its first digits named apart: the rest after them, in one part or two
    (PHONE_MASK, "我手机是138开头，后面是00138000", "customer"),
    (PHONE_MASK, "前三位138，其余 0013 8000", "customer"),
    ({}, "my card starts with 4111, the rest is 1111 1111 1111", "customer"),
    ({}, "身份证前六位110105，后面是19491231002X", "customer"),
    (PHONE_MASK, "开头是138，中间0013，最后8000", "customer"),
    (PHONE_MASK, "138开头的订单，金额99元", "customer"),
    # in Chinese numerals
    (PHONE_MASK, "尾号八零零零，前七位一三八零零一三", "customer"),
    (PHONE_MASK, "一三八开头，后面是零零一三八零零零", "customer"),
    ({}, "身份证后四位零零二X，前面11010519491231", "customer"),
    (PHONE_MASK, "一二三开头的订单，参加活动", "customer"),
    # in digit words, English and pinyin, spoken as numbers are read aloud
    (PHONE_MASK, "my number starts with one three eight, then 0013 8000", "customer"),
    (
        PHONE_MASK,
        "it ends in eight oh oh oh, the rest is one three eight double oh one three",
        "customer",
    ),
    ({}, "last four one one one one, and the card starts with 4111 1111 1111", "customer"),
    (PHONE_MASK, "手机尾号 ba ling ling ling，前七位 yao san ba ling ling yao san", "customer"),
    (PHONE_MASK, "I have one or two questions; my order ends in 1234", "customer"),
    # spoken-only words alone ("oh", "double") are no digits: no digit word stands alone
    (PHONE_MASK, "前七位1380013，尾号double oh double oh", "customer"),
    ({}, "card 4111 1111 1111 11 double oh", "customer"),
    # dates of birth after their cue; licence plates by their form
    (
        {"actions": {"birth_date": "mask"}},
        "出生日期：1990-01-01，生日是三月五号；DOB 05/03/1990, born on the 5th of March, 1990",
        "customer",
    ),
    ({}, "我的生日是1990年1月1日，生日礼物3月5日送到，2024-12-18发货的", "customer"),
    (
        {"actions": {"birth_date": "mask"}},
        "我是1990年3月5日出生的，5月20日是我的生日 6月1日发货；March 5 is my birthday",
        "customer",
    ),
    (
        {"actions": {"vehicle_plate": "mask"}},
        "车牌京A12345，新能源粤B·D12345，教练车沪C1234学；全新X10000型号，北京a1234",
        "customer",
    ),
    ({}, "停车场里的车是浙A 8B8B8，明天上午来取", "agent"),
]


_C, _A = "customer", "agent"
WINDOW_CASES: list[tuple[dict, list[tuple[str, str, float]]]] = [
    ({}, [(_C, "my card 4111 1111", 0), (_C, "1111 1111 thanks", 5)]),
    ({}, [(_C, "4111 1111", 0), (_C, "1111", 3), (_C, "1111 ok", 6)]),
    ({}, [(_A, "the card is 4111 1111", 0), (_A, "1111 1111", 2)]),
    (PHONE_MASK, [(_C, "电话138", 0), (_C, "0013 8000，谢谢", 4)]),
    ({}, [(_C, "身份证110105", 0), (_C, "19491231002X", 9)]),
    ({}, [(_C, "卡号四一一一一一一一", 0), (_C, "一一一一一一一一", 1)]),
    ({}, [(_C, "IBAN DE89 3704 0044", 0), (_C, "0532 0130 00", 3)]),
    ({}, [(_C, "4111 1111", 0), (_C, "1111 1111", 121)]),  # past the window's 120 s
    ({}, [(_C, "4111 1111", 0), (_C, "ok", 1), (_C, "1111 1111", 2)]),  # no digits: closed
    ({}, [(_C, "order 20240101", 0), (_C, "price 1299", 1)]),  # no number in the join
    ({"actions": {"card": "flag"}}, [(_C, "card 4111 1111", 0), (_C, "1111 1111", 1)]),
    (
        {"actions": {"card": {"customer": "block"}}},
        [(_C, "4111 1111", 0), (_C, "1111 1111", 1), (_C, "1111 1111", 2)],
    ),
    ({}, [(_C, "🙂 4111 1111", 0), (_C, "1111 1111 🙂 and 4111 1111 1111 1111", 1)]),
    (PHONE_MASK, [(_C, "call 138", 0), (_C, "0013", 1), (_C, "8000", 2)]),
    # a number given in two parts, one per message (detectors/parts.py)
    (PHONE_MASK, [(_C, "手机尾号5678", 0), (_C, "前面是1380013", 3)]),
    ({}, [(_C, "身份证后四位002X", 0), (_C, "前面11010519491231 谢谢", 3)]),
    (PHONE_MASK, [(_C, "我手机138开头", 0), (_C, "后面是00138000", 3)]),
    ({}, [(_C, "my card starts with 4111", 0), (_C, "then 1111 1111 1111", 2)]),
    # in digit words: the words keep the window open as digits do
    (
        {},
        [
            (_C, "card four one one one one one one one", 0),
            (_C, "one one one one one one one one", 2),
        ],
    ),
    (PHONE_MASK, [(_C, "my number starts with one three eight", 0), (_C, "then 0013 8000", 3)]),
    (PHONE_MASK, [(_C, "yao san ba ling ling", 0), (_C, "yao san ba ling ling ling", 3)]),
    ({}, [(_C, "I have one question", 0), (_C, "one more: my order ends in 1234", 3)]),
    # an agent's question, the customer's answer
    ({}, [(_A, "请提供您的护照号码", 0), (_C, "E12345678", 10)]),
    # a person's name asked for by a cue, the bare name answered
    ({"actions": {"name": "mask"}}, [(_A, "请提供收件人姓名", 0), (_C, "张伟", 5)]),
    ({"actions": {"name": "mask"}}, [(_A, "What's your full name?", 0), (_C, "Sure, Jane Doe", 5)]),
    ({"actions": {"name": "mask"}}, [(_C, "我的姓名是：", 0), (_C, "王建国", 2)]),
    (
        {"actions": {"name": "mask"}},
        [(_A, "What's the name of the product?", 0), (_C, "Apple Watch", 5)],
    ),
    ({}, [(_A, "请提供您的护照号码", 0), (_C, "好的，E12345678 谢谢", 10)]),
    ({}, [(_A, "What is the CVV on the back?", 0), (_C, "OK, 482", 5)]),
    ({}, [(_A, "验证码是多少？", 0), (_C, "稍等", 3), (_C, "482913", 9)]),
    ({}, [(_A, "验证码是多少？", 0), (_C, "稍等", 3), (_C, "嗯", 6), (_C, "482913", 9)]),
    ({}, [(_A, "验证码是多少？", 0), (_C, "482913", 121)]),  # the question expired
    ({}, [(_A, "验证码收不到？", 0), (_C, "我的订单号是12345678", 4)]),  # not at the start
    ({}, [(_A, "请提供您的护照号码 E12345678", 0), (_C, "G87654321", 4)]),  # value given
    ({}, [(_A, "你的QQ号是多少？", 0), (_C, "😀 123456789", 2)]),
    # the customer's own phrase, the value sent next
    ({}, [(_C, "我的护照号码是：", 0), (_C, "E12345678", 2)]),
    ({}, [(_C, "my passport number is", 0), (_C, "E12345678", 2)]),
    ({}, [(_C, "护照号码丢了怎么办", 0), (_C, "E12345678", 2)]),  # inside: no window
    ({}, [(_C, "my card 4111 1111", 0), (_A, "请提供您的护照号码", 1), (_C, "1111 1111", 2)]),
    ({}, [(_A, "请问您的出生日期是？", 0), (_C, "1990-01-01", 5)]),
    (
        {"actions": {"birth_date": "mask"}},
        [(_C, "my date of birth is", 0), (_C, "March 5, 1990", 2)],
    ),
    ({}, [(_A, "祝您生日快乐！", 0), (_C, "谢谢，12月3日我再来", 3)]),  # no value at the start
]
"""Messages of one chat in order, each with its sender and its time on the window's clock."""


def _utf16(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def build() -> list[dict]:
    rows = []
    engines: dict[str, PolicyEngine] = {}
    for policy, text, direction in CASES:
        key = json.dumps(policy, sort_keys=True)
        engine = engines.setdefault(key, PolicyEngine(PolicyConfig.from_dict(policy)))
        d = engine.evaluate(text, direction)  # type: ignore[arg-type]
        rows.append(
            {
                "policy": policy,
                "text": text,
                "direction": direction,
                "action": d.action,
                "findings": [
                    {
                        "kind": f.kind,
                        "start": f.start,
                        "end": f.end,
                        "action": f.action,
                        "start_utf16": _utf16(text, f.start),
                        "end_utf16": _utf16(text, f.end),
                    }
                    for f in d.findings
                ],
                "masked": d.text,
                "plugin": engine.for_audience(text, d, "plugin"),
            }
        )
    return rows


def build_window() -> list[dict]:
    rows = []
    for policy, messages in WINDOW_CASES:
        engine = PolicyEngine(PolicyConfig.from_dict(policy))
        clock = [0.0]
        window = SplitWindow(clock=lambda clock=clock: clock[0])  # type: ignore[misc]
        results = []
        for direction, text, at in messages:
            clock[0] = at
            d = engine.evaluate(text, direction)  # type: ignore[arg-type]
            d = window.check(engine, "chat", direction, text, d)  # type: ignore[arg-type]
            results.append(
                {
                    "direction": direction,
                    "text": text,
                    "at": at,
                    "action": d.action,
                    "masked": d.text,
                    "findings": [
                        {
                            "kind": f.kind,
                            "start": f.start,
                            "end": f.end,
                            "action": f.action,
                            "rule": f.rule,
                            "start_utf16": _utf16(text, f.start),
                            "end_utf16": _utf16(text, f.end),
                        }
                        for f in d.findings
                    ],
                    "split_kinds": list(d.split_kinds),
                    "flags": flag_kinds(d),
                }
            )
        rows.append({"policy": policy, "messages": results})
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"wrote {len(rows)} vectors to {path}")


if __name__ == "__main__":
    _write(OUT, build())
    _write(WINDOW_OUT, build_window())
