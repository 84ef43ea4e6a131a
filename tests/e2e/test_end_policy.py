"""The signed end policy (issue 13, policy at the ends): the gateway compiles the tenant's
policy for the widget and console engines, the tenant's admins sign it offline, and the
gateway serves only a document the tenant key signed for this tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto.e2e import TenantSigningKey, verify_policy
from gateway.policy.end import END_KINDS
from gateway.policy.engine import PolicyEngine
from gateway.protocol import Msg
from gateway.sdk.client import ServerError
from gateway.sdk.e2e import PolicyBlocked
from tests.e2e.test_e2e_mode import E2ETenant, _cli
from tests.e2e.test_e2e_mode import e2e as e2e
from tests.gateway.helpers import bearer


async def _end_policy(e2e: E2ETenant) -> dict:
    async with e2e.http.get(f"{e2e.gw.base}/api/e2e/policy", headers=e2e.admin) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _put(e2e: E2ETenant, body: str, sig: str) -> tuple[int, dict]:
    async with e2e.http.put(
        f"{e2e.gw.base}/api/e2e/policy", json={"body": body, "sig": sig}, headers=e2e.admin
    ) as r:
        return r.status, await r.json()


async def test_the_tenant_signs_the_end_policy_and_widgets_get_it(e2e: E2ETenant) -> None:
    async with e2e.http.patch(
        f"{e2e.gw.base}/api/tenant",
        json={"policy": {"actions": {"phone": "mask", "fraud": {"customer": "block"}}}},
        headers=e2e.admin,
    ) as r:
        assert r.status == 200, await r.text()
    answer = await _end_policy(e2e)
    assert answer["signed"] is None and answer["current"] is False
    document = json.loads(answer["document"])
    assert document["tenant"] == "demo" and document["v"] == 1
    assert document["actions"]["phone"] == ["mask", "mask"]
    assert document["actions"]["fraud"] == ["block", "block"]
    assert set(END_KINDS) <= set(document["actions"])
    assert "CN" in document["phone"]["regions"] and "DE" in document["iban"]
    terms = {k[0] for k in document["keywords"]}
    assert "刷单" in terms  # the built-in lexicon, folded as the Python matcher keys it

    # Refused: another key's signature, a document of another tenant, a forged body.
    text = answer["document"]
    stranger = TenantSigningKey.generate()
    status, body = await _put(e2e, text, stranger.sign_policy(text))
    assert (status, body["error"]["code"]) == (400, "policy_bad_signature")
    other = text.replace('"tenant":"demo"', '"tenant":"acme"')
    status, body = await _put(e2e, other, e2e.signing.sign_policy(other))
    assert (status, body["error"]["code"]) == (400, "policy_wrong_tenant")
    status, body = await _put(e2e, "[1]", e2e.signing.sign_policy("[1]"))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    # Patterns of the tenant's own (a hand-edited rule, here one that never ends) are
    # refused: the rules and e-mail patterns must be this gateway's.
    edited = json.loads(text)
    edited["rules"]["otp.context"]["after"] = "(?<value>(a+)+b)"
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "rules" in body["error"]["message"]
    edited = json.loads(text)
    edited["window"]["asked"] = []  # no question read with its answer
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "window" in body["error"]["message"]
    edited = json.loads(text)
    edited["hidden"] = []  # security codes masked by the kind's style: their last digits
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "hidden" in body["error"]["message"]
    edited = json.loads(text)
    edited["links"]["lookalike"] = []  # Cyrillic hosts would pass for the tenant's own
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "links" in body["error"]["message"]
    edited = json.loads(text)
    edited["address"]["divisions"] = "北京市"  # no address anchored on any other division
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "address" in body["error"]["message"]
    edited = json.loads(text)
    edited["names"]["words"]["common_words"].append("张伟")  # a name read as a word
    forged = json.dumps(edited, ensure_ascii=False, separators=(",", ":"))
    status, body = await _put(e2e, forged, e2e.signing.sign_policy(forged))
    assert (status, body["error"]["code"]) == (400, "policy_malformed")
    assert "names" in body["error"]["message"]
    # A certificate signature never passes for a policy one (separate contexts).
    status, body = await _put(e2e, text, e2e.signing.sign_body(text))
    assert (status, body["error"]["code"]) == (400, "policy_bad_signature")
    # Agents cannot store one.
    await e2e.gw.login("ana@example.com")
    async with e2e.http.put(
        f"{e2e.gw.base}/api/e2e/policy",
        json={"body": text, "sig": e2e.signing.sign_policy(text)},
        headers=bearer(e2e.gw.tokens["ana@example.com"]),
    ) as r:
        assert r.status == 403

    sig = e2e.signing.sign_policy(text)
    status, body = await _put(e2e, text, sig)
    assert status == 200 and body == {"body": text, "sig": sig, "issued": document["issued"]}
    assert (await _end_policy(e2e))["current"] is True
    async with e2e.http.get(f"{e2e.gw.base}/api/public/e2e/demo") as r:
        public = await r.json()
    assert public["policy"]["body"] == text
    assert verify_policy(e2e.signing.verify_key, text, public["policy"]["sig"], tenant="demo")
    audit = await e2e.gw.svc.store.query_audit(tenant_id="demo", action="e2e.policy_signed")
    assert len(audit) == 1

    # The tenant's policy changes: the signed one is no longer current until signed again.
    async with e2e.http.patch(
        f"{e2e.gw.base}/api/tenant",
        json={"policy": {"actions": {"phone": "allow"}}},
        headers=e2e.admin,
    ) as r:
        assert r.status == 200
    assert (await _end_policy(e2e))["current"] is False

    # A new verify key voids the policy signed with the old one.
    async with e2e.http.put(
        f"{e2e.gw.base}/api/e2e",
        json={"verify_key": stranger.verify_key},
        headers=e2e.admin,
    ) as r:
        assert r.status == 200 and (await r.json())["policy"] is None


async def test_the_cli_signs_the_end_policy(tmp_path: Path, e2e: E2ETenant) -> None:
    """``cipherdesk e2e sign-policy`` shows what the document does, signs it on the
    admin's machine and uploads it; a second run finds it current."""
    key_file = tmp_path / "demo-signing.json"
    env = {"CIPHERDESK_E2E_PASSPHRASE": "correct horse battery staple"}
    rc, out, err = await _cli(
        "e2e", "keygen", "--tenant", "demo", "--out", str(key_file), "--strength",
        "interactive", **env,
    )  # fmt: skip
    assert rc == 0, err
    verify_key = out.split("verify key: ")[1].split()[0]
    async with e2e.http.put(
        f"{e2e.gw.base}/api/e2e", json={"verify_key": verify_key}, headers=e2e.admin
    ) as r:
        assert r.status == 200
    token = await e2e.admin_token("e2e sign-policy")
    sign = ("e2e", "sign-policy", "--key", str(key_file), "--url", e2e.gw.base)
    rc, out, err = await _cli(*sign, "--token", token, stdin="n\n", **env)
    assert rc == 0, err
    assert "card" in out and "mask   / block" in out and "phone regions: CN" in out
    assert (await _end_policy(e2e))["signed"] is None  # answered "n": nothing uploaded
    rc, out, err = await _cli(*sign, "--token", token, "--yes", **env)
    assert rc == 0, err
    assert "signed;" in out
    answer = await _end_policy(e2e)
    assert answer["current"] is True
    assert verify_policy(
        verify_key, answer["signed"]["body"], answer["signed"]["sig"], tenant="demo"
    )
    rc, out, err = await _cli(*sign, "--token", token, "--yes", **env)
    assert rc == 0 and "is current" in out


