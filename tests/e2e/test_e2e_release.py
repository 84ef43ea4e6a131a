"""Releasing a masked transcript of an end-to-end chat to the helpdesk (issue 13): off by
default; when the tenant allows it, the assigned agent's console releases the texts it
masked with the close, the gateway screens them once more for the plugin audience, audits
the release, and the helpdesk plugins get them (tested through the Zendesk fake). Without a
release, a helpdesk still gets a usable transcript: each e2e message named, with its size."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plugins.api import ChatClosed, event_from_dict
from tests.e2e.test_e2e_mode import E2ETenant, e2e_tenant
from tests.gateway.helpers import bearer
from tests.plugins.fakes import ZendeskServer, eventually


async def _close(e2e: E2ETenant, email: str, chat: str, body: dict[str, Any]) -> tuple[int, dict]:
    async with e2e.http.post(
        f"{e2e.gw.base}/api/e2e/chats/{chat}/close",
        json=body,
        headers=bearer(e2e.gw.tokens[email]),
    ) as r:
        return r.status, await r.json()


async def _closed_event(e2e: E2ETenant) -> ChatClosed:
    svc = e2e.gw.svc
    deadline = time.monotonic() + 5
    while True:
        items = [
            i
            for i in await svc.store.list_events(tenant_id="demo", limit=100)
            if i.event_type == "chat.closed" and i.plugin == "zendesk"
        ]
        if items:
            event = event_from_dict(await svc.plugins.decode(items[0]))
            assert isinstance(event, ChatClosed)
            return event
        assert time.monotonic() < deadline, "no chat.closed event"
        await asyncio.sleep(0.05)


@pytest.fixture
async def e2e(tmp_path: Path) -> AsyncIterator[E2ETenant]:
    """An e2e tenant whose plugins may reach the loopback vendor fakes."""
    async with e2e_tenant(tmp_path, plugins={"allow_private_targets": True}) as tenant:
        yield tenant


async def test_an_agent_releases_a_masked_transcript_at_close(e2e: E2ETenant) -> None:
    zendesk = await ZendeskServer().start()
    try:
        svc = e2e.gw.svc
        await svc.plugins.configure(
            "demo",
            "zendesk",
            {"base_url": zendesk.url, "email": zendesk.email, "api_token": zendesk.token},
        )
        agent = await e2e.staff("ana@example.com")
        customer, chat = await e2e.chat_with(agent)
        await customer.send_text("我叫张三，电话 13812345678")
        await customer.send_text("and my card is 4111 1111 1111 1111")
        await agent.send_text(chat, "收到")
        release = {"release": [{"seq": 1, "text": "我叫张三，电话 13812345678"}]}

        # Off by default: refused, and the chat stays open.
        status, body = await _close(e2e, "ana@example.com", chat, release)
        assert (status, body["error"]["code"]) == (403, "release_disabled")
        async with e2e.http.put(
            f"{e2e.gw.base}/api/e2e", json={"release_transcripts": True}, headers=e2e.admin
        ) as r:
            assert r.status == 200 and (await r.json())["release_transcripts"] is True

        # Only e2e messages of this chat, only by the assigned agent.
        for bad in (
            [{"seq": 99, "text": "x"}],  # not a message of this chat
            [{"seq": 1, "text": "x"}, {"seq": 1, "text": "y"}],  # the same message twice
        ):
            status, body = await _close(e2e, "ana@example.com", chat, {"release": bad})
            assert (status, body["error"]["code"]) == (400, "bad_release")
        await e2e.staff("bob@example.com")
        status, body = await _close(e2e, "bob@example.com", chat, release)
        assert (status, body["error"]["code"]) == (403, "not_assigned")
        chat_row = await svc.store.get_chat(chat)
        assert chat_row is not None and chat_row.state == "active"

        status, body = await _close(e2e, "ana@example.com", chat, release)
        assert status == 200 and body == {"chat": chat, "state": "closed", "released": 1}
        status, body = await _close(e2e, "ana@example.com", chat, release)
        assert (status, body["error"]["code"]) == (409, "chat_closed")

        event = await _closed_event(e2e)
        first, second, third = sorted(event.transcript, key=lambda line: line.seq)
        # The gateway screened the released text for the plugin audience (names and
        # phones are masked for plugins by default).
        assert first.released and first.e2e and first.text == "我叫张*，电话 138****5678"
        assert second.e2e and not second.released and second.text == "" and second.size
        assert third.sender == "agent" and third.e2e and not third.released
        audit = await svc.store.query_audit(tenant_id="demo", action="e2e.transcript_released")
        assert len(audit) == 1 and audit[0].target == chat

        # The helpdesk got it: the released line masked, the others named with their size.
        def comments() -> list[str]:
            return [
                json.dumps(r.json, ensure_ascii=False)
                for r in zendesk.requests
                if r.method == "PUT" and "comment" in json.dumps(r.json)
            ]

        async def commented() -> bool:
            return bool(comments())

        await eventually(commented, seconds=20)
        (comment,) = comments()
        assert "138****5678" in comment and "13812345678" not in comment
        assert f"#2: [end-to-end encrypted, {second.size} bytes]" in comment
        assert "4111 1111 1111 1111" not in comment
    finally:
        await zendesk.close()
