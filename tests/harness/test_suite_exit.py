"""The suite itself: a red run must end and report, never hang after its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_gateway_left_running_does_not_keep_pytest_alive() -> None:
    """aiosqlite's worker threads are non-daemon: before the session-finish hook in
    tests/conftest.py, this run never exited (the CI time limit would have ended it)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(Path(__file__).with_name("leaky_gateway.py")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "FAILED tests/harness/leaky_gateway.py::test_fails_with_a_gateway" in proc.stdout
    assert "stopped 2 SQLite connection(s) a test left open" in proc.stdout
