"""``cipherdesk plugins …`` through a subprocess: enable patches, several --secret-stdin
keys, --clear finishes a secret rotation, --allow-private-network is the operator's
switch (without it a loopback target is refused), describe and test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.plugins.fakes import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gateway.cli.main import main; main(sys.argv[1:])",
            *args,
            "--data-dir",
            str(data_dir),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        env=env,
    )


async def run(*args: str, stdin: str | None = None, data: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(cli, data, *args, stdin=stdin)


async def test_enable_patch_secrets_private_network_describe_and_test(tmp_path):
    data = tmp_path / "data"
    assert (await run("init", data=data)).returncode == 0
    receiver = await WebhookReceiver(secret="whsec-new-123456").start()
    try:
        url = receiver.url + "/hook"
        out = await run(
            "plugins",
            "enable",
            "webhook",
            "--tenant",
            "demo",
            "--set",
            f"url={url}",
            "--secret-stdin",
            "secret",
            stdin="whsec-old-123456\n",
            data=data,
        )
        assert out.returncode == 2 and "must be an https URL" in out.stderr  # no allowance

        out = await run(
            "plugins",
            "enable",
            "webhook",
            "--tenant",
            "demo",
            "--set",
            f"url={url}",
            "--set",
            "events=chat.closed",
            "--allow-private-network",
            "--secret-stdin",
            "secret",
            "--secret-stdin",
            "previous_secret",
            stdin="whsec-new-123456\nwhsec-old-123456\n",
            data=data,
        )
        assert out.returncode == 0, out.stderr
        assert "whsec" not in out.stdout + out.stderr
        assert "previous_secret = ***" in out.stdout and "secret = ***" in out.stdout
        assert "private addresses" in out.stderr

        # patch: only the timeout changes; the rotation finishes with --clear
        out = await run(
            "plugins",
            "enable",
            "webhook",
            "--tenant",
            "demo",
            "--set",
            "timeout=5",
            "--clear",
            "previous_secret",
            data=data,
        )
        assert out.returncode == 0, out.stderr
        assert "events = chat.closed" in out.stdout and "timeout = 5.0" in out.stdout
        assert "previous_secret" not in out.stdout and f"url = {url}" in out.stdout

        out = await run("plugins", "describe", "freshdesk", data=data)
        assert out.returncode == 0, out.stderr
        assert "priority" in out.stdout and ">= 1, <= 4" in out.stdout
        assert "chat.opened" in out.stdout
        # the Freshdesk automation wiring (token auth, body template) is in the help
        assert "X-Cipherdesk-Token" in out.stdout and "{{ticket.latest_private_comment}}" in (
            out.stdout
        )

        out = await run("plugins", "test", "webhook", "--tenant", "demo", data=data)
        assert out.returncode == 0, out.stderr
        assert "test chat.closed delivered to webhook" in out.stdout
        [event] = receiver.accepted.values()
        assert event["type"] == "chat.closed" and event["chat_id"].startswith("cipherdesk-test-")
    finally:
        await receiver.close()
