"""Person names: Chinese first (context cue + surname lexicon), English too.

Why not a segmenter: jieba's person tags cost ~1 ms per line and a 50 MB dictionary, and they
tag many ordinary words; in customer service a name nearly always comes with a cue --
"我叫…", "收件人：…", "持卡人…", "…先生", "my name is …". So a Chinese name is a cue, then a
surname from the lexicon below (the common single surnames and every common compound one),
then one or two given-name characters that are not function words; a full name followed by
an honorific (张三先生) needs no cue. English names are one to three words after a cue, or a
title (Mr/Ms/Mrs/Dr) and a capitalised word. Hand-written on purpose; the lexicon is data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ..normalize import VIEW_WHITESPACE
from ..phrases import Phrases
from .address import DIVISION_SUFFIXES, division_names
from .base import Hit, ScanContext
from .context import not_after_letter

# The common single-character surnames (about 97% of the population) and compound surnames.
SURNAMES_1 = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘"
    "祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟"
    "艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞"
    "姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕"
    "楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣"
    "晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银"
    "亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
SURNAMES_2 = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "宇文",
    "司徒",
    "夏侯",
    "轩辕",
    "令狐",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "百里",
    "呼延",
    "申屠",
    "太史",
    "闻人",
    "澹台",
    "公冶",
    "宗政",
    "濮阳",
    "淳于",
    "单于",
    "钟离",
    "赫连",
    "万俟",
)
# Characters that end a name: particles, pronouns, verbs and nouns that follow names in chat.
_STOP = (
    "的了在是吗呢啊吧和与跟及我你他她它们请说要想来去已还就也都很不没有给被把从向对为这那个先"
    "师经理师傅同学总电手机号码地址住订单收件货快递客服，。、！？：；,.!?:; \n\t（）()【】"
)
_CUES_ZH = (
    "我叫",
    "我的名字是",
    "我的名字叫",
    "名字是",
    "名字叫",
    "姓名",
    "真实姓名",
    "客户姓名",
    "收件人",
    "收货人",
    "寄件人",
    "签收人",
    "联系人",
    "持卡人",
    "开户名",
    "户名",
    "本人",
    "我是",
    "叫做",
    "称呼",
    "乘机人",
    "入住人",
    "申请人",
    "投保人",
    "被保险人",
    "法人",
    "收款人",
    "付款人",
    "汇款人",
    "开户人",
    "户主",
    "领取人",
    "取件人",
    "取货人",
    "代收人",
    "提货人",
    "订购人",
    "预订人",
    "下单人",
    "购买人",
    "乘车人",
    "就诊人",
    "落款",
    "署名",
)
ASKED_CUES = (
    *(
        cue
        for cue in _CUES_ZH
        if cue not in ("我叫", "我的名字是", "我的名字叫", "本人", "我是", "叫做", "落款", "署名")
    ),
    "your name",
    "full name",
    "cardholder",
    "recipient",
)
"""The cues an agent's question names a person by ("请提供收件人姓名", "您的名字是？", "What's
your full name?"): the customer's bare answer ("张伟", "Jane Doe") is read after the cue
(``split.py``). Each is, or ends in, a cue the patterns know, so "姓名：张伟" and "your name：
Jane Doe" are found as typed; the cues a customer says of themselves (我叫, 我是) are no
question."""
_HONORIFICS = ("先生", "女士", "小姐")
_CUES_EN = (
    "my name is",
    "name is",
    "name's",
    "name",
    "this is",
    "i am",
    "i'm",
    "called",
    "cardholder",
    "card holder is",
    "account holder is",
    "holder is",
    "holder name",
    "name of",
    "recipient",
    "addressee",
)
_DELIVERY_CUES_EN = (
    "ship to",
    "ship it to",
    "send to",
    "send it to",
    "deliver to",
    "deliver it to",
    "addressed to",
    "attn",
    "attention",
)
"""Words a recipient's name follows ("ship to Jane Doe at ..."), as often as a place ("send it
to New York", "deliver to the office"): a name here is two or three words each capitalised in
the original, the first not a place name's first word (``_PLACE_STARTS``)."""
_PLACE_STARTS = frozenset(
    "new san santa los las hong kuala buenos rio tel abu sri costa puerto saudi south north "
    "east west united great st saint fort port mount el la le de van main".split()
)

