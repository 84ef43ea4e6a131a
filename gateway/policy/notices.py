"""The sentence the SENDER gets when their message was changed, held back or flagged.

Plain language, no rule names or offsets (those are for admins), in Chinese when the message
was written in Chinese and in English otherwise.
"""

from __future__ import annotations

import re

from .types import Action, Direction

_HAN = re.compile(r"[\u4e00-\u9fff]")

_WHAT: dict[str, tuple[str, str]] = {
    "card": ("a card number", "银行卡号"),
    "cn_id": ("an ID number", "身份证号码"),
    "iban": ("a bank account number", "银行账号"),
    "bank_account": ("a bank account number", "银行账号"),
    "id_document": ("an identity document number", "证件号码"),
    "phone": ("a phone number", "电话号码"),
    "im_account": ("a QQ or WeChat account", "QQ/微信号"),
    "birth_date": ("a date of birth", "出生日期"),
    "vehicle_plate": ("a licence plate number", "车牌号"),
    "email": ("an e-mail address", "邮箱地址"),
    "otp": ("a verification code", "验证码"),
    "password": ("a password", "密码"),
    "api_key": ("an access key", "访问密钥"),
    "private_key": ("a private key", "私钥"),
    "link": ("a link", "链接"),
    "link_external": ("a link to a site that is not approved", "未经批准的网站链接"),
    "link_homoglyph": ("a link with a look-alike address", "地址可疑的链接"),
    "abuse": ("language that is not allowed here", "不文明用语"),
    "name": ("a personal name", "姓名"),
    "address": ("a postal address", "地址"),
    "political": ("content on a restricted topic", "受限话题的内容"),
}
_DEFAULT_WHAT = ("content our security policy restricts", "受安全策略限制的内容")

_ADVICE: dict[tuple[str, Direction], tuple[str, str]] = {
    ("card", "customer"): (
        "Please never share card details in chat; use the secure payment page instead.",
        "请勿在聊天中发送银行卡信息，请使用安全支付页面。",
    ),
    ("otp", "customer"): (
        "Our staff will never ask for your codes or passwords.",
        "我们的工作人员绝不会索要您的验证码或密码。",
    ),
    ("password", "customer"): (
        "Our staff will never ask for your codes or passwords.",
        "我们的工作人员绝不会索要您的验证码或密码。",
    ),
    ("link_external", "agent"): (
        "Links may only point to the company's approved sites.",
        "只能发送公司批准网站的链接。",
    ),
}

_LEAD: dict[Action, tuple[str, str]] = {
    "block": (
        "Your message was not sent because it contained {what}.",
        "您的消息未发送，因为其中包含{what}。",
    ),
    "mask": (
        "For your security, {what} in your message was hidden.",
        "为了您的安全，消息中的{what}已被隐藏。",
    ),
    "flag": (
        "Your message was delivered; it contained {what} and was marked for review.",
        "您的消息已发送；其中包含{what}，已标记待审核。",
    ),
}

_LINKS_SHOWN_AS_TEXT = (
    "For everyone's safety, links you send are shown to our staff as plain text.",
    "为了安全，您发送的链接将以纯文本形式显示给工作人员。",
)


def notice_for(action: Action, kind: str, direction: Direction, original: str) -> str | None:
    """One friendly sentence (two with advice) about the most severe finding, or None."""
    if action == "allow":
        return None
    lang = 1 if _HAN.search(original) else 0
    what = _WHAT.get(kind, _DEFAULT_WHAT)[lang]
    if action == "mask" and kind.startswith("link"):
        sentence = _LINKS_SHOWN_AS_TEXT[lang]
    else:
        sentence = _LEAD[action][lang].format(what=what)
    if lang == 0:
        sentence = sentence[0].upper() + sentence[1:]
    advice = _ADVICE.get((kind, direction))
    return sentence + (" ", "")[lang] + advice[lang] if advice else sentence
