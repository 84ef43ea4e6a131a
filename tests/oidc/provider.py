"""Runs the local OpenID provider (``provider.mjs``, node-oidc-provider) for a test."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.gateway.helpers import free_port
from tests.services import unavailable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@dataclass
class LocalProvider:
    """A live provider: its issuer URL, client credentials and the accounts it knows
    (``set_accounts`` rewrites them; the provider reads the file on every lookup)."""

    issuer: str
    client_id: str
    client_secret: str
    accounts_file: Path

    def set_accounts(self, accounts: dict[str, dict[str, object]]) -> None:
        self.accounts_file.write_text(json.dumps(accounts), "utf-8")


@contextmanager
def local_provider(tmp: Path, redirect_uri: str, accounts: dict) -> Iterator[LocalProvider]:
    """Start ``provider.mjs`` on a free loopback port; stopped on exit. Without Node or
    the npm package (``make setup-dev`` runs ``npm ci``): skipped locally, failed in CI."""
    if shutil.which("node") is None or not (REPO / "node_modules" / "oidc-provider").is_dir():
        unavailable("the local OpenID provider needs node and node_modules/oidc-provider")
    port = free_port()
    secret = secrets.token_urlsafe(24)
    provider = LocalProvider(f"http://127.0.0.1:{port}", "cipherdesk", secret, tmp / "idp.json")
    provider.set_accounts(accounts)
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": redirect_uri,
        "ACCOUNTS": str(provider.accounts_file),
        "NODE_PATH": str(REPO / "node_modules"),
    }
    process = subprocess.Popen(
        ["node", str(HERE / "provider.mjs")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        for line in process.stdout:
            if "oidc provider ready" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the local OpenID provider did not start")
        else:
            raise RuntimeError("the local OpenID provider exited")
        yield provider
    finally:
        process.terminate()
        process.wait(10)
