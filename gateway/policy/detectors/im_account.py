"""Instant-messaging accounts -- QQ numbers and WeChat IDs -- named by their cue.

In Chinese customer service a customer leaves a QQ number or a WeChat ID as often as a phone
number ("加我微信 zhang_san88", "我的QQ是123456789"); each reaches the person as surely as a
phone does, so the kind is handled like one: agents see it, plugins and exports get it
masked. Neither carries a checksum, and a QQ number is any 5-11 digits, so the cue is the
validation; its digits may be grouped ("qq 号 123 456 789"). A WeChat ID is 6-20
characters starting with a letter; one without a digit, _ or - is left alone ("my wechat
account is …" would otherwise make "account" an ID).
"""

from __future__ import annotations

from .context import ANNOUNCING_WORDS, context_rule

IM_PHRASES = (
    "qq",
    "qq号",
    "微信",
    "微信号",
    "v信",
    "vx",
    "wx",
    "威信",
    "wechat",
    "weixin",
    # what people write to slip past platforms' filters: 薇信, 徽信, 卫星 and V for WeChat,
    # 扣扣, 抠抠, 叩叩, 企鹅 and Q for QQ
    "加薇",
    "薇信",
    "徽信",
    "卫星号",
    "加卫星",
    "加v",
    "+v",
    "扣扣",
    "抠抠",
    "叩叩",
    "企鹅号",
    "加企鹅",
    "q号",
    "加q",
)

RULE = context_rule(
    "im_account",
    "im_account.context",
    IM_PHRASES,
    rf"(?:{ANNOUNCING_WORDS}|account|id){{0,8}}+",
    r"(?<![0-9a-z_\-])(?:[1-9](?:[ \-]?+[0-9]){4,10}+|[a-z](?=[a-z0-9_\-]{0,18}[0-9_\-])"
    r"[a-z0-9_\-]{5,19}+)(?![0-9a-z_\-])",
)
