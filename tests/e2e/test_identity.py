"""Widget identity verification over real sockets (issue 3, item 7).

A tenant ``shop`` (allowed origin ``https://shop.example``) is configured the way an admin
does it — ``PATCH /api/tenant`` with an admin's session — and customers connect with the
SDK from that origin, sending the company's signed token in the ``open`` frame. An agent
of the tenant watches the queue. The gateway clock is a :class:`FakeClock`, so expiry is
exact.

Covered, per mode (off / optional / enforced): a valid token verifies the chat (welcome
and the agent's queue entry say so, with the identity's name); enforced without a token
and any bad token (forged, expired, ``alg: none``, unknown secret) get close 4403 and no
chat row; a token (nonce) used twice is refused the second time; rotation with two
secrets; optional without a token opens unverified; off ignores tokens entirely.
(What plugins see of the identity is covered by the plugin suites.)
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from auth.identity import sign_identity
from gateway.protocol import QueueEntry, Welcome
from gateway.sdk.client import AgentClient, ClosedError, CustomerClient
from gateway.services import Services
from tests.e2e.conftest import queue_with, running_gateway
from tests.gateway.helpers import FakeClock, bearer, make_tenant

TENANT = "shop"
ORIGIN = "https://shop.example"
SECRET = "shop-identity-secret-" + "k" * 24  # ≥ 32 bytes
OLD_SECRET = "shop-identity-secret-old-" + "o" * 24
UNKNOWN_SECRET = "someone-elses-identity-secret-" + "x" * 24
FORBIDDEN = 4403
ALL_STATES = ("queued", "active", "closed")


@dataclass
class Gateway:
    base: str
    svc: Services
    clock: FakeClock
    http: aiohttp.ClientSession
    admin_token: str
    agent: AgentClient

    async def configure(self, mode: str, secrets: list[str] | None = None) -> None:
        """Set the tenant's identity mode (and secrets) through the admin API."""
        body: dict[str, Any] = {"identity_mode": mode}
        if secrets is not None:
            body["identity_secrets"] = secrets
        async with self.http.patch(
            f"{self.base}/api/tenant", json=body, headers=bearer(self.admin_token)
        ) as resp:
            text = await resp.text()
            assert resp.status == 200, text
        for secret in secrets or ():
            assert secret not in text  # secrets are never echoed back

    def token(self, secret: str = SECRET, **claims: Any) -> str:
        """A token as the company's backend signs it: fresh nonce, valid for 5 minutes."""
        payload: dict[str, Any] = {
            "sub": "user-1042",
            "name": "Ada Lovelace",
            "email": "ada@shop.example",
            "exp": int(self.clock.now) + 300,
            "nonce": uuid.uuid4().hex,
        }
        payload.update(claims)
        return sign_identity(secret, payload)

    async def open(self, identity: str | None) -> tuple[CustomerClient, Welcome]:
        customer = CustomerClient(
            self.base, TENANT, origin=ORIGIN, gateway_key=self.svc.identity.verify_key_b64
        )
        await customer.connect()
        try:
            welcome = await customer.open(
                profile={"name": "Form Name", "topic": "billing"}, identity=identity
            )
        except BaseException:
            await customer.aclose()
            raise
        return customer, welcome

    async def refused(self, identity: str | None) -> ClosedError:
        """Open must end with close 4403 and leave no chat row behind."""
        before = await self.chat_count()
        customer = CustomerClient(
            self.base, TENANT, origin=ORIGIN, gateway_key=self.svc.identity.verify_key_b64
        )
        await customer.connect()
        try:
            with pytest.raises(ClosedError) as closed:
                await customer.open(identity=identity)
        finally:
            await customer.aclose()
        assert closed.value.code == FORBIDDEN, closed.value
        assert customer.chat is None
        assert await self.chat_count() == before, "a refused open created a chat row"
        return closed.value

    async def chat_count(self) -> int:
        return len(await self.svc.store.list_chats(TENANT, states=ALL_STATES))

    async def queue_entry(self, chat: str) -> QueueEntry:
        snap = await queue_with(self.agent, chat)
        return next(entry for entry in snap.chats if entry.chat == chat)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    clock = FakeClock()
    limits = {"ws_connect_per_ip": "10000/m", "concurrent_per_ip": 1000}
    async with (
        running_gateway(tmp_path, clock=clock, ratelimit={"limits": limits}) as shared,
        aiohttp.ClientSession() as http,
    ):
        await make_tenant(shared.svc, TENANT, [ORIGIN])
        await shared.login("admin@shop.example", role="admin", tenant=TENANT)
        agent = await shared.agent("agent@shop.example", tenant=TENANT)
        try:
            admin_token = shared.tokens["admin@shop.example"]
            yield Gateway(shared.base, shared.svc, clock, http, admin_token, agent)
        finally:
            await agent.aclose()


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


