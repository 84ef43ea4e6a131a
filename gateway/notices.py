"""A tenant's privacy notice and the customers' consent to it (issue 15.3).

Why here: China's PIPL (Art. 14, 17) and GDPR (Art. 13) ask that people be told, before
their data is collected, who processes it and why, and — where the processing rests on
consent — that the consent be recorded. The widget shows the tenant's notice before the
first message; when the tenant requires consent, the gateway itself refuses customer
messages (``consent_required``) until the customer accepted the current version, so a
modified widget cannot skip it. The accepted version and time are stored sealed with the
chat (erased with it) and travel with exports and plugin transcripts.

Notices are versioned and immutable: publishing a change makes a new version, so the
version recorded with a chat keeps naming the text the customer saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.audit import Auditor
from gateway.store.base import Conflict, PrivacyNotice, Store

LANGUAGES = ("zh-CN", "en", "zh-TW")
"""Languages a notice can be written in (those of the widget)."""

MAX_TEXT_CHARS = 8000
"""Longest notice text in one language."""

CACHE_SECONDS = 2.0
"""How long a node trusts its copy of a tenant's current notice (as the tenant cache)."""

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
"""Control characters and bidi overrides: a notice must read as it is stored."""


class NoticeError(ValueError):
    """A notice that cannot be published; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Consent:
    """What is stored (sealed) with a chat: the version accepted and when."""

    version: int
    at: float


def clean_texts(texts: dict[str, str]) -> dict[str, str]:
    """Validated, trimmed texts: known languages only, zh-CN or en present, bounded, no
    control or bidi characters; :class:`NoticeError` otherwise."""
    unknown = sorted(set(texts) - set(LANGUAGES))
    if unknown:
        raise NoticeError("invalid_notice", f"unknown language {unknown[0][:20]!r}")
    cleaned = {}
    for lang in LANGUAGES:
        text = texts.get(lang, "").replace("\r\n", "\n").strip()
        if not text:
            continue
        if len(text) > MAX_TEXT_CHARS:
            raise NoticeError("invalid_notice", f"the {lang} text is over {MAX_TEXT_CHARS} chars")
        if _FORBIDDEN.search(text):
            raise NoticeError("invalid_notice", f"the {lang} text has control characters")
        cleaned[lang] = text
    if "zh-CN" not in cleaned and "en" not in cleaned:
        raise NoticeError("invalid_notice", "write the notice in Chinese or English at least")
    return cleaned


class NoticeBook:
    """Publishes notice versions and answers "which notice applies now" (cached briefly:
    every customer message of a tenant that requires consent asks)."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clock: Callable[[], float],
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._clock = clock
        self._cache_clock = cache_clock
        self._cache: dict[str, tuple[float, PrivacyNotice | None]] = {}

    async def current(self, tenant_id: str) -> PrivacyNotice | None:
        """The tenant's newest notice version, or None when it has none."""
        now = self._cache_clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        versions = await self._store.privacy_notices(tenant_id, limit=1)
        notice = versions[0] if versions else None
        self._cache[tenant_id] = (now, notice)
        return notice

    def forget(self, tenant_id: str) -> None:
        """Drop the cached copy (a client names a newer version than this node knows)."""
        self._cache.pop(tenant_id, None)

    async def versions(self, tenant_id: str) -> list[PrivacyNotice]:
        """Every version, newest first (at most 50)."""
        return await self._store.privacy_notices(tenant_id)

    async def publish(
        self, tenant_id: str, texts: dict[str, str], required: bool, *, actor: str, ip: str
    ) -> PrivacyNotice:
        """A new version with these texts; audited (``notice.published``, no text)."""
        cleaned = clean_texts(texts)
        for _ in range(3):  # two admins publishing at once: the loser takes the next number
            latest = await self._store.privacy_notices(tenant_id, limit=1)
            notice = PrivacyNotice(
                tenant_id=tenant_id,
                version=(latest[0].version + 1) if latest else 1,
                required=required,
                texts=cleaned,
                created_by=actor,
                created_at=self._clock(),
            )
            try:
                await self._store.add_privacy_notice(notice)
            except Conflict:
                continue
            break
        else:
            raise NoticeError("conflict", "the notice changed meanwhile; try again")
        self._cache.pop(tenant_id, None)
        await self._auditor.record(
            "notice.published",
            tenant_id=tenant_id,
            actor=actor,
            target=f"v{notice.version}",
            ip=ip,
            required=required,
            languages=sorted(cleaned),
        )
        return notice
