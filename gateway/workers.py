"""Several worker processes per node: one port, N processes, every core used.

One Python process runs one event loop on one core. ``server.workers = N`` makes ``cipherdesk
serve`` a small supervisor that starts N copies of itself (``--worker-index i``); each
binds the same address with ``SO_REUSEPORT`` and the kernel spreads new connections over
them. Nothing is shared in memory between workers, so everything that must be shared
already lives outside the process:

* the store: PostgreSQL (SQLite has one writer thread per process and group-commits
  inside it; several processes writing one file would serialise on its lock and lose
  the group commit, so a SQLite node stays one process);
* the bus and presence: Redis (a customer on worker 0 and an agent on worker 1 see each
  other's frames exactly as if they were on two nodes; there is deliberately no home-made
  inter-process bus beside it);
* rate limits: Redis (in-memory budgets would silently multiply by N).

When any of these is missing the node runs one process and says why at start-up, instead
of starting workers that would disagree. Background jobs (plugin outbox, retention, audit
checkpoints, dormancy sweep, data ledger) run in worker 0 only, once per node, as on a
one-process node; they coordinate across nodes through the store already.

The supervisor restarts a worker that dies (a crash must not leave the node at half
capacity), gives up when workers crash in a loop, forwards SIGTERM/SIGINT so a rolling
restart drains every worker, and asks the kernel to end the workers if the supervisor
itself is killed (``PR_SET_PDEATHSIG`` on Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

import structlog
from aiohttp import web

from gateway.config import Config

log = structlog.get_logger("cipherdesk.workers")

WORKER_INDEX = web.AppKey("worker_index", int)
"""This process's index among the node's workers (absent on a one-process node)."""

WORKER_HEADER = "X-Cipherdesk-Worker"
"""Response header naming the worker that answered (multi-worker nodes only): lets an
operator see the spread and tests pin a socket to a worker. It carries a small integer,
nothing about the host."""

CRASH_WINDOW = 60.0
"""Seconds over which worker crashes are counted for crash-loop detection."""

MAX_CRASHES = 5
"""More crashes than this within :data:`CRASH_WINDOW` stop the node (exit 1)."""

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """How many processes this node runs, and why fewer than asked if so."""

    count: int
    reason: str | None = None


def plan_workers(config: Config) -> WorkerPlan:
    """Decide the process count from ``server.workers`` and what is shared.

    Returns one worker with a human-readable ``reason`` when several were asked for but
    the store, bus or rate limiter is per-process (see the module docstring)."""
    asked = config.server.workers
    if asked <= 1:
        return WorkerPlan(1)
    missing = []
    if not config.store_url.startswith(("postgres://", "postgresql://")):
        missing.append("store.url is SQLite (one writer per file; use PostgreSQL)")
    if not config.bus.url.startswith(("redis://", "rediss://", "unix://")):
        missing.append("bus.url is the in-process bus (use Redis)")
    if not config.ratelimit.url.startswith(("redis://", "rediss://", "unix://")):
        missing.append("ratelimit.url is in memory (budgets would multiply; use Redis)")
    if not hasattr(socket, "SO_REUSEPORT"):
        missing.append("this platform has no SO_REUSEPORT")
    if missing:
        return WorkerPlan(1, "; ".join(missing))
    return WorkerPlan(asked)


def tag_responses(app: web.Application, index: int) -> None:
    """Name the answering worker in :data:`WORKER_HEADER` on every response, including
    the WebSocket upgrade."""
    app[WORKER_INDEX] = index

    async def add_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[WORKER_HEADER] = str(index)

    app.on_response_prepare.append(add_header)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM this process when the supervisor dies (even by SIGKILL)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Supervisor:
    """Start, watch and stop the worker processes of one node.

    ``command_for(i)`` is worker ``i``'s argv. Synchronous on purpose: the supervisor does
    nothing but wait for children and signals, so it needs no event loop of its own."""

    command_for: Callable[[int], Sequence[str]]
    count: int
    stop_timeout: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    crashes: list[float] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, index: int) -> None:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.procs[index] = subprocess.Popen(list(self.command_for(index)), preexec_fn=preexec)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        """Run until a stop signal (exit 0) or a crash loop (exit 1)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        for index in range(self.count):
            self.spawn(index)
        log.info("workers_started", workers=self.count)
        status = 0
        while not self.stopping:
            if not self.watch_once():
                status = 1
                break
            self.sleep(0.2)
        self.stop_all()
        return status

    def watch_once(self) -> bool:
        """Restart every worker that exited; False when they crash in a loop."""
        for index, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or self.stopping:
                continue
            now = self.clock()
            self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
            if len(self.crashes) > MAX_CRASHES:
                log.error("workers_crash_loop", worker=index, exit_code=code)
                return False
            log.warning("worker_exited_restarting", worker=index, exit_code=code)
            self.spawn(index)
        return True

    def stop_all(self) -> None:
        """SIGTERM every worker (each drains: readiness 503, sockets closed 1001), then
        SIGKILL whatever is still there after ``stop_timeout``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = self.clock() + self.stop_timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.info("workers_stopped")