async def test_what_an_end_flags_alerts_supervisors_without_text(e2e: E2ETenant) -> None:
    """An end's policy flagged a message (``emsg.flags``): supervisors get a flag with the
    kinds; its "original" is end-to-end encrypted (no text at the gateway). A kind the
    tenant's policy does not have is refused and nothing is stored."""
    agent = await e2e.staff("ana@example.com")
    customer, chat = await e2e.chat_with(agent)
    ack = await customer.send_text("兼职刷单，日结", flags=["fraud"])
    (flag,) = await e2e.gw.svc.store.list_flags("demo")
    assert (flag.chat_id, flag.seq, flag.kinds) == (chat, ack.seq, ["fraud"])
    await e2e.gw.login("sue@example.com", role="supervisor")
    async with e2e.http.get(
        f"{e2e.gw.base}/api/flags/{flag.id}/original",
        headers=bearer(e2e.gw.tokens["sue@example.com"]),
    ) as r:
        body = await r.json()
    assert r.status == 200 and body["original"] is None and body["e2e"] is True
    for flags in (["no_such_kind"], ["split:fraud"], ["split:no_such_kind"]):
        with pytest.raises(ServerError) as refused:
            await customer.send_text("hello", flags=flags)
        assert refused.value.code == "bad_flags", flags
    assert len(await e2e.gw.svc.store.list_flags("demo", unreviewed_only=False)) == 1
    # a number the end completed across its messages: the kinds inspect mode names
    split = await customer.send_text("**** ****", flags=["card", "split:card"])
    flags = await e2e.gw.svc.store.list_flags("demo", unreviewed_only=False)
    assert [(f.seq, f.kinds) for f in flags if f.seq == split.seq] == [
        (split.seq, ["card", "split:card"])
    ]


