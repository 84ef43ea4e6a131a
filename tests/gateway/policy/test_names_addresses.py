"""Names and addresses (and dates of birth, plates): the labelled corpus
(tests/policy/pii_corpus.jsonl) and the targets."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyConfig, PolicyEngine
from tests.policy.pii_score import score


@pytest.fixture(scope="module")
def eng() -> PolicyEngine:
    return PolicyEngine(PolicyConfig())


def test_corpus_precision_and_recall_meet_targets(eng: PolicyEngine) -> None:
    scores, size, _ = score(eng)
    assert size >= 500
    for kind in ("name", "address", "birth_date", "vehicle_plate"):
        assert scores[kind].precision >= 0.90, kind
        assert scores[kind].recall >= 0.90, kind


def test_defaults_show_names_to_agents_and_mask_them_for_plugins(eng: PolicyEngine) -> None:
    text = "收件人：欧阳娜娜，地址：上海市徐汇区漕溪北路88号"
    d = eng.evaluate(text, "customer")
    assert d.text == text and {f.kind for f in d.findings} == {"name", "address"}
    assert eng.for_audience(text, d, "plugin") == "收件人：欧***，地址：上海市徐汇区*******"


def test_tenant_actions_for_names_and_addresses() -> None:
    eng = PolicyEngine(
        PolicyConfig.from_dict({"actions": {"name": "mask", "address": {"agent": "block"}}})
    )
    assert eng.evaluate("我叫张三，谢谢", "customer").text == "我叫张*，谢谢"
    assert eng.evaluate("寄到北京市朝阳区建国路88号", "agent").action == "block"
    assert eng.evaluate("My name is John Smith.", "customer").text == "My name is J*** S****."


@pytest.mark.parametrize(
    "text",
    [
        "朝阳区的门店几点开门？",
        "王者荣耀的充值没到账",
        "我叫你们经理来",
        "I am happy with the service",
        "Main street store is closed",
        "张先生您好",
        "3号楼的快递柜坏了",
        "朝阳区的门店3号开门吗",  # the 3rd of the month
        "这个东西我弄了 3 天，弄不好",
        # after "我是": a role, a place, an organisation, a surname with a title
        "我是房东",
        "我是江苏的",
        "我是石家庄人",
        "我是苏宁的客服",
        "我是公安局的",
        "我是李老师",
        "收件人：江苏南京",
        # a building alone or with a floor pins no household; an estate's name alone neither
        "会议在A座3楼开",
        "我们公司在3号楼5层",
        "5号楼3天没有来快递了",
        "快递放在阳光小区门口",
        # after a delivery cue: places, and words that are not capitalised names
        "please send it to New York",
        "send it to support team",
        "Ship to Main Street Store",
        "send to Hong Kong",
        "我知道3号发货",  # a word ending in 道 is no road
        "the chat room is 5 floor 3",
        "我是香港的",
        # a relation alone is no cue; Latin words after a cue that name no one
        "我孩子高烧不退",
        "我女儿方便的时候再说",
        "联系人 is me",
        "联系人wechat: abc",
        # a relation after a cue or 寄给 with no name; a shop after 寄给; a surname explained
        "收件人 我爸爸",
        "寄给我朋友",
        "寄给王府井店",
        "我姓张，是张三丰的张",
        # praise, a team or a question where a closing's or a caller's name would stand
        "Thanks, Great Service",
        # in lower case, words that are no given name and surname both (names.py
        # lower_case_name): a counter, a church, a team, a place
        "ship to will call",
        "deliver to grace church",
        "thanks, great service",
        "send to hong kong",
        "customer service here, how can I help",
        "my wife and i ordered",
        "Customer Service here, how can I help",
        "Who Is speaking",
        "Thanks for the help\nBye",
        "my wife and I ordered",
        "my son Is sick",
        # words before a mobile number that are no name
        "明天 13800138000",
        "北京 13800138000",
        "好的，13800138000",
        "江苏 13800138000",
        "方便的话打13800138000",
        "支付宝 138 0013 8000",
        "微信号 13800138000",
        "会员 13800138000",
    ],
)
def test_look_alikes_are_not_names_or_addresses(eng: PolicyEngine, text: str) -> None:
    assert not [f for f in eng.evaluate(text, "customer").findings if f.kind in ("name", "address")]


@pytest.mark.parametrize(
    ("text", "plugin"),
    [
        # the building and flat after the road number are part of the address
        (
            "地址：浙江省杭州市西湖区文三路90号东部软件园3号楼",
            "地址：浙江省杭州市西湖区**************",
        ),
        (
            "寄到上海市徐汇区漕溪北路88号圣爱大厦1202室，谢谢",
            "寄到上海市徐汇区****************，谢谢",
        ),
        ("送到建国路88号华贸中心3座1501室", "送到*****************"),
        # what follows the address after a comma is not
        ("北京市朝阳区建国路88号，我明天3点在家", "北京市朝阳区******，我明天3点在家"),
        # parts set apart by spaces, a Shanghai lane
        (
            "上海市 浦东新区 张江路 123弄 4号楼 501室",
            "上海市 浦东新区 *** **** *** ****",
        ),
        ("寄到 深圳南山区高新南一道 9 号", "寄到 深圳南山区***** * *"),
        ("寄到张江路123弄，放门卫", "寄到*******，放门卫"),
        (
            "Ship to 1600 Amphitheatre Parkway, Mountain View",
            "Ship to **** ************ *******, Mountain View",
        ),
        # a flat in an estate without a road; its estate's name is hidden with it, even when
        # it ends like a division (阳光小区, 万科城市花园)
        ("送到万科城市花园3期12栋2单元801", "送到*****************"),
        ("我家在阳光小区8栋1单元502室", "我家在*************"),
        ("住3栋2单元501室", "住*********"),
        ("北京市朝阳区阳光小区8栋1单元502室", "北京市朝阳区*************"),
        # a building's name, floor and flat after the road number, spaced or not
        ("我住在朝阳区建国路88号SOHO现代城5号楼1201", "我住在朝阳区********************"),
        (
            "地址是海淀区中关村大街27号 中关村大厦 15层 1503",
            "地址是海淀区******** ***** *** ****",
        ),
        (
            "寄到 上海市徐汇区漕溪北路 595 号 上海电影广场 B 座 12 楼",
            "寄到 上海市徐汇区**** *** * ****** * * ** *",
        ),
        # a count after a floor is not a flat
        ("建国路88号3楼2个人", "********2个人"),
        # a building's name closing the address, a tower and a zone with their flats
        ("我的地址在北京海淀区上地十街10号百度大厦", "我的地址在北京海淀区***********"),
        ("寄到天津市南开区卫津路94号南开大学", "寄到天津市南开区**********"),
        ("地址：广州天河区体育西路191号中石化大厦B塔25楼", "地址：广州天河区******************"),
        (
            "收货地址：四川省成都市高新区天府大道北段1700号环球中心E1区1208",
            "收货地址：四川省成都市高新区**********************",
        ),
        # but not what follows the number after 的
        ("建国路88号附近的医院", "******附近的医院"),
        # Hong Kong, Macau and Taiwan: their places kept, a road's section, a HK road in 道
        ("香港九龙尖沙咀广东道3号海港城2座12楼A室", "香港九龙******************"),
        ("台北市信义区信义路五段7号", "台北市**********"),
        # in English: a flat before the street, an ordinal street, a PO box, a HK flat
        (
            "ship to Apt 5B, 120 West 45th St, New York",
            "ship to *** **, *** **** **** **, New York",
        ),
        ("PO Box 1234, Hong Kong", "** *** ****, Hong Kong"),
        (
            "Flat A, 12/F, Tower 2, Harbour City",
            "**** *, **/*, ***** *, Harbour City",
        ),
        ("Room 1203, Building 5, Wanke Garden", "**** ****, ******** *, Wanke Garden"),
        ("Apartment 5, 3/F, Tower 2", "********* *, */*, ***** *"),
        # an estate, a park or a mall closing the address; town, state and postcode after a
        # comma when a postcode ends them
        ("地址：浙江省杭州市西湖区文三路90号东部软件园", "地址：浙江省杭州市西湖区***********"),
        ("广州市天河区天河路208号天河城", "广州市天河区**********"),
        ("我住在北京朝阳区建国路88号SOHO现代城", "我住在北京朝阳区*************"),
        (
            "Ship it to 1600 Amphitheatre Parkway, Mountain View, CA 94043",
            "Ship it to **** ************ *******, ******** ****, ** *****",
        ),
        (
            "I live at 221B Baker Street, London NW1 6XE",
            "I live at **** ***** ******, ****** *** ***",
        ),
        (
            "send to 350 Fifth Avenue, New York, NY 10118-0110 please",
            "send to *** ***** ******, *** ****, ** *****-**** please",
        ),
        (
            "I live at 24 Sussex Drive, Ottawa, ON K1M 1M4",
            "I live at ** ****** *****, ******, ** *** ***",
        ),
        (
            "deliver to 42 Wallaby Way, Sydney NSW 2000",
            "deliver to ** ******* ***, ****** *** ****",
        ),
        ("I live at 12 Baker Street, Paris and 2000", "I live at ** ***** ******, Paris and 2000"),
        (
            "Ship to: Unit 4, 88 Queen's Road Central, Hong Kong",
            "Ship to: **** *, ** *****'* **** Central, Hong Kong",
        ),
        # a building and flat written with a dash after an estate's name; not a span of days
        (
            "寄到江苏省苏州市工业园区星湖街328号创意产业园2-B501",
            "寄到江苏省苏州市*****************-****",
        ),
        ("寄到星湖街328号创意产业园2-3天", "寄到************2-3天"),
    ],
)
def test_whole_addresses_are_masked_for_plugins(eng: PolicyEngine, text: str, plugin: str) -> None:
    d = eng.evaluate(text, "customer")
    assert eng.for_audience(text, d, "plugin") == plugin


@pytest.mark.parametrize(
    ("text", "plugin"),
    [
        # a title and the capitalised word after its name: the whole name
        ("please send it to Mr. Zhang Wei", "please send it to Mr. Z**** W**"),
        ("Dr. Smith said it is fine", "Dr. S**** said it is fine"),
        # holders and "the name of"
        ("The card holder is Li Na", "The card holder is L* N*"),
        (
            "the account is under the name of Wang Fang",
            "the account is under the name of W*** F***",
        ),
        # a recipient after a delivery cue, written capitalised
        (
            "ship to Jane Doe at 1 Infinite Loop, Cupertino",
            "ship to J*** D** at 1 Infinite Loop, Cupertino",
        ),
        (
            "send to John Smith, 42 Wallaby Way, Sydney",
            "send to J*** S****, ** ******* ***, Sydney",
        ),
        ("attn: Mary Jones", "attn: M*** J****"),
        # a Chinese name spelt with spaces is still one name, masked as one
        ("我叫 李 明", "我叫 李 *"),
        ("名字是张 三，电话稍后发", "名字是张 *，电话稍后发"),
        # in Latin letters after a Chinese cue
        ("联系人：Zhang San", "联系人：Z**** S**"),
        ("收件人 zhangsan", "收件人 z*******"),
        ("持卡人 LI NA，卡号稍后发", "持卡人 L* N*，卡号稍后发"),
        # named through a relation
        ("我老公叫陈志强", "我老公叫陈**"),
        ("我妈妈的名字是刘秀英", "我妈妈的名字是刘**"),
        # a relation between the cue and the name; a parcel's relation; new recipient cues
        ("收件人是我老公张伟", "收件人是我老公张*"),
        ("联系人：我妈 刘秀英", "联系人：我妈 刘**"),
        ("收件人是我的朋友李娜", "收件人是我的朋友李*"),
        ("寄给我妈妈刘秀英，电话稍后发", "寄给我妈妈刘**，电话稍后发"),
        ("转交给我同事 陈 明", "转交给我同事 陈 *"),
        ("快递放到丰巢，取件人刘德华", "快递放到丰巢，取件人刘**"),
        ("麻烦帮我改下收件人，改成陈静，电话不变", "麻烦帮我改下收件人，改成陈*，电话不变"),
        # the surname said first: the whole name, or the given name alone masked whole
        ("我姓王，叫王建国", "我姓王，叫王**"),
        ("我姓李，名字叫明", "我姓李，名字叫*"),
        ("我姓欧阳叫娜娜", "我姓欧阳叫**"),
        # a signature, a relation's name before what is theirs, a name before the relation
        ("落款：张伟", "落款：张*"),
        ("我老婆王芳的手机没收到验证码", "我老婆王*的手机没收到验证码"),
        ("我是王芳老公", "我是王*老公"),
        # in English: a letter's closing, a caller naming themselves, a relation's name
        ("Regards, John Smith", "Regards, J*** S****"),
        ("Thanks,\nMary Jones", "Thanks,\nM*** J****"),
        ("Best regards,\nZhang Wei\n", "Best regards,\nZ**** W**\n"),
        ("Sarah Connor here, my order is late", "S**** C***** here, my order is late"),
        ("It's Tom Hanks speaking", "It's T** H**** speaking"),
        ("my wife Jane Doe placed the order", "my wife J*** D** placed the order"),
        # the same typed in lower case: a given name and a surname both lexicons hold
        ("please ship to mary jones at the depot", "please ship to m*** j**** at the depot"),
        ("send it to john smith, 42 wallaby way", "send it to j*** s****, ** ******* ***"),
        ("thanks,\nlinda wang", "thanks,\nl**** w***"),
        ("regards, james robert brown", "regards, j**** r***** b****"),
        ("my wife mary smith placed the order", "my wife m*** s**** placed the order"),
        ("sarah miller here, my order is late", "s**** m***** here, my order is late"),
        # a pasted shipping label: the name right before the mobile number
        ("张三，13800138000，北京市朝阳区建国路88号", "张*，138****8000，北京市朝阳区******"),
        ("王五 139 0013 9000 广州市天河区体育西路191号", "王* 139 **** 9000 广州市天河区********"),
        ("收货信息：欧阳娜娜 13800138000 上海市", "收货信息：欧*** 138****8000 上海市"),
    ],
)
def test_names_are_masked_whole_for_plugins(eng: PolicyEngine, text: str, plugin: str) -> None:
    d = eng.evaluate(text, "customer")
    assert eng.for_audience(text, d, "plugin") == plugin
