"""Personal-data detectors, one module per family, all behind the ``Detector`` protocol."""

from __future__ import annotations

from .address import AddressDetector
from .bank_account import CONTEXT_RULE as _BANK_ACCOUNT_RULE
from .bank_account import BankAccountDetector
from .base import Detector, Hit, ScanContext
from .card import CVV_CONTEXT_RULE, CardCodeDetector, CardDetector, is_card_number
from .cn_id import LEGACY_RULE, CnIdDetector, LegacyCnIdDetector, is_cn_id
from .context import ContextRule
from .email import EmailDetector
from .iban import IbanDetector
from .id_document import RULE as _ID_DOCUMENT_RULE
from .id_document import IdDocumentDetector
from .names import NameDetector
from .phone import PhoneDetector
from .secrets import CONTEXT_RULES as _SECRET_RULES
from .secrets import SecretsDetector

CONTEXT_RULES: tuple[ContextRule, ...] = (
    *_SECRET_RULES,
    CVV_CONTEXT_RULE,
    LEGACY_RULE,
    _ID_DOCUMENT_RULE,
    _BANK_ACCOUNT_RULE,
)
"""Every rule that finds a value by the phrase before it: a question naming one of these
phrases makes the answer's value findable too (``split.AskedWindow``)."""


def default_detectors(phone_regions: tuple[str, ...] = ("CN",)) -> tuple[Detector, ...]:
    """The built-in detectors in priority order: when two claim the same characters, the one
    listed first wins (an 18-digit number that is a valid ID is not also reported as a card).
    """
    return (
        SecretsDetector(),
        CnIdDetector(),
        LegacyCnIdDetector(),
        CardDetector(),
        CardCodeDetector(),
        IbanDetector(),
        IdDocumentDetector(),  # before accounts: a 社保卡号 is a document, not a bank card
        BankAccountDetector(),
        PhoneDetector(phone_regions),
        EmailDetector(),
        AddressDetector(),
        NameDetector(),
    )


__all__ = [
    "CONTEXT_RULES",
    "AddressDetector",
    "BankAccountDetector",
    "CardCodeDetector",
    "CardDetector",
    "CnIdDetector",
    "Detector",
    "EmailDetector",
    "Hit",
    "IbanDetector",
    "IdDocumentDetector",
    "LegacyCnIdDetector",
    "NameDetector",
    "PhoneDetector",
    "ScanContext",
    "SecretsDetector",
    "default_detectors",
    "is_card_number",
    "is_cn_id",
]