async def test_sdk_ends_run_the_policy_before_sealing(e2e: E2ETenant) -> None:
    """A bot or third-party end built on the SDK passes the tenant's engine: the card is
    sealed masked, a fraud script is flagged for supervisors, an agent's card number is
    blocked before anything is sent; each end reads its messages with the ones before (a
    card in two messages, a bare answer to a question)."""
    engine = PolicyEngine()
    agent = await e2e.staff("ana@example.com")
    agent.policy = engine
    customer, chat_id = await e2e.chat_with(agent, policy=engine)

    ack = await customer.send_text("card 4111 1111 1111 1111 please")
    relayed = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == ack.seq)
    assert agent.read(relayed).text == "card **** **** **** 1111 please"
    flagged = await customer.send_text("兼职刷单返利，日结")
    (flag,) = await e2e.gw.svc.store.list_flags("demo")
    assert flag.seq == flagged.seq and flag.kinds == ["fraud"]
    with pytest.raises(PolicyBlocked) as blocked:
        await agent.send_text(chat_id, "the card is 5555 5555 5555 4444")
    assert blocked.value.kinds == ("card",)
    chat = await e2e.gw.svc.store.get_chat(chat_id)
    assert chat is not None and chat.last_seq == flagged.seq  # nothing was sent

    # A card in two messages: each end reads its own last messages with the new one.
    await customer.send_text("my card 4111 1111")
    second = await customer.send_text("1111 1111 thanks")
    relayed = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == second.seq)
    assert agent.read(relayed).text == "**** **** thanks"
    flags = await e2e.gw.svc.store.list_flags("demo")
    assert [f.kinds for f in flags if f.seq == second.seq] == [["card", "split:card"]]
    await agent.send_text(chat_id, "the card is 5555 5555")
    with pytest.raises(PolicyBlocked) as blocked:
        await agent.send_text(chat_id, "5555 4444")
    assert blocked.value.kinds == ("card",)

    # The agent asks for a passport number; the customer's end reads the bare answer with
    # the question it opened.
    asked = await agent.send_text(chat_id, "请提供您的护照号码")
    question = await customer.wait_for(lambda f: isinstance(f, Msg) and f.seq == asked.seq)
    assert customer.read(question).text == "请提供您的护照号码"
    answer = await customer.send_text("E12345678")
    relayed = await agent.wait_for(lambda f: isinstance(f, Msg) and f.seq == answer.seq)
    assert agent.read(relayed).text == "*****5678"
