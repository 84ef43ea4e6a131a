"""Every fuzz harness in ``make test``: its stored corpus (seeds and the inputs of every
crash found so far) replayed in-process, then a short deterministic atheris run.

``make fuzz`` runs the same harnesses for long (see the Makefile); this keeps them
working and the fixed crashes fixed on every test run.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
HARNESSES = sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))
#: executions of the smoke run per harness (a few seconds each on a shared CI core)
SMOKE_RUNS = int(os.environ.get("CIPHERDESK_FUZZ_SMOKE_RUNS", "3000"))


def test_every_parser_of_outside_bytes_has_a_harness() -> None:
    assert HARNESSES == [
        "config",
        "e2e",
        "frames",
        "identity",
        "plugin_config",
        "policy",
        "sealed",
    ]


@pytest.mark.parametrize("name", HARNESSES)
def test_corpus_replays_cleanly(name: str) -> None:
    harness = importlib.import_module(f"tests.fuzz.fuzz_{name}")
    inputs = sorted((HERE / "corpus" / name).iterdir())
    assert inputs, f"no seed corpus for {name}"
    for path in inputs:
        harness.test_one_input(path.read_bytes())


@pytest.mark.parametrize("name", HARNESSES)
def test_short_fuzz_run_finds_nothing(name: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    work = tmp_path / "corpus"
    work.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "tests.fuzz.run",
        name,
        f"-runs={SMOKE_RUNS}",
        "-seed=1",
        "-max_len=2048",
        "-timeout=20",
        f"-artifact_prefix={tmp_path}/",
        str(work),
        str(HERE / "corpus" / name),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=170, check=False)
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert f"Done {SMOKE_RUNS} runs" in proc.stderr, tail
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
