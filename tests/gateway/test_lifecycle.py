"""Data lifecycle (issue 15.1/15.2) on the real services, SQLite and PostgreSQL, with an
injected clock: per-tenant retention of every data class (idle chats auto-closed, closed
chats crypto-shredded, flags, delivered outbox rows, dead letters, audit log), and the
signed destruction report each run yields (verifies with the gateway key, fails when
tampered with or checked against another key)."""

from __future__ import annotations

import json

import pytest
import structlog

from crypto.identity import GatewayIdentity
from gateway import retention
from gateway.bus.base import BusEvent, chat_topic
from gateway.chats import IDLE_NOTICE
from gateway.config import ConfigError, RetentionConfig, load_config
from gateway.protocol import ChatEvent, Msg
from gateway.reports import ReportInvalid, SignedReport, chat_hash, verify_file
from gateway.retention import DAY, MINUTE, RetentionJob, RetentionPolicy, validate_retention
from gateway.services import Services
from gateway.store.base import LifecycleCutoffs, OutboxEvent, PolicyFlag, Tenant
from tests.gateway.helpers import FakeClock


def _job(svc: Services, clock: FakeClock, **defaults: float) -> RetentionJob:
    return RetentionJob(
        svc.store,
        svc.chats,
        RetentionConfig(**defaults),  # type: ignore[arg-type]
        clock,
        audit_default_days=180.0,
        checkpointer=svc.checkpointer,
        reports=svc.reports,
    )


async def _set_retention(svc: Services, **overrides: int) -> None:
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    settings = dict(tenant.settings)
    settings["retention"] = validate_retention(overrides)
    tenant.settings = settings
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")


async def _set(svc: Services, key: str, value: object) -> None:
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, key: value}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")


async def _closed_chat(svc: Services, closed_at: float) -> str:
    opened = await svc.chats.open_chat("demo")
    await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "hello", opened.chat)
    assert await svc.store.close_chat(opened.chat.id, closed_at=closed_at, reason="resolved")
    return opened.chat.id


async def _erased(svc: Services, chat_id: str) -> bool:
    chat = await svc.store.get_chat(chat_id)
    assert chat is not None
    return chat.close_reason == "erased"


# ---------------------------------------------------------------- policy and settings


def test_tenant_overrides_are_validated_and_bounded() -> None:
    assert validate_retention({"flag_days": 3, "dead_letter_days": None}) == {"flag_days": 3}
    for bad in (
        {"flag_days": -1},
        {"closed_chat_days": 3651},
        {"idle_close_minutes": 43201},
        {"nonsense_days": 1},
        {"flag_days": "7"},
        [],
    ):
        with pytest.raises(ValueError, match="retention"):
            validate_retention(bad)


def test_policy_merges_overrides_over_defaults_and_ignores_bad_stored_values() -> None:
    defaults = RetentionConfig(closed_chat_days=90, flag_days=30)
    settings = {
        "retention": {"closed_chat_days": 5, "flag_days": -4, "dead_letter_days": True},
        "audit_retention_days": 400,
    }
    policy = RetentionPolicy.of(settings, defaults, audit_default=180)
    assert policy.closed_chat_days == 5  # the tenant's override
    assert policy.flag_days == 30  # out of bounds in the database: the default
    assert policy.dead_letter_days == defaults.dead_letter_days  # a bool is no number
    assert policy.audit_days == 400
    assert RetentionPolicy.of({"audit_retention_days": 10}, defaults, 180).audit_days == 180


def test_installation_defaults_are_bounded_in_the_config(tmp_path: pytest.TempPathFactory) -> None:
    base = {"server": {"data_dir": str(tmp_path)}}
    config = load_config(None, environ={}, overrides={**base, "retention": {"flag_days": 12}})
    assert config.retention.flag_days == 12
    for bad in ({"flag_days": -1}, {"idle_close_minutes": 10**6}, {"interval_seconds": 0}):
        with pytest.raises(ConfigError, match="retention"):
            load_config(None, environ={}, overrides={**base, "retention": bad})


