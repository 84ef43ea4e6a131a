"""``cipherdesk agent/tenant/audit`` through a real subprocess, then a real HTTP login."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.gateway.helpers import start_gateway, totp_code

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a very decent passphrase 77"


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        # not "-m gateway.cli.main": that loads the module twice (__main__ and gateway.cli.main),
        # so CliError raised by subcommand modules would not be the one main() catches.
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
        timeout=60,
    )


def _secret(stdout: str) -> str:
    uri = re.search(r"otpauth URI: (\S+)", stdout).group(1)
    return parse_qs(urlsplit(uri).query)["secret"][0]


async def test_agent_add_then_login_over_http(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    out = cli(
        data,
        "agent",
        "add",
        "Admin@Example.com",
        "--tenant",
        "demo",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0, out.stderr
    assert "▀" in out.stdout or "▄" in out.stdout  # terminal QR
    codes = re.findall(r"^\s+([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})$", out.stdout, re.M)
    assert len(codes) == 10
    assert PASSWORD not in out.stdout + out.stderr
    secret = _secret(out.stdout)

    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/login",
                json={
                    "email": "admin@example.com",
                    "password": PASSWORD,
                    "otp": totp_code(secret, time.time()),
                },
            ) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            assert body["agent"]["role"] == "admin" and body["agent"]["totp_confirmed"]
            async with http.post(
                f"{base}/api/login",
                json={"email": "admin@example.com", "password": PASSWORD, "otp": codes[0]},
            ) as r:
                assert r.status == 200
        # CLI hashes with production argon2 parameters; the test gateway uses cheaper
        # ones, so the first login rehashed transparently.
        assert await svc.store.query_audit(action="password.rehashed")
        created = await svc.store.query_audit(action="agent.created")
        assert created[0].actor == "cli"
    finally:
        await runner.cleanup()


def test_tenant_and_agent_commands(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    out = cli(
        data,
        "agent",
        "add",
        "x@acme.example",
        "--tenant",
        "acme",
        "--role",
        "agent",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 2 and "no tenant 'acme'" in out.stderr
    assert "Traceback" not in out.stderr

    out = cli(
        data,
        "tenant",
        "add",
        "acme",
        "--name",
        "Acme",
        "--origin",
        "https://acme.example",
        "https://www.acme.example",
        "--identity-mode",
        "enforced",
        "--identity-secret-stdin",
        stdin="k" * 40 + "\n",
    )
    assert out.returncode == 0, out.stderr
    out = cli(data, "tenant", "add", "acme", "--name", "Acme")
    assert out.returncode == 2 and "already exists" in out.stderr
    out = cli(data, "tenant", "add", "bad", "--name", "B", "--origin", "not a url")
    assert out.returncode == 2
    out = cli(data, "tenant", "list")
    assert "acme" in out.stdout and "enforced" in out.stdout and "k" * 40 not in out.stdout

    out = cli(
        data,
        "agent",
        "add",
        "x@acme.example",
        "--tenant",
        "acme",
        "--role",
        "agent",
        "--password-stdin",
        stdin="password\n",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    out = cli(
        data,
        "agent",
        "add",
        "x@acme.example",
        "--tenant",
        "acme",
        "--role",
        "supervisor",
        "--name",
        "Xavier",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0, out.stderr
    out = cli(data, "agent", "list", "--tenant", "acme")
    assert "x@acme.example" in out.stdout and "supervisor" in out.stdout
    assert "pending" in out.stdout
    for action in ("disable", "unlock", "reset-mfa"):
        out = cli(data, "agent", action, "X@acme.example")
        assert out.returncode == 0, (action, out.stderr)
    out = cli(data, "agent", "disable", "ghost@acme.example")
    assert out.returncode == 2 and "no agent" in out.stderr
    out = cli(data, "audit", "--tenant", "acme", "--limit", "50")
    assert out.returncode == 0
    for action in (
        "tenant.created",
        "agent.created",
        "agent.disabled",
        "login.unlocked",
        "mfa.reset",
    ):
        assert action in out.stdout, action
    assert PASSWORD not in out.stdout and "k" * 40 not in out.stdout


def test_commands_refuse_a_data_dir_without_an_installation(tmp_path):
    """A mistyped --data-dir used to create a new installation (new master key, empty
    database) and put the new agent there."""
    typo = tmp_path / "dta"
    out = cli(typo, "agent", "list", "--tenant", "demo")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"cipherdesk: {typo} holds no cipherdesk installation (no master key); check "
        "--data-dir (or $CIPHERDESK_DATA_DIR, --config), or create one with 'cipherdesk serve'"
    ]
    assert not typo.exists()  # nothing was created
    created = cli(typo, "init")
    assert (created.returncode, created.stdout.strip()) == (
        0,
        f"created a new cipherdesk installation in {typo}",
    )
    again = cli(typo, "init")
    assert "already holds a cipherdesk installation" in again.stdout
    assert cli(typo, "agent", "list", "--tenant", "demo").returncode == 0


def test_a_data_dir_that_is_a_file_is_one_line_not_a_traceback(tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("oops")
    out = cli(not_a_dir, "init")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("cipherdesk: ") and str(not_a_dir) in out.stderr


def test_end_of_input_at_the_password_prompt_is_one_line(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    # no --password-stdin: the interactive prompt meets a closed standard input
    out = cli(
        data, "agent", "add", "p@example.com", "--tenant", "demo", "--role", "agent", stdin=""
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "cipherdesk: no password given: standard input is closed (pipe one with --password-stdin)"
    )


async def test_agent_invite_prints_a_link_the_invitee_redeems_over_http(tmp_path):
    """``cipherdesk agent invite``: the operator never learns the password or the second
    factor; the invitee chooses both through the link."""
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    out = cli(data, "agent", "invite", "Nina@Example.com", "--tenant", "demo", "--role", "agent")
    assert out.returncode == 0, out.stderr
    token = re.search(r"/invite#(cdi_[A-Za-z0-9_-]{43})\s*$", out.stdout, re.M).group(1)
    assert "otpauth" not in out.stdout and "secret" not in out.stdout.lower()
    refused = cli(data, "agent", "invite", "x@example.com", "--tenant", "nope", "--role", "agent")
    assert refused.returncode == 2 and "no tenant 'nope'" in refused.stderr
    assert "Traceback" not in refused.stderr

    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/invite/open", json={"token": token}) as r:
                assert r.status == 200, await r.text()
                opened = await r.json()
            assert (opened["email"], opened["role"]) == ("nina@example.com", "agent")
            async with http.post(
                f"{base}/api/invite/redeem",
                json={
                    "token": token,
                    "password": PASSWORD,
                    "enrollment": opened["enrollment"],
                    "otp": totp_code(opened["secret"], time.time()),
                },
            ) as r:
                assert r.status == 201, await r.text()
        agent = await svc.store.get_agent_by_email("nina@example.com")
        assert agent is not None and agent.totp_confirmed and agent.role == "agent"
        created = await svc.store.query_audit(action="invite.created")
        assert created[0].actor == "cli"
    finally:
        await runner.cleanup()