BAD_TOKEN_CODES = {  # the verifier's refusal code, carried in the close reason
    "forged": "bad_signature",
    "bad_signature_bytes": "bad_signature",
    "expired": "expired",
    "alg_none": "bad_alg",
    "unknown_secret": "bad_signature",
    "too_long_lived": "lifetime_too_long",
    "garbage": "malformed",
}


def _bad_token(gw: Gateway, kind: str) -> str:
    good = gw.token()
    header, payload, signature = good.split(".")
    if kind == "forged":  # claims changed after signing, signature kept
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "user-1"  # impersonate somebody else
        return f"{header}.{_b64(claims)}.{signature}"
    if kind == "bad_signature_bytes":
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return f"{header}.{payload}.{flipped}"
    if kind == "expired":
        token = gw.token(exp=int(gw.clock.now) + 60)
        gw.clock.advance(60 + 31)  # past exp + the verifier's 30 s leeway
        return token
    if kind == "alg_none":
        claims = {
            "sub": "user-1042",
            "name": "Ada Lovelace",
            "exp": int(gw.clock.now) + 300,
            "nonce": uuid.uuid4().hex,
        }
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    if kind == "unknown_secret":
        return gw.token(secret=UNKNOWN_SECRET)
    if kind == "too_long_lived":
        return gw.token(exp=int(gw.clock.now) + 30 * 24 * 3600)
    if kind == "garbage":
        return "not-a-token"
    raise AssertionError(kind)


# ---------------------------------------------------------------------------- valid tokens


@pytest.mark.parametrize("mode", ["optional", "enforced"])
async def test_valid_token_verifies_the_chat_and_the_agent_sees_who(gw: Gateway, mode: str) -> None:
    await gw.configure(mode, [SECRET])
    customer, welcome = await gw.open(gw.token())
    assert welcome.verified is True and welcome.state == "queued"

    entry = await gw.queue_entry(welcome.chat)
    assert entry.verified is True
    assert entry.name == "Ada Lovelace"  # the verified identity wins over the form's name
    assert entry.topic == "billing"

    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.verified is True
    who = await gw.svc.chats.customer_of(chat)
    assert who is not None and who["verified"] is True
    assert who["user_id"] == "user-1042" and who["email"] == "ada@shop.example"
    await customer.aclose()


async def test_token_without_name_shows_the_user_id(gw: Gateway) -> None:
    await gw.configure("enforced", [SECRET])
    token = sign_identity(
        SECRET, {"sub": "user-77", "exp": int(gw.clock.now) + 60, "nonce": uuid.uuid4().hex}
    )
    customer, welcome = await gw.open(token)
    entry = await gw.queue_entry(welcome.chat)
    assert welcome.verified and entry.verified and entry.name == "user-77"
    await customer.aclose()


# ----------------------------------------------------------------------- enforced, no token


async def test_enforced_without_token_gets_no_chat(gw: Gateway) -> None:
    await gw.configure("enforced", [SECRET])
    closed = await gw.refused(None)
    assert "signed-in customer" in (closed.reason or "")
    assert await gw.chat_count() == 0
    snap = await gw.agent.queue()
    assert snap.chats == []


# ------------------------------------------------------------------------------ bad tokens


@pytest.mark.parametrize("mode", ["optional", "enforced"])
@pytest.mark.parametrize(
    "kind",
    [
        "forged",
        "bad_signature_bytes",
        "expired",
        "alg_none",
        "unknown_secret",
        "too_long_lived",
        "garbage",
    ],
)
async def test_bad_token_is_refused_4403(gw: Gateway, mode: str, kind: str) -> None:
    await gw.configure(mode, [SECRET])
    closed = await gw.refused(_bad_token(gw, kind))
    assert f"({BAD_TOKEN_CODES[kind]})" in (closed.reason or ""), closed.reason
    assert await gw.chat_count() == 0
    # the refusal did not poison anything: a good token still works afterwards
    customer, welcome = await gw.open(gw.token())
    assert welcome.verified
    await customer.aclose()


async def test_token_just_inside_the_leeway_still_verifies(gw: Gateway) -> None:
    await gw.configure("enforced", [SECRET])
    token = gw.token(exp=int(gw.clock.now) + 60)
    gw.clock.advance(60 + 29)  # past exp, inside the 30 s clock-skew leeway
    customer, welcome = await gw.open(token)
    assert welcome.verified
    await customer.aclose()


# ---------------------------------------------------------------------------------- replay