# ---------------------------------------------------------------- every class


async def test_closed_chats_use_the_tenant_override(svc: Services, clock: FakeClock) -> None:
    ten_days = await _closed_chat(svc, clock() - 10 * DAY)
    job = _job(svc, clock, closed_chat_days=30)
    assert (await job.run_once()).total("closed_chats") == 0  # default: 30 days
    await _set_retention(svc, closed_chat_days=5)
    run = await job.run_once()
    assert run.counts == {"demo": {"closed_chats": 1}}
    assert await _erased(svc, ten_days)
    await _set_retention(svc, closed_chat_days=0)  # 0 keeps forever
    kept = await _closed_chat(svc, clock() - 1000 * DAY)
    assert (await job.run_once()).total("closed_chats") == 0 and not await _erased(svc, kept)


async def test_idle_open_chats_are_closed_with_a_system_message(
    svc: Services, clock: FakeClock
) -> None:
    await svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "https://hooks.example.test/cd", "secret": "s" * 32, "events": ["chat.closed"]},
    )
    quiet = await svc.chats.open_chat("demo")
    await svc.chats.post_customer_message("demo", quiet.chat.id, "q1", "anyone?", quiet.chat)
    silent = await svc.chats.open_chat("demo")  # no message at all: its creation counts
    busy = await svc.chats.open_chat("demo")
    clock.advance(29 * MINUTE)
    await svc.chats.post_customer_message("demo", busy.chat.id, "b1", "still here", busy.chat)
    clock.advance(2 * MINUTE)
    job = _job(svc, clock)
    assert (await job.run_once()).total("idle_chats") == 0  # the default never auto-closes

    await _set_retention(svc, idle_close_minutes=30)
    seen: list[BusEvent] = []
    await svc.bus.subscribe(chat_topic(quiet.chat.id), seen.append)
    run = await job.run_once()
    assert run.counts["demo"]["idle_chats"] == 2
    assert run.reports == []  # closing destroys nothing: no destruction report
    states = [await svc.store.get_chat(c.chat.id) for c in (quiet, silent, busy)]
    assert [(s.state, s.close_reason) for s in states if s] == [
        ("closed", "idle"),
        ("closed", "idle"),
        ("queued", None),
    ]
    history = await svc.chats.messages(quiet.chat.id, 0)
    assert [(m.sender, m.text) for m in history] == [
        ("customer", "anyone?"),
        ("system", IDLE_NOTICE.format(minutes=30)),
    ]
    frames = [e.frame for e in seen]
    assert any(isinstance(f, Msg) and f.sender == "system" for f in frames)
    closes = [(f.event, f.reason) for f in frames if isinstance(f, ChatEvent)]
    assert ("closed", "idle") in closes
    events = await svc.store.list_events(tenant_id="demo", limit=100)
    assert sorted(e.chat_id or "" for e in events if e.event_type == "chat.closed") == sorted(
        [quiet.chat.id, silent.chat.id]
    )
    assert (await job.run_once()).total("idle_chats") == 0


