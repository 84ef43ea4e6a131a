"""Alert notifications against local servers: a signed webhook receiver, a DingTalk
custom-robot fake that checks the documented "加签" signature and answers like DingTalk,
and a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import email
import hashlib
import hmac
import time
from email.policy import default as default_policy
from urllib.parse import unquote_plus

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from gateway.notify.dingtalk import dingtalk_sign
from plugins.webhook import SIGNATURE_HEADER, verify_signature
from tests.gateway.helpers import FakeClock, bearer, free_port, login, make_agent, start_gateway

WEBHOOK_SECRET = "whsec-0123456789abcdef"
ROBOT_TOKEN = "a1b2c3d4e5f6"
ROBOT_SECRET = "SEC0123456789abcdef0123456789abcdef"


class DingTalkFake:
    """Answers like https://oapi.dingtalk.com/robot/send (custom robot, 加签 mode):
    HTTP 200 always; ``errcode`` 0 on success, 300001 for an unknown access_token,
    310000 when the timestamp is more than an hour off or the sign does not match
    (https://open.dingtalk.com/document/robots/customize-robot-security-settings)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.messages: list[dict] = []
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("access_token") != ROBOT_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        try:
            ts = int(q["timestamp"])
        except (KeyError, ValueError):
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        string_to_sign = f"{ts}\n{ROBOT_SECRET}".encode()
        expected = base64.b64encode(
            hmac.new(ROBOT_SECRET.encode(), string_to_sign, hashlib.sha256).digest()
        ).decode()
        # aiohttp already URL-decoded the query once, as DingTalk's server does.
        if abs(ts - self.clock() * 1000) > 3600_000 or q.get("sign") != expected:
            return web.json_response(
                {
                    "errcode": 310000,
                    "errmsg": "sign not match, more: "
                    "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
                }
            )
        body = await request.json()
        if body.get("msgtype") != "markdown" or not body["markdown"].get("text"):
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        self.messages.append(body)
        self.got.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.got = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        self.loop.call_soon_threadsafe(self.got.set)
        return "250 OK"


@pytest.fixture
async def receivers():
    clock = FakeClock()
    hooks: list[tuple[bytes, str]] = []
    hook_got = asyncio.Event()

    async def webhook(request: web.Request) -> web.Response:
        hooks.append((await request.read(), request.headers.get(SIGNATURE_HEADER, "")))
        hook_got.set()
        return web.Response(status=204)

    ding = DingTalkFake(clock)
    app = web.Application()
    app.router.add_post("/hook", webhook)
    app.router.add_post("/robot/send", ding.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        yield clock, port, hooks, hook_got, ding, mailbox, smtp
    finally:
        smtp.stop()
        await runner.cleanup()


async def _configure_channels(svc, base, clock, notify: dict) -> None:
    """An admin stores ``notify`` channel settings through the API."""
    async with aiohttp.ClientSession() as http:
        _, secret, pw = await make_agent(svc, "boss@example.com", role="admin")
        token = await login(http, base, "boss@example.com", pw, secret, clock.now)
        async with http.put(
            f"{base}/api/governance/settings", headers=bearer(token), json={"notify": notify}
        ) as r:
            assert r.status == 200, await r.text()


async def _open_twenty_transcripts(svc) -> None:
    """Trips the bulk-transcript-access rule (20 in a minute by default)."""
    for i in range(20):
        await svc.auditor.record(
            "transcript.opened", tenant_id="demo", actor="sup1", target=f"c{i}"
        )


async def _notified(svc) -> list:
    """The ``alert.notified`` audit rows, once the first appears (it follows the sends)."""
    for _ in range(200):
        notified = await svc.store.query_audit(action="alert.notified")
        if notified:
            return notified
        await asyncio.sleep(0.05)
    return []


async def test_alert_reaches_webhook_dingtalk_and_email(tmp_path, receivers):
    clock, port, hooks, hook_got, ding, mailbox, smtp = receivers
    runner, base, svc = await start_gateway(
        tmp_path,
        clock=clock,
        notify={
            "allow_hosts": ["127.0.0.1"],
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_from": "cipherdesk@example.com",
        },
    )
    try:
        await _configure_channels(
            svc,
            base,
            clock,
            {
                "webhook": {"url": f"http://127.0.0.1:{port}/hook", "secret": WEBHOOK_SECRET},
                "dingtalk": {
                    "url": f"http://127.0.0.1:{port}/robot/send?access_token={ROBOT_TOKEN}",
                    "secret": ROBOT_SECRET,
                },
                "email": {"to": ["SecOps@Example.com"]},
            },
        )
        await _open_twenty_transcripts(svc)
        await asyncio.wait_for(
            asyncio.gather(hook_got.wait(), ding.got.wait(), mailbox.got.wait()), 10
        )
        notified = await _notified(svc)
    finally:
        await runner.cleanup()
    body, header = hooks[0]
    assert verify_signature(WEBHOOK_SECRET, header, body, now=clock.now)
    assert b'"rule":"bulk_transcript_access"' in body
    text = ding.messages[0]["markdown"]["text"]
    assert "批量查看会话记录" in text and "bulk transcript access" in text
    mail = mailbox.messages[0]
    assert mail["To"] == "secops@example.com"
    assert "安全告警" in mail["Subject"]
    assert "sup1" in mail.get_content()
    assert notified[0].details == {"email": "ok", "webhook": "ok", "dingtalk": "ok"}


async def test_dingtalk_wrong_secret_is_reported_not_retried_forever(receivers):
    from gateway.notify.base import ChannelError, NotificationText
    from gateway.notify.dingtalk import DingTalkChannel
    from gateway.store.base import Alert

    clock, port, *_ = receivers
    alert = Alert(
        tenant_id="t",
        rule="mass_erasure",
        subject="a",
        dedup_key="k",
        severity="high",
        ts=clock.now,
        count=10,
        id=1,
    )
    text = NotificationText("t", "b")
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/robot/send?access_token={ROBOT_TOKEN}"
        with pytest.raises(ChannelError) as bad:
            await DingTalkChannel(http, url, "SECwrong-secret-000000", clock).send(text, alert)
        assert (bad.value.code, bad.value.retryable) == ("errcode_310000", False)
        stale = FakeClock(clock.now - 7200)  # two hours off: DingTalk refuses the timestamp
        with pytest.raises(ChannelError):
            await DingTalkChannel(http, url, ROBOT_SECRET, stale).send(text, alert)
        await DingTalkChannel(http, url, ROBOT_SECRET, clock).send(text, alert)


def test_dingtalk_sign_matches_the_documented_algorithm() -> None:
    # Python sample of the vendor documentation, step by step.
    ts = int(time.time() * 1000)
    string_to_sign = f"{ts}\n{ROBOT_SECRET}".encode()
    digest = hmac.new(ROBOT_SECRET.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    assert unquote_plus(dingtalk_sign(ROBOT_SECRET, ts)) == base64.b64encode(digest).decode()


async def test_a_channel_host_that_resolves_inward_is_refused_at_connect_time(
    tmp_path, monkeypatch
):
    """The URL check at configuration time sees only a public-looking name; where it points
    is decided when the alert is sent (DNS rebinding, a record changed later). The webhook
    host here resolves to 127.0.0.1: the netguard socket factory refuses the connection, so
    the local service never sees one. Before, the notifier's plain session connected."""
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    inside = await asyncio.start_server(count, "127.0.0.1", 0)
    port = inside.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def rebinding(host, *args, **kwargs):  # the attacker's DNS answers inward
        if host == "alerts.example.com":
            host = "127.0.0.1"
        return await real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    try:
        await _configure_channels(
            svc,
            base,
            clock,
            {
                "webhook": {
                    "url": f"https://alerts.example.com:{port}/hook",
                    "secret": WEBHOOK_SECRET,
                }
            },
        )
        await _open_twenty_transcripts(svc)
        notified = await _notified(svc)
    finally:
        await runner.cleanup()
        inside.close()
        await inside.wait_closed()
    assert notified and notified[0].details == {"webhook": "unreachable"}
    assert connections == 0
