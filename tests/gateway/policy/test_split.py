"""Numbers split across consecutive messages (per chat and sender, bounded window)."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors.numbers import number_like
from gateway.policy.split import MAX_PARTS, SplitWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig.from_dict({"actions": {"phone": "mask"}}))


def _send(window: SplitWindow, eng: PolicyEngine, chat: str, text: str, who="customer"):
    return window.check(eng, chat, who, text, eng.evaluate(text, who))


def test_card_split_over_two_messages_is_masked_and_marked(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock())
    first = _send(w, eng, "c1", "my card 4111 1111")
    assert first.action == "allow" and first.split_kinds == ()
    second = _send(w, eng, "c1", "1111 1111 thanks")
    assert second.split_kinds == ("card",) and second.action == "mask"
    assert second.text == "**** **** thanks"
    assert [f.rule for f in second.findings] == ["card.luhn.split"]


def test_iban_split_over_two_and_three_messages(eng: PolicyEngine) -> None:
    # The window joins the parts with a newline, which IBANs did not allow inside them:
    # an IBAN sent in two messages reached the agent whole.
    w = SplitWindow(clock=Clock())
    assert _send(w, eng, "c1", "IBAN DE89 3704 0044").action == "allow"
    second = _send(w, eng, "c1", "0532 0130 00 thanks")
    assert second.split_kinds == ("iban",) and second.text == "**** **** ** thanks"
    w = SplitWindow(clock=Clock())
    for part in ("IBAN DE89 3704 0044", "0532"):
        assert _send(w, eng, "c2", part).action == "allow"
    third = _send(w, eng, "c2", "0130 00")
    assert third.split_kinds == ("iban",) and third.text == "**** **"


def test_three_messages_and_chinese_numerals(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock())
    for part in ("手机一三八", "一二三四"):
        assert _send(w, eng, "c", part).split_kinds == ()
    done = _send(w, eng, "c", "五六七八")
    assert done.split_kinds == ("phone",) and done.text == "****"


def test_agent_split_card_is_blocked(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", "card 4111 1111", "agent")
    assert _send(w, eng, "c", "1111 1111", "agent").action == "block"


def test_window_is_per_chat_and_sender_and_expires(eng: PolicyEngine) -> None:
    clock = Clock()
    w = SplitWindow(clock=clock, ttl=60)
    _send(w, eng, "a", "4111 1111")
    assert _send(w, eng, "b", "1111 1111").split_kinds == ()  # other chat
    _send(w, eng, "a", "4111 1111")
    assert _send(w, eng, "a", "1111 1111", "agent").split_kinds == ()  # other sender
    _send(w, eng, "x", "4111 1111")
    clock.now += 61
    assert _send(w, eng, "x", "1111 1111").split_kinds == ()  # expired


def test_window_is_bounded_and_forgets(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock(), max_chats=50)
    for i in range(500):
        _send(w, eng, f"chat{i}", "order 1234 5678")
    assert len(w) == 50
    w.forget("chat499")
    assert len(w) == 49
    _send(w, eng, "t", "hello there, no numbers")
    assert ("t", "customer") not in w._tails  # nothing number-like kept
    long = "x" * 5000 + " 4111 1111"
    _send(w, eng, "t", long)
    assert all(len(part) <= 48 for part in w._tails[("t", "customer")][1])
    assert MAX_PARTS == 2


def test_no_false_split_on_unrelated_numbers(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", "订单 2024 0312")
    assert _send(w, eng, "c", "数量 3 件，价格 12.50").split_kinds == ()
    _send(w, eng, "c", "card 4111 1111 1111 1111")  # complete in one message
    d = _send(w, eng, "c", "1234")
    assert d.split_kinds == ()


@pytest.mark.parametrize(
    ("question", "answer", "shown", "kind"),
    [
        ("请提供您的护照号码，谢谢", "E12345678", "*****5678", "id_document"),
        ("請問您的驗證碼是多少？", "好的，482913", "好的，******", "otp"),
        ("What is the CVV on the back?", "OK, 123", "OK, ***", "card"),
        (
            "请告诉我您的银行账号",
            "6222 0212 3456 7890 123",
            "**** **** **** ***0 123",
            "bank_account",
        ),
        ("老身份证号是多少", "110105491231002", "***********1002", "cn_id"),
    ],
)
def test_a_customer_answering_an_agents_question_is_read_with_it(
    eng: PolicyEngine, question: str, answer: str, shown: str, kind: str
) -> None:
    w = SplitWindow(clock=Clock())
    assert _send(w, eng, "c", question, "agent").action == "allow"
    d = _send(w, eng, "c", answer)
    assert d.text == shown and d.kinds == (kind,)
    assert d.split_kinds == ()  # an answer is no evasion: no supervisor alert of its own
    assert _send(w, eng, "c", answer).text == answer  # answered: the question is used up


@pytest.mark.parametrize(
    ("question", "answer", "shown"),
    [
        ("请提供收件人姓名", "张伟", "张*"),
        ("您的名字是？", "好的，李明", "好的，李*"),
        ("持卡人姓名是什么", "欧阳娜娜", "欧***"),
        ("What's your full name?", "Sure, Jane Doe", "Sure, J*** D**"),
    ],
)
def test_a_name_answering_an_agents_question_is_read_with_it(
    question: str, answer: str, shown: str
) -> None:
    """A question that names a person by a cue ("收件人姓名", "your full name") makes the
    customer's bare name in the answer a name (masked here by the tenant's action)."""
    eng = PolicyEngine(PolicyConfig.from_dict({"actions": {"name": "mask"}}))
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", question, "agent")
    d = _send(w, eng, "c", answer)
    assert d.text == shown and d.kinds == ("name",)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What's the name of the product?", "Apple Watch"),  # no person asked for
        ("your name please", "jane"),  # one word, not capitalised: no name
        ("收件人姓名？", "房东"),  # a word, not a name
        ("我叫什么来着", "张伟"),  # a customer's own cue is no question
    ],
)
def test_answers_that_name_no_one_stay_as_typed(question: str, answer: str) -> None:
    eng = PolicyEngine(PolicyConfig.from_dict({"actions": {"name": "mask"}}))
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", question, "agent")
    assert _send(w, eng, "c", answer).text == answer


def test_the_answer_may_come_in_the_second_message_within_the_ttl(eng: PolicyEngine) -> None:
    clock = Clock()
    w = SplitWindow(clock=clock)
    _send(w, eng, "c", "请提供护照号码", "agent")
    _send(w, eng, "c", "好的，护照在找，稍等")
    _send(w, eng, "c", "谢谢", "agent")  # no new question: the first one still stands
    assert _send(w, eng, "c", "E12345678").text == "*****5678"
    _send(w, eng, "c", "请提供护照号码", "agent")
    for text in ("稍等", "马上"):
        _send(w, eng, "c", text)
    assert _send(w, eng, "c", "E12345678").text == "E12345678"  # two answers only
    _send(w, eng, "c", "请提供护照号码", "agent")
    clock.now += w.ttl + 1
    assert _send(w, eng, "c", "E12345678").text == "E12345678"


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("验证码收不到吗？", "我的订单号是12345678"),  # words before the number: no answer
        ("您好，请问有什么可以帮您", "12345678"),  # no question naming a value
        ("护照号 E12345678 对吗", "12345678"),  # the question held its value already
    ],
)
def test_only_a_value_right_at_the_start_of_an_answer_to_a_question_counts(
    eng: PolicyEngine, question: str, answer: str
) -> None:
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", question, "agent")
    assert _send(w, eng, "c", answer).text == answer


def test_customers_questions_do_not_make_agents_answers_findings(eng: PolicyEngine) -> None:
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", "你们的验证码是多少位？")
    assert _send(w, eng, "c", "6位，例如123456", "agent").kinds == ()
    w.forget("c")


@pytest.mark.parametrize(
    ("cue", "value", "kind"),
    [
        ("我的护照号码是：", "E12345678", "id_document"),
        ("my number is", "415 555 2671", "phone"),
        ("qq", "123456789", "im_account"),
        ("CVV", "123", "card"),
    ],
)
def test_a_customers_phrase_held_apart_from_its_value_is_read_with_it(
    eng: PolicyEngine, cue: str, value: str, kind: str
) -> None:
    w = SplitWindow(clock=Clock())
    assert _send(w, eng, "c", cue).findings == ()
    d = _send(w, eng, "c", value)
    assert [(f.kind, value[f.start : f.end]) for f in d.findings] == [(kind, value)]


@pytest.mark.parametrize(
    "first",
    [
        "护照的事情我再问问",  # the phrase does not end the message
        "验证码收不到，订单号",
        "护照号码 E12345678",  # the value came with it
    ],
)
def test_a_phrase_inside_a_message_opens_no_window(eng: PolicyEngine, first: str) -> None:
    w = SplitWindow(clock=Clock())
    _send(w, eng, "c", first)
    assert _send(w, eng, "c", "12345678").findings == ()


@pytest.mark.parametrize(
    ("text", "number_like_"),
    [
        ("4111 1111", True),
        ("卡号四一一一", True),
        ("four one one one", True),
        ("Yao San Ba", True),
        ("I have ONE question", True),  # a word of its own: kept (the join decides)
        ("my phone is broken", False),  # "one" inside a word
        ("hello there, see you", False),
        ("好的，谢谢", False),
    ],
)
def test_what_keeps_the_window_open(text: str, number_like_: bool) -> None:
    """A message's tail is kept, and the next message read with it, when it holds a digit,
    a numeral or a digit word standing alone (a number spelt over two messages)."""
    assert number_like(text) is number_like_
