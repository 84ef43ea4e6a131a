"""The real gateway schemathesis fuzzes, and what the checks need to know about it.

The gateway is the production ``create_app`` on 127.0.0.1 (port 0), served by its own
event loop in a background thread so schemathesis' synchronous HTTP client can call it
from the test thread. Its clock is a :class:`FakeClock`: when a call logs the fuzzed admin
out (``/api/logout`` is an operation like any other), :class:`Admin` logs in again with
the TOTP code of the next time step instead of waiting 30 real seconds.

Two tenants: ``acme`` (the fuzzed admin's, with agents, chats, a flag) and ``globex``
(another tenant with its own admin, agents, chats and plugin configuration). Every id
and name of globex is a *sentinel*: :func:`no_cross_tenant_leak` fails any response that
contains one.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from auth.roles import Principal, Role
from auth.totp import TotpVerifier
from gateway.protocol import Profile
from gateway.services import Services
from gateway.store.base import Alert, Tenant
from tests.gateway.helpers import DEFAULT_PASSWORD, FakeClock, start_gateway

#: Cases per operation in ``make test``; ``make api-fuzz`` raises it.
EXAMPLES = int(os.environ.get("CIPHERDESK_API_FUZZ_EXAMPLES", "5"))
STATEFUL_EXAMPLES = int(os.environ.get("CIPHERDESK_API_FUZZ_STATEFUL", "12"))

ADMIN_EMAIL = "ana@acme.test"


@dataclass
class FuzzGateway:
    base: str
    svc: Services
    clock: FakeClock
    loop: asyncio.AbstractEventLoop
    admin_id: str
    admin_totp: str
    sentinels: list[str] = field(default_factory=list)
    calls: int = 0

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the gateway's loop (from the test thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)


async def _seed_chat(svc: Services, tenant: str, agent: Principal, text: str) -> str:
    opened = await svc.chats.open_chat(tenant, profile=Profile(name=f"{tenant} customer"))
    await svc.chats.accept(agent, opened.chat.id)
    await svc.chats.post_customer_message(tenant, opened.chat.id, f"{tenant}-m1", text)
    await svc.chats.post_agent_message(agent, opened.chat.id, f"{tenant}-m2", "收到")
    return opened.chat.id


async def seed_chat(svc: Services, tenant: str, text: str) -> str:
    """One more chat of ``tenant``, taken by its first agent that is not an admin."""
    agent = next(a for a in await svc.store.list_agents(tenant) if a.role == "agent")
    return await _seed_chat(svc, tenant, Principal(agent.id, tenant, Role.AGENT), text)


async def _seed(svc: Services) -> tuple[str, str, list[str]]:
    now = svc.clock()
    for tid, name in (("acme", "Acme Shop"), ("globex", "Globex Hidden Holdings")):
        await svc.store.create_tenant(
            Tenant(id=tid, name=name, created_at=now, allowed_origins=[f"https://{tid}.test"])
        )
    admin = await svc.logins.create_agent(
        ADMIN_EMAIL, "acme", "admin", DEFAULT_PASSWORD, "Ana Admin", actor="test", confirmed=True
    )
    acme_agent = await svc.logins.create_agent(
        "bo@acme.test", "acme", "agent", DEFAULT_PASSWORD, "Bo", confirmed=True
    )
    await _seed_chat(
        svc,
        "acme",
        Principal(acme_agent.agent.id, "acme", Role.AGENT),
        "my card 4111 1111 1111 1111",
    )
    # one open alert per tenant: acme's for ack/resolve (reached through the contract's
    # links from GET /api/alerts); globex's (ids are small integers a fuzzer guesses)
    # names its tenant in its details, so an answer carrying it trips the leak check
    for tid in ("acme", "globex"):
        await svc.store.add_alert(
            Alert(
                tenant_id=tid,
                rule="mass_erasure",
                subject="tenant",
                dedup_key=f"{tid}-seed",
                severity="high",
                ts=now,
                count=5,
                details={"seeded_for": tid},
            )
        )
    sentinels = ["globex", "Globex Hidden Holdings", "globex.test"]
    for email, role in (("gina@globex.test", "admin"), ("gus@globex.test", "agent")):
        creds = await svc.logins.create_agent(
            email, "globex", role, DEFAULT_PASSWORD, f"Globexian {role}", confirmed=True
        )
        sentinels += [creds.agent.id, email]
    gus = await svc.store.get_agent_by_email("gus@globex.test")
    assert gus is not None
    sentinels.append(
        await _seed_chat(
            svc, "globex", Principal(gus.id, "globex", Role.AGENT), "globex secret order 42"
        )
    )
    return admin.agent.id, admin.totp_secret, sentinels


async def lift_passkey_rule(svc: Any) -> None:
    """Switch acme's passkey rule off: the scripted admin has no authenticator to enrol."""
    tenant = await svc.store.get_tenant("acme")
    if tenant is not None and tenant.settings.pop("phishing_resistant_mfa", None) is not None:
        await svc.store.update_tenant(tenant)
        svc.tenants.invalidate("acme")


