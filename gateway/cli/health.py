"""``cipherdesk health``: probe a running gateway's ``/healthz`` or ``/readyz``.

For places that need an exit status rather than an HTTP call: the systemd unit's
``ExecStartPost`` (``systemctl start`` returns once the node is ready), container
healthchecks, deployment scripts waiting for a node before moving on to the next.
Standard library only (urllib), so it works in the slim image without extra tools.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from typing import Any

from gateway.cli.common import CliError

DEFAULT_BASE = "http://127.0.0.1:8080"


def probe(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """One request: (healthy, short description) — never raises for network trouble."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
            body = json.loads(resp.read() or b"{}")
            return resp.status == 200, json.dumps(body, separators=(",", ":"))
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}")
            failing = sorted(k for k, c in detail.get("checks", {}).items() if not c.get("ok"))
            return False, f"HTTP {exc.code}; failing: {', '.join(failing) or '?'}"
        except ValueError:
            return False, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"unreachable ({type(exc).__name__})"


def cmd_health(args: argparse.Namespace) -> None:
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CliError("--url must start with http:// or https://")
    url = f"{base}/readyz" if args.ready else f"{base}/healthz"
    deadline = time.monotonic() + args.wait
    while True:
        ok, detail = probe(url)
        if ok:
            print(f"{url}: ok")
            return
        if time.monotonic() >= deadline:
            raise CliError(f"{url}: not {'ready' if args.ready else 'alive'}: {detail}")
        time.sleep(0.5)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    health = sub.add_parser("health", help="probe a running gateway (/healthz or /readyz)")
    health.add_argument("--url", default=DEFAULT_BASE, help=f"gateway base URL ({DEFAULT_BASE})")
    health.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    health.add_argument(
        "--wait", type=float, default=0.0, help="keep trying for this many seconds before failing"
    )
    health.set_defaults(func=cmd_health)
