"""Dates of birth, named by their cue: "出生日期：1990-01-01", "我的生日是3月5号", "DOB 05/03/1990",
"born on the 5th of March, 1990".

A date of birth is personal information that, with a name, identifies a person and answers
the questions staff ask to verify one, so it is handled like a phone number: agents see it,
plugins and exports get it masked (``****-**-**``). A date alone is not one: order dates,
delivery dates and expiry dates fill customer-service chat ("2024-12-18发货的"), so the cue is
the validation, as for identity documents. Between cue and date only punctuation and the
words that announce a value may stand ("是", "为", "于", "is", "on the"), never free text:
"生日礼物3月5日送到" is no birthday. The date itself must be one a calendar has (months 1-12,
days 1-31, years 1900-2099), in the forms people type: ``1990-01-01`` (``/`` or ``.``),
``19900101``, ``01/05/1990`` either way round, ``1990年1月1日`` in digits or numerals
(``一九九〇年一月一日``), a month and day alone (``3月5号``, ``March 5th``), a year and month
alone (``1990.01``, ``1990年1月``: the forms' 出生年月), and English month names.

The date may also stand right *before* its cue, as Chinese puts it: "我是1990年3月5日出生的",
"5月20日是我的生日", "March 5 is my birthday". A date after the cue is found as well
(masking a second date for plugins is the safe mistake).

Not found: a year alone ("生于1990年"), which says an age, not a birthday.
"""

from __future__ import annotations

from .context import context_rule

BIRTH_DATE_PHRASES = (
    "出生日期",
    "出生年月日",
    "出生年月",
    "出生",
    "生日",
    "生于",
    "生辰八字",
    "生辰",
    "date of birth",
    "birth date",
    "birthdate",
    "birthday",
    "dob",
    "d.o.b",
    "born",
)

_FILLER = r"(?:[\s:：.#=\-]|是|为|在|于|(?:is|was|on|the|of)(?![a-z])){0,8}+"
"""Punctuation and the words announcing a date. Not ``ANNOUNCING_FILLER``: its "no" would
swallow the start of "nov 5" (the repetition is possessive); and no comma, after which a
date is as often another one ("5月20日是我的生日，6月1日发货")."""
_BEFORE_FILLER = r"(?:\s*+(?:是|我的|我|的|过|(?:is|was|my)(?![a-z]))\s*+){0,4}"
"""What may stand between a date and the phrase after it: nothing ("1990年3月5日出生") or the
words that tie them ("5月20日是我的生日", "3月5号过生日", "March 5 is my birthday"); spaces
alone do not: in "3月5日发货 生日：1990-01-01" the first date is another one."""

_YEAR = r"(?:19|20)[0-9]{2}"
_MONTH = r"(?:1[0-2]|0?[1-9])"
_DAY = r"(?:3[01]|[12][0-9]|0?[1-9])"
_NUMERAL = "[〇零一二三四五六七八九]"
_DIGIT = "[一二三四五六七八九]"
_CN_YEAR = rf"(?:{_YEAR}|{_NUMERAL}{{4}})"
_CN_MONTH = rf"(?:{_MONTH}|十[一二]?|{_DIGIT})"
_CN_DAY = rf"(?:{_DAY}|三十一?|二十{_DIGIT}?|十{_DIGIT}?|{_DIGIT})"
_SEP = r"[-/.]"
_MONTH_NAME = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_ORDINAL = r"(?:st|nd|rd|th)?(?![0-9a-z])"

DATE = (
    "(?:"
    # 1990-01-01, 1990/1/1, 1990.01.01
    rf"{_YEAR}{_SEP}{_MONTH}{_SEP}{_DAY}(?![0-9])"
    # 19900101
    rf"|{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?![0-9])"
    # 01/05/1990, 5-3-90 (day and month either way round)
    rf"|{_DAY}{_SEP}{_DAY}{_SEP}(?:{_YEAR}|[0-9]{{2}})(?![0-9])"
    # 1990.01, 1990-1 (a form's 出生年月)
    rf"|{_YEAR}{_SEP}{_MONTH}(?![0-9]|{_SEP}[0-9])"
    # 1990年1月1日, 一九九〇年一月一日, 1990年1月
    rf"|{_CN_YEAR}\s?年\s?{_CN_MONTH}\s?月(?:\s?{_CN_DAY}\s?[日号])?"
    # 3月5日, 三月五号
    rf"|{_CN_MONTH}\s?月\s?{_CN_DAY}\s?[日号]"
    # 5 March 1990, 5th of march, 1990
    rf"|{_DAY}{_ORDINAL}(?:\s{{1,3}}of)?\s{{1,3}}{_MONTH_NAME}(?:,?\s{{0,3}}{_YEAR}(?![0-9]))?"
    # March 5, 1990; march 5th
    rf"|{_MONTH_NAME}\s{{0,3}}{_DAY}{_ORDINAL}(?:,?\s{{0,3}}{_YEAR}(?![0-9]))?"
    # March 1990
    rf"|{_MONTH_NAME},?\s{{0,3}}{_YEAR}(?![0-9])"
    ")"
)
"""A date a calendar has, in the forms above (the view is lower case, digits ASCII)."""

RULE = context_rule(
    "birth_date",
    "birth_date.context",
    BIRTH_DATE_PHRASES,
    _FILLER,
    DATE,
    before_filler=_BEFORE_FILLER,
)
