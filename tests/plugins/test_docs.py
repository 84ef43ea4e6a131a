"""docs/PLUGINS.md stays in step with the code: its snippets run."""

from __future__ import annotations

import re
import time
from pathlib import Path

from aiohttp import web

from plugins.api import ChatClosed
from plugins.registry import Registry
from plugins.webhook import signature_header

DOC = (Path(__file__).resolve().parents[2] / "docs" / "PLUGINS.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def block(marker: str) -> str:
    return next(b for b in BLOCKS if marker in b)


def test_receiver_snippet_verifies_our_signatures():
    ns: dict = {}
    exec(block("def verify_signature").split("# aiohttp handler")[0], ns)
    body = b'{"type":"chat.closed"}'
    header = signature_header(["s1", "s0"], int(time.time()), body)
    assert ns["verify_signature"]("s0", header, body)
    assert not ns["verify_signature"]("s0", header, body + b" ")
    old = signature_header(["s1"], int(time.time()) - 301, body)
    assert not ns["verify_signature"]("s1", old, body)


async def test_minimal_plugin_from_the_docs_works(http):
    ns: dict = {}
    exec(block("plugin = Factory(INFO, Hello)"), ns)
    reg = Registry()
    assert reg.register(ns["plugin"], source="docs"), reg.problems
    got = []

    async def receive(request: web.Request) -> web.Response:
        got.append(
            (
                request.headers["Authorization"],
                request.headers["Idempotency-Key"],
                await request.json(),
            )
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/in", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        config, secrets = reg.validate(
            "hello", {"url": f"http://127.0.0.1:{port}/in", "token": "t0k"}, allow_private=True
        )
        plugin = reg.create("hello", config, secrets, http)
        await plugin.deliver(
            ChatClosed(
                tenant_id="a",
                chat_id="c",
                occurred_at=1.0,
                event_id="k1",
                transcript=((1, "customer", 1.0, "hi"),),
                csat=4,
            )
        )
    finally:
        await runner.cleanup()
    assert got == [("Bearer t0k", "k1", {"chat": "c", "csat": 4, "messages": 1})]