_EN_WORD_FORM = re.compile(r"[a-z][a-z'\-]{1,20}")
GIVEN_NAMES_EN = frozenset(
    name
    for name in (*FREQUENCY_LISTS["female_names"][:2000], *FREQUENCY_LISTS["male_names"][:600])
    if _EN_WORD_FORM.fullmatch(name)
)
"""English given names for names written in lower case ("ship to mary jones" names a person
as surely as "ship to Mary Jones"): the 2,000 most common women's and 600 most common men's
names of the US census, from zxcvbn's lists (most common first)."""
SURNAMES_EN = frozenset(
    name for name in FREQUENCY_LISTS["surnames"][:3000] if _EN_WORD_FORM.fullmatch(name)
)
"""The 3,000 most common surnames of the US census (zxcvbn's list). The end document carries
both lexicons, and the widget bundles the default one: these sizes add 17 KB to its gzipped
script, the whole lists (4,695 given names, 10,000 surnames) would add 40 KB."""


def lower_case_name(words: list[str]) -> bool:
    """Whether ``words`` (two or three, lower-cased) are a given name and a surname that
    both lexicons hold: where a cue wants capitals ("ship to", "thanks,", "my wife",
    "… here"), a name typed in lower case counts when it is so plainly one ("ship to mary
    jones"), and "ship to will call" or "deliver to grace church" stay words."""
    return 2 <= len(words) <= 3 and words[0] in GIVEN_NAMES_EN and words[-1] in SURNAMES_EN


_S1 = "".join(sorted(set(SURNAMES_1)))
_S2 = "|".join(SURNAMES_2)
_GIVEN = rf"[^\W\d{re.escape(_STOP)}a-z]"


