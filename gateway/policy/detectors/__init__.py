"""Personal-data detectors, one module per family, all behind the ``Detector`` protocol."""

from __future__ import annotations

from .address import AddressDetector
from .bank_account import BankAccountDetector
from .base import Detector, Hit, ScanContext
from .card import CardCodeDetector, CardDetector, is_card_number
from .cn_id import CnIdDetector, LegacyCnIdDetector, is_cn_id
from .email import EmailDetector
from .iban import IbanDetector
from .id_document import IdDocumentDetector
from .names import NameDetector
from .phone import PhoneDetector
from .secrets import SecretsDetector


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
