"""The end policy engine (gateway/web/policy.js) against the gateway's (gateway/policy), same
corpus, same invocation: throughput on bench/filter.py's chat lines and evasion corpus, the
worst case of one pass on a 4,000-character adversarial message (what a customer's browser
spends before sealing), and how often the two engines agree exactly.

    .venv/bin/python bench/end_policy.py [--lines 20000]

Needs ``node`` on the PATH (the JavaScript runs in Node's V8, the engine Chromium uses).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.policy.end import END_KINDS, end_document  # noqa: E402
from gateway.policy.engine import PolicyEngine  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_filter", ROOT / "bench" / "filter.py")
assert _spec is not None and _spec.loader is not None
bench_filter = importlib.util.module_from_spec(_spec)
sys.modules["bench_filter"] = bench_filter
_spec.loader.exec_module(bench_filter)

ADVERSARIAL = [
    "4 ", "1\n", "one ", "一", "一 ", "1l", "&#52;", "%34", "\u202e4 1", "4111111111111111",
    "4" + " " * 12, "1x", "4111 1111 1111 1111 ", "138 0013 8000, ", "a.", "a@", "a.b@c.",
    "验证码", "password: ", "api key: ", "-----begin ", "1" * 17 + "x ", "yao san ",
    "http://a", "a.com", "a-b.", "https://x@", "\u0430.", "a。", "尾号", "前三位1",
    "收件人张三，地址北京市朝阳区建国路88号，", "号", "1号", "1 号 ", "北京市", "北京市朝阳区1号",
    "阳光小区1栋", "建国路1号", "1 a b street ", "flat 1, 1/f, ", "p.o. box 1 ",
    "我叫", "收件人张", "我是张三的", "张三先生", "张三，13800138000 ", "Regards,\nJane Doe\n",
    "Mr. A ", "thanks, ", "my wife Jane ", "Tom Hanks here. ", "ship to Jane Doe, ",
    "1月1日出生", "生日 1990年1月", "京A12345", "出生", "dob march ",
]  # fmt: skip

_RUNNER = r"""
const fs = require('fs');
const input = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
// what a page loads before policy.js: the default document (its carried patterns and data)
globalThis.CipherdeskPolicyDefault = input.doc;
eval(fs.readFileSync(process.argv[2], 'utf8') + ';global.CP = CipherdeskPolicy;');
const engine = CP.engine(input.doc);
const results = input.lines.map((t) => engine.evaluate(t, 'customer').findings.map(
  (f) => [f.kind, f.start, f.end]));
let best = Infinity;
for (let r = 0; r < 3; r++) {
  const start = process.hrtime.bigint();
  for (const t of input.lines) engine.evaluate(t, 'customer');
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
let worst = 0, worstUnit = '';
for (const u of input.adversarial) {
  const t = u.repeat(Math.ceil(4000 / u.length)).slice(0, 4000);
  let b = Infinity;
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    engine.evaluate(t, 'customer');
    b = Math.min(b, Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (b > worst) { worst = b; worstUnit = u; }
}
process.stdout.write(JSON.stringify({ results, seconds: best, worst, worstUnit }));
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None:
        print("node is not installed: nothing to compare")
        return 1
    positives, decoys = bench_filter.build_evasions(2000, args.seed)
    corpus = [line for line, _ in bench_filter.build_corpus(args.lines, args.seed)]
    lines = corpus + [p[0] for p in positives] + decoys
    engine = PolicyEngine()
    kinds = set(END_KINDS) | {r.category for r in engine.rules}

    python_results = [engine.evaluate(t, "customer") for t in lines]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for text in lines:
            engine.evaluate(text, "customer")
        best = min(best, time.perf_counter() - start)
    worst_py, worst_py_unit = 0.0, ""
    for unit in ADVERSARIAL:
        text = (unit * (4000 // len(unit) + 1))[:4000]
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            engine.evaluate(text, "customer")
            runs.append(time.perf_counter() - start)
        if min(runs) > worst_py:
            worst_py, worst_py_unit = min(runs), unit

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "input.json"
        script = Path(tmp) / "runner.js"
        data.write_text(
            json.dumps({"doc": end_document(engine, None, 0), "lines": lines,
                        "adversarial": ADVERSARIAL}, ensure_ascii=False),
            "utf-8",
        )  # fmt: skip
        script.write_text(_RUNNER, "utf-8")
        done = subprocess.run(
            [node, str(script), str(ROOT / "gateway" / "web" / "policy.js"), str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
    js = json.loads(done.stdout)
    exact = sum(
        js_findings == [[f.kind, f.start, f.end] for f in py.findings if f.kind in kinds]
        for js_findings, py in zip(js["results"], python_results, strict=True)
    )
    print(f"corpus: {len(lines)} lines ({len(corpus)} chat lines, {len(positives)} evasions, "
          f"{len(decoys)} decoys); default policy")  # fmt: skip
    print(f"python (gateway)   : {len(lines) / best:10.0f} lines/s")
    print(f"javascript (ends)  : {len(lines) / js['seconds']:10.0f} lines/s "
          f"({best / js['seconds']:.2f}x the gateway's engine)")  # fmt: skip
    print(f"worst 4,000-char message: python {worst_py * 1000:.1f} ms ({worst_py_unit!r}), "
          f"javascript {js['worst']:.1f} ms ({js['worstUnit']!r}); target < 50 ms")  # fmt: skip
    print(f"exact agreement on the end kinds: {exact}/{len(lines)} ({exact / len(lines):.4f})")
    return 0 if js["worst"] < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
