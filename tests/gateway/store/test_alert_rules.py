"""Each anomaly rule with an injected clock, on SQLite and PostgreSQL: silent below the
threshold, fires at it, fires once per window, fires again after the window; tenant
tuning is honoured; an alert writes an ``alert.*`` audit event."""

from __future__ import annotations

import datetime as dt

import pytest

from auth.clock import ManualClock
from gateway.audit import Auditor
from gateway.governance.alerts import AlertEngine, WorkingHours, browser_of, network_of
from gateway.store import Agent, AgentSession, Store, Tenant

# Wednesday 2023-11-15 10:00 Asia/Shanghai (02:00 UTC)
T0 = dt.datetime(2023, 11, 15, 2, 0, tzinfo=dt.UTC).timestamp()
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


class Harness:
    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock
        self.settings: dict = {}
        self.auditor = Auditor(store, clock)
        self.fired: list = []

        async def settings_of(_: str) -> dict:
            return self.settings

        self.engine = AlertEngine(
            store, self.auditor, clock, settings_of=settings_of, on_alert=[self.fired.append]
        )
        self.auditor.listeners.append(self.engine)

    async def emit(self, action: str, n: int = 1, *, step: float = 1.0, **kw) -> None:
        for _ in range(n):
            await self.auditor.record(action, tenant_id="t1", **kw)
            self.clock.advance(step)

    def rules(self) -> list[str]:
        return [a.rule for a in self.fired]


@pytest.fixture
async def h(store: Store) -> Harness:
    await store.create_tenant(Tenant(id="t1", name="T1", created_at=T0))
    for agent_id in ("sup", "a2"):
        await store.create_agent(
            Agent(
                id=agent_id,
                tenant_id="t1",
                email=f"{agent_id}@x.cn",
                display_name=agent_id,
                role="supervisor",
                password_hash="x",
                created_at=T0,
            )
        )
    return Harness(store, ManualClock(T0))


async def test_bulk_transcript_access_fires_at_threshold_once_per_window(h: Harness) -> None:
    await h.emit("transcript.opened", 19, actor="sup", target="c")
    assert h.fired == []
    await h.emit("flag.original_viewed", 1, actor="sup", target="f")  # both actions count
    assert h.rules() == ["bulk_transcript_access"]
    alert = h.fired[0]
    assert (alert.subject, alert.count, alert.severity) == ("sup", 20, "high")
    await h.emit("transcript.opened", 10, actor="sup", target="c")  # same window: silent
    assert len(h.fired) == 1
    await h.emit("transcript.opened", 19, actor="a2", target="c")  # another actor
    assert len(h.fired) == 1
    events = await h.store.query_audit(action="alert.bulk_transcript_access")
    assert len(events) == 1 and events[0].target == "sup"
    assert events[0].details["alert_id"] == alert.id
    h.clock.advance(61)
    await h.emit("transcript.opened", 20, step=0.5, actor="sup", target="c")
    assert len(h.fired) == 2  # a new window, a new burst


async def test_bulk_access_spread_out_never_fires(h: Harness) -> None:
    await h.emit("transcript.opened", 40, step=4.0, actor="sup", target="c")  # 15 / minute
    assert h.fired == []


async def test_tenant_tuning_and_disable(h: Harness) -> None:
    h.settings = {"alert_rules": {"bulk_transcript_access": {"threshold": 3, "window": 600}}}
    await h.emit("transcript.opened", 2, step=100, actor="sup", target="c")
    assert h.fired == []
    await h.emit("transcript.opened", 1, actor="sup", target="c")
    assert h.rules() == ["bulk_transcript_access"]
    h.settings = {"alert_rules": {"mass_erasure": {"enabled": False}}}
    await h.emit("chat.erased", 15, actor="a2", target="c")
    assert h.rules() == ["bulk_transcript_access"]


async def test_mass_erasure(h: Harness) -> None:
    await h.emit("chat.erased", 9, step=30, actor="a2", target="c")
    assert h.fired == []
    await h.emit("chat.erased", 1, actor="a2", target="c")
    assert h.rules() == ["mass_erasure"]
    await h.emit("chat.erased", 5, actor="a2", target="c")
    assert len(h.fired) == 1


async def test_login_spraying_counts_distinct_accounts_per_ip(h: Harness) -> None:
    # 30 failures against ONE account from one IP: brute force (lockout's job), not spraying.
    await h.emit("login.failed", 30, step=5, target="sup", ip="203.0.113.9")
    assert h.fired == []
    for i in range(8):
        await h.emit("login.failed", target=f"acct{i}", ip="203.0.113.9")
    assert h.fired == []  # 9 distinct so far (sup + 8)
    await h.emit("login.failed", target="acct-last", ip="203.0.113.9")
    assert h.rules() == ["login_spraying"]
    assert h.fired[0].subject == "203.0.113.9"
    await h.emit("login.failed", 5, target="more", ip="203.0.113.9")
    assert len(h.fired) == 1