_WEAK_CUES = frozenset({"我是", "本人"})
"""Cues after which a word is as likely as a name: "我是房东" (the landlord), "我是苏宁的"
(from Suning)."""
_RELATIONS = (
    "朋友",
    "男朋友",
    "女朋友",
    "家人",
    "家属",
    "亲戚",
    "爱人",
    "妈妈",
    "爸爸",
    "母亲",
    "父亲",
    "老婆",
    "老公",
    "妻子",
    "丈夫",
    "儿子",
    "女儿",
    "孩子",
    "哥哥",
    "姐姐",
    "弟弟",
    "妹妹",
    "同事",
    "同学",
    "邻居",
    "室友",
    "助理",
    "秘书",
    "老爸",
    "老妈",
    "我爸",
    "我妈",
)
"""What follows "我是X的" when X is a person ("我是张三的朋友"); anything else after 的 makes
X an organisation or a place ("我是苏宁的", "我是平安的客服")."""
_RELATION_ALT = "|".join(sorted(_RELATIONS, key=len, reverse=True))
"""The relations as one alternation, longest first (男朋友 before 朋友)."""
_NAME_END = (
    rf"(?:(?![\u4e00-\u9fff](?<![{re.escape(_STOP)}]))"
    rf"|(?=(?:{_RELATION_ALT})(?![\u4e00-\u9fff])))"
)
"""A name is not followed by a Han character that could continue a word (王者荣耀 is no name),
unless that word is a relation ending the phrase ("我是王芳老公")."""
_RELATION_CUES = tuple(
    relation + verb for relation in _RELATIONS for verb in ("叫", "名叫", "的名字是", "的名字叫")
)
"""Someone's name given by their relation ("我老公叫陈志强", "我妈妈的名字是刘秀英"). A relation
alone is no cue: "我孩子高烧不退", "我女儿方便的时候" would read as names."""
_CUE_ZH = "|".join(sorted((*_CUES_ZH, *_RELATION_CUES), key=len, reverse=True))
_SPACED_GIVEN = rf"(?:{_GIVEN}{_GIVEN}?| {_GIVEN}(?: {_GIVEN})?)"
"""The given name, its characters together or each set apart by a space ("我叫 李 明", "名字是张
三"), never half of each ("收款人张伟 账号": 账 is no given name)."""
_RELATION_BEFORE = rf"(?:(?:我|他|她)的?)?(?:{_RELATION_ALT})[:：\s]?"
"""Whose name follows a cue ("收件人是我老公张伟", "联系人：我妈 刘秀英")."""
_ZH_CUED = re.compile(
    rf"(?P<cue>{_CUE_ZH})(?:写的是|改成|改为|换成|是|为|叫|:|：|，|,|\s){{0,3}}+(?:{_RELATION_BEFORE})?+"
    rf"(?:(?P<name>(?:{_S2}|[{_S1}]){_SPACED_GIVEN}){_NAME_END}"
    r"|(?P<latin>[a-z][a-z'\-]{1,20}+(?: [a-z][a-z'\-]{1,20}+){0,2}+)(?![a-z0-9@._\-:：]))"
)
"""A cue, then a Chinese name, or a name in Latin letters ("联系人：Zhang San", "收件人
zhangsan", "持卡人 LI NA"; one pass for both), which only the cues naming a person introduce
(``_LATIN_AFTER``)."""
_GIVING = ("寄给", "送给", "交给", "转交给", "转交")
_ZH_GIVEN_TO = re.compile(
    rf"(?:{'|'.join(_GIVING)})(?:{_RELATION_BEFORE})"
    rf"(?P<name>(?:{_S2}|[{_S1}]){_SPACED_GIVEN}){_NAME_END}"
)
"""Someone's name after their relation, where a parcel goes ("寄给我妈妈刘秀英"); without the
relation the word after 寄给 is as often a shop or a place (寄给王府井店)."""
_ZH_SURNAME_FIRST = re.compile(
    rf"我姓(?P<surname>{_S2}|[{_S1}])[，,。\s]{{0,2}}+我?(?:(?:全名|名字)?叫|(?:全名|名字)是)"
    rf"(?P<name>(?P=surname)?{_SPACED_GIVEN}){_NAME_END}"
)
"""The surname said first, then the name, whole or the given name alone ("我姓王，叫王建国",
"我姓李，名字叫明"). Not "我姓张，是张三丰的张": that names the character, not the person."""
GIVEN_NAME_RULE = "name.given"
"""A given name without its surname: masked whole (a name mask keeps the first character,
which here is the given name)."""
_LATIN_AFTER = frozenset(_CUES_ZH) - _WEAK_CUES - {"称呼", "叫做"}
_COMMON_WORDS = frozenset(
    "房东 房主 房客 商家 商户 车主 业主 银行 公安 公司 平台 官方 施工 班主 门店 总部 后台 "
    "国家 农行".split()
)
"""Words that start with a surname character and follow a cue as often as a name does."""
_TITLES_ZH = ("老师", "老板", "老总", "医生", "律师", "阿姨", "叔叔", "主任", "总监", "师傅")
"""A surname and a title ("李老师", "欧阳医生") address someone without naming them (like
"张先生")."""


@functools.cache
def _places() -> frozenset[str]:
    """China's division names and their stems without the division word (江苏省 -> 江苏,
    石家庄市 -> 石家庄): after a cue they are where someone is from, not who."""
    out: set[str] = set()
    for name in division_names():
        out.add(name)
        for suffix in DIVISION_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                out.add(name[: -len(suffix)])
                break
    return frozenset(out)


def _no_name_after_cue(view: str, m: re.Match[str]) -> bool:
    """Whether a cued candidate is a word, a place or an affiliation rather than a name."""
    name = m.group("name")
    if name in _COMMON_WORDS or name[:2] in _COMMON_WORDS:
        return True
    start = m.start("name")
    if view.startswith(_TITLES_ZH, start + 1) or view.startswith(_TITLES_ZH, start + 2):
        return True
    places = _places()
    if name in places or name[:2] in places:
        return True
    end = m.end("name")
    return (
        m.group("cue") in _WEAK_CUES
        and view.startswith("的", end)
        and not view.startswith(_RELATIONS, end + 1)
    )


