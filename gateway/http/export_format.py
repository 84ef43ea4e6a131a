"""How a customer export is answered: JSON (the default) or a PDF (``?format=pdf``).

Shared by the admin's ``POST /api/customers/export`` and the widget's
``POST /api/public/export/{tenant_id}`` so both offer the same formats with the same
validation: ``format`` is ``json`` or ``pdf``, ``lang`` a supported language (else the
``Accept-Language`` header's), ``tz`` an IANA zone for the PDF's times (default UTC).
Every answer is ``Cache-Control: no-store``; the PDF is an attachment named by date.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from gateway.chats import CustomerExport
from gateway.export_pdf import render_export_pdf
from gateway.http.plumbing import time_zone
from gateway.http.public import ApiError
from gateway.i18n import pick_language
from gateway.services import Services

FORMATS = ("json", "pdf")


def export_format(request: web.Request, headers: dict[str, str]) -> str:
    """The asked-for format; 400 ``bad_request`` (with ``headers``) for anything else."""
    wanted = request.query.get("format", "json")
    if wanted not in FORMATS:
        raise ApiError(400, "bad_request", "format is json or pdf", headers=headers, field="format")
    return wanted


async def export_response(
    request: web.Request,
    svc: Services,
    export: CustomerExport,
    wanted: str,
    headers: dict[str, str],
) -> web.Response:
    """``export`` in the ``wanted`` format (see :func:`export_format`)."""
    headers = {**headers, "Cache-Control": "no-store"}
    if wanted == "json":
        return web.json_response(export.as_json(), headers=headers)
    zone = time_zone(request.query.get("tz"), headers=headers)
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    now = svc.clock()
    pdf = await asyncio.to_thread(render_export_pdf, export, lang=lang, zone=zone, generated_at=now)
    day = dt.datetime.fromtimestamp(now, zone).date().isoformat()
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={**headers, "Content-Disposition": f'attachment; filename="chats-{day}.pdf"'},
    )
