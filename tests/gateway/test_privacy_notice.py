"""Privacy notice and consent (issue 15.3) over real HTTP and websockets, on SQLite and
PostgreSQL.

A tenant admin publishes versioned notices; the widget reads the current one from a
public endpoint; when consent is required the gateway itself refuses customer messages
until the customer accepted the current version. The consent is stored sealed with the
chat, reported on resume, exported, and erased with the chat.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import Ack, Error
from gateway.sdk.client import CustomerClient, ServerError
from gateway.services import Services
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

ZH = "我们仅为回答您的问题处理聊天内容，保存 90 天。"
EN = "We process this chat only to answer your question and keep it for 90 days."


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _admin(http, base: str, svc: Services, clock: FakeClock, role: str = "admin"):
    email = f"{role}@example.com"
    _, secret, pw = await make_agent(svc, email, role=role)
    return bearer(await login(http, base, email, pw, secret, clock.now))


async def _publish(http, base, headers, texts, required=True) -> tuple[int, dict]:
    async with http.put(
        f"{base}/api/tenant/privacy-notice",
        headers=headers,
        json={"texts": texts, "required": required},
    ) as r:
        return r.status, await r.json()


def _customer(base: str, svc: Services) -> CustomerClient:
    return CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)


async def test_versions_are_published_listed_and_served_publicly(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    async with http.get(f"{base}/api/public/notice/demo") as r:
        assert r.status == 200 and await r.json() == {"version": 0, "required": False, "texts": {}}
    status, first = await _publish(http, base, admin, {"zh-CN": ZH}, required=False)
    assert status == 200 and first["version"] == 1
    clock.now += 60
    status, second = await _publish(http, base, admin, {"zh-CN": ZH, "en": f"  {EN}\r\n"})
    assert status == 200
    assert (second["version"], second["required"]) == (2, True)
    assert second["texts"] == {"zh-CN": ZH, "en": EN}  # trimmed, line ends normalised

    async with http.get(f"{base}/api/tenant/privacy-notice", headers=admin) as r:
        listed = await r.json()
    assert listed["current"]["version"] == 2
    assert [(v["version"], v["languages"]) for v in listed["versions"]] == [
        (2, ["zh-CN", "en"]),
        (1, ["zh-CN"]),
    ]
    async with http.get(f"{base}/api/public/notice/demo") as r:
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["Cache-Control"] == "public, max-age=30"
        assert await r.json() == {"version": 2, "required": True, "texts": {"zh-CN": ZH, "en": EN}}
    async with http.get(f"{base}/api/public/notice/nosuchtenant") as r:
        assert r.status == 404
    async with http.get(f"{base}/api/public/notice/..%2f..%2fetc") as r:
        assert r.status == 404

    events = await svc.store.query_audit(tenant_id="demo", action="notice.published")
    assert [e.target for e in events] == ["v2", "v1"]
    assert all(ZH not in str(e.details) and EN not in str(e.details) for e in events)


@pytest.mark.parametrize(
    ("texts", "field_error"),
    [
        ({"fr": "Bonjour"}, "unknown language"),
        ({"zh-TW": "只有繁體"}, "Chinese or English at least"),
        ({"en": "   "}, "Chinese or English at least"),
        ({"en": "reads \u202ereversed"}, "control characters"),
        ({"en": "x" * 8001}, "over 8000"),
    ],
)
async def test_bad_notices_are_refused_with_a_clear_error(gw, texts, field_error) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    status, body = await _publish(http, base, admin, texts)
    assert status == 400
    assert body["error"]["code"] == "invalid_notice"
    assert field_error in body["error"]["message"]
    async with http.get(f"{base}/api/public/notice/demo") as r:
        assert (await r.json())["version"] == 0  # nothing was published


async def test_only_tenant_admins_publish(gw) -> None:
    http, base, svc, clock = gw
    supervisor = await _admin(http, base, svc, clock, role="supervisor")
    status, _ = await _publish(http, base, supervisor, {"en": EN})
    assert status == 403


async def test_required_consent_is_enforced_by_the_gateway(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    await _publish(http, base, admin, {"zh-CN": ZH, "en": EN}, required=True)
    customer = _customer(base, svc)
    await customer.connect()
    try:
        welcome = await customer.open(profile={"name": "Lin"})
        assert welcome.consent is None
        with pytest.raises(ServerError) as refused:
            await customer.send_text("hello before consent", "m1")
        assert (refused.value.code, refused.value.ref) == ("consent_required", "m1")

        await customer.consent(7)  # not the current version: refused, nothing recorded
        outdated = await customer.wait_for(Error, timeout=5)
        assert outdated.code == "notice_outdated"
        with pytest.raises(ServerError) as still:
            await customer.send_text("still refused", "m2")
        assert still.value.code == "consent_required"

        await customer.consent(1)
        assert isinstance(await customer.send_text("hello after consent", "m3"), Ack)
        chat = await svc.store.get_chat(welcome.chat)
        assert chat is not None and chat.consent_sealed is not None
        assert b"version" not in chat.consent_sealed  # sealed, not readable in the store
        consent = await svc.chats.consent_of(chat)
        assert consent is not None and (consent.version, consent.at) == (1, clock.now)
        stored = await svc.chats.messages(chat.id, 0)
        assert [m.id for m in stored] == ["m3"]  # the refused messages were never stored

        resumed = await customer.reconnect()
        assert resumed is not None and resumed.consent == 1

        export = await svc.chats.export_customer(
            "demo", "chat_token", welcome.token or "", actor="test"
        )
        assert export.as_json()["chats"][0]["consent"] == {"notice_version": 1, "at": clock.now}

        assert await svc.store.erase_chat(chat.id)
        erased = await svc.store.get_chat(chat.id)
        assert erased is not None and erased.consent_sealed is None
    finally:
        await customer.aclose()


async def test_a_notice_that_is_not_required_does_not_block(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    await _publish(http, base, admin, {"en": EN}, required=False)
    customer = _customer(base, svc)
    await customer.connect()
    try:
        await customer.open()
        assert isinstance(await customer.send_text("hi", "m1"), Ack)
    finally:
        await customer.aclose()
