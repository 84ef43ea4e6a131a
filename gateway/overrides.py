"""Tenant setting overrides decoded once: a msgspec Struct of optional fields (retention
classes, service-quality targets) checked and reduced to the fields actually set."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def set_fields(raw: Any, kind: type[S], label: str) -> dict[str, Any]:
    """``raw`` (the decoded body's struct, or plain data from stored settings) as a
    ``kind``, reduced to its non-null fields: what a tenant's settings store. Raises
    ValueError naming ``label`` and the offending field."""
    try:
        parsed = raw if isinstance(raw, kind) else msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return {
        name: value
        for name in kind.__struct_fields__
        if (value := getattr(parsed, name)) is not None
    }
