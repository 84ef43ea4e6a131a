"""``server.workers``: when a node may run several processes, and the supervisor's
restart and crash-loop rules (real child processes, injected clock)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.workers import MAX_CRASHES, Supervisor, plan_workers

PG = "postgresql://postgres@127.0.0.1/x"
REDIS = "redis://127.0.0.1:6379/0"


def config(workers: int, store: str = PG, bus: str = REDIS, limits: str = REDIS):
    return parse_config(
        None,
        environ={},
        overrides={
            "server": {"workers": workers},
            "store": {"url": store},
            "bus": {"url": bus},
            "ratelimit": {"url": limits},
        },
    )


def test_shared_store_bus_and_limits_give_the_workers_asked_for() -> None:
    plan = plan_workers(config(3))
    assert (plan.count, plan.reason) == (3, None)


def test_one_worker_is_never_explained() -> None:
    assert plan_workers(config(1, store="", bus="memory://")).reason is None


@pytest.mark.parametrize(
    ("store", "bus", "limits", "said"),
    [
        ("", REDIS, REDIS, "store.url is SQLite"),
        (PG, "memory://", REDIS, "bus.url is the in-process bus"),
        (PG, REDIS, "memory://", "ratelimit.url is in memory"),
    ],
)
def test_anything_per_process_keeps_the_node_one_process_and_says_why(
    store: str, bus: str, limits: str, said: str
) -> None:
    plan = plan_workers(config(4, store=store, bus=bus, limits=limits))
    assert plan.count == 1
    assert plan.reason is not None and said in plan.reason


@pytest.mark.parametrize("workers", [0, -1, 65])
def test_worker_count_is_bounded(workers: int) -> None:
    with pytest.raises(ConfigError, match=r"server\.workers must be 1-64"):
        config(workers)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exiting_child(code: int) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.exit({code})"]


def wait_all(sup: Supervisor) -> None:
    for proc in sup.procs.values():
        proc.wait(30)


def test_a_dead_worker_is_restarted_with_its_index() -> None:
    started: list[int] = []

    def command(index: int) -> list[str]:
        started.append(index)
        return exiting_child(3) if len(started) <= 2 else [sys.executable, "-c", "pass"]

    clock = FakeClock()
    sup = Supervisor(command, 2, clock=clock)
    sup.spawn(0)
    sup.spawn(1)
    wait_all(sup)
    assert sup.watch_once() is True
    assert sorted(started) == [0, 0, 1, 1]
    assert len(sup.crashes) == 2
    wait_all(sup)
    sup.stop_all()


def test_workers_crashing_in_a_loop_stop_the_node() -> None:
    clock = FakeClock()
    sup = Supervisor(lambda index: exiting_child(1), 1, clock=clock)
    sup.spawn(0)
    for _ in range(MAX_CRASHES):
        wait_all(sup)
        assert sup.watch_once() is True
        clock.now += 1.0
    wait_all(sup)
    assert sup.watch_once() is False


def test_crashes_spread_over_time_are_not_a_loop() -> None:
    clock = FakeClock()
    sup = Supervisor(lambda index: exiting_child(1), 1, clock=clock)
    sup.spawn(0)
    for _ in range(MAX_CRASHES * 3):
        wait_all(sup)
        assert sup.watch_once() is True
        clock.now += 30.0
    wait_all(sup)
    sup.stop_all()


def test_stop_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    ignore = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    )
    sup = Supervisor(lambda index: [sys.executable, "-c", ignore, str(ready)], 1, stop_timeout=1.0)
    sup.spawn(0)
    deadline = time.monotonic() + 30
    while not ready.exists():  # SIGTERM is ignored from here on
        assert time.monotonic() < deadline, "child never started"
        time.sleep(0.01)
    sup.stop_all()
    assert sup.procs[0].returncode == -signal.SIGKILL