async def test_blocked_messages(h: Harness) -> None:
    await h.emit("message.blocked", 4, step=60, actor="a2", target="chat1")
    assert h.fired == []
    await h.emit("message.blocked", actor="a2", target="chat2")
    assert h.rules() == ["blocked_messages"]
    await h.emit("message.blocked", 3, actor="a2", target="chat2")
    assert len(h.fired) == 1


async def test_plugin_dead_letters(h: Harness) -> None:
    await h.emit(
        "plugin.dead_lettered", 9, step=10, actor="system", target="zendesk", plugin="zendesk"
    )
    assert h.fired == []
    await h.emit("plugin.dead_lettered", actor="system", target="zendesk", plugin="zendesk")
    assert h.rules() == ["plugin_dead_letters"]
    assert h.fired[0].subject == "zendesk"


async def test_off_hours_only_with_working_hours_set(h: Harness) -> None:
    await h.emit("transcript.opened", actor="sup", target="c")  # no hours configured
    h.settings = {
        "working_hours": {
            "start": "09:00",
            "end": "18:00",
            "days": [1, 2, 3, 4, 5],
            "tz": "Asia/Shanghai",
        }
    }
    await h.emit("transcript.opened", actor="sup", target="c")  # Wed 10:00: inside
    assert h.fired == []
    h.clock.advance(10 * 3600)  # Wed 20:00 Shanghai
    await h.emit("login.ok", actor="sup", target="sup")
    assert h.rules() == ["off_hours_access"]
    assert h.fired[0].details["local_time"].startswith("Wed 20:")
    await h.emit("transcript.opened", actor="sup", target="c")  # same hour: once
    assert len(h.fired) == 1
    h.clock.advance(3 * 86400)  # Saturday 20:00
    await h.emit("audit.read", actor="sup")
    assert len(h.fired) == 2


async def _login(h: Harness, token: str, ip: str, ua: str) -> None:
    await h.store.create_session(
        AgentSession(
            token_hash=token,
            agent_id="sup",
            tenant_id="t1",
            created_at=h.clock(),
            last_seen_at=h.clock(),
            ip=ip,
            user_agent=ua,
        )
    )
    await h.emit("login.ok", actor="sup", target="sup", ip=ip)


async def test_new_network_or_browser(h: Harness) -> None:
    await _login(h, "s1", "198.51.100.7", CHROME_WIN)  # first login ever: nothing to compare
    await _login(h, "s2", "198.51.100.99", CHROME_WIN.replace("120.0", "121.0"))
    assert h.fired == []  # same /24, same browser family despite a new version
    await _login(h, "s3", "192.0.2.1", CHROME_WIN)
    assert h.rules() == ["new_login_context"]
    assert h.fired[0].details["new"] == ["network"]
    h.clock.advance(3601)
    await _login(h, "s4", "198.51.100.7", FIREFOX_LINUX)
    assert h.fired[-1].details["new"] == ["browser"]
    h.clock.advance(31 * 86400)  # nothing seen in the last 30 days: all is new again
    await _login(h, "s5", "198.51.100.7", CHROME_WIN)
    assert len(h.fired) == 3 and h.fired[-1].details["new"] == ["network", "browser"]


def test_helpers() -> None:
    assert network_of("198.51.100.7") == "198.51.100.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("not an ip") is None
    assert browser_of(CHROME_WIN) == "Chrome/Windows"
    assert browser_of(FIREFOX_LINUX) == "Firefox/Linux"
    night = WorkingHours.parse({"start": "22:00", "end": "06:00", "days": [1], "tz": "UTC"})
    monday_23 = dt.datetime(2023, 11, 13, 23, 0, tzinfo=dt.UTC).timestamp()
    assert night.contains(monday_23)
    assert night.contains(monday_23 + 4 * 3600)  # Tuesday 03:00 belongs to Monday's shift
    assert not night.contains(monday_23 + 8 * 3600)
    with pytest.raises(ValueError):
        WorkingHours.parse({"start": "9", "end": "18:00", "days": [1], "tz": "UTC"})
    with pytest.raises(ValueError):
        WorkingHours.parse({"start": "09:00", "end": "18:00", "days": [1], "tz": "Mars/Base"})
