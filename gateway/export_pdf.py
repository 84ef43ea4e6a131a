"""A customer export as a PDF (issue 15.2, right of access): what the customer can keep,
print or hand to a regulator, in their language.

Rendered with ReportLab (a maintained PDF library) from the same masked
:class:`~gateway.chats.CustomerExport` the JSON answer carries, so the PDF can never show
more than the export audience may see. The text uses Adobe's ``STSong-Light`` CID font,
which ReportLab references without embedding (every PDF viewer ships it): Latin and
Chinese (Simplified and Traditional, GB 18030) render with no font file on the server and
the file stays small. Characters outside it (emoji, other scripts) show as the viewer's
missing-glyph box; the text layer still holds them, so copy and search work.

Everything the customer or an agent typed is hostile text: it is XML-escaped before it
reaches ReportLab's paragraph markup and control characters are dropped, so a message
cannot add markup, links or images to the document.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zoneinfo
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from gateway.chats import CustomerExport, ExportedChat
from gateway.i18n import translate, translate_count

__all__ = ["FONT", "render_export_pdf"]

FONT = "STSong-Light"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0/C1 controls (newline and tab kept) and bidi overrides: never rendered."""

pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _styles(lang: str) -> dict[str, ParagraphStyle]:
    # CJK wrapping breaks lines between any two ideographs; Latin text wraps at spaces.
    wrap = "CJK" if lang.startswith("zh") else None
    base = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=15, wordWrap=wrap)
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=24, spaceAfter=6),
        "intro": ParagraphStyle("intro", parent=base, textColor=colors.HexColor("#444444")),
        "chat": ParagraphStyle("chat", parent=base, fontSize=13, leading=18, spaceBefore=10),
        "meta": ParagraphStyle(
            "meta", parent=base, fontSize=9, textColor=colors.HexColor("#555555")
        ),
        "who": ParagraphStyle(
            "who", parent=base, fontSize=9, textColor=colors.HexColor("#1f3a8a"), spaceBefore=5
        ),
        "text": base,
    }


def _markup(text: str) -> str:
    """Plain text as ReportLab paragraph markup: escaped, controls dropped, newlines kept."""
    clean = _CONTROL.sub("", text)
    return escape(clean).replace("\n", "<br/>")


def format_time(ts: float, lang: str, zone: zoneinfo.ZoneInfo) -> str:
    """A date and time the reader's way: ``2026年12月4日 09:31`` or ``4 Dec 2026, 09:31``.

    Written by hand (two patterns) rather than adding Babel for them; the month names are
    fixed English abbreviations, independent of the server's C locale."""
    moment = dt.datetime.fromtimestamp(ts, zone)
    if lang.startswith("zh"):
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"
    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[moment.month - 1]
    return f"{moment.day} {month} {moment.year}, {moment:%H:%M}"


def _chat(chat: ExportedChat, lang: str, zone: zoneinfo.ZoneInfo, styles: dict) -> list:
    when = format_time(chat.created_at, lang, zone)
    flow: list = [
        Paragraph(_markup(translate(lang, "widget.export.chat_heading", date=when)), styles["chat"])
    ]
    if chat.consent is not None:
        consent = translate(
            lang,
            "widget.export.consent",
            version=str(chat.consent.version),
            date=format_time(chat.consent.at, lang, zone),
        )
        flow.append(Paragraph(_markup(consent), styles["meta"]))
    for message in chat.messages:
        sender = translate(lang, f"widget.export.sender.{message.sender}")
        flow.append(
            Paragraph(_markup(f"{sender} · {format_time(message.ts, lang, zone)}"), styles["who"])
        )
        body = translate(lang, "widget.export.e2e_message") if message.e2e else message.text
        flow.append(Paragraph(_markup(body), styles["text"]))
    return flow


def render_export_pdf(
    export: CustomerExport, *, lang: str, zone: zoneinfo.ZoneInfo, generated_at: float
) -> bytes:
    """The export as a PDF document (A4), labelled in ``lang``, times in ``zone``.

    CPU-bound (a few milliseconds per chat): call it off the event loop."""
    styles = _styles(lang)
    title = translate(lang, "widget.export.doc_title")
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="cipherdesk",
        creator="cipherdesk",
        lang=lang,
    )
    count = len(export.chats)
    flow: list = [
        Paragraph(_markup(title), styles["title"]),
        Paragraph(
            _markup(translate_count(lang, "widget.export.doc_intro", count)), styles["intro"]
        ),
        Paragraph(
            _markup(
                translate(
                    lang,
                    "widget.export.generated",
                    date=format_time(generated_at, lang, zone),
                    zone=zone.key,
                )
            ),
            styles["meta"],
        ),
    ]
    if export.truncated:
        flow.append(Paragraph(_markup(translate(lang, "widget.export.truncated")), styles["meta"]))
    for chat in export.chats:
        flow.append(Spacer(1, 4 * mm))
        flow += _chat(chat, lang, zone, styles)
    doc.build(flow)
    return out.getvalue()
