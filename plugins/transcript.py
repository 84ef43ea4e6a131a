"""The one transcript formatter shared by every ticketing plugin (Zendesk, Freshdesk...).

Input is already masked by the policy pipeline; this only lays it out. Plain text, one
line per message, UTC timestamps, so it reads the same in any helpdesk.
"""

from __future__ import annotations

from datetime import UTC, datetime

from plugins.api import ChatClosed, Event, TranscriptLine

_SENDER = {"customer": "Customer", "agent": "Agent", "system": "System"}


def _ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(line: TranscriptLine) -> str:
    """The masked text; an end-to-end message the gateway could not read is named as such
    (with its size), so the helpdesk shows that a message was there."""
    if line.e2e and not line.released:
        size = f", {line.size} bytes" if line.size is not None else ""
        return f"[end-to-end encrypted{size}]"
    return line.text


def ticket_subject(event: Event, *, prefix: str = "Chat") -> str:
    """A short subject line; carries no chat text, only metadata."""
    return f"{prefix} {event.chat_id} ({_ts(event.occurred_at)[:10]})"


def format_transcript(event: ChatClosed, *, max_chars: int = 60_000) -> str:
    """Header (chat id, close time, reason, CSAT, queue time) + masked lines.

    Long transcripts are cut at ``max_chars`` with a note (helpdesks reject huge comments).
    """
    head = [f"cipherdesk chat {event.chat_id} — closed {_ts(event.occurred_at)}"]
    if event.close_reason:
        head.append(f"Close reason: {event.close_reason}")
    if event.csat is not None:
        head.append(f"CSAT: {event.csat}/5")
    if event.queue_seconds is not None:
        head.append(f"Queue time: {round(event.queue_seconds)} s")
    if event.consent is not None:
        when = _ts(event.consent.at)
        head.append(f"Privacy notice: version {event.consent.notice_version} accepted {when}")
    head.append("")
    lines = [
        f"[{_ts(line.ts)}] {_SENDER.get(line.sender, line.sender)} #{line.seq}: {_text(line)}"
        for line in sorted(event.transcript, key=lambda x: x.seq)
    ]
    if not lines:
        lines = ["(no messages)"]
    text = "\n".join(head + lines)
    if len(text) > max_chars:
        note = "\n[transcript truncated]"
        text = text[: max_chars - len(note)] + note
    return text


def as_html(text: str) -> str:
    """Plain text → minimal HTML (escaped, line breaks kept) for HTML-bodied APIs."""
    import html

    return "<br>\n".join(html.escape(line) for line in text.split("\n"))
