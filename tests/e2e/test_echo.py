"""A client that shows its own messages asks for no echo (``key.echo: false``, issue 18):
the widget for the customer's messages, the console for the agent's replies.

The echo is one seal and one frame per message the client does not need. Without it the
ack carries seq and time; a message the policy changed still comes back with the masked
text; other connections and a resume still get every message.
"""

from __future__ import annotations

import time

from gateway.protocol import Ack, Msg
from gateway.sdk.client import ResumeInfo
from gateway.ws.echo import EchoFilter
from tests.e2e.conftest import SocketGateway, accepted_chat

CARD = "4111 1111 1111 1111"
PHONE = "13812345678"


async def test_only_a_changed_message_comes_back_and_the_ack_has_its_time(
    gw: SocketGateway,
) -> None:
    alice = await gw.agent("alice@example.com")
    customer, welcome = await accepted_chat(gw, alice, echo=False)

    before = time.time()
    ack = await customer.send_text("my parcel is late")
    assert isinstance(ack, Ack) and ack.seq == 1
    assert ack.ts is not None and before - 1 <= ack.ts <= time.time() + 1
    got = await alice.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert got.text == "my parcel is late" and got.ts == ack.ts

    await customer.send_text(f"card {CARD}")  # masked: the customer learns what was sent
    await alice.send_text(welcome.chat, "Looking into it")
    await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == 3)
    await customer.ping()
    # Delivery is in seq order: an echo of 1 would have come before 3.
    left = [f for f in customer.drain() if isinstance(f, Msg)]
    assert [(f.seq, f.sender) for f in left] == [(2, "customer")]
    assert CARD not in left[0].text and left[0].text.endswith("1111")

    # A second connection to the chat (another tab) asked for echoes: it gets them all.
    assert customer.token is not None
    other = gw.customer(resume=ResumeInfo(welcome.chat, customer.token, 3))
    await other.connect()
    await customer.send_text("are you there?")
    mine = await other.wait_for(lambda f: isinstance(f, Msg) and f.seq == 4)
    assert mine.sender == "customer" and mine.text == "are you there?"

    # A resume replays from last_seq, own messages included: nothing is missing.
    back = gw.customer(resume=ResumeInfo(welcome.chat, customer.token, 0), echo=False)
    await back.connect()
    replayed = [
        await back.wait_for(lambda f, s=s: isinstance(f, Msg) and f.seq == s) for s in (1, 4)
    ]
    assert [m.text for m in replayed] == ["my parcel is late", "are you there?"]
    for client in (customer, other, back, alice):
        await client.aclose()


def _msg(msg_id: str, text: str, sender: str = "customer", **kw: object) -> Msg:
    return Msg(seq=1, sender=sender, text=text, ts=0.0, id=msg_id, chat="c1", **kw)  # type: ignore[arg-type]


def test_the_filter_swallows_only_an_unchanged_echo_once_and_stays_bounded() -> None:
    echoes = EchoFilter("customer", limit=2)
    echoes.expect("c1", "a", "hello")
    echoes.expect("c1", "b", "card 4111 1111 1111 1111")
    assert echoes.swallows(_msg("a", "hello"))
    assert not echoes.swallows(_msg("a", "hello"))  # once
    assert not echoes.swallows(_msg("b", "card **** **** **** 1111"))  # masked: shown
    assert not echoes.swallows(_msg("b", "card 4111 1111 1111 1111"))  # and forgotten
    echoes.expect("c1", "c", "x")
    assert not echoes.swallows(_msg("c", "x", sender="agent"))  # someone else's
    assert not echoes.swallows(_msg("c", "", c="ciphertext"))  # e2e: never
    for i in range(3):
        echoes.expect("c1", f"m{i}", "y")
    assert not echoes.swallows(_msg("m0", "y"))  # aged out past the limit
    assert echoes.swallows(_msg("m1", "y")) and echoes.swallows(_msg("m2", "y"))


def test_an_agents_filter_tells_its_chats_apart() -> None:
    echoes = EchoFilter("agent")
    echoes.expect("c1", "r1", "on its way")
    elsewhere = Msg(seq=1, sender="agent", text="on its way", ts=0.0, id="r1", chat="c2")
    assert not echoes.swallows(elsewhere)
    assert not echoes.swallows(_msg("r1", "on its way"))  # the customer's, same id
    assert echoes.swallows(_msg("r1", "on its way", sender="agent"))


async def test_an_agent_without_echoes_gets_only_a_changed_reply_back(
    gw: SocketGateway,
) -> None:
    """The console asks for no echo: an unchanged reply is acked with its seq and time and
    not sent back; a masked one is; the agent's other console and the customer get all."""
    await gw.update_tenant_settings(policy={"actions": {"phone": {"agent": "mask"}}})
    await gw.login("alice@example.com")
    alice = await gw.connect("alice@example.com", echo=False)
    other_tab = await gw.connect("alice@example.com")
    customer, welcome = await gw.accepted_chat(alice)
    chat = welcome.chat

    before = time.time()
    ack = await alice.send_text(chat, "Looking into it")
    assert isinstance(ack, Ack) and ack.seq == 1 and ack.chat == chat
    assert ack.ts is not None and before - 1 <= ack.ts <= time.time() + 1
    seen = await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == 1)
    assert seen.text == "Looking into it" and seen.ts == ack.ts

    await alice.send_text(chat, f"call me on {PHONE}")  # masked by the policy: comes back
    await customer.send_text("thanks")
    await alice.wait_for(lambda f: isinstance(f, Msg) and f.seq == 3)
    await alice.ping()
    left = [f for f in alice.drain() if isinstance(f, Msg)]
    assert [(f.seq, f.sender) for f in left] == [(2, "agent")]
    assert PHONE not in left[0].text and left[0].text.endswith("5678")

    tab = [
        await other_tab.wait_for(lambda f, s=s: isinstance(f, Msg) and f.seq == s) for s in (1, 2)
    ]
    assert tab[0].text == "Looking into it" and tab[1].text == left[0].text
    for client in (alice, other_tab, customer):
        await client.aclose()