_VERBS = ("查下", "查一下", "查询", "联系", "通知", "转告")
_POSSESSED = (
    "的订单",
    "的账户",
    "的账号",
    "的包裹",
    "的快递",
    "的手机",
    "的电话",
    "的地址",
    "的会员",
    "的退款",
    "的发票",
)
_MY_RELATION = rf"我的?(?:{_RELATION_ALT})"
_MY_RELATION_PHRASES = tuple(f"我{mine}{r}" for mine in ("", "的") for r in _RELATIONS)
"""Every text ``_MY_RELATION`` matches ("我老婆", "我的朋友")."""
_ZH_POSSESSIVE = re.compile(
    rf"(?:{'|'.join(_VERBS)}|{_MY_RELATION})(?P<name>(?:{_S2}|[{_S1}]){_GIVEN}{_GIVEN}?)"
    rf"(?:{'|'.join(_POSSESSED)})"
)
_MOBILE = re.compile(r"1(?<![0-9]1)[3-9][0-9](?:[\s\-]?+[0-9]){8}(?![0-9])")
"""A mainland mobile number as typed (the phone detector finds the evasive ones)."""
_NAME_BEFORE = re.compile(
    rf"(?:^|(?<=[\s，,：:；;。!！?？]))(?P<name>(?:{_S2}|[{_S1}]){_GIVEN}{_GIVEN}?)[\s，,：:]{{1,3}}+\Z"
)
"""A name right before a mobile number, starting the text or after a separator ("张三，
13800138000，北京市…", "王五 139 0013 9000"): the recipient of a pasted shipping label."""
_NOT_LABEL_NAMES = _COMMON_WORDS | frozenset(
    "明天 今天 昨天 后天 方便 马上 尽快 万一 高兴 司机 师傅 老板 老师 电话 号码 手机 联系 "
    "谢谢 好的 是的 收到 麻烦 请问 您好 你好 稍后 以后 之前 不过 还是 或者 或是 另外 其他 "
    "毕竟 当然 常用 备用 新的 旧的 原来 原先 现在 正在 金额 余额 申请 上面 下面 以上 以下 "
    "支付 微信 账号 账户 工号 单号 订单 运单 快递 客服 座机 热线 传真 短信 收款 付款 转账 "
    "银行 会员 备注 尾号 编号 充值 话费".split()
)
"""Words that start with a surname character and stand before a number as often as a name."""
_ZH_HONORIFIC = re.compile(
    rf"(?<![\u4e00-\u9fff])(?P<name>(?:{_S2}|[{_S1}]){_GIVEN}{_GIVEN}?)(?:{'|'.join(_HONORIFICS)})"
)
_EN_WORD = r"[a-z][a-z'\-]{1,20}+"
_EN_CUED = re.compile(
    rf"{not_after_letter(_CUES_EN)}[:\s]{{1,3}}+"
    rf"(?P<name>{_EN_WORD}(?:\s{_EN_WORD}){{0,2}}?)(?=\s*(?:[,.!?;:)\n]|$|\s(?:and|from|here|"
    r"speaking|calling|again|too|today|here|i|my|please|thanks|thank)\b))"
)
_EN_DELIVERY = re.compile(
    rf"{not_after_letter(_DELIVERY_CUES_EN)}[:\s]{{1,3}}+"
    rf"(?P<name>{_EN_WORD}(?:\s{_EN_WORD}){{1,2}}?)(?=\s*(?:[,.!?;:)\n]|$|\s(?:and|at|in|on|"
    r"from|please|thanks|thank|c/o)\b))"
)
_SIGN_OFFS = (
    "regards",
    "best regards",
    "kind regards",
    "best wishes",
    "thanks",
    "thank you",
    "many thanks",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours truly",
    "best",
)
_AFTER_SIGN_OFF = re.compile(
    rf"[,!.]?\s{{1,3}}+(?P<name>{_EN_WORD}(?:\s{_EN_WORD}){{1,2}}?)(?=[.!]?\s*+(?:\n|$))"
)
"""After a letter's closing, the writer's name ending the line ("Regards,\nZhang Wei",
"Thanks, Mary Jones"): two or three words, each capitalised in the original."""
_EN_RELATIONS = (
    "wife",
    "husband",
    "son",
    "daughter",
    "mother",
    "mom",
    "mum",
    "father",
    "dad",
    "brother",
    "sister",
    "friend",
    "colleague",
    "partner",
    "boss",
    "boyfriend",
    "girlfriend",
)
_MY_RELATIONS_EN = tuple(f"my {relation}" for relation in _EN_RELATIONS)
_AFTER_RELATION = re.compile(
    rf"(?:'s\sname\sis|,)?\s(?P<name>{_EN_WORD}(?:\s{_EN_WORD})?)(?![a-z])"
)
"""After "my wife", "my colleague" …: their name ("my wife Jane Doe placed the order"),
written capitalised in the original."""
_SPEAKING_WORDS = (" here", " speaking", " calling")
_SPEAKER = re.compile(rf"(?:^|[.!?,\n]\s?|it's\s|it\sis\s)(?P<name>{_EN_WORD}\s{_EN_WORD})\Z")
"""Before " here", " speaking", " calling": a caller naming themselves ("Sarah Connor here",
"It's Tom Hanks speaking"), two words each capitalised in the original, starting a sentence
or after "it's"; searched in the few characters before the word."""
_TITLES = ("mr", "mrs", "ms", "miss", "dr")
_EN_TITLE = re.compile(
    rf"{not_after_letter(_TITLES)}\.?\s(?P<name>[a-z][a-z'\-]{{1,20}}+(?:\s[a-z][a-z'\-]{{1,20}}+)?)"
)
"""Mr/Mrs/Ms/Miss/Dr (not inside a word) and a word, with the next word when it is
capitalised in the original (Mr. Zhang Wei; not "Dr. Smith said")."""
_EN_NOT_NAMES = frozenset(
    "a an the here there happy sorry not so very just still also fine good ok okay sure new "
    "calling writing back looking trying going waiting afraid glad unable interested customer "
    "user member from in at with about really having still your you it on of to for my "
    "appointment".split()
)
_NOT_SPEAKERS = _EN_NOT_NAMES | frozenset(
    "support sales service team customer help desk billing tech technical front office "
    "shipping delivery this that who what someone somebody everyone nobody great excellent "
    "nice awesome amazing wonderful perfect lovely all much again".split()
)
"""First words of a team, a question or praise where a name could stand ("Customer Service
here", "Who is speaking", "Thanks, Great Service")."""
_NOT_LATIN_NAMES = _EN_NOT_NAMES | frozenset(
    "me is vip test admin null none unknown self info sir madam xx xxx na wechat weixin qq "
    "email mail phone tel mobile id vx wx".split()
)
"""Words after a Chinese cue that are no name ("联系人 is me", "收件人 unknown")."""


