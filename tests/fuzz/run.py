"""Run one fuzz harness under atheris (libFuzzer): ``python -m tests.fuzz.run NAME [args]``.

``NAME`` is a module ``tests/fuzz/fuzz_NAME.py`` exposing ``test_one_input(data: bytes)``;
``tests/fuzz/dicts/NAME.dict`` (syntax tokens) is passed as ``-dict`` when present; the
remaining arguments go to libFuzzer unchanged (``-runs=N``, ``-max_total_time=S``,
``-seed=1``, corpus directories, ``-artifact_prefix=``...). Our packages are instrumented
for coverage (``gateway``, ``crypto``, ``auth``, ``plugins``) — third-party code is not,
so ``cov``/``ft`` count edges of cipherdesk's own code.

Why a runner and not ``atheris.Setup`` in every harness: the harnesses stay importable
without instrumentation, so ``tests/fuzz/test_fuzz_smoke.py`` replays every stored corpus
and regression input in-process, fast and deterministic.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import atheris

OURS = ["gateway", "crypto", "auth", "plugins", "tests.fuzz"]


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m tests.fuzz.run NAME [libFuzzer args]")
    name, rest = argv[1], argv[2:]
    dictionary = Path(__file__).parent / "dicts" / f"{name}.dict"
    if dictionary.exists() and not any(a.startswith("-dict=") for a in rest):
        rest = [f"-dict={dictionary}", *rest]
    with atheris.instrument_imports(include=OURS):
        harness = importlib.import_module(f"tests.fuzz.fuzz_{name}")
    atheris.Setup([f"fuzz_{name}", *rest], harness.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
