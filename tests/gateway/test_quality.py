"""Service-quality metrics (issue 15.4) on a scripted chat with an injected clock, over
real HTTP and a real store (SQLite, then PostgreSQL): exact queue wait, first response,
handle time, transfers, CSAT with a policy-screened comment (also after the agent
closed, emitted as ``chat.rated``), reopen within N days, SLA alerts raised once per chat
and target, the Prometheus histograms, the JSON and CSV report and its refusals."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import aiohttp
import pytest

from auth.identity import sign_identity
from auth.roles import Principal, Role
from gateway.quality import SLA_RULES, SlaWatch
from gateway.services import Services
from gateway.store.base import Agent
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

SECRET = "shop-identity-secret-" + "q" * 24
CARD = "4111 1111 1111 1111"


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    # 2026-12-01 00:00 Asia/Shanghai = 2026-11-30 16:00 UTC
    clock = FakeClock(1_796_054_400.0)
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _staff(svc: Services, name: str, role: str = "agent") -> Principal:
    agent = Agent(
        id="agt_" + uuid.uuid4().hex[:12],
        tenant_id="demo",
        email=f"{uuid.uuid4().hex[:8]}@example.test",
        display_name=name,
        role=role,
        password_hash="unused",
        totp_confirmed=True,
        created_at=svc.clock(),
    )
    await svc.store.create_agent(agent)
    return Principal(agent_id=agent.id, tenant_id="demo", role=Role(role))


async def _token(http, base, svc, clock, role: str) -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    _, secret, pw = await make_agent(svc, email, role=role)
    return bearer(await login(http, base, email, pw, secret, clock.now))


async def _report(http, base, headers, query: str = "") -> tuple[int, dict]:
    async with http.get(f"{base}/api/quality?tz=Asia/Shanghai&{query}", headers=headers) as r:
        return r.status, await r.json()


async def _rated_rows(svc: Services, chat_id: str) -> list[dict]:
    items = await svc.store.list_events(tenant_id="demo", limit=1000)
    return [
        await svc.plugins.decode(i)
        for i in items
        if i.event_type == "chat.rated" and i.chat_id == chat_id
    ]


async def test_a_scripted_chat_gives_exact_figures(gw) -> None:
    http, base, svc, clock = gw
    await svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "https://hooks.example.test/q", "secret": "s" * 32, "events": ["chat.rated"]},
    )
    ana, bo = await _staff(svc, "Ana"), await _staff(svc, "薄")
    start = clock.now + 3600  # 2026-12-01 01:00 in Shanghai
    clock.now = start
    chat = (await svc.chats.open_chat("demo")).chat
    clock.advance(40)
    await svc.chats.accept(ana, chat.id)  # queue wait 40 s
    clock.advance(5)
    await svc.chats.post_customer_message("demo", chat.id, "c1", "hello")
    clock.advance(10)
    await svc.chats.post_agent_message(ana, chat.id, "a1", "hi, how can I help?")  # 15 s
    clock.advance(20)
    await svc.chats.post_agent_message(ana, chat.id, "a2", "still there?")  # not a first
    await svc.chats.transfer(ana, chat.id, to_agent=bo.agent_id, to_queue=None)
    clock.advance(225)
    await svc.chats.close(chat.id, "demo", by="agent", principal=bo)  # handle 260 s
    stored = await svc.store.get_chat(chat.id)
    assert stored is not None
    assert stored.first_response_at == pytest.approx(start + 55)
    assert stored.transfers == 1 and stored.csat is None

    # rated after the agent closed: recorded once, the comment screened and sealed
    clock.advance(30)
    await svc.chats.close(chat.id, "demo", by="customer", csat=4, comment=f"card {CARD} ok")
    await svc.chats.close(chat.id, "demo", by="customer", csat=1, comment="second try")
    stored = await svc.store.get_chat(chat.id)
    assert stored is not None and (stored.csat, stored.rated_at) == (4, pytest.approx(clock.now))
    assert stored.csat_comment_sealed is not None and b"1111" not in stored.csat_comment_sealed
    key = await svc.keys.get(chat.id)
    assert svc.chats.rating_comment(stored, key) == "card **** **** **** 1111 ok"
    (rated,) = await _rated_rows(svc, chat.id)
    assert rated["csat"] == 4 and rated["with_close"] is False
    assert rated["agent_id"] == bo.agent_id
    assert CARD not in rated["comment"] and rated["comment"].endswith("1111 ok")

    # a second chat the same day, never answered: closed by the customer after 200 s
    clock.advance(60)
    lost = (await svc.chats.open_chat("demo")).chat
    clock.advance(200)
    await svc.chats.close(lost.id, "demo", by="customer")

    admin = await _token(http, base, svc, clock, "admin")
    status, body = await _report(http, base, admin, "group=agent&start=2026-12-01&end=2026-12-01")
    assert status == 200, body
    assert (body["start"], body["end"]) == ("2026-12-01", "2026-12-01")
    assert body["timezone"] == "Asia/Shanghai"
    assert body["targets"] == {
        "queue_wait_sla_seconds": 180,
        "first_response_sla_seconds": 60,
        "reopen_days": 7,
    }
    rows = {r["label"]: r for r in body["rows"]}
    assert set(rows) == {"薄", "—"}  # the handler at close; the unanswered chat
    mine = rows["薄"]
    assert (mine["chats"], mine["answered"], mine["unanswered"]) == (1, 1, 0)
    assert (mine["queue_wait_avg"], mine["first_response_avg"], mine["handle_avg"]) == (
        40.0,
        15.0,
        260.0,
    )
    assert (mine["transfers"], mine["rated"], mine["csat_avg"]) == (1, 1, 4.0)
    assert (mine["sla_queue_breaches"], mine["sla_first_response_breaches"]) == (0, 0)
    lost_row = rows["—"]
    assert (lost_row["chats"], lost_row["unanswered"], lost_row["queue_wait_avg"]) == (1, 1, None)
    assert lost_row["sla_queue_breaches"] == 1  # waited 200 s > 180 s before giving up
    total = body["total"]
    assert (total["chats"], total["closed"], total["reopened"], total["sla_queue_breaches"]) == (
        2,
        2,
        0,
        1,
    )

    # by day: the chats belong to 1 December in Shanghai (30 November in UTC)
    status, body = await _report(http, base, admin, "group=day&start=2026-11-30&end=2026-12-01")
    assert [(r["key"], r["chats"]) for r in body["rows"]] == [("2026-12-01", 2)]
    async with http.get(
        f"{base}/api/quality?group=day&tz=UTC&start=2026-11-30&end=2026-12-01", headers=admin
    ) as r:
        assert [(x["key"], x["chats"]) for x in (await r.json())["rows"]] == [("2026-11-30", 2)]

    # the same rows as CSV, with a BOM, the total last, for spreadsheets
    async with http.get(
        f"{base}/api/quality.csv?group=queue&tz=Asia/Shanghai&start=2026-12-01&end=2026-12-01",
        headers=admin,
    ) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert "attachment" in r.headers["Content-Disposition"]
        raw = await r.read()
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][:4] == ["queue", "label", "chats", "answered"]
    assert [row[0] for row in table[1:]] == ["default", ""]
    assert table[-1][1] == "total" and table[-1][2] == "2"

    # Prometheus: each figure observed once
    m = svc.metrics
    assert m.value("cipherdesk_queue_wait_seconds_count") == 1
    assert m.value("cipherdesk_queue_wait_seconds_sum") == pytest.approx(40.0)
    assert m.value("cipherdesk_first_response_seconds_sum") == pytest.approx(15.0)
    assert m.value("cipherdesk_handle_seconds_sum") == pytest.approx(260.0)
    assert m.value("cipherdesk_csat_total", {"rating": "4"}) == 1
    assert m.value("cipherdesk_csat_total", {"rating": "1"}) == 0


async def test_a_rating_given_with_the_customers_close_is_in_both_events(gw) -> None:
    _, _, svc, clock = gw
    await svc.plugins.configure(
        "demo",
        "webhook",
        {
            "url": "https://hooks.example.test/q",
            "secret": "s" * 32,
            "events": ["chat.rated", "chat.closed"],
        },
    )
    ana = await _staff(svc, "Ana")
    chat = (await svc.chats.open_chat("demo")).chat
    await svc.chats.accept(ana, chat.id)
    clock.advance(30)
    await svc.chats.close(chat.id, "demo", by="customer", csat=5)
    (rated,) = await _rated_rows(svc, chat.id)
    assert (rated["csat"], rated["with_close"], rated["comment"]) == (5, True, None)
    items = await svc.store.list_events(tenant_id="demo", limit=100)
    (closed,) = [await svc.plugins.decode(i) for i in items if i.event_type == "chat.closed"]
    assert closed["csat"] == 5


async def test_reopen_within_the_window_counts_the_same_customer_only(gw) -> None:
    http, base, svc, clock = gw
    admin = await _token(http, base, svc, clock, "admin")
    async with http.patch(
        f"{base}/api/tenant",
        json={"identity_mode": "optional", "identity_secrets": [SECRET]},
        headers=admin,
    ) as r:
        assert r.status == 200, await r.text()
    ana = await _staff(svc, "Ana")

    async def chat_of(sub: str) -> str:
        claims = {"sub": sub, "exp": int(clock.now) + 60, "nonce": uuid.uuid4().hex}
        opened = await svc.chats.open_chat("demo", identity_token=sign_identity(SECRET, claims))
        await svc.chats.accept(ana, opened.chat.id)
        clock.advance(60)
        await svc.chats.close(opened.chat.id, "demo", by="agent", principal=ana)
        return opened.chat.id

    first = await chat_of("u-1")  # comes back after 3 days: reopened
    await chat_of("u-2")  # comes back after 9 days: outside the 7-day window
    clock.advance(3 * 86400)
    await chat_of("u-1")
    clock.advance(6 * 86400)
    await chat_of("u-2")
    admin = await _token(http, base, svc, clock, "admin")  # the first session timed out
    status, body = await _report(http, base, admin, "group=queue&start=2026-11-25&end=2026-12-31")
    assert status == 200
    assert (body["total"]["closed"], body["total"]["reopened"]) == (4, 1)
    reopened = await svc.store.reopened_chats("demo", 0, clock.now + 1, 7 * 86400.0)
    assert reopened == {first}
    # a longer window (tenant setting) catches the second customer too
    async with http.put(
        f"{base}/api/governance/settings", json={"quality": {"reopen_days": 10}}, headers=admin
    ) as r:
        assert r.status == 200 and (await r.json())["settings"]["quality"]["reopen_days"] == 10
    status, body = await _report(http, base, admin, "group=queue&start=2026-11-25&end=2026-12-31")
    assert body["total"]["reopened"] == 2


async def _sla_watch(
    gw, *, queue_wait: int, first_response: int
) -> tuple[dict[str, str], SlaWatch, list[str]]:
    """The tenant's SLA targets set over HTTP by an admin, and a watch of the test's own
    (the node's would race the test's rounds); returns the admin's headers, the watch and
    the list its breaches are counted into."""
    http, base, svc, clock = gw
    admin = await _token(http, base, svc, clock, "admin")
    targets = {"queue_wait_sla_seconds": queue_wait, "first_response_sla_seconds": first_response}
    async with http.put(
        f"{base}/api/governance/settings", json={"quality": targets}, headers=admin
    ) as r:
        assert r.status == 200
    for worker in svc.workers:
        if isinstance(worker, SlaWatch):
            await worker.stop()
    breaches: list[str] = []
    watch = SlaWatch(svc.store, svc.governance.alerts, svc.clock, on_breach=breaches.append)
    return admin, watch, breaches


async def test_sla_alerts_fire_once_per_chat_and_target(gw) -> None:
    http, base, svc, clock = gw
    admin, watch, breaches = await _sla_watch(gw, queue_wait=120, first_response=60)
    ana = await _staff(svc, "Ana")
    chat = (await svc.chats.open_chat("demo")).chat

    clock.advance(119)
    assert await watch.run_once() == 0  # not before the target
    clock.advance(2)
    assert await watch.run_once() == 1
    assert await watch.run_once() == 0  # once per chat
    await svc.chats.accept(ana, chat.id)
    clock.advance(59)
    assert await watch.run_once() == 0
    clock.advance(2)
    assert await watch.run_once() == 1
    await svc.chats.post_agent_message(ana, chat.id, "a1", "sorry for the wait")
    clock.advance(600)
    assert await watch.run_once() == 0
    assert breaches == ["queue_wait", "first_response"]

    alerts = await svc.store.list_alerts("demo")
    assert sorted((a.rule, a.subject) for a in alerts) == [
        ("sla_first_response", chat.id),
        ("sla_queue_wait", chat.id),
    ]
    by_rule = {a.rule: a for a in alerts}
    assert by_rule["sla_queue_wait"].details["waited_seconds"] == 121
    assert by_rule["sla_queue_wait"].details["target_seconds"] == 120
    actions = [e.action for e in await svc.store.query_audit(tenant_id="demo", limit=100)]
    assert {"alert.sla_queue_wait", "alert.sla_first_response"} <= set(actions)
    assert set(SLA_RULES) == {"sla_queue_wait", "sla_first_response"}

    # an SLA of 0 switches it off
    async with http.put(
        f"{base}/api/governance/settings",
        json={"quality": {"queue_wait_sla_seconds": 0, "first_response_sla_seconds": 0}},
        headers=admin,
    ) as r:
        assert r.status == 200
    svc.tenants.invalidate("demo")
    await svc.chats.open_chat("demo")
    clock.advance(3600)
    assert await watch.run_once() == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group=team", "group"),
        ("tz=Mars/Olympus", "tz"),
        ("tz=../../etc/passwd", "tz"),
        ("start=2026-13-01", "start"),
        ("start=yesterday", "start"),
        ("start=2026-12-05&end=2026-12-01", "start"),
        ("start=2026-01-01&end=2026-12-01", "end"),
        ("start=9999-12-30&end=2026-12-31", "start"),
        ("end=0001-01-01", "end"),
        ("tz=Asia/", "tz"),
    ],
)
async def test_bad_report_queries_are_refused_by_name(gw, query: str, field: str) -> None:
    http, base, svc, clock = gw
    admin = await _token(http, base, svc, clock, "admin")
    async with http.get(f"{base}/api/quality?{query}", headers=admin) as r:
        body = await r.json()
        assert r.status == 400 and body["error"]["code"] == "bad_request", body
        assert body["error"]["field"] == field


async def test_only_supervisors_and_admins_read_the_report(gw) -> None:
    http, base, svc, clock = gw
    agent = await _token(http, base, svc, clock, "agent")
    supervisor = await _token(http, base, svc, clock, "supervisor")
    async with http.get(f"{base}/api/quality", headers=agent) as r:
        assert r.status == 403
    async with http.get(f"{base}/api/quality.csv", headers=agent) as r:
        assert r.status == 403
    status, body = await _report(http, base, supervisor)
    assert status == 200 and body["total"]["chats"] == 0 and body["rows"] == []


async def test_quality_settings_are_bounded(gw) -> None:
    http, base, svc, clock = gw
    admin = await _token(http, base, svc, clock, "admin")
    for bad in (
        {"queue_wait_sla_seconds": -1},
        {"first_response_sla_seconds": 86_401},
        {"reopen_days": 0},
        {"reopen": 3},
    ):
        async with http.put(
            f"{base}/api/governance/settings", json={"quality": bad}, headers=admin
        ) as r:
            assert r.status == 400, bad
    async with http.get(f"{base}/api/governance/settings", headers=admin) as r:
        assert (await r.json())["settings"]["quality"]["queue_wait_sla_seconds"] == 180


async def test_a_chat_sent_back_to_the_queue_is_timed_again(gw) -> None:
    """A transfer back to a queue re-arms the queue-wait SLA: the wait is timed from the
    moment it was re-queued (also the console's 'waiting since'), and alerts once more."""
    _http, _base, svc, clock = gw
    _admin, watch, breaches = await _sla_watch(gw, queue_wait=120, first_response=0)
    ana = await _staff(svc, "Ana")
    chat = (await svc.chats.open_chat("demo")).chat
    assert chat.queued_at == chat.created_at
    clock.advance(130)
    assert await watch.run_once() == 1  # the first wait
    await svc.chats.accept(ana, chat.id)
    clock.advance(300)
    await svc.chats.transfer(ana, chat.id, to_agent=None, to_queue="default")
    requeued = await svc.store.get_chat(chat.id)
    assert requeued is not None and requeued.queued_at == clock.now
    snapshot = await svc.chats.queue_snapshot(ana)
    (entry,) = [e for e in snapshot.chats if e.chat == chat.id]
    assert entry.waiting_since == clock.now  # not the open: the console shows this wait
    clock.advance(119)
    assert await watch.run_once() == 0  # timed from the re-queue, not from the open
    clock.advance(2)
    assert await watch.run_once() == 1
    assert await watch.run_once() == 0
    assert breaches == ["queue_wait", "queue_wait"]  # counted twice (Prometheus)
    # The alert list keeps one alert per rule, chat and window (the engine's de-duplication).
    alerts = [a for a in await svc.store.list_alerts("demo") if a.rule == "sla_queue_wait"]
    assert [a.subject for a in alerts] == [chat.id]


async def test_the_reply_sla_is_timed_per_assignment(gw) -> None:
    """Each new holder of a chat gets the whole first-response target from the moment they
    got it: a transfer to another agent, or a chat sent back to the queue and taken again,
    re-arms the reply SLA; the report's first response stays the chat's first one."""
    _http, _base, svc, clock = gw
    _admin, watch, breaches = await _sla_watch(gw, queue_wait=0, first_response=60)
    ana, bo, cy = [await _staff(svc, n) for n in ("Ana", "Bo", "Cy")]
    chat = (await svc.chats.open_chat("demo")).chat
    start = clock.now
    await svc.chats.accept(ana, chat.id)
    clock.advance(5)
    await svc.chats.post_agent_message(ana, chat.id, "a1", "hello, looking")
    clock.advance(100)
    assert await watch.run_once() == 0  # Ana answered in time

    # Ana hands it to Bo, who says nothing: Bo is timed from the hand-over.
    await svc.chats.transfer(ana, chat.id, to_agent=bo.agent_id, to_queue=None)
    handed = await svc.store.get_chat(chat.id)
    assert handed is not None and handed.assigned_at == clock.now and handed.answered_at is None
    clock.advance(59)
    assert await watch.run_once() == 0
    clock.advance(2)
    assert await watch.run_once() == 1
    assert await watch.run_once() == 0  # once per assignment
    (alert,) = [a for a in await svc.store.list_alerts("demo") if a.rule == "sla_first_response"]
    assert alert.details["waited_seconds"] == 61 and alert.details["agent"] == bo.agent_id

    # Back to the queue, taken by Cy long after the first accept: Cy gets the full minute.
    await svc.chats.transfer(bo, chat.id, to_agent=None, to_queue="default")
    clock.advance(600)
    await svc.chats.accept(cy, chat.id)
    clock.advance(59)
    assert await watch.run_once() == 0
    await svc.chats.post_agent_message(cy, chat.id, "c1", "I can help with that")
    clock.advance(600)
    assert await watch.run_once() == 0  # answered within this assignment
    assert breaches == ["first_response"]

    stored = await svc.store.get_chat(chat.id)
    assert stored is not None
    assert stored.first_response_at == pytest.approx(start + 5)  # the report's figure
    assert stored.answered_at == pytest.approx(start + 5 + 100 + 61 + 600 + 59)