_ZH_PATTERNS = (
    (_ZH_CUED, "name.cue", frozenset((*_CUES_ZH, *_RELATION_CUES))),
    (_ZH_GIVEN_TO, "name.cue", frozenset(_GIVING)),
    (_ZH_SURNAME_FIRST, "name.cue", frozenset({"我姓"})),
    (_ZH_HONORIFIC, "name.honorific", frozenset(_HONORIFICS)),
    (
        _ZH_POSSESSIVE,
        "name.possessive",
        frozenset((*_VERBS, *_MY_RELATION_PHRASES)),
    ),
)
"""Chinese patterns, their rule and the gate phrases one of which is in every match."""
_TITLE_PHRASES = tuple(title + end for title in _TITLES for end in (".", *VIEW_WHITESPACE))
_EN_PATTERNS = (
    (_EN_CUED, "name.cue_en", frozenset(_CUES_EN)),
    (_EN_TITLE, "name.title", frozenset(_TITLE_PHRASES)),
)
_SIGN_OFF_SET = frozenset(_SIGN_OFFS)
_MY_RELATION_SET = frozenset(_MY_RELATIONS_EN)
_SPEAKING_SET = frozenset(_SPEAKING_WORDS)
_DELIVERY_SET = frozenset(_DELIVERY_CUES_EN)


def _named_near(view: str, start: int, end: int) -> re.Match[str] | None:
    """The name a closing, a relation or a caller's word at ``view[start:end]`` names: after
    "Regards," or "my wife", before " here"."""
    phrase = view[start:end]
    if phrase in _SIGN_OFF_SET or phrase in _MY_RELATION_SET:
        if start and "a" <= view[start - 1] <= "z":
            return None
        after = _AFTER_SIGN_OFF if phrase in _SIGN_OFF_SET else _AFTER_RELATION
        return after.match(view, end)
    if phrase in _SPEAKING_SET and not "a" <= view[end : end + 1] <= "z":
        return _SPEAKER.search(view, max(0, start - 48), start)
    return None