async def test_flags_outbox_rows_and_dead_letters_age_out_per_class(
    svc: Services, clock: FakeClock
) -> None:
    now = clock()
    chat = (await svc.chats.open_chat("demo")).chat.id
    for i, age in enumerate((11, 9)):
        await svc.store.add_flag(
            PolicyFlag(chat, "demo", i + 1, ["card"], b"sealed", created_at=now - age * DAY)
        )
    await svc.store.enqueue_events(
        [
            OutboxEvent("demo", "webhook", "chat.message", f"k{i}", b"x", None, now - 40 * DAY)
            for i in range(5)
        ]
    )
    ids = [e.id for e in await svc.store.list_events(tenant_id="demo", limit=10)]
    assert await svc.store.mark_delivered(ids[0], now - 4 * DAY)  # delivered, old
    assert await svc.store.mark_delivered(ids[1], now - 2 * DAY)  # delivered, recent
    assert await svc.store.dead_letter(ids[2], attempts=9, error="gone")  # dead, old event
    await _set_retention(svc, flag_days=10, delivered_outbox_days=3, dead_letter_days=30)
    run = await _job(svc, clock).run_once()
    assert run.counts == {"demo": {"flags": 1, "delivered_outbox": 1, "dead_letters": 1}}
    assert [f.seq for f in await svc.store.list_flags("demo", unreviewed_only=False)] == [2]
    left = {e.id: e.state for e in await svc.store.list_events(tenant_id="demo", limit=10)}
    assert left == {ids[1]: "delivered", ids[3]: "pending", ids[4]: "pending"}

    await _set_retention(svc, flag_days=0, delivered_outbox_days=0, dead_letter_days=0)
    clock.advance(100 * DAY)  # 0 keeps every class forever
    assert (await _job(svc, clock).run_once()).counts == {}


