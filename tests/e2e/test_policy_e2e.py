"""Policy end to end through real chats (issue 12): a card number in the profile name, an
evasion in a message and a phone number reach the agent, the store and a signed webhook
exactly as the policy says -- masked where it must be, per audience."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import ChatEvent, Flag, Msg
from gateway.sdk.client import AgentClient, CustomerClient
from gateway.transcripts import open_text
from tests.gateway.helpers import login, make_agent, start_gateway
from tests.plugins.fakes import WebhookReceiver, eventually

CARD = "4111111111111111"
SPELT_CARD = "四一一一\n一一一一 一一一一 一一一一"  # Chinese numerals, newline separator
MOBILE = "13812345678"


@pytest.fixture
async def setup(tmp_path: Path):
    receiver = await WebhookReceiver(secret="whsec-policy-e2e").start()
    runner, base, svc = await start_gateway(tmp_path)
    # the receiver listens on loopback: the operator's private-network allowance
    await svc.plugins.configure(
        "demo",
        "webhook",
        {"url": receiver.url + "/hook", "secret": "whsec-policy-e2e"},
        allow_private=True,
    )
    _, secret, password = await make_agent(svc, "pia@example.com")
    async with aiohttp.ClientSession() as http:
        token = await login(http, base, "pia@example.com", password, secret, time.time())
    agent = AgentClient(base, token=token, gateway_key=svc.identity.verify_key_b64)
    await agent.connect()
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    await customer.connect()
    try:
        yield svc, agent, customer, receiver, tmp_path, base
    finally:
        await customer.aclose()
        await agent.aclose()
        await runner.cleanup()
        await receiver.close()


async def _queued(agent: AgentClient, chat: str):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        snap = await agent.queue()
        for entry in snap.chats:
            if entry.chat == chat:
                return entry
        await asyncio.sleep(0.05)
    raise AssertionError("chat never queued")


async def _assigned(agent: AgentClient, customer) -> str:
    """A new chat of ``customer``, accepted by ``agent``: its id."""
    welcome = await customer.open()
    await _queued(agent, welcome.chat)
    await agent.accept(welcome.chat)
    return welcome.chat


def _events(receiver: WebhookReceiver, kind: str) -> list[dict]:
    return [e for e in receiver.accepted.values() if e["type"] == kind]


async def test_profile_fields_and_evasions_are_masked_for_agent_store_and_webhook(setup):
    svc, agent, customer, receiver, tmp, _ = setup
    welcome = await customer.open(
        profile={
            "name": f"card {CARD}",
            "topic": "ID 11010519491231002X",
            "email": "zhang.san@example.com",
        }
    )
    # Agent's queue (what the console header shows): the card in the name is masked.
    entry = await _queued(agent, welcome.chat)
    assert CARD not in entry.name and entry.name.endswith("1111") and "*" in entry.name
    assert "11010519491231002X" not in (entry.topic or "")
    await agent.accept(welcome.chat)

    await customer.send_text(f"我的卡号 {SPELT_CARD}，电话 {MOBILE}")
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert "一一一一" not in got.text and "四" not in got.text  # spelt card fully masked
    assert MOBILE in got.text  # the agent sees the phone number (default: allow)

    await agent.close_chat(welcome.chat, f"refunded to {CARD}")
    closed = await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "closed")
    assert closed.reason == "[removed]"  # agents may not send card numbers (default: block)

    # Store: the stored (sealed) message is the masked one; the file holds no plaintext.
    key = await svc.keys.get(welcome.chat)
    [stored] = await svc.store.messages_after(welcome.chat, 0)
    stored_text = open_text(key, welcome.chat, stored.msg_id, stored.body_sealed)
    assert stored_text == got.text
    chat = await svc.store.get_chat(welcome.chat)
    assert CARD not in (chat.close_reason or "")

    # Webhook: profile name masked, e-mail and phone masked for the vendor (audiences).
    await eventually(lambda: _events(receiver, "chat.closed"), 10)
    payloads = list(receiver.accepted.values())
    blob = repr(payloads)
    for secret in (CARD, "一一一一", MOBILE, "zhang.san@", "11010519491231002X"):
        assert secret not in blob, secret
    [message] = _events(receiver, "chat.message")
    assert "138****5678" in message["text"]
    opened = _events(receiver, "chat.opened")[0]
    assert opened.get("customer") is None or CARD not in repr(opened["customer"])
    [closed_event] = _events(receiver, "chat.closed")
    assert "138****5678" in closed_event["transcript"][0]["text"]
    assert CARD not in closed_event["close_reason"]

    await svc.store.close()  # checkpoint the WAL, then scan the database file
    data = b"".join(p.read_bytes() for p in (tmp / "data").glob("cipherdesk.db*"))
    for needle in (CARD, MOBILE, "四一一一", "zhang.san"):
        assert needle.encode() not in data, needle
    await svc.store.open()


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (
            "refund to IBAN DE89\n3704\n0044\n0532\n0130\n00 please",
            "refund to IBAN ****\n****\n****\n****\n**30\n00 please",
        ),
        (
            "護照號碼：E12345678，老身份证 110105491231002",
            "護照號碼：*****5678，老身份证 ***********1002",
        ),
        (
            "card four triple one triple one triple one triple one triple one, thanks",
            "card **** ****** *** ****** *** ****** *** ****** *** ****** ***, thanks",
        ),
        (
            "SSN 123-45-6789, 驾驶证号 110105194912310021",
            "SSN ***-**-6789, 驾驶证号 **************0021",
        ),
        (
            "IBAN G B 8 2 W E S T 1 2 3 4 5 6 9 8 7 6 5 4 3 2",
            "IBAN * * * * * * * * * * * * * * * * * * 5 4 3 2",
        ),
        ("护照号 E12345678 和 G87654321", "护照号 *****5678 和 *****4321"),
        (
            "身份证后四位002X，前面11010519491231",
            "身份证后四位****，前面**************",
        ),
        (
            "身份证前六位110105，中间19491231，后四位002X",
            "身份证前六位******，中间********，后四位****",
        ),
        (
            "身份证110105开头，后面是19491231002X",
            "身份证******开头，后面是************",
        ),
        (
            "card ends in one one one one, starts with 4111 1111 1111",
            "card ends in *** *** *** ***, starts with **** **** ****",
        ),
    ],
    ids=[
        "iban-newlines",
        "passport-legacy-id",
        "card-read-aloud",
        "ssn-licence",
        "iban-spaced",
        "joined-values",
        "id-in-two-parts",
        "id-in-three-parts",
        "id-after-named-head",
        "card-in-parts-in-words",
    ],
)
async def test_an_evasion_is_masked_for_agent_store_and_webhook(setup, sent: str, shown: str):
    svc, agent, customer, receiver, _, _ = setup
    chat = await _assigned(agent, customer)
    await customer.send_text(sent)
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == shown
    key = await svc.keys.get(chat)
    [stored] = await svc.store.messages_after(chat, 0)
    assert open_text(key, chat, stored.msg_id, stored.body_sealed) == got.text
    await eventually(lambda: _events(receiver, "chat.message"), 10)
    [message] = _events(receiver, "chat.message")
    assert message["text"] == got.text


async def test_card_split_across_messages_is_masked_and_flagged(setup):
    svc, agent, customer, _, _, base = setup

    _, secret, password = await make_agent(svc, "sam@example.com", role="supervisor")
    async with aiohttp.ClientSession() as http:
        token = await login(http, base, "sam@example.com", password, secret, time.time())
    supervisor = AgentClient(base, token=token, gateway_key=svc.identity.verify_key_b64)
    await supervisor.connect()
    try:
        await _assigned(agent, customer)
        await customer.send_text("card 4111 1111")
        await customer.send_text("1111 1111 thanks")
        second = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 2)
        assert second.text == "**** **** thanks"
        flag = await supervisor.wait_for(lambda f: isinstance(f, Flag))
        assert flag.seq == 2 and "split:card" in flag.kinds
    finally:
        await supervisor.aclose()


@pytest.mark.parametrize(
    ("question", "answer", "shown", "for_webhook", "secret"),
    [
        # a passport number: masked for the agent, the store and the webhook
        (
            "请提供您的护照号码，谢谢",
            "好的，E12345678",
            "好的，*****5678",
            "好的，*****5678",
            "E12345678",
        ),
        # a bare name: agents see names (the default table), the helpdesk gets 张*
        ("请提供收件人姓名", "张伟", "张伟", "张*", "张伟"),
        # a date of birth: agents verify customers by it, the helpdesk gets ****-**-**
        ("请问您的出生日期是？", "1990-01-01", "1990-01-01", "****-**-**", "1990-01-01"),
    ],
    ids=["passport-number", "recipient-name", "birth-date"],
)
async def test_an_answer_to_an_agents_question_is_read_with_it_for_agent_store_and_webhook(
    setup, question: str, answer: str, shown: str, for_webhook: str, secret: str
):
    svc, agent, customer, receiver, _, _ = setup
    chat = await _assigned(agent, customer)
    await agent.send_text(chat, question)
    await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    await customer.send_text(answer)
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 2)
    assert got.text == shown
    key = await svc.keys.get(chat)
    stored = (await svc.store.messages_after(chat, 1))[0]
    assert open_text(key, chat, stored.msg_id, stored.body_sealed) == shown
    await eventually(lambda: len(_events(receiver, "chat.message")) == 2, 10)
    texts = [e["text"] for e in _events(receiver, "chat.message")]
    assert for_webhook in texts and secret not in repr(list(receiver.accepted.values()))


async def test_a_flat_a_titled_name_and_a_cued_phone_reach_the_agent_masked_for_the_webhook(
    setup,
):
    _, agent, customer, receiver, _, _ = setup
    await _assigned(agent, customer)
    sent = "send to Mr. Zhang Wei, 阳光小区8栋1单元502室, call me at (415) 555-2671"
    await customer.send_text(sent)
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == sent  # agents see names and addresses (the default table)
    await eventually(lambda: _events(receiver, "chat.message"), 10)
    [message] = _events(receiver, "chat.message")
    assert message["text"] == ("send to Mr. Z**** W**, *************, call me at (415) ***-2671")


async def test_related_given_and_label_names_and_a_postcode_reach_the_agent_masked_for_webhook(
    setup,
):
    _, agent, customer, receiver, _, _ = setup
    await _assigned(agent, customer)
    sent = (
        "收件人是我老公张伟，我姓李，名字叫明，"
        "ship to 1600 Amphitheatre Parkway, Mountain View, CA 94043, "
        "call me at (415) 555-2671 or (415) 555-2672，王五 13900139000"
    )
    await customer.send_text(sent)
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == sent  # agents see names, addresses and phones (the default table)
    await eventually(lambda: _events(receiver, "chat.message"), 10)
    [message] = _events(receiver, "chat.message")
    assert message["text"] == (
        "收件人是我老公张*，我姓李，名字叫*，"
        "ship to **** ************ *******, ******** ****, ** *****, "
        "call me at (415) ***-2671 or (415) ***-2672，王* 139****9000"
    )


async def test_a_date_of_birth_and_a_plate_reach_the_agent_masked_for_the_webhook(setup):
    _, agent, customer, receiver, _, _ = setup
    await _assigned(agent, customer)
    sent = "我的生日是1990年1月1日，车牌京A12345，停在B2"
    await customer.send_text(sent)
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == sent  # agents see both (the default table)
    await eventually(lambda: _events(receiver, "chat.message"), 10)
    [message] = _events(receiver, "chat.message")
    assert message["text"] == "我的生日是*********，车牌京******，停在B2"


async def test_a_phrase_and_its_value_in_two_messages_are_masked_for_the_agent(setup):
    _, agent, customer, receiver, _, _ = setup
    await _assigned(agent, customer)
    await customer.send_text("我的护照号码是：")
    await customer.send_text("E12345678")
    got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == 2)
    assert got.text == "*****5678"
    await eventually(lambda: len(_events(receiver, "chat.message")) == 2, 10)
    assert "E12345678" not in repr(list(receiver.accepted.values()))