def _all_capitalised(ctx: ScanContext, start: int, end: int) -> bool:
    """Whether every word of ``view[start:end]`` is capitalised in the original."""
    view = ctx.view
    starts = [start + k + 1 for k in range(end - start) if view[start + k].isspace()]
    return all(_upper_at(ctx, pos) for pos in (start, *starts))


class NameDetector:
    """Person names (kind ``name``)."""

    kinds = ("name",)
    triggers = ()
    gate_phrases = tuple(
        sorted(
            {phrase for _, _, phrases in (*_ZH_PATTERNS, *_EN_PATTERNS) for phrase in phrases}
            | _SIGN_OFF_SET
            | _MY_RELATION_SET
            | _SPEAKING_SET
            | _DELIVERY_SET
        )
    )
    """Every pattern's phrases: one of them is in each match (a test holds it)."""
    gate_pattern = _MOBILE.pattern
    """A mobile number opens the detector too: a name may stand right before it."""
    exclusive = True

    def __init__(self) -> None:
        self._phrases = Phrases((phrase, None) for phrase in self.gate_phrases)
        self._phrase_set = frozenset(self.gate_phrases)

    def scan(self, ctx: ScanContext) -> Iterator[Hit]:
        """Yield name spans (view coordinates). Each pattern runs only where one of its own
        phrases is (the engine's gate pass found them): the detector opens for any of them,
        and running every pattern whenever it opened cost a median 35 us on the bench's
        500-character lines ("thanks" alone opens it on most English ones)."""
        view = ctx.view
        spans = ctx.phrase_spans(self._phrase_set)
        if spans is None:
            spans = [(start, end) for _, start, end in self._phrases.find(view)]
        found = {view[start:end] for start, end in spans}
        seen: set[int] = set()
        if not view.isascii():
            yield from self._chinese(view, found, seen)
            yield from self._labels(view, seen)
        yield from self._english(ctx, spans, found, seen)

    @staticmethod
    def _labels(view: str, seen: set[int]) -> Iterator[Hit]:
        """Names right before a mobile number (a pasted shipping label)."""
        places = _places()
        for m in _MOBILE.finditer(view):
            before = _NAME_BEFORE.search(view, max(0, m.start() - 8), m.start())
            if before is None or before.start("name") in seen:
                continue
            name = before["name"]
            if name in _NOT_LABEL_NAMES or name[:2] in _NOT_LABEL_NAMES or name in places:
                continue
            seen.add(before.start("name"))
            yield Hit("name", before.start("name"), before.end("name"), "name.label")

    @staticmethod
    def _chinese(view: str, found: set[str], seen: set[int]) -> Iterator[Hit]:
        for pattern, rule, phrases in _ZH_PATTERNS:
            if phrases.isdisjoint(found):
                continue
            for m in pattern.finditer(view):
                if pattern is _ZH_CUED and m["latin"] is not None:
                    if m["cue"] in _LATIN_AFTER and m["latin"].split()[0] not in (_NOT_LATIN_NAMES):
                        seen.add(m.start("latin"))
                        yield Hit("name", m.start("latin"), m.end("latin"), rule)
                    continue
                if pattern is _ZH_CUED and _no_name_after_cue(view, m):
                    continue
                if m.start("name") not in seen:
                    seen.add(m.start("name"))
                    given = pattern is _ZH_SURNAME_FIRST and not m["name"].startswith(m["surname"])
                    yield Hit(
                        "name", m.start("name"), m.end("name"), GIVEN_NAME_RULE if given else rule
                    )

    @staticmethod
    def _english(
        ctx: ScanContext, spans: list[tuple[int, int]], found: set[str], seen: set[int]
    ) -> Iterator[Hit]:
        view = ctx.view
        for pattern, rule, phrases in _EN_PATTERNS:
            if phrases.isdisjoint(found):
                continue
            for m in pattern.finditer(view):
                words = m.group("name").split()
                if words[0] in _EN_NOT_NAMES or m.start("name") in seen:
                    continue
                if not _capitalised(ctx, m.start("name"), words):
                    continue
                start, end = m.span("name")
                if pattern is _EN_TITLE and len(words) == 2:
                    first_end = start + len(words[0])
                    if not _upper_at(ctx, first_end + 1):  # "Dr. Smith said"
                        end = first_end
                seen.add(start)
                yield Hit("name", start, end, rule)
        for start, end in spans:
            named = _named_near(view, start, end)
            if named is None or named.start("name") in seen:
                continue
            name_start, name_end = named.span("name")
            if view[name_start:name_end].split()[0] in _NOT_SPEAKERS:
                continue
            if _all_capitalised(ctx, name_start, name_end) or lower_case_name(
                view[name_start:name_end].split()
            ):
                seen.add(name_start)
                yield Hit("name", name_start, name_end, "name.cue_en")
        if not _DELIVERY_SET.isdisjoint(found):
            for m in _EN_DELIVERY.finditer(view):
                start, end = m.span("name")
                words = m.group("name").split()
                if start in seen or words[0] in _PLACE_STARTS or words[0] in _EN_NOT_NAMES:
                    continue
                if _all_capitalised(ctx, start, end) or lower_case_name(words):
                    seen.add(start)
                    yield Hit("name", start, end, "name.cue_en")