async def test_secondary_data_is_purged_in_batches_and_every_row_is_counted(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store call deletes at most a batch of each class (one short transaction: SQLite's
    writer is not held for a whole day's rows); the job repeats until all are gone and
    its report counts every row."""
    now = clock()
    chat = (await svc.chats.open_chat("demo")).chat.id
    for i in range(5):
        await svc.store.add_flag(
            PolicyFlag(chat, "demo", i + 1, ["card"], b"sealed", created_at=now - 20 * DAY)
        )
    await svc.store.enqueue_events(
        [
            OutboxEvent("demo", "webhook", "chat.message", f"k{i}", b"x", None, now - 40 * DAY)
            for i in range(10)
        ]
    )
    ids = [e.id for e in await svc.store.list_events(tenant_id="demo", limit=20)]
    for item_id in ids[:5]:
        assert await svc.store.mark_delivered(item_id, now - 5 * DAY)
    for item_id in ids[5:]:
        assert await svc.store.dead_letter(item_id, attempts=9, error="gone")
    cutoffs = LifecycleCutoffs(now - 10 * DAY, now - 3 * DAY, now - 30 * DAY)
    assert await svc.store.purge_lifecycle("demo", cutoffs, 2) == {
        "flags": 2,
        "delivered_outbox": 2,
        "dead_letters": 2,
    }
    monkeypatch.setattr(retention, "PURGE_BATCH", 2)
    await _set_retention(svc, flag_days=10, delivered_outbox_days=3, dead_letter_days=30)
    run = await _job(svc, clock).run_once()
    assert run.counts == {"demo": {"flags": 3, "delivered_outbox": 3, "dead_letters": 3}}
    assert await svc.store.list_flags("demo", unreviewed_only=False) == []
    assert await svc.store.list_events(tenant_id="demo", limit=20) == []


async def test_audit_log_ages_out_behind_a_checkpoint_never_before_180_days(
    svc: Services, clock: FakeClock
) -> None:
    await svc.auditor.record("policy.tested", tenant_id="demo", actor="x")
    clock.advance(181 * DAY)
    await svc.auditor.record("policy.tested", tenant_id="demo", actor="y")
    await _set(svc, "audit_retention_days", 365)
    job = _job(svc, clock)
    assert (await job.run_once()).total("audit_log") == 0
    await _set(svc, "audit_retention_days", 180)
    run = await job.run_once()
    assert run.counts["demo"]["audit_log"] >= 1
    actors = {e.actor for e in await svc.store.query_audit(tenant_id="demo", limit=1000)}
    assert "y" in actors and "x" not in actors
    [report] = [r for r in run.reports if r.stored.tenant_id == "demo"]
    assert json.loads(report.stored.body)["counts"]["audit_log"] >= 1


# ---------------------------------------------------------------- signed reports


async def test_each_run_yields_a_signed_report_that_detects_tampering(
    svc: Services, clock: FakeClock
) -> None:
    old = [await _closed_chat(svc, clock() - 40 * DAY) for _ in range(2)]
    await _set_retention(svc, closed_chat_days=30)
    run = await svc.retention.run_once()  # the job as the application wires it
    [report] = run.reports
    metrics = svc.metrics.registry
    assert (
        metrics.get_sample_value("cipherdesk_retention_total", {"data_class": "closed_chats"})
        == 2.0
    )
    assert (
        metrics.get_sample_value("cipherdesk_destruction_reports_total", {"kind": "retention"})
        == 1.0
    )
    stored = await svc.store.list_reports("demo")
    assert [r.id for r in stored] == [report.stored.id]
    assert await svc.store.get_report(report.stored.id) == report.stored
    text = report.export()
    assert all(chat_id not in text for chat_id in old)  # hashed, never the ids
    body = verify_file(text, svc.identity.verify_key_b64)
    assert body["counts"] == {"closed_chats": 2}
    assert sorted(body["chats"]) == sorted(chat_hash(c) for c in old)
    assert (body["kind"], body["actor"], body["tenant"], body["at"]) == (
        "retention",
        "retention",
        "demo",
        clock(),
    )

    tampered = json.loads(text)
    tampered["report"]["counts"]["closed_chats"] = 1
    with pytest.raises(ReportInvalid, match="signature"):
        verify_file(json.dumps(tampered), svc.identity.verify_key_b64)
    with pytest.raises(ReportInvalid, match="signature"):
        verify_file(text, GatewayIdentity.generate().verify_key_b64)
    reformatted = json.dumps(json.loads(text))  # whitespace is not content
    assert verify_file(reformatted, svc.identity.verify_key_b64) == body
    for junk in ("", "[]", '{"report": {}, "signature": "x"}', "{"):
        with pytest.raises(ReportInvalid):
            verify_file(junk, svc.identity.verify_key_b64)


async def test_an_erase_yields_a_signed_report(svc: Services, clock: FakeClock) -> None:
    chat = await _closed_chat(svc, clock())
    report = await svc.chats.erase_reported(chat, actor="agent-7", tenant_id="demo")
    assert isinstance(report, SignedReport)
    body = verify_file(report.export(), svc.identity.verify_key_b64)
    assert (body["kind"], body["actor"], body["counts"], body["chats"]) == (
        "erase",
        "agent-7",
        {"chats": 1},
        [chat_hash(chat)],
    )
    assert await svc.chats.erase_reported("no-such-chat", actor="x") is None
    assert await svc.chats.erase_reported(chat, actor="x", tenant_id="other") is None
    assert len(await svc.store.list_reports("demo")) == 1


async def test_a_failing_tenant_neither_stops_the_others_nor_loses_its_report(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await svc.store.create_tenant(
        Tenant(id="acme", name="acme", allowed_origins=[], created_at=clock())
    )
    old = clock() - 100 * DAY
    demo_chat = await _closed_chat(svc, old)
    acme = await svc.chats.open_chat("acme")
    assert await svc.store.close_chat(acme.chat.id, closed_at=old, reason="resolved")
    real_purge = svc.store.purge_lifecycle

    async def failing_purge(
        tenant_id: str, cutoffs: LifecycleCutoffs, batch: int
    ) -> dict[str, int]:
        if tenant_id == "demo":
            raise ConnectionError("disk on fire")
        return await real_purge(tenant_id, cutoffs, batch)

    monkeypatch.setattr(svc.store, "purge_lifecycle", failing_purge)
    with structlog.testing.capture_logs() as logs:
        run = await svc.retention.run_once()
    assert run.counts == {"demo": {"closed_chats": 1}, "acme": {"closed_chats": 1}}
    assert [r.stored.tenant_id for r in run.reports] == ["acme", "demo"]
    assert await _erased(svc, demo_chat) and await _erased(svc, acme.chat.id)
    [failed] = [e for e in logs if e["event"] == "retention_tenant_failed"]
    assert (failed["tenant"], failed["error"]) == ("demo", "ConnectionError")
