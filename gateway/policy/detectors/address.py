"""Postal addresses: Chinese first (administrative divisions + road/building/number), English too.

Why this shape: an address is personal data when it pins a household or an office -- a
district alone ("朝阳区的门店") is not. So a Chinese address is an administrative-division
name (provinces, cities, districts, counties: 4,000+ names read from python-stdnum's
``cn/loc.dat``, the Wikipedia-maintained division codes the ID validator already uses -- no
extra dependency) followed by street-level detail that ends in a number marker
(``88号``, ``3栋2单元501室``), or a road name with a house number without any division
(``建国路88号``), or a flat in a housing estate (``阳光小区8栋1单元502室``); the building, tower,
floor and flat after the number belong to it. Hong Kong, Macau and Taiwan places anchor an
address too (their names are added to stdnum's). English addresses are a house number, one to
three words and a street type (``12 Baker Street``), optionally with a flat before or after
it; a flat with its floor or tower (``Flat A, 12/F, Tower 2``); a PO box. Every pattern is
bounded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from importlib import resources

from ..phrases import Phrases
from .base import Hit, ScanContext, mentions
from .context import not_after_letter

NUMERAL_CHARS = "0123456789一二三四五六七八九十百零〇两"
_NUMERALS = frozenset(NUMERAL_CHARS)
_NUM = rf"[{NUMERAL_CHARS}]{{1,5}}+"
_UNITS = ("号院", "号楼", "号", "弄", "栋", "幢", "座", "单元", "楼", "层", "室", "户", "门")
"""Building and house units, longer first where one begins another (号院 before 号)."""
_UNIT = "(?:" + "|".join(_UNITS) + ")"
_ROAD = (
    r"(?:大街|大道|路|街|道|巷|胡同|弄|里|村|组|镇|乡|小区|花园|公寓|大厦|广场|园区|家园"
    r"|新村|苑|院)"
)
_HAN = r"\u4e00-\u9fff"
_HAN_PLAIN = r"\u4e00-\u7683\u7685-\u9fff"
"""Chinese characters but 的 (U+7684): between a district and its first number, a 的 makes it
prose ("朝阳区的门店3号开门": the shop opens on the 3rd), not an address."""
MAX_GAP = 2
_GAP = rf" {{0,{MAX_GAP}}}+"
"""Spaces people put between an address's parts (``上海市 浦东新区 张江路 123弄 4 号``; the
view folds other spaces to U+0020). The detector's gate phrases allow as many."""
_ESTATE_NAME_CHARS = rf"(?:[{_HAN}](?<![我你他她在到是住的址送寄发和与或号室楼层栋幢]))"
"""Characters of an estate's or building's name: not the words that lead to it (``我家在阳光小区``,
``送到``), nor 的 (``88号附近的医院`` names no building), nor a unit (``3号海港城``: the name
starts after the number)."""
_FLAT_UNITS = ("号楼", "栋", "幢", "座", "单元", "楼", "层", "塔", "区")
"""Units a bare flat number may follow (``5号楼1201``, ``2单元801``, ``15层 1503``, ``B塔 2501``,
``E1区1208``)."""
_SUB_UNIT = rf"(?:{_UNIT}|塔|区)"
"""Units inside a building's address besides ``_UNITS``: a tower (``B塔``), a zone (``E1区``)."""
_BUILDING = (
    rf"(?:[\-\s]{{0,2}}+[a-z]{{0,8}}+{_ESTATE_NAME_CHARS}{{1,10}}?"
    r"(?:大厦|大楼|写字楼|商务楼|中心|广场|大学|学院|医院|园区|校区|公寓|花园|小区|家园|酒店|宾馆"
    r"|商场|商城|软件园|科技园|产业园|工业园|园|苑|城|府|公馆|山庄|新村)"
    r"(?:本部|校区|分校|[a-z][0-9]?(?=[\-\s]|$))?+"
    r"(?:[\-\s]{0,2}+(?:[0-9]{1,3}+|[a-z])-[a-z]?[0-9]{2,5}+"
    r"(?![0-9]|[个元块次天年月日号点分秒岁件台人位名张只条本期]))?+)?+"
)
"""A building's name closing an address with no unit of its own (``10号百度大厦``,
``94号南开大学``, ``1006号诺德中心``, ``90号东部软件园``, ``88号SOHO现代城``, ``8号翠竹苑``): with
the number hidden, it still tells where; a building-and-flat written with a dash after it
(``创意产业园2-B501``) is part of it."""
_ROOM = (
    "(?:(?:" + "|".join(f"(?<={u})" for u in _FLAT_UNITS) + ")"
    r"[\-\s]{0,2}+[0-9]{2,5}+(?![0-9]|[个元块次天年月日号点分秒岁件台人位名张只条本期]))?"
)
"""A flat's number without 室 after a building, unit or floor; not a count or a date that
follows one (``3楼2个人``, ``5号楼3天``)."""
_MORE_UNITS = (
    rf"(?:[\-\s]{{0,2}}+(?:[a-z]{{0,8}}+[{_HAN}]{{1,10}}?)?{_GAP}"
    rf"(?:{_NUM}|[a-z]{{1,2}}+[0-9]{{0,3}}+)?{_GAP}{_SUB_UNIT}){{0,5}}+{_BUILDING}{_ROOM}"
)
"""Building and flat after the first number marker: 3栋2单元501室, 东部软件园3号楼, 圣爱大厦1202室,
SOHO现代城5号楼1201, 中关村大厦 15层 1503, 上海电影广场 B 座 12 楼, 中石化大厦B塔25楼,
环球中心E1区1208 (a building's name, then its number and unit, and a flat's bare number), or a
building's name alone (``_BUILDING``)."""
DETAIL = re.compile(
    rf"{_GAP}(?:[{_HAN}]{{1,12}}?{_ROAD})?+"  # road / estate
    rf"(?:{_GAP}[{_HAN_PLAIN}a-z0-9\- ]{{0,10}}?{_NUM}{_GAP}{_UNIT})"  # first number marker
    rf"{_MORE_UNITS}"
)
ROAD_NUMBER = re.compile(
    rf"[{_HAN}]{{2,8}}?(?:大街|大道|路|街|巷|胡同|道(?<![知难味频渠通轨管说报一街]道))"
    rf"{_GAP}(?:{_NUM}段{_GAP})?{_NUM}{_GAP}[号弄]{_MORE_UNITS}"
)
"""A road and its house number without a division: 建国路88号, a Shanghai lane (张江路123弄), a
Hong Kong road (广东道3号; not a word ending in 道, 我知道3号发货), a Taiwan road's section
(信义路五段7号)."""
_ESTATES = (
    "小区",
    "花园",
    "公寓",
    "家园",
    "新村",
    "公馆",
    "华庭",
    "山庄",
    "大厦",
    "广场",
    "中心",
    "苑",
    "庭",
    "府",
    "城",
    "湾",
    "园",
)
"""Words that end the name of a housing estate or an office building (阳光小区, 万科城市花园,
SOHO现代城)."""
FLAT = re.compile(
    rf"(?P<estate>[a-z]{{0,8}}+{_ESTATE_NAME_CHARS}{{1,8}}?(?:{'|'.join(_ESTATES)})"
    rf"{_GAP}(?:{_NUM}{_GAP}期{_GAP})?)?"
    rf"(?:{_NUM}|[a-z]){_GAP}(?:号楼|栋|幢|座)(?P<flat>{_MORE_UNITS})"
)
"""A flat in a housing estate without a road: 万科城市花园3期12栋2单元801, 阳光小区8栋1单元502室,
3栋2单元501室. ``_chinese`` keeps a match with the estate's name, or with a household after the
building (``HOUSEHOLD``): a building alone or with a floor (``3号楼的快递柜``, ``会议在A座3楼``)
pins none."""
BUILDING_UNIT = re.compile("号楼|栋|幢|座")
"""In every ``FLAT`` match: a window without one skips the pattern, which would try every
character as the start of an estate's name."""
HOUSEHOLD = re.compile(r"单元|室|户|[0-9]$")
"""In the units after a building, what pins a household: a stairway unit, a room or flat,
or a flat's bare number (``_ROOM``, the only digits a match can end with)."""
_STREET_TYPES = (
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "lane",
    "ln",
    "drive",
    "dr",
    "boulevard",
    "blvd",
    "way",
    "court",
    "ct",
    "place",
    "pl",
    "terrace",
    "crescent",
    "parkway",
    "pkwy",
    "highway",
    "hwy",
    "mews",
)
"""Street types of English addresses. Words prose puts after a number and a word or two
("3 in a row", "2 kids walk", "4 feet square", "2 friends at the plaza") are left out."""
EN = re.compile(
    r"[0-9](?<![0-9a-z].)[0-9]{0,4}[a-z]?(?:\s(?:[a-z][a-z']*|[0-9]{1,3}(?:st|nd|rd|th))){1,3}?\s"
    rf"(?:{'|'.join(_STREET_TYPES)})\b\.?"
    r"(?:,?\s(?:apt|unit|suite|flat)\.?\s?#?[0-9a-z]{1,6})?"
    r"(?:,\s(?:(?!(?:and|or|but|it|is|was|my|the|to|for|at|on)\s)[a-z]+\s){0,3}?[a-z]+,?\s"
    r"(?:[a-z]{2}\s)?"
    r"(?:[0-9]{5}(?:-[0-9]{4})?|[a-z]{1,2}[0-9][a-z0-9]?\s?[0-9][a-z]{2}|[a-z][0-9][a-z]\s?[0-9][a-z][0-9]"
    r"|(?:nsw|vic|qld|wa|sa|tas|act|nt)\s[0-9]{4})"
    r"(?![a-z0-9]))?"
)
"""A house number (nothing alphanumeric before it: the look-behind follows the first digit so
the pattern starts with a character class), one to three words (an ordinal too: West 45th),
a street type; after a comma, the town, state and postcode when a postcode ends them (US
ZIP, UK, Canadian and Australian postcodes: ``, Mountain View, CA 94043``, ``, London NW1
6XE``, ``, Sydney NSW 2000``), not prose ("…Street, and it costs 94043"). Street words may
hold an apostrophe (Queen's Road)."""
EN_FLAT_WORDS = ("flat", "room", "rm", "unit", "apt", "apartment", "suite")
"""The words that name a flat in English."""
EN_HEAD = re.compile(rf"(?:{'|'.join(EN_FLAT_WORDS)})\.?\s?#?[0-9a-z]{{1,6}},?\s$")
"""A flat written before the house number ("Apt 5B, 120 West 45th St"): joined to it."""
EN_FLAT = re.compile(
    not_after_letter(EN_FLAT_WORDS) + r"\.?\s?#?[0-9a-z]{1,5}+"
    r"(?:,?\s(?:[0-9]{1,3}/f|floor\s[0-9]{1,3}|[0-9]{1,3}(?:st|nd|rd|th)\sfloor"
    r"|(?:tower|block|building|bldg|blk)\.?\s[0-9a-z]{1,4}+)){1,3}+(?![0-9a-z/])"
)
"""A flat with its floor, tower or building (``Room 1203, Building 5``, ``Flat A, 12/F, Tower
2``): how Hong Kong and Chinese addresses are written in English, often before any street."""
PO_BOX = re.compile(r"p(?<![a-z]p)\.?\s?o\.?\s?box\s?#?[0-9]{1,8}+(?![0-9])")
"""A post-office box (``PO Box 1234``, ``P.O. Box 88``)."""
EN_FLAT_PARTS = ("/f", "floor", "tower", "block", "building", "bldg", "blk")
"""``EN_FLAT`` runs only on a view holding one of each: a flat word and a floor, tower or
building (the pattern would try every f, r, u, a and s of English text)."""
PO_BOX_GATE = ("obox", "o box", "o.box", "o. box")
"""In every ``PO_BOX`` match (a box alone is a parcel's)."""
_EN_GATE = (*EN_FLAT_PARTS, *PO_BOX_GATE)
"""Gate phrases of the English flats and post-office boxes: their rarer words."""
UNIT_WORD = re.compile(_UNIT)
LEAD = re.compile(r"(?:我的地址是|地址是|地址|送到|寄到|寄往|发到|住在|住|位于|在|到|是)")
"""Words that introduce an address and are not part of it (``送到建国路88号``)."""
_SKIP = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
DIVISION_SUFFIXES = (
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "盟",
    "旗",
)
"""The words that end a division's name (江苏省, 石家庄市, 延边朝鲜族自治州), longer first where
one ends another (自治区 before 区)."""