@pytest.mark.parametrize("mode", ["optional", "enforced"])
async def test_same_token_twice_is_refused_the_second_time(gw: Gateway, mode: str) -> None:
    await gw.configure(mode, [SECRET])
    token = gw.token()
    first, welcome = await gw.open(token)
    assert welcome.verified
    closed = await gw.refused(token)  # captured and replayed while the first chat is live
    assert "already used" in (closed.reason or "")
    await first.aclose()
    await gw.refused(token)  # and after the first connection is gone
    assert await gw.chat_count() == 1


async def test_same_nonce_in_a_different_token_is_refused(gw: Gateway) -> None:
    """Replay protection is by nonce, not by token bytes: re-signing the same nonce with
    other claims (or re-encoding it) does not make it fresh."""
    await gw.configure("enforced", [SECRET])
    nonce = uuid.uuid4().hex
    first, _ = await gw.open(gw.token(nonce=nonce))
    await gw.refused(gw.token(nonce=nonce, sub="user-9", name="Mallory"))
    await first.aclose()


async def test_nonce_spaces_are_per_tenant(gw: Gateway) -> None:
    """Another tenant's use of a nonce does not burn it here (and vice versa)."""
    await make_tenant(gw.svc, "other", [ORIGIN])
    await gw.configure("enforced", [SECRET])
    nonce = uuid.uuid4().hex
    assert await gw.svc.store.remember_nonce("other", nonce, gw.clock.now + 300, gw.clock.now)
    customer, welcome = await gw.open(gw.token(nonce=nonce))
    assert welcome.verified
    await customer.aclose()


# -------------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("mode", ["optional", "enforced"])
async def test_secret_rotation_two_secrets_then_old_removed(gw: Gateway, mode: str) -> None:
    await gw.configure(mode, [OLD_SECRET])
    c0, w0 = await gw.open(gw.token(secret=OLD_SECRET))
    assert w0.verified

    # rotation starts: new secret first, old still listed → both verify
    await gw.configure(mode, [SECRET, OLD_SECRET])
    c1, w1 = await gw.open(gw.token(secret=OLD_SECRET))
    c2, w2 = await gw.open(gw.token(secret=SECRET))
    assert w1.verified and w2.verified

    # rotation ends: old removed → tokens signed with it are refused, new still verify
    await gw.configure(mode, [SECRET])
    await gw.refused(gw.token(secret=OLD_SECRET))
    c3, w3 = await gw.open(gw.token(secret=SECRET))
    assert w3.verified
    assert await gw.chat_count() == 4
    for client in (c0, c1, c2, c3):
        await client.aclose()


# ------------------------------------------------------------------- optional and off modes


async def test_optional_without_token_opens_unverified(gw: Gateway) -> None:
    await gw.configure("optional", [SECRET])
    customer, welcome = await gw.open(None)
    assert welcome.verified is False
    entry = await gw.queue_entry(welcome.chat)
    assert entry.verified is False
    assert entry.name == "Form Name"  # only the (unverified) form data
    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.verified is False and chat.identity_sealed is None
    await customer.aclose()


@pytest.mark.parametrize("kind", ["valid", "forged", "alg_none", "garbage"])
async def test_off_mode_ignores_tokens_entirely(gw: Gateway, kind: str) -> None:
    await gw.configure("off", [SECRET])
    token = gw.token() if kind == "valid" else _bad_token(gw, kind)
    customer, welcome = await gw.open(token)
    assert welcome.verified is False
    entry = await gw.queue_entry(welcome.chat)
    assert entry.verified is False and entry.name == "Form Name"
    chat = await gw.svc.store.get_chat(welcome.chat)
    assert chat is not None and chat.verified is False and chat.identity_sealed is None
    await customer.aclose()
    if kind == "valid":
        # off mode does not even record the nonce: the same token works again
        again, welcome2 = await gw.open(token)
        assert welcome2.verified is False
        await again.aclose()


async def test_off_mode_without_secret_and_without_token(gw: Gateway) -> None:
    customer, welcome = await gw.open(None)  # the tenant's default mode is off
    assert welcome.verified is False
    await customer.aclose()


async def test_optional_mode_without_any_secret_refuses_a_token_cleanly(gw: Gateway) -> None:
    """An admin may set ``optional`` before any secret exists; a customer then presenting
    a token must get a clean 4403 (the token cannot be verified), not a server error."""
    await gw.configure("optional")
    closed = await gw.refused(gw.token())
    assert "identity" in (closed.reason or "")
    customer, welcome = await gw.open(None)
    assert welcome.verified is False
    await customer.aclose()


async def test_enforced_needs_a_secret(gw: Gateway) -> None:
    async with gw.http.patch(
        f"{gw.base}/api/tenant", json={"identity_mode": "enforced"}, headers=bearer(gw.admin_token)
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_secret"
    customer, welcome = await gw.open(None)  # still off
    assert welcome.verified is False
    await customer.aclose()
