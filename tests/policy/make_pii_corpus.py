"""Builds ``pii_corpus.jsonl``: a labelled Chinese (and some English) customer-service corpus
for the ``name``, ``address``, ``birth_date`` and ``vehicle_plate`` detectors.
Run: ``python -m tests.policy.make_pii_corpus``.

How it is labelled: every line's gold spans are known by construction -- a template is filled
with a value from the lists below, and the value IS the label (kind + exact text). Templates
were written to look like real chat lines (greetings, order talk, typos of punctuation), and
include cue-less phrasings the detector is not designed for, so misses are measured too.
Negative lines (no name/address, but surnames, district names, road words and numbers that
look like one) are labelled with no spans. The 90 hand-written lines at the end
(``NEGATIVES``, ``HAND``) were labelled by hand, and so were the 26 lines of dates and
plates (``DATE_AND_PLATE_NEGATIVES``, ``DATE_AND_PLATE_HAND``) and the 11 of English names in
lower case (``EN_LOWER_NEGATIVES``, ``EN_LOWER_HAND``). Seeded: the file is reproducible.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("pii_corpus.jsonl")

GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "晓东",
    "志强",
    "海燕",
    "子涵",
    "浩然",
    "雨萱",
    "一诺",
    "梓轩",
    "欣怡",
    "俊杰",
    "思远",
    "佳琪",
    "文博",
    "天宇",
    "晨曦",
]
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡")
SURNAMES += ["欧阳", "司马", "诸葛", "上官"]
EN_NAMES = [
    "John Smith",
    "Mary Johnson",
    "David Lee",
    "Emma Brown",
    "Michael Chen",
    "Sarah Wilson",
    "James Taylor",
    "Olivia Martin",
]
ADDRESSES = [
    "北京市朝阳区建国路88号",
    "上海市浦东新区张江路123弄4号楼501室",
    "广东省深圳市南山区科技园南区8栋3单元501室",
    "浙江省杭州市西湖区文三路478号",
    "江苏省南京市鼓楼区中山北路30号",
    "四川省成都市武侯区人民南路四段12号",
    "湖北省武汉市洪山区珞喻路1037号",
    "天津市和平区南京路189号",
    "重庆市渝中区解放碑民权路28号",
    "陕西省西安市雁塔区科技路48号",
    "山东省青岛市市南区香港中路10号",
    "福建省厦门市思明区湖滨南路90号",
    "河南省郑州市金水区花园路39号院2号楼",
    "湖南省长沙市岳麓区麓山南路2号",
    "海淀区中关村大街27号",
    "广州市天河区天河路385号",
    "苏州市工业园区星湖街328号",
    "南山区粤海街道科苑路15号",
    "建国路88号",
    "中山北路30号",
    "文一西路969号",
]
EN_ADDRESSES = [
    "12 Baker Street",
    "221 King Road",
    "5 Queens Avenue",
    "77 Harbour Lane",
    "1600 Main St",
]
NAME_TEMPLATES = [
    "你好，我叫{v}，订单一直没有发货",
    "收件人：{v}，电话稍后发你",
    "我是{v}，想问一下退款进度",
    "持卡人是{v}，请帮忙核实",
    "姓名：{v}",
    "联系人{v}，麻烦尽快处理",
    "收货人写的是{v}，没错吧",
    "我的名字叫{v}",
    "{v}先生您好，请问还有什么可以帮您",
    "{v}女士，您的包裹已经签收",
    "开户名{v}",
    "申请人：{v}，身份证明已上传",
    "真实姓名是{v}",
    "{v}上周买的耳机坏了",  # no cue: hard case
    "帮我查下{v}的订单",  # no cue: hard case
]
EN_NAME_TEMPLATES = [
    "Hi, my name is {v}, my order is late",
    "This is {v} from the shop",
    "Cardholder: {v}",
    "name: {v}",
]
ADDRESS_TEMPLATES = [
    "我的地址是{v}，麻烦改一下",
    "收货地址：{v}",
    "寄到{v}，谢谢",
    "请送到{v}",
    "地址{v}，快递员找不到",
    "我住在{v}附近，能自提吗",  # "附近": still the address
    "发票寄往{v}",
    "{v}，这个地址对吗",
]
EN_ADDRESS_TEMPLATES = ["Please ship to {v}, thanks", "My address is {v}", "I live at {v}."]
NEGATIVES = [
    "朝阳区的门店几点开门？",
    "北京时间下午三点给您回电",
    "订单号12345678，请查一下",
    "我是新用户，怎么领券",
    "王者荣耀的充值没到账",
    "黄金会员怎么续费",
    "高速路上堵车了，快递会晚吗",
    "这个路由器支持5G吗",
    "上海的仓库什么时候发货",
    "深圳市区当天能送到吗",
    "第3号商品缺货了",
    "我叫你们经理来",
    "张总说可以退款",
    "李宁的鞋子有货吗",
    "周末能配送吗",
    "马上就到",
    "何时发货",
    "高兴地收到了",
    "请问您是哪位",
    "朱古力口味还有吗",
    "3号楼的快递柜坏了",
    "明天下午到",
    "杭州西湖很美",
    "I am happy with the service",
    "This is not what I ordered",
    "Main street store is closed",
    "The road to the warehouse is blocked",
    "Order 12 arrived",
    "my name is on the list",
    "Dr. appointment tomorrow",
    "请把单号发我",
    "价格是99元",
    "路费谁出",
    "江苏发货的吗",
]
HAND = [
    ("麻烦帮我改下收件人，改成陈静，电话不变", [("name", "陈静")]),
    ("您好我是刘洋 上次那个订单", [("name", "刘洋")]),
    ("东西寄到江苏省苏州市姑苏区人民路1001号就行", [("address", "江苏省苏州市姑苏区人民路1001号")]),
    (
        "姓名 赵磊 地址 北京市海淀区学院路37号",
        [("name", "赵磊"), ("address", "北京市海淀区学院路37号")],
    ),
    ("客户姓名：孙丽，已核实", [("name", "孙丽")]),
    ("我是周杰的家属，帮他问一下", [("name", "周杰")]),
    (
        "收货人：欧阳娜娜 地址：上海市徐汇区漕溪北路88号",
        [("name", "欧阳娜娜"), ("address", "上海市徐汇区漕溪北路88号")],
    ),
    ("快递放在小区门口了吗", []),
    ("我们公司在南山区", []),
    ("张先生您好", []),
    ("客服小王你好", []),
    ("请问陈经理在吗", []),
    ("王师傅什么时候上门", []),
    ("我住五楼", []),
    ("送到人民路那个店", []),
    (
        "订单写的是广东省广州市越秀区中山五路33号，对吗",
        [("address", "广东省广州市越秀区中山五路33号")],
    ),
    ("hi this is Emma Brown again", [("name", "Emma Brown")]),
    ("ship to 42 Elm Street please", [("address", "42 Elm Street")]),
    ("my name is Li Wei", [("name", "Li Wei")]),
    ("Mr. Zhang will pick it up", [("name", "Zhang")]),
    ("好的，谢谢", []),
    ("我叫了三次快递都没人来", []),
    ("签收人杨帆，麻烦核对", [("name", "杨帆")]),
    ("寄件人写错了，应该是林晓东", []),  # no cue right before the name
    ("联系人：马超 13800000000", [("name", "马超")]),
    ("我家在浙江省宁波市鄞州区天童南路588号", [("address", "浙江省宁波市鄞州区天童南路588号")]),
    ("公司地址：北京市西城区金融大街35号", [("address", "北京市西城区金融大街35号")]),
    ("放到3栋门口就行", []),
    ("我要投诉，你们的快递员姓何", []),
    ("叫做张子涵的那个孩子的账号", [("name", "张子涵")]),
    (
        "地址：浙江省杭州市西湖区文三路90号东部软件园3号楼",
        [("address", "浙江省杭州市西湖区文三路90号东部软件园3号楼")],
    ),
    (
        "寄到上海市徐汇区漕溪北路88号圣爱大厦1202室，谢谢",
        [("address", "上海市徐汇区漕溪北路88号圣爱大厦1202室")],
    ),
    ("送到建国路88号华贸中心3座1501室", [("address", "建国路88号华贸中心3座1501室")]),
    ("北京市朝阳区建国路88号，我明天3点在家", [("address", "北京市朝阳区建国路88号")]),
    (
        "Ship to 1600 Amphitheatre Parkway, Mountain View",
        [("address", "1600 Amphitheatre Parkway")],
    ),
    ("I won 3 games in a row", []),
    ("my 2 kids walk to school", []),
    (
        "上海市 浦东新区 张江路 123弄 4号楼 501室",
        [("address", "上海市 浦东新区 张江路 123弄 4号楼 501室")],
    ),
    ("广东省 深圳市 南山区 高新南一道 9 号", [("address", "广东省 深圳市 南山区 高新南一道 9 号")]),
    ("寄到张江路123弄，放门卫", [("address", "张江路123弄")]),
    ("hi, my name's Li Lei, order 20240312", [("name", "Li Lei")]),
    ("the name's wrong on the invoice", []),
    ("我是房东，押金什么时候退", []),
    ("我是苏宁的客服，您的订单已发货", []),
    ("我是江苏的，发货要几天", []),
    ("我是公安局的，你涉嫌洗钱", []),
    ("我是平安的，回访一下", []),
    ("我是李老师，孩子的课调一下", []),
    ("我是商家，怎么开通店铺", []),
    ("我是张三的朋友，帮他问一下", [("name", "张三")]),
    ("收款人张伟 账号6225 8801 2345 6789", [("name", "张伟")]),
    ("付款人：李娜，麻烦查一下", [("name", "李娜")]),
    ("户主王磊，房子在我名下吗", [("name", "王磊")]),
    ("我们有 3 号 和 5 号两种尺码", []),
    ("这个东西我弄了 3 天，弄不好", []),
    ("朝阳区的门店 3 号开门吗", []),
    # flats in housing estates, and what follows a road number (session 27)
    ("送到万科城市花园3期12栋2单元801", [("address", "万科城市花园3期12栋2单元801")]),
    ("我家在阳光小区8栋1单元502室，放门口就行", [("address", "阳光小区8栋1单元502室")]),
    ("快递寄到碧桂园12栋3单元1101", [("address", "碧桂园12栋3单元1101")]),
    ("住3栋2单元501室，麻烦送上楼", [("address", "3栋2单元501室")]),
    (
        "我住在朝阳区建国路88号SOHO现代城5号楼1201",
        [("address", "朝阳区建国路88号SOHO现代城5号楼1201")],
    ),
    (
        "地址是海淀区中关村大街27号 中关村大厦 15层 1503",
        [("address", "海淀区中关村大街27号 中关村大厦 15层 1503")],
    ),
    ("我的地址在北京海淀区上地十街10号百度大厦", [("address", "海淀区上地十街10号百度大厦")]),
    ("寄到天津市南开区卫津路94号南开大学", [("address", "天津市南开区卫津路94号南开大学")]),
    (
        "地址：广州天河区体育西路191号中石化大厦B塔25楼",
        [("address", "天河区体育西路191号中石化大厦B塔25楼")],
    ),
    (
        "香港九龙尖沙咀广东道3号海港城2座12楼A室",
        [("address", "香港九龙尖沙咀广东道3号海港城2座12楼A室")],
    ),
    ("台北市信义区信义路五段7号", [("address", "台北市信义区信义路五段7号")]),
    ("ship to Apt 5B, 120 West 45th St, New York", [("address", "Apt 5B, 120 West 45th St")]),
    ("PO Box 1234, Hong Kong", [("address", "PO Box 1234")]),
    ("Flat A, 12/F, Tower 2, Harbour City", [("address", "Flat A, 12/F, Tower 2")]),
    ("我知道3号发货", []),
    ("the chat room is 5 floor 3", []),
    ("会议在A座3楼开", []),
    ("我们公司在3号楼5层", []),
    ("5号楼3天没有来快递了", []),
    ("快递放在阳光小区门口", []),
    ("please send it to Mr. Zhang Wei", [("name", "Zhang Wei")]),
    ("The card holder is Li Na", [("name", "Li Na")]),
    ("the account is under the name of Wang Fang", [("name", "Wang Fang")]),
    ("ship to Jane Doe at 1 Infinite Loop", [("name", "Jane Doe")]),
    ("send to John Smith, 42 Wallaby Way", [("name", "John Smith"), ("address", "42 Wallaby Way")]),
    ("我叫 李 明，订单没收到", [("name", "李 明")]),
    ("联系人：Zhang San，电话稍后发", [("name", "Zhang San")]),
    ("收件人 zhangsan", [("name", "zhangsan")]),
    ("我老公叫陈志强，包裹他签收", [("name", "陈志强")]),
    ("我孩子高烧不退，订单先取消", []),
    ("我女儿方便的时候再说", []),
    ("联系人wechat: abc", []),
    ("please send it to New York", []),
    ("send it to support team", []),
    ("Dr. Smith said it is fine", [("name", "Smith")]),
    ("收件人是我老公张伟，电话不变", [("name", "张伟")]),
    ("联系人：我妈 刘秀英", [("name", "刘秀英")]),
    ("快递放到丰巢，取件人刘德华", [("name", "刘德华")]),
    ("寄给我妈妈刘秀英就行", [("name", "刘秀英")]),
    ("我姓王，叫王建国", [("name", "王建国")]),
    ("我姓李，名字叫明", [("name", "明")]),
    ("收件人 我爸爸", []),
    ("寄给王府井店", []),
    ("我姓张，是张三丰的张", []),
    ("落款：张伟", [("name", "张伟")]),
    ("我老婆王芳的手机没收到验证码", [("name", "王芳")]),
    ("我是王芳老公，帮她问一下", [("name", "王芳")]),
    ("Regards, John Smith", [("name", "John Smith")]),
    ("Thanks,\nMary Jones", [("name", "Mary Jones")]),
    ("Sarah Connor here, my order is late", [("name", "Sarah Connor")]),
    ("my wife Jane Doe placed the order", [("name", "Jane Doe")]),
    ("Thanks, Great Service", []),
    ("Customer Service here, how can I help", []),
    (
        "张三，13800138000，北京市朝阳区建国路88号",
        [("name", "张三"), ("address", "北京市朝阳区建国路88号")],
    ),
    (
        "王五 139 0013 9000 广州市天河区体育西路191号",
        [("name", "王五"), ("address", "广州市天河区体育西路191号")],
    ),
    ("明天 13800138000 再联系", []),
    ("好的，13800138000", []),
    (
        "deliver to 42 Wallaby Way, Sydney NSW 2000",
        [("address", "42 Wallaby Way, Sydney NSW 2000")],
    ),
    (
        "Ship to: Unit 4, 88 Queen's Road Central, Hong Kong",
        [("address", "Unit 4, 88 Queen's Road")],
    ),
    (
        "寄到江苏省苏州市工业园区星湖街328号创意产业园2-B501",
        [("address", "江苏省苏州市工业园区星湖街328号创意产业园2-B501")],
    ),
    (
        "地址：浙江省杭州市西湖区文三路90号东部软件园",
        [("address", "浙江省杭州市西湖区文三路90号东部软件园")],
    ),
    ("广州市天河区天河路208号天河城", [("address", "广州市天河区天河路208号天河城")]),
    (
        "I live at 221B Baker Street, London NW1 6XE",
        [("address", "221B Baker Street, London NW1 6XE")],
    ),
    (
        "Ship it to 1600 Amphitheatre Parkway, Mountain View, CA 94043",
        [("address", "1600 Amphitheatre Parkway, Mountain View, CA 94043")],
    ),
]

# -- dates of birth and licence plates (session 33) ---------------------------------------
BIRTH_DATES = [
    "1990-01-01",
    "1985/6/12",
    "1992.03.15",
    "19880808",
    "1990年1月1日",
    "1979年12月31日",
    "2001年5月20号",
    "一九九〇年三月五日",
    "3月5日",
    "十月一号",
    "05/03/1990",
    "1990.01",
]
EN_BIRTH_DATES = ["March 5, 1990", "5 March 1990", "12/25/1990", "1990-01-01", "June 1st"]
BIRTH_DATE_TEMPLATES = [
    "出生日期：{v}",
    "我的生日是{v}，麻烦核对一下",
    "生日{v}，身份证后四位忘了",
    "核对一下，出生年月日 {v}",
    "我是{v}出生的",
    "本人{v}出生，账户是我本人的",
    "{v}是我的生日，有优惠吗",
    "出生于{v}，名字没写错",
    "我生日是{v}呀",
]
EN_BIRTH_DATE_TEMPLATES = [
    "my date of birth is {v}",
    "DOB: {v}",
    "I was born on {v}",
    "{v} is my birthday",
    "birthday {v}, can you check?",
]
PLATES = ["京A12345", "沪B88888", "粤B·D12345", "浙A 8B8B8", "川AF1234", "苏E12345", "沪C1234学"]
PLATE_TEMPLATES = [
    "车牌号{v}，什么时候能出场",
    "我的车是{v}，停在B2",
    "{v}的车主电话打不通",
    "临时停车，车牌：{v}",
    "停车场里那辆{v}是我的",
    "帮我查下{v}的违章",
]
DATE_AND_PLATE_NEGATIVES = [
    "订单2024-12-18发货的，一直没更新",
    "生产日期2024.01.05，保质期一年",
    "有效期至2026/03/31",
    "生日快乐！祝您万事如意",
    "生日礼物3月5日能送到吗",
    "3月5日发货 生日：一定要赶上",
    "我1990年出生",
    "出生地是北京",
    "全新X10000型号有货吗",
    "新款A12345和旧款有什么区别",
    "京东618活动什么时候开始",
    "订单号JD12345678",
    "航班CA1234延误了",
    "沪深300今天涨了",
    "型号A12345，颜色黑色",
    "京A1234这个号段还有吗",
    "我在北京a区3号门",
    "生日会3月5日，能订蛋糕吗",
]
DATE_AND_PLATE_HAND = [
    ("我3月5号过生日，有生日券吗", [("birth_date", "3月5号")]),
    ("身份证上的日期是1990年1月1日", [("birth_date", "1990年1月1日")]),  # no cue: a miss
    (
        "date of birth 1990-01-01, plate 京A12345",
        [("birth_date", "1990-01-01"), ("vehicle_plate", "京A12345")],
    ),
    (
        "出生日期1985年6月12日，车牌粤B12345",
        [("birth_date", "1985年6月12日"), ("vehicle_plate", "粤B12345")],
    ),
    ("Born 12/25/1990", [("birth_date", "12/25/1990")]),
    ("生辰八字：1990年1月1日", [("birth_date", "1990年1月1日")]),
    ("车在京A·12345旁边", [("vehicle_plate", "京A·12345")]),
    ("川A号段的车", []),
]


EN_LOWER_TEMPLATES = [
    "please ship to {v}, thanks",
    "send it to {v} at the front desk",
    "thanks,\n{v}",
    "regards, {v}",
    "my wife {v} placed the order",
    "{v} here, my parcel is missing",
    "attn {v}",
]
"""Where a name must be capitalised, unless it is a given name and a surname the lexicons
hold: the English names above typed in lower case (names.py ``lower_case_name``)."""
EN_LOWER_NEGATIVES = [
    "ship to will call",
    "deliver to grace church",
    "thanks, great service",
    "please send it to new york",
    "ship to the office please",
    "regards, customer service",
    "support team here, how can we help",
    "my wife and i ordered twice",
]
EN_LOWER_HAND = [
    # typed in lower case, not in both lexicons: misses the corpus measures
    ("ship to jane doe", [("name", "jane doe")]),
    ("thanks, wei zhang", [("name", "wei zhang")]),
    ("regards, tom o'neill", [("name", "tom o'neill")]),
]
"""Labelled by hand, like ``NEGATIVES`` and ``HAND``."""


def _line(text: str, spans: list[tuple[str, str]]) -> dict:
    out = []
    for kind, value in spans:
        start = text.index(value)
        out.append({"kind": kind, "start": start, "end": start + len(value), "text": value})
    return {"text": text, "spans": out}


def build(seed: int = 12) -> list[dict]:
    rng = random.Random(seed)
    lines: list[dict] = []
    for _ in range(200):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        lines.append(_line(rng.choice(NAME_TEMPLATES).format(v=name), [("name", name)]))
    for _ in range(40):
        name = rng.choice(EN_NAMES)
        lines.append(_line(rng.choice(EN_NAME_TEMPLATES).format(v=name), [("name", name)]))
    for _ in range(150):
        addr = rng.choice(ADDRESSES)
        lines.append(_line(rng.choice(ADDRESS_TEMPLATES).format(v=addr), [("address", addr)]))
    for _ in range(30):
        addr = rng.choice(EN_ADDRESSES)
        lines.append(_line(rng.choice(EN_ADDRESS_TEMPLATES).format(v=addr), [("address", addr)]))
    for _ in range(60):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        addr = rng.choice(ADDRESSES[:18])
        lines.append(_line(f"收件人{name}，地址{addr}", [("name", name), ("address", addr)]))
    for text in NEGATIVES:
        lines.append(_line(text, []))
    for text, spans in HAND:
        lines.append(_line(text, spans))
    # dates of birth and plates: a generator of their own, so the lines above stay as they were
    more = random.Random(seed + 1)
    for _ in range(80):
        date = more.choice(BIRTH_DATES)
        lines.append(
            _line(more.choice(BIRTH_DATE_TEMPLATES).format(v=date), [("birth_date", date)])
        )
    for _ in range(30):
        date = more.choice(EN_BIRTH_DATES)
        template = more.choice(EN_BIRTH_DATE_TEMPLATES)
        lines.append(_line(template.format(v=date), [("birth_date", date)]))
    for _ in range(60):
        plate = more.choice(PLATES)
        lines.append(
            _line(more.choice(PLATE_TEMPLATES).format(v=plate), [("vehicle_plate", plate)])
        )
    for text in DATE_AND_PLATE_NEGATIVES:
        lines.append(_line(text, []))
    for text, spans in DATE_AND_PLATE_HAND:
        lines.append(_line(text, spans))
    # English names in lower case: a generator of their own too
    lower = random.Random(seed + 2)
    for _ in range(40):
        name = lower.choice(EN_NAMES).lower()
        lines.append(_line(lower.choice(EN_LOWER_TEMPLATES).format(v=name), [("name", name)]))
    for text in EN_LOWER_NEGATIVES:
        lines.append(_line(text, []))
    for text, spans in EN_LOWER_HAND:
        lines.append(_line(text, spans))
    return lines


if __name__ == "__main__":
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"wrote {len(rows)} lines to {OUT}")