@dataclass
class Admin:
    """The fuzzed admin's bearer token, renewed when a call ended the session."""

    gw: FuzzGateway
    token: str = ""

    def login(self) -> None:
        if not self.gw.admin_totp:
            self._repair_second_factor()
        self.gw.clock.advance(30)  # a TOTP code is accepted once per time step
        otp = TotpVerifier().current_code(self.gw.admin_totp, self.gw.clock())
        resp = requests.post(
            f"{self.gw.base}/api/login",
            json={"email": ADMIN_EMAIL, "password": DEFAULT_PASSWORD, "otp": otp},
            timeout=30,
        )
        if resp.status_code != 200:
            why = self.gw.run(
                self.gw.svc.store.query_audit(tenant_id="acme", action="login.failed", limit=1)
            )
            raise AssertionError(
                f"the fuzzed admin cannot log in again: {resp.text} {why[0].details if why else ''}"
            )
        self.token = resp.json()["token"]

    def headers(self) -> dict[str, str]:
        if not self.token:
            self.login()
        return {"Authorization": f"Bearer {self.token}"}

    def after(self, response: Any) -> None:
        self.gw.calls += 1
        if response.status_code == 401:
            self.token = ""  # logged out by the call itself: log in before the next one
        elif response.status_code == 403 and '"code":"passkey_' in response.text.replace(" ", ""):
            # the fuzzer switched on acme's passkey rule (a valid call); this scripted admin
            # has no authenticator to enrol, so the rule is lifted and the loop goes on
            self.gw.run(lift_passkey_rule(self.gw.svc))
        elif response.status_code == 200 and '"link"' in (response.text or ""):
            # a reset-mfa the fuzzer aimed at this admin (links infer its id from /api/me):
            # the answer is a re-enrolment link for a person; the next login repairs it
            # (pages and scripts also hold the word: only JSON answers are looked at)
            try:
                body = json.loads(response.text)
            except ValueError:
                return
            agent = body.get("agent") if isinstance(body, dict) else None
            if "link" in body and isinstance(agent, dict) and agent.get("id") == self.gw.admin_id:
                self.token = ""
                self.gw.admin_totp = ""

    def _repair_second_factor(self) -> None:
        """After the fuzzer reset this admin's MFA (a valid call), give the scripted admin
        a second factor it knows again, as the CLI would (``cipherdesk agent reset-mfa``)."""

        async def reset() -> str:
            agent = await self.gw.svc.store.get_agent(self.gw.admin_id)
            assert agent is not None
            creds = await self.gw.svc.logins.reset_mfa(agent, actor="cli")
            return creds.totp_secret

        self.gw.admin_totp = self.gw.run(reset())


def no_cross_tenant_leak(gw: FuzzGateway) -> Any:
    """A schemathesis check: no id or name of the other tenant in any answer."""

    def check(ctx: Any, response: Any, case: Any) -> bool:
        text = response.text or ""
        leaked = [s for s in gw.sentinels if s in text]
        assert not leaked, (
            f"{case.method} {case.formatted_path} answered data of another tenant: {leaked}"
        )
        return True

    check.__name__ = "no_cross_tenant_leak"
    return check


def start(tmp_path: Path) -> Iterator[FuzzGateway]:
    """Start the gateway on its own loop thread; yields it, then shuts it down."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-gateway", daemon=True)
    thread.start()
    clock = FakeClock()

    async def boot() -> tuple[Any, str, Services]:
        return await start_gateway(
            tmp_path,
            clock=clock,
            # generous budgets: this run is about the contract, not the limiters
            auth={"lock_after": 1_000_000, "free_failures": 999_999},
            ratelimit={"limits": {"api_per_token": "100000/m"}},
        )

    runner, base, svc = asyncio.run_coroutine_threadsafe(boot(), loop).result(120)
    gw = FuzzGateway(base, svc, clock, loop, "", "")
    gw.admin_id, gw.admin_totp, gw.sentinels = gw.run(_seed(svc))
    try:
        yield gw
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
