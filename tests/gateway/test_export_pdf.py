"""Customer exports as PDF (issue 15.2): the document is read back with pypdf, so what is
asserted is what a reader's viewer extracts -- Chinese and English labels, masked data
only, hostile message text as text, times in the reader's zone -- and the two routes that
offer it (admin and widget) validate ``format``, ``lang`` and ``tz``."""

from __future__ import annotations

import io
import uuid
import zoneinfo
from pathlib import Path

import aiohttp
import pytest
from pypdf import PdfReader

from auth.identity import sign_identity
from auth.roles import Principal, Role
from gateway.chats import CustomerExport, ExportedChat, ExportedMessage
from gateway.export_pdf import format_time, render_export_pdf
from gateway.notices import Consent
from gateway.protocol import Profile
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
T = 1_796_000_000.0  # 2026-11-30 00:53:20 UTC = 08:53 in Shanghai
SECRET = "shop-identity-secret-" + "p" * 24
ORIGIN = "https://shop.example"


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _export(*messages: ExportedMessage, consent: Consent | None = None) -> CustomerExport:
    chat = ExportedChat(
        id="c1",
        created_at=T,
        closed_at=T + 60,
        state="closed",
        close_reason="agent_closed",
        consent=consent,
        customer=None,
        messages=list(messages),
    )
    return CustomerExport(chats=[chat], truncated=False)


def test_a_chinese_pdf_reads_back_in_chinese_with_local_times() -> None:
    export = _export(
        ExportedMessage(1, "customer", T, "我的电话是 138****8000"),
        ExportedMessage(2, "agent", T + 30, "好的，已记录"),
        ExportedMessage(3, "customer", T + 40, "", e2e=True),
        consent=Consent(version=3, at=T - 5),
    )
    pdf = render_export_pdf(export, lang="zh-CN", zone=SHANGHAI, generated_at=T + 3600)
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    for needle in (
        "我的会话记录",
        "共 1 个会话",
        "2026年11月30日 08:53 的会话",
        "已于 2026年11月30日 08:53 同意第 3 版隐私声明",
        "您 · 2026年11月30日 08:53",
        "我的电话是 138****8000",
        "客服 · 2026年11月30日 08:53",
        "好的，已记录",
        "端到端加密：聊天服务无法读取或导出此消息",
        "Asia/Shanghai",
    ):
        assert needle in text, (needle, text)
    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None and meta.title == "我的会话记录"


def test_an_english_pdf_and_hostile_text_stays_text() -> None:
    hostile = 'see <font size="40">this</font> & <img src="file:///etc/passwd"/> \x07bell\u202e'
    export = _export(ExportedMessage(1, "customer", T, hostile))
    pdf = render_export_pdf(export, lang="en", zone=zoneinfo.ZoneInfo("UTC"), generated_at=T)
    text = _text(pdf)
    assert "My conversations" in text and "1 conversation, as the company keeps it" in text
    assert "Conversation of 30 Nov 2026, 00:53" in text and "You · 30 Nov 2026, 00:53" in text
    # The markup is shown as typed, not interpreted (no image loaded, no font change).
    assert '<font size="40">this</font> & <img src="file:///etc/passwd"/>' in text
    assert b"/etc/passwd" not in pdf.split(b"stream")[0]  # not an XObject or link
    assert "\x07" not in text and "\u202e" not in text


def test_time_formats() -> None:
    utc = zoneinfo.ZoneInfo("UTC")
    assert format_time(0, "en", utc) == "1 Jan 1970, 00:00"
    assert format_time(0, "zh-CN", SHANGHAI) == "1970年1月1日 08:00"
    assert format_time(0, "zh-TW", SHANGHAI) == "1970年1月1日 08:00"


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock(T)
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        email = "root@example.com"
        _, secret, pw = await make_agent(svc, email, role="admin")
        admin = bearer(await login(http, base, email, pw, secret, clock.now))
        settings = {
            "identity_mode": "optional",
            "identity_secrets": [SECRET],
            "allowed_origins": [ORIGIN],
        }
        async with http.patch(f"{base}/api/tenant", json=settings, headers=admin) as r:
            assert r.status == 200, await r.text()
        yield http, base, svc, clock, admin
    await runner.cleanup()


async def test_the_admin_and_the_widget_get_a_pdf(gw) -> None:
    http, base, svc, clock, admin = gw
    agent, _, _ = await make_agent(svc, "ag@example.com")
    who = Principal(agent_id=agent.id, tenant_id="demo", role=Role.AGENT)
    claims = {"sub": "u-7", "exp": int(clock.now) + 60, "nonce": uuid.uuid4().hex}
    opened = await svc.chats.open_chat(
        "demo",
        profile=Profile(name="Ann", email="ann@example.com"),
        identity_token=sign_identity(SECRET, claims),
    )
    await svc.chats.accept(who, opened.chat.id)
    await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "call 13800138000")
    await svc.chats.close(opened.chat.id, "demo", by="agent", principal=who)

    url = f"{base}/api/customers/export"
    async with http.post(
        url + "?format=pdf&lang=zh-CN&tz=Asia/Shanghai", headers=admin, json={"sub": "u-7"}
    ) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "application/pdf"
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Content-Disposition"] == 'attachment; filename="chats-2026-11-30.pdf"'
        text = _text(await r.read())
    assert "我的会话记录" in text and "call 138****8000" in text and "13800138000" not in text
    for query, field in (("format=xml", "format"), ("format=pdf&tz=../../etc/passwd", "tz")):
        async with http.post(f"{url}?{query}", headers=admin, json={"sub": "u-7"}) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"], body["error"]["field"]) == (
                400,
                "bad_request",
                field,
            )
    # The language falls back to the reader's Accept-Language.
    headers = {**admin, "Accept-Language": "en-GB,en;q=0.8"}
    async with http.post(f"{url}?format=pdf", headers=headers, json={"sub": "u-7"}) as r:
        assert "My conversations" in _text(await r.read())

    claims = {"sub": "u-7", "exp": int(clock.now) + 60, "nonce": uuid.uuid4().hex}
    async with http.post(
        f"{base}/api/public/export/demo?format=pdf&lang=en&tz=UTC",
        json={"identity": sign_identity(SECRET, claims)},
        headers={"Origin": ORIGIN},
    ) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        text = _text(await r.read())
    assert "You · " in text and "call 138****8000" in text
    audit = await svc.store.query_audit(action="customer.exported", limit=10)
    assert [e.actor for e in audit].count("customer") == 1
