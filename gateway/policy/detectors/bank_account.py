"""Bank account numbers: digits right after an account phrase ("账号", "account number").

Domestic account numbers carry no universal checksum, so the phrase is the validation; card
and IBAN detectors run first and claim numbers they can validate by checksum. A number after a
card's phrase that fails the card checksum (a typo in one digit) is still the customer's
account data, so it is reported here.
"""

from __future__ import annotations

from .context import context_rule

CONTEXT_RULE = context_rule(
    "bank_account",
    "bank_account.context",
    (
        "account number",
        "account no",
        "acct no",
        "acct",
        "a/c",
        "bank account",
        "账号",
        "帐号",
        "账户",
        "帐户",
        "银行账户",
        "收款账户",
        "卡号",
        "银行卡号",
        "银行卡",
        "储蓄卡",
        "借记卡",
        "工资卡",
        "收款卡",
        "card number",
        "card no",
        "card #",
        "debit card",
        "bank card",
    ),
    r"[^0-9a-z\n]{0,12}+(?:(?:is|was)[^0-9a-z\n]{0,4}+)?+",
    r"(?<![0-9])[0-9](?:[ \-]?+[0-9]){7,33}+(?![0-9])",
)