_OUTSIDE_MAINLAND = (
    "香港",
    "香港岛",
    "九龙",
    "新界",
    "澳门",
    "氹仔",
    "路环",
    "台湾",
    "台北市",
    "新北市",
    "桃园市",
    "台中市",
    "台南市",
    "高雄市",
    "基隆市",
    "新竹市",
    "嘉义市",
)
"""Hong Kong, Macau and Taiwan and their main parts: stdnum's data, the mainland's division
codes, names them only as a whole (香港特别行政区), and addresses there start with these."""


@functools.cache
def division_names() -> tuple[str, ...]:
    """Names of China's administrative divisions (current and former), from stdnum, and
    those of Hong Kong, Macau and Taiwan (``_OUTSIDE_MAINLAND``)."""
    data = resources.files("stdnum.cn").joinpath("loc.dat").read_text("utf-8")
    names: set[str] = set(_OUTSIDE_MAINLAND)
    for raw in re.findall(r'(?:province|county)="([^"]+)"', data):
        for part in raw.split(","):
            name = re.sub(r"^\[[^\]]*\]", "", part).strip()
            if len(name) >= 2 and name not in _SKIP:
                names.add(name)
    return tuple(sorted(names))


@functools.cache
def _divisions() -> Phrases[None]:
    return Phrases((name, None) for name in division_names())