def _upper_at(ctx: ScanContext, pos: int) -> bool:
    """Whether the original character behind ``view[pos]`` is upper-case."""
    text = ctx.text
    at = text.to_original(pos)
    return text.original[at : at + 1].isupper()


def _capitalised(ctx: ScanContext, start: int, words: list[str]) -> bool:
    """After a weak cue ("this is", "i am") a name is written capitalised in the original."""
    return _upper_at(ctx, start) or (len(words) >= 2 and words[0] not in (_EN_NOT_NAMES))


END_PATTERNS: dict[str, re.Pattern[str]] = {
    "zh_cued": _ZH_CUED,
    "zh_given_to": _ZH_GIVEN_TO,
    "zh_surname_first": _ZH_SURNAME_FIRST,
    "zh_honorific": _ZH_HONORIFIC,
    "zh_possessive": _ZH_POSSESSIVE,
    "mobile": _MOBILE,
    "name_before": _NAME_BEFORE,
    "en_cued": _EN_CUED,
    "en_title": _EN_TITLE,
    "en_delivery": _EN_DELIVERY,
    "after_sign_off": _AFTER_SIGN_OFF,
    "after_relation": _AFTER_RELATION,
    "speaker": _SPEAKER,
}
"""The detector's patterns by the name the end document carries them under (``policy/end.py``
translates them for ``gateway/web/policy.js``, which runs them as ``scan`` does here)."""
_END_NAME_OF = {pattern: name for name, pattern in END_PATTERNS.items()}
END_WORDS: dict[str, tuple[str, ...]] = {
    **{
        _END_NAME_OF[pattern]: tuple(sorted(phrases))
        for pattern, _, phrases in (*_ZH_PATTERNS, *_EN_PATTERNS)
    },
    "sign_offs": _SIGN_OFFS,
    "my_relations_en": _MY_RELATIONS_EN,
    "speaking": _SPEAKING_WORDS,
    "delivery": _DELIVERY_CUES_EN,
    "weak_cues": tuple(sorted(_WEAK_CUES)),
    "relations": _RELATIONS,
    "latin_after": tuple(sorted(_LATIN_AFTER)),
    "common_words": tuple(sorted(_COMMON_WORDS)),
    "titles_zh": _TITLES_ZH,
    "not_label_names": tuple(sorted(_NOT_LABEL_NAMES)),
    "en_not_names": tuple(sorted(_EN_NOT_NAMES)),
    "not_speakers": tuple(sorted(_NOT_SPEAKERS)),
    "not_latin_names": tuple(sorted(_NOT_LATIN_NAMES)),
    "place_starts": tuple(sorted(_PLACE_STARTS)),
    "division_suffixes": DIVISION_SUFFIXES,
    "given_names_en": tuple(sorted(GIVEN_NAMES_EN)),
    "surnames_en": tuple(sorted(SURNAMES_EN)),
}
"""The detector's word lists by name, for the end document: each pattern's gate phrases
(under the pattern's name), the cues and the words that are no name."""
