"""Real ``cipherdesk serve`` processes for end-to-end and multi-node tests and benchmarks.

A :class:`Cluster` starts gateway nodes as OS processes (``python -m gateway.cli serve``)
on free ports, each with its own data dir but sharing what a production cluster shares:

* the store (``CIPHERDESK_STORE_URL``, PostgreSQL) and the bus / rate-limit Redis;
* the master keyring (``CIPHERDESK_MASTER_KEY``, the same value on every node);
* the gateway signing identity: the first node creates ``gateway_ed25519.key``, the others
  get a copy (mode 0600) *before* they start, so the verify key pinned by clients is the
  same whichever node answers;
* ``CIPHERDESK_SERVER_PUBLIC_URL``, so the demo tenant's allowed origin is the cluster's
  public URL rather than one node's port.

Nodes are started, waited for (``GET /healthz``), killed (SIGKILL: no graceful anything)
or stopped (SIGTERM) by the test. Each node's output goes to ``<data dir>/node.log``; the
tail is included in every start failure so a broken node explains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.app import IDENTITY_FILE
from gateway.keyfiles import load_or_create_identity
from gateway.protocol import Ack
from gateway.sdk.client import ClosedError
from tests.services import free_port

#: What ``cipherdesk serve`` says when its port is taken (gateway/cli/main.py ``_check_port``).
PORT_TAKEN = "is already in use; pick another with --port"


def serves_identity_of(base: str, data_dir: Path) -> bool:
    """True when the gateway at ``base`` signs with the identity stored in ``data_dir``
    (a subprocess told a probed-free port can lose it to another process)."""
    path = data_dir / IDENTITY_FILE
    if not path.exists():
        return False
    try:
        with urllib.request.urlopen(f"{base}/.well-known/cipherdesk.json", timeout=1) as resp:
            served = json.loads(resp.read())["verify_key"]
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False
    return served == load_or_create_identity(path).verify_key_b64


ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "http://chat.cipherdesk.test"


def new_master_key() -> str:
    """A fresh master key in the ``CIPHERDESK_MASTER_KEY`` format."""
    from crypto.envelope import MasterKey

    return MasterKey.generate().to_b64()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@dataclass
class Node:
    name: str
    port: int
    data_dir: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "node.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *self.args,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                ok = resp.status == 200 and json.loads(resp.read()).get("ok") is True
        except (OSError, urllib.error.URLError, ValueError):
            return False
        # The port was probed free, then handed to a subprocess: make sure the server
        # answering is this node (its own signing identity), not whoever took the port.
        return ok and self.alive and serves_identity_of(self.url, self.data_dir)

    async def wait_healthy(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        retries = 3
        while time.monotonic() < deadline:
            if not self.alive and retries and PORT_TAKEN in self.log_tail():
                # Another process bound the probed port first: a new port, same node.
                retries -= 1
                self.port = free_port()
                self.start()
                continue
            if not self.alive:
                raise RuntimeError(
                    f"gateway node {self.name} exited with {self.proc and self.proc.returncode}"
                    f":\n{self.log_tail()}"
                )
            if await asyncio.to_thread(self.healthy):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"gateway node {self.name} not healthy in {within}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the node vanishes mid-whatever, like a crashed machine."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Cluster:
    """Gateway nodes sharing store, bus, keys and identity; see the module docstring."""

    workdir: Path
    store_url: str
    bus_url: str = "memory://"
    ratelimit_url: str = "memory://"
    master_key: str = field(default_factory=new_master_key)
    public_url: str = PUBLIC_URL
    extra_env: dict[str, str] = field(default_factory=dict)
    #: TOML written to ``<workdir>/config.toml`` and passed with ``--config`` to every node.
    config_toml: str = ""
    nodes: list[Node] = field(default_factory=list)
    initialised: bool = False  # an installation exists in the shared store (cli "init" ran)

    @property
    def config_args(self) -> list[str]:
        if not self.config_toml:
            return []
        path = self.workdir / "config.toml"
        if not path.exists():
            path.write_text(self.config_toml, encoding="utf-8")
        return ["--config", str(path)]

    def env(self) -> dict[str, str]:
        env = _base_env()
        env.update(
            CIPHERDESK_STORE_URL=self.store_url,
            CIPHERDESK_BUS_URL=self.bus_url,
            CIPHERDESK_RATELIMIT_URL=self.ratelimit_url,
            CIPHERDESK_MASTER_KEY=self.master_key,
            CIPHERDESK_SERVER_PUBLIC_URL=self.public_url,
        )
        env.update(self.extra_env)
        return env

    def add_node(self, name: str | None = None, port: int | None = None) -> Node:
        name = name or f"node{len(self.nodes)}"
        node = Node(name, port or free_port(), self.workdir / name, self.env(), self.config_args)
        node.data_dir.mkdir(parents=True, exist_ok=True)
        if self.nodes:  # share the first node's signing identity
            source = self.nodes[0].data_dir / IDENTITY_FILE
            if not source.exists():
                raise RuntimeError("start the first node before adding others")
            target = node.data_dir / IDENTITY_FILE
            shutil.copyfile(source, target)
            target.chmod(0o600)
        self.nodes.append(node)
        return node

    async def start(self, count: int, within: float = 30.0) -> list[Node]:
        """Start ``count`` nodes: the first alone (it migrates the empty database and
        creates the identity), then the rest at once."""
        first = self.add_node() if not self.nodes else self.nodes[0]
        if not first.alive:
            first.start()
            await first.wait_healthy(within)
        others = [self.add_node() for _ in range(count - len(self.nodes))]
        for node in others:
            node.start()
        await asyncio.gather(*(node.wait_healthy(within) for node in others))
        return self.nodes

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    @property
    def verify_key(self) -> str:
        """The gateway verify key (base64) every node signs its hello with."""

        return load_or_create_identity(self.nodes[0].data_dir / IDENTITY_FILE).verify_key_b64

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """Run ``cipherdesk <args>`` against the shared store (no bus: offline command).
        The first call creates the installation (``cipherdesk init``) if no node has yet:
        administrative commands refuse to create one themselves."""
        if args[:1] != ("init",) and not self.initialised:
            self.initialised = True
            self.cli("init", timeout=timeout)
        env = self.env()
        env["CIPHERDESK_BUS_URL"] = "memory://"
        env["CIPHERDESK_RATELIMIT_URL"] = "memory://"
        admin_dir = self.workdir / "cli"
        admin_dir.mkdir(exist_ok=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                *args,
                "--data-dir",
                str(admin_dir),
                *self.config_args,
            ],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"cipherdesk {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def add_agent(
        self, email: str, password: str, *, tenant: str = "demo", role: str = "agent"
    ) -> str:
        """Create an agent through the CLI; returns its TOTP secret."""
        out = self.cli(
            "agent",
            "add",
            email,
            "--tenant",
            tenant,
            "--role",
            role,
            "--password-stdin",
            stdin=password + "\n",
        )
        found = re.search(r"[?&]secret=([A-Z2-7]+)", out)
        if found is None:
            raise RuntimeError(f"no TOTP secret in the CLI output:\n{out}")
        return found.group(1)


async def login(node_url: str, email: str, password: str, totp_secret: str) -> str:
    """``POST /api/login`` with a fresh TOTP code; returns the bearer session token."""
    import aiohttp
    import pyotp

    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            otp = pyotp.TOTP(totp_secret).now()
            async with http.post(
                f"{node_url}/api/login",
                json={"email": email, "password": password, "otp": otp},
            ) as resp:
                body = await resp.json()
                if resp.status == 200:
                    return body["token"]
            # A code is accepted once per time step: wait for the next one and retry.
            await asyncio.sleep(30 - time.time() % 30 + 0.2)
        raise RuntimeError(f"login failed: {resp.status} {body}")


async def stream_then_kill(
    customer: Any, node: Node, text: Callable[[int], str], *, count: int, min_acks: int
) -> tuple[dict[str, int], list[str]]:
    """The customer sends ``count`` messages (ids ``c-0000``…) without pausing; once at
    least ``min_acks`` are acked the node is SIGKILLed mid-stream. Returns the acks received
    before the kill (id -> seq) and every id the customer tried to send."""
    acks: dict[str, int] = {}
    sent: list[str] = []

    async def stream() -> None:
        for i in range(count):
            msg_id = f"c-{i:04d}"
            sent.append(msg_id)
            try:
                result = await customer.send_text(text(i), msg_id=msg_id, timeout=10)
            except (ClosedError, ConnectionError, TimeoutError):
                return
            if isinstance(result, Ack):
                acks[result.id] = result.seq

    streamer = asyncio.create_task(stream())
    for _ in range(2000):
        if len(acks) >= min_acks or streamer.done():
            break
        await asyncio.sleep(0.01)
    node.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(streamer, 15)
    return dict(acks), sent