LEADING_PLACES = re.compile(rf"[{_HAN} ]{{1,26}}")


def division_prefix(view: str) -> int:
    """How many leading characters of an address (its matching view) name administrative
    divisions: the masks for plugins keep them (``北京市朝阳区*******``), as they name a
    district, not a household. The prefix ends where a division's name ends, so an estate
    whose name ends like one (阳光小区, 万科城市花园) is hidden whole."""
    m = LEADING_PLACES.match(view)
    if m is None:
        return 0
    return max((end for _, _, end in _divisions().find(view, 0, m.end())), default=0)


WINDOW_BEFORE, WINDOW_AFTER = 48, 24
"""A Chinese address is looked for from this many characters before a number with its unit
(``88号``) to this many after it: only there can one be."""
DETAIL_CHARS = 40
"""The longest street-level detail after a division's name (``DETAIL``)."""
EN_HEAD_REACH = 20
"""How far before an English house number a flat written first (``EN_HEAD``) may start."""


class AddressDetector:
    """Postal addresses (kind ``address``)."""

    kinds = ("address",)
    triggers = ()
    gate_phrases = (
        *{
            n + " " * gap + u[0]
            for n in NUMERAL_CHARS
            for gap in range(MAX_GAP + 1)
            for u in _UNITS
        },
        *_EN_GATE,
    )
    gate_pattern = (
        r"[0-9][a-z]?\s[a-z0-9']+(?:\s[a-z0-9']+){0,2}?\s(?:" + "|".join(_STREET_TYPES) + r")\b"
    )
    """Inside every match: a numeral and a building/house unit, a space or two apart at most
    (phrases: the engine's automaton finds them at once), or an English house number and
    street type."""
    exclusive = True

    def __init__(self) -> None:
        _divisions()  # build the automaton with the engine (off-loop), not on a message

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield address spans (view coordinates)."""
        view = ctx.view
        taken = -1
        if not view.isascii():
            for start, end in self._chinese(view):
                if start >= taken:
                    taken = end
                    yield Hit("address", start, end, "address.cn")
        found = []
        for m in EN.finditer(view):
            head = EN_HEAD.search(view, max(0, m.start() - EN_HEAD_REACH), m.start())
            found.append((head.start() if head is not None else m.start(), m.end()))
        if mentions(view, EN_FLAT_WORDS) and mentions(view, EN_FLAT_PARTS):
            found.extend(m.span() for m in EN_FLAT.finditer(view))
        if mentions(view, PO_BOX_GATE):
            found.extend(m.span() for m in PO_BOX.finditer(view))
        found.sort()
        end = -1
        for start, stop in found:
            if start >= end:
                end = stop
                yield Hit("address", start, stop, "address.en")

    @staticmethod
    def _chinese(view: str) -> Iterator[tuple[int, int]]:
        # Only the text shortly before a number with a unit can hold an address: look there.
        windows: list[tuple[int, int]] = []
        for start, end in _numbered_units(view):
            lo, hi = max(0, start - WINDOW_BEFORE), min(len(view), end + WINDOW_AFTER)
            if windows and lo <= windows[-1][1]:
                windows[-1] = (windows[-1][0], hi)
            else:
                windows.append((lo, hi))
        covered = -1
        for lo, hi in windows:
            for start, end in _anchored(view, lo, hi):
                covered = max(covered, end)
                yield start, end
            for m in ROAD_NUMBER.finditer(view, lo, hi):
                start = m.start()
                lead = LEAD.match(view, start)
                if lead is not None and lead.end() < m.end() - 3:
                    start = lead.end()
                if start >= covered:
                    covered = m.end()
                    yield start, m.end()
            if BUILDING_UNIT.search(view, lo, hi) is None:
                continue  # no building in the window: no flat (most windows)
            for m in FLAT.finditer(view, lo, hi):
                if m.start() >= covered and (m["estate"] or HOUSEHOLD.search(m["flat"])):
                    covered = m.end()
                    yield m.start(), m.end()


def _numbered_units(view: str) -> Iterator[tuple[int, int]]:
    """Spans of a number (one to five numerals), a space or two, and a unit (``88号``,
    ``3栋``, ``4 号``), as ``re.finditer(_NUM + _GAP + _UNIT)`` finds them, searched from
    the unit: units are rare, digits are not, and a pattern starting with ``_NUM`` tries
    every digit of every order number."""
    for m in UNIT_WORD.finditer(view):
        unit = m.start()
        number_end = unit
        while number_end > 0 and unit - number_end < MAX_GAP and view[number_end - 1] == " ":
            number_end -= 1  # "4 号" (``_GAP``)
        start = number_end
        while start > 0 and number_end - start < 5 and view[start - 1] in _NUMERALS:
            start -= 1
        if start < number_end:
            yield start, m.end()


def _next_to(view: str, end: int, start: int) -> bool:
    """Whether a division name starting at ``start`` follows one ending at ``end`` directly
    or after a space or two (``上海市 浦东新区``, ``_GAP``)."""
    return start - end <= MAX_GAP and view[end:start] == " " * (start - end)


def _anchored(view: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Division name(s) followed by street-level detail, inside ``view[lo:hi]``."""
    anchors: list[tuple[int, int]] = []
    for _, start, end in _divisions().find(view, lo, hi):
        if anchors and start < anchors[-1][1]:
            if end > anchors[-1][1] and start >= anchors[-1][0]:
                anchors[-1] = (anchors[-1][0], end)  # overlapping names: keep the longer
            continue
        anchors.append((start, end))
    chained: list[tuple[int, int]] = []  # adjacent names (广东省深圳市南山区) are one anchor
    for start, end in anchors:
        if chained and _next_to(view, chained[-1][1], start):
            chained[-1] = (chained[-1][0], end)
        else:
            chained.append((start, end))
    for start, end in chained:
        m = DETAIL.match(view, end)
        if m is not None and m.end() - end <= DETAIL_CHARS:
            yield start, m.end()
