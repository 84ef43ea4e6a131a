"""Masking never leaves a detected number recoverable; offsets always land on the number."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from gateway.policy import PolicyConfig, PolicyEngine
from gateway.policy.detectors import is_card_number
from gateway.policy.normalize import fold

ENGINE = PolicyEngine(
    PolicyConfig.from_dict(
        {"builtin_keywords": False, "actions": {"phone": "mask", "email": "mask"}}
    )
)
_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "62", "6011", "3528"]))
    length = 16
    body = prefix + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"),
                min_size=length - len(prefix) - 1,
                max_size=length - len(prefix) - 1,
            )
        )
    )
    return body + luhn.calc_check_digit(body)


@st.composite
def disguised(draw: st.DrawFn, number: str) -> str:
    out = []
    for i, d in enumerate(number):
        if draw(st.booleans()):
            d = _FULLWIDTH[d]
        out.append(d)
        if i < len(number) - 1:
            out.append(draw(st.sampled_from(["", "", " ", "-", ".", "\u200b", " - "])))
    return "".join(out)


_FILLER = st.text(
    alphabet=st.sampled_from([*list("abc xyz,.!?你好银行。"), "\u200b", "😀"]), max_size=20
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), card_numbers(), _FILLER, _FILLER)
def test_masked_cards_show_at_most_the_last_four(
    data: st.DataObject, number: str, before: str, after: str
) -> None:
    assert is_card_number(number)
    shown_number = data.draw(disguised(number))
    text = f"{before} {shown_number} {after}"
    d = ENGINE.evaluate(text, "customer")
    cards = [f for f in d.findings if f.kind == "card"]
    assert cards, text
    for f in cards:
        digits = "".join(c for c in fold(text[f.start : f.end]) if c.isdigit())
        assert is_card_number(digits)  # the offsets land exactly on the number
    assert d.text is not None
    assert number[:12] not in "".join(c for c in fold(d.text) if c.isdigit())
    if any(f.kind.startswith("link") for f in d.findings):
        return  # defanging ("a.ca" -> "a[.]ca") legitimately changes lengths; see test_links
    assert len(d.text) == len(text)  # star masks keep offsets
    for f in cards:
        masked = fold(d.text[f.start : f.end])
        visible = "".join(c for c in masked if c.isdigit())
        assert visible == number[-4:]


_NOISE = st.sampled_from([*"0123456789 -.+x()@abc验证码密码:", "\u200b", "４"])


@settings(max_examples=200)
@given(st.text(alphabet=_NOISE, max_size=60))
def test_no_masked_finding_keeps_more_digits_than_its_tail(text: str) -> None:
    d = ENGINE.evaluate(text, "customer")
    if d.text is None or len(d.text) != len(text):
        return
    tails = {
        "card": 4,
        "cn_id": 4,
        "iban": 4,
        "bank_account": 4,
        "phone": 4,
        "otp": 0,
        "password": 0,
    }
    for f in d.findings:
        if f.action in ("mask", "flag") and f.kind in tails:
            shown = [c for c in fold(d.text[f.start : f.end]) if c.isdigit()]
            assert len(shown) <= tails[f.kind], (text, f)
            assert f.start < f.end <= len(text)
