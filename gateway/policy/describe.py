"""The effective per-kind table an admin sees: action per sender, and what each audience gets.

Why: the defaults differ per kind and audience (an agent sees a phone number, the helpdesk
gets ``138****5678``, logs get nothing), and a tenant overrides some of them; the admin page
shows the result of both, computed by the same ``PolicyConfig`` the engine uses.
"""

from __future__ import annotations

from typing import Any

from .config import AUDIENCE_MASKS, PolicyConfig

DETECTOR_KINDS = (
    "card",
    "cn_id",
    "iban",
    "bank_account",
    "id_document",
    "phone",
    "im_account",
    "birth_date",
    "vehicle_plate",
    "email",
    "name",
    "address",
    "otp",
    "password",
    "api_key",
    "private_key",
    "link",
    "link_external",
    "link_homoglyph",
)


def effective_table(config: PolicyConfig) -> list[dict[str, Any]]:
    """One row per kind: ``customer``/``agent`` actions, ``mask`` style, ``plugin`` and
    ``export`` rules with their mask style; ``log`` is always ``never``."""
    kinds = list(DETECTOR_KINDS)
    kinds += sorted(k for k in config.actions if k not in DETECTOR_KINDS)
    rows = []
    for kind in kinds:
        rows.append(
            {
                "kind": kind,
                "customer": config.action_for(kind, "customer"),
                "agent": config.action_for(kind, "agent"),
                "mask": config.mask_for(kind),
                "plugin": config.audience_rule(kind, "plugin"),
                "export": config.audience_rule(kind, "export"),
                "audience_mask": AUDIENCE_MASKS.get(kind, config.mask_for(kind)),
                "log": "never",
            }
        )
    return rows
