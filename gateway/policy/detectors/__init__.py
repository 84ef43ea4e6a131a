"""Personal-data detectors, one module per family, all behind the ``Detector`` protocol."""

from __future__ import annotations

from .address import AddressDetector
from .bank_account import CONTEXT_RULE as BANK_ACCOUNT_RULE
from .base import Detector, Hit, ScanContext
from .birth_date import RULE as BIRTH_DATE_RULE
from .card import (
    CVV_CONTEXT_RULE,
    HIDDEN_CARD_RULES,
    CardDetector,
    CardExpiryDetector,
    is_card_number,
)
from .cn_id import LEGACY_RULE, MISTYPED_RULE, CnIdDetector, is_cn_id
from .context import ContextRule, ContextRuleDetector
from .email import EmailDetector
from .iban import IbanDetector
from .id_document import RULE as ID_DOCUMENT_RULE
from .id_document import HkidDetector, SsnDetector
from .im_account import RULE as IM_ACCOUNT_RULE
from .names import GIVEN_NAME_RULE, NameDetector
from .parts import PARTS_RULE, NumberPartsDetector
from .phone import CUE_RULE as PHONE_CUE_RULE
from .phone import PhoneDetector
from .secrets import CONTEXT_RULES as _SECRET_RULES
from .secrets import SecretsDetector
from .vehicle_plate import GATE_PHRASES as PLATE_GATE_PHRASES
from .vehicle_plate import RULE as VEHICLE_PLATE_RULE

CONTEXT_RULES: tuple[ContextRule, ...] = (
    *_SECRET_RULES,
    CVV_CONTEXT_RULE,
    LEGACY_RULE,
    MISTYPED_RULE,
    ID_DOCUMENT_RULE,
    BANK_ACCOUNT_RULE,
    PHONE_CUE_RULE,
    IM_ACCOUNT_RULE,
    BIRTH_DATE_RULE,
)
"""Every rule that finds a value by the phrase before it: a question naming one of these
phrases makes the answer's value findable too (``split.SplitWindow``). Not the plate's: its
phrases are province characters ("北京" asks for nothing)."""

HIDDEN_RULES = frozenset({*HIDDEN_CARD_RULES, GIVEN_NAME_RULE, PARTS_RULE})
"""Findings masked whole whatever their kind's style (a security code, an expiry date, a
given name said alone, each part of a number given in two): the part a style keeps would
be all of it, or the part that names."""


def default_detectors(phone_regions: tuple[str, ...] = ("CN",)) -> tuple[Detector, ...]:
    """The built-in detectors in priority order: when two claim the same characters, the one
    listed first wins (an 18-digit number that is a valid ID is not also reported as a card;
    a 社保卡号 is an identity document, not a bank account)."""
    return (
        SecretsDetector(),
        CnIdDetector(),
        ContextRuleDetector(LEGACY_RULE),
        ContextRuleDetector(MISTYPED_RULE),
        CardDetector(),
        ContextRuleDetector(CVV_CONTEXT_RULE),
        CardExpiryDetector(),
        IbanDetector(),
        HkidDetector(),
        SsnDetector(),
        ContextRuleDetector(ID_DOCUMENT_RULE),
        ContextRuleDetector(BANK_ACCOUNT_RULE),
        PhoneDetector(phone_regions),
        ContextRuleDetector(PHONE_CUE_RULE),  # another region's number after a phone cue
        NumberPartsDetector(),  # "尾号5678，前七位1380013": where no part is a number alone
        ContextRuleDetector(IM_ACCOUNT_RULE),  # after phones: "微信 138…" is a phone number
        EmailDetector(),
        AddressDetector(),
        NameDetector(),
        # last: a browser bundle older than a rule runs it after its own detectors (policy.js
        # runs a document's unknown rules last), so both engines resolve an overlap alike
        ContextRuleDetector(BIRTH_DATE_RULE),
        ContextRuleDetector(VEHICLE_PLATE_RULE, PLATE_GATE_PHRASES),
    )


__all__ = [
    "BANK_ACCOUNT_RULE",
    "BIRTH_DATE_RULE",
    "CONTEXT_RULES",
    "CVV_CONTEXT_RULE",
    "HIDDEN_RULES",
    "ID_DOCUMENT_RULE",
    "IM_ACCOUNT_RULE",
    "LEGACY_RULE",
    "PARTS_RULE",
    "PHONE_CUE_RULE",
    "VEHICLE_PLATE_RULE",
    "AddressDetector",
    "CardDetector",
    "CardExpiryDetector",
    "CnIdDetector",
    "ContextRuleDetector",
    "Detector",
    "EmailDetector",
    "Hit",
    "HkidDetector",
    "IbanDetector",
    "NameDetector",
    "PhoneDetector",
    "ScanContext",
    "SecretsDetector",
    "SsnDetector",
    "default_detectors",
    "is_card_number",
    "is_cn_id",
]
