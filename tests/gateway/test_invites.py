"""Agent invitations (issue 16.9) over real HTTP, on SQLite and PostgreSQL.

An admin creates an invite and gets a one-time link; the invitee opens it, chooses a
password, confirms a TOTP code and is logged in. The token is stored only as a keyed
hash, works once, expires on the gateway's (injected) clock, can be revoked, and its
redemption is rate-limited. The admin never sees the password or the TOTP secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.derived_keys import derived_secret
from gateway.invites import INVITE_LABEL
from gateway.services import Services
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    login,
    make_agent,
    make_tenant,
    start_gateway,
    totp_code,
)

OWN = "violet harbour lantern 47 quietly"
HOUR = 3600.0


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path,
        clock=clock,
        store={"url": service_store_url},
        ratelimit={"limits": {"login_per_ip": "8/m", "login_per_account": "4/m"}},
    )
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _admin(http, base: str, svc: Services, clock: FakeClock, email="boss@example.com"):
    _, secret, pw = await make_agent(svc, email, role="admin")
    return bearer(await login(http, base, email, pw, secret, clock.now))


async def _invite(http, base, admin, email="hire@example.com", role="supervisor") -> dict:
    async with http.post(
        f"{base}/api/invites",
        headers=admin,
        json={"email": email, "role": role, "display_name": "New Hire"},
    ) as r:
        assert r.status == 201, await r.text()
        return await r.json()


def _token(link: str) -> str:
    m = re.fullmatch(r"http://127\.0\.0\.1:\d+/invite#(cdi_[A-Za-z0-9_-]{43})", link)
    assert m, link
    return m.group(1)


async def _open(http, base, token: str) -> tuple[int, dict]:
    async with http.post(f"{base}/api/invite/open", json={"token": token}) as r:
        return r.status, await r.json()


async def _redeem(http, base, token: str, opened: dict, password: str, otp: str):
    async with http.post(
        f"{base}/api/invite/redeem",
        json={
            "token": token,
            "password": password,
            "enrollment": opened["enrollment"],
            "otp": otp,
        },
    ) as r:
        return r.status, await r.json(), r.cookies


async def _actions(svc: Services, tenant: str = "demo") -> list[str]:
    return [e.action for e in reversed(await svc.store.query_audit(tenant_id=tenant, limit=500))]


async def test_invite_is_redeemed_once_with_own_password_and_totp(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    with capture_logs() as logs:
        created = await _invite(http, base, admin)
        token = _token(created["link"])
        assert created["invite"]["status"] == "pending"
        assert created["invite"]["expires_at"] == pytest.approx(clock.now + 72 * HOUR)

        # only a keyed hash is stored: not the token, not its plain SHA-256
        stored = (await svc.store.list_invites("demo"))[0]
        key = derived_secret(svc.keyring, INVITE_LABEL)
        assert stored.token_hash == hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
        assert stored.token_hash != hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr(stored)

        status, opened = await _open(http, base, token)
        assert status == 200, opened
        assert (opened["email"], opened["role"], opened["display_name"]) == (
            "hire@example.com",
            "supervisor",
            "New Hire",
        )
        assert opened["qr_png"].startswith("data:image/png;base64,")
        secret = opened["secret"]

        # a wrong code and a weak password consume nothing
        status, body, _ = await _redeem(http, base, token, opened, OWN, "000000")
        assert (status, body["error"]["code"]) == (400, "invalid_otp")
        code = totp_code(secret, clock.now)
        status, body, _ = await _redeem(http, base, token, opened, "password123", code)
        assert (status, body["error"]["code"]) == (400, "weak_password")
        assert body["error"]["reason"] in {"too_short", "common"}
        assert await svc.store.get_agent_by_email("hire@example.com") is None

        status, done, cookies = await _redeem(http, base, token, opened, OWN, code)
        assert status == 201, done
        assert len(done["recovery_codes"]) == 10
        assert "cd_session" in cookies
    agent = await svc.store.get_agent_by_email("hire@example.com")
    assert agent is not None and agent.totp_confirmed and agent.role == "supervisor"
    assert agent.display_name == "New Hire"
    # the new session works and has nothing left to change
    async with http.get(f"{base}/api/me", headers=bearer(done["token"])) as r:
        me = await r.json()
        assert me["agent"]["id"] == agent.id and me["password_change_required"] is False
    # the invitee logs in later with their own password and a *later* code
    clock.advance(30)
    await login(http, base, "hire@example.com", OWN, secret, clock.now)

    # single use
    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_used")
    status, body, _ = await _redeem(http, base, token, opened, OWN, totp_code(secret, clock.now))
    assert (status, body["error"]["code"]) == (410, "invite_used")

    async with http.get(f"{base}/api/invites", headers=admin) as r:
        listed = (await r.json())["invites"]
    assert [(i["status"], i["agent_id"]) for i in listed] == [("used", agent.id)]

    actions = await _actions(svc)
    assert actions.count("invite.created") == 1
    assert actions.count("invite.redeem_failed") == 2
    assert actions.index("invite.redeemed") > actions.index("agent.created")
    # nothing secret in the logs or the audit trail
    events = await svc.store.query_audit(tenant_id="demo", limit=500)
    dumped = repr(logs) + repr([e.details for e in events])
    for secret_value in (token, secret, OWN, stored.token_hash):
        assert secret_value not in dumped


async def test_invite_expires_on_the_tenant_lifetime(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    for bad in (0, 721):
        async with http.patch(
            f"{base}/api/tenant", headers=admin, json={"invite_ttl_hours": bad}
        ) as r:
            assert r.status == 400, bad
    async with http.patch(f"{base}/api/tenant", headers=admin, json={"invite_ttl_hours": 2}) as r:
        assert r.status == 200, await r.text()
    token = _token((await _invite(http, base, admin))["link"])
    status, opened = await _open(http, base, token)
    assert status == 200
    clock.advance(2 * HOUR - 1)
    status, _ = await _open(http, base, token)
    assert status == 200
    clock.advance(1)
    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_expired")
    code = totp_code(opened["secret"], clock.now)
    status, body, _ = await _redeem(http, base, token, opened, OWN, code)
    assert (status, body["error"]["code"]) == (410, "invite_expired")
    # (the admin's session idled out meanwhile: a new login)
    _, secret, pw = await make_agent(svc, "boss2@example.com", role="admin")
    admin = bearer(await login(http, base, "boss2@example.com", pw, secret, clock.now))
    async with http.get(f"{base}/api/invites", headers=admin) as r:
        data = await r.json()
        assert data["ttl_hours"] == 2 and data["invites"][0]["status"] == "expired"
    assert await svc.store.get_agent_by_email("hire@example.com") is None


async def test_revoked_invite_is_refused_and_only_own_tenant_can_revoke(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    await make_tenant(svc, "other")
    _, s2, p2 = await make_agent(svc, "root@other.example", tenant="other", role="admin")
    other = bearer(await login(http, base, "root@other.example", p2, s2, clock.now))
    created = await _invite(http, base, admin)
    token, invite_id = _token(created["link"]), created["invite"]["id"]
    status, opened = await _open(http, base, token)
    assert status == 200

    async with http.delete(f"{base}/api/invites/{invite_id}", headers=other) as r:
        assert r.status == 404
    async with http.delete(f"{base}/api/invites/{invite_id}", headers=admin) as r:
        assert r.status == 200
    async with http.delete(f"{base}/api/invites/{invite_id}", headers=admin) as r:
        assert r.status == 404  # already revoked
    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_revoked")
    code = totp_code(opened["secret"], clock.now)
    status, body, _ = await _redeem(http, base, token, opened, OWN, code)
    assert (status, body["error"]["code"]) == (410, "invite_revoked")
    async with http.get(f"{base}/api/invites", headers=admin) as r:
        assert (await r.json())["invites"][0]["status"] == "revoked"
    async with http.get(f"{base}/api/invites", headers=other) as r:
        assert (await r.json())["invites"] == []
    assert "invite.revoked" in await _actions(svc)


async def test_invite_creation_is_validated_and_needs_agent_manage(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    _, s, p = await make_agent(svc, "plain@example.com")
    plain = bearer(await login(http, base, "plain@example.com", p, s, clock.now))
    async with http.post(
        f"{base}/api/invites", headers=plain, json={"email": "x@example.com", "role": "agent"}
    ) as r:
        assert r.status == 403
    for body, code in (
        ({"email": "not an address", "role": "agent"}, "invalid_email"),
        ({"email": "x@example.com", "role": "operator"}, "bad_request"),
        ({"email": "plain@example.com", "role": "agent"}, "email_taken"),
        ({"email": "x@example.com", "role": "agent", "password": "x"}, "bad_request"),
    ):
        async with http.post(f"{base}/api/invites", headers=admin, json=body) as r:
            assert (await r.json())["error"]["code"] == code, body


async def test_wrong_tokens_are_refused_and_rate_limited(gw) -> None:
    http, base, _svc, clock = gw
    for token in ("nope", "cdi_" + "A" * 43):
        status, body = await _open(http, base, token)
        assert (status, body["error"]["code"]) == (404, "invite_invalid")
    # a foreign page cannot drive the invite API (Origin checked like login)
    async with http.post(
        f"{base}/api/invite/open",
        json={"token": "cdi_" + "B" * 43},
        headers={"Origin": "https://evil.example"},
    ) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
    codes = []
    for i in range(8):
        status, body = await _open(http, base, "cdi_" + str(i) * 43)
        codes.append(status)
    assert codes[-1] == 429 and 404 in codes
    async with http.post(f"{base}/api/invite/open", json={"token": "x"}) as r:
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    clock.advance(61)
    status, _ = await _open(http, base, "cdi_" + "C" * 43)
    assert status == 404


async def test_redemption_attempts_per_invite_are_limited(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    token = _token((await _invite(http, base, admin))["link"])
    status, opened = await _open(http, base, token)
    statuses = []
    for _ in range(5):
        status, body, _ = await _redeem(http, base, token, opened, OWN, "000000")
        statuses.append((status, body["error"]["code"]))
    assert statuses[:4] == [(400, "invalid_otp")] * 4
    assert statuses[4] == (429, "rate_limited")
    # the invite is still usable once the budget refills
    clock.advance(61)
    code = totp_code(opened["secret"], clock.now)
    status, body, _ = await _redeem(http, base, token, opened, OWN, code)
    assert status == 201, body


async def test_admin_chosen_password_forces_a_change_before_any_work(gw) -> None:
    """The old path (``POST /api/agents`` with a password) stays for the API, but the
    agent must replace the password the admin knows before anything else."""
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    admin_set = "a long enough passphrase 1"
    async with http.post(
        f"{base}/api/agents",
        headers=admin,
        json={"email": "hire@example.com", "role": "agent", "password": admin_set},
    ) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    assert await svc.store.password_reset_forced(created["agent"]["id"])
    totp = re.search(r"secret=([A-Z2-7]+)", created["otpauth_uri"]).group(1)
    h = bearer(await login(http, base, "hire@example.com", admin_set, totp, clock.now))
    async with http.get(f"{base}/api/canned", headers=h) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "password_change_required"
    # past the step-up window: re-authenticating is still allowed while forced
    clock.advance(600)
    async with http.post(
        f"{base}/api/me/password", headers=h, json={"current": admin_set, "new": OWN}
    ) as r:
        assert (await r.json())["error"]["code"] == "reauth_required"
    clock.advance(30)
    otp = totp_code(totp, clock.now)
    async with http.post(
        f"{base}/api/me/reauth", headers=h, json={"password": admin_set, "otp": otp}
    ) as r:
        assert r.status == 200, await r.text()
    async with http.post(
        f"{base}/api/me/password", headers=h, json={"current": admin_set, "new": OWN}
    ) as r:
        assert r.status == 200, await r.text()
    async with http.get(f"{base}/api/me", headers=h) as r:
        assert (await r.json())["password_change_required"] is False
    async with http.get(f"{base}/api/canned", headers=h) as r:
        assert r.status == 200, await r.text()


async def test_address_taken_meanwhile_is_refused_without_using_the_invite(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    created = await _invite(http, base, admin)
    token = _token(created["link"])
    status, opened = await _open(http, base, token)
    assert status == 200
    # someone else gets the address first (another tenant's admin, the CLI...)
    await make_agent(svc, "hire@example.com")
    code = totp_code(opened["secret"], clock.now)
    status, body, _ = await _redeem(http, base, token, opened, OWN, code)
    assert (status, body["error"]["code"]) == (409, "email_taken")
    invite = (await svc.store.list_invites("demo"))[0]
    assert invite.status(clock.now) == "pending" and invite.agent_id is None
    assert "invite.redeem_failed" in await _actions(svc)


async def test_enrollment_is_bound_to_its_invite_and_expires(gw) -> None:
    """The sealed TOTP set-up of one invite cannot be replayed on another, nor after
    its hour is over (the page must be reloaded for a fresh secret)."""
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    first = _token((await _invite(http, base, admin, email="a@example.com"))["link"])
    second = _token((await _invite(http, base, admin, email="b@example.com"))["link"])
    _, opened_first = await _open(http, base, first)
    code = totp_code(opened_first["secret"], clock.now)
    status, body, _ = await _redeem(http, base, second, opened_first, OWN, code)
    assert (status, body["error"]["code"]) == (409, "no_enrollment")
    status, body, _ = await _redeem(http, base, first, {"enrollment": "not-base64!"}, OWN, code)
    assert (status, body["error"]["code"]) == (409, "no_enrollment")
    clock.advance(3601)
    code = totp_code(opened_first["secret"], clock.now)
    status, body, _ = await _redeem(http, base, first, opened_first, OWN, code)
    assert (status, body["error"]["code"]) == (409, "no_enrollment")
    _, reopened = await _open(http, base, first)
    code = totp_code(reopened["secret"], clock.now)
    status, body, _ = await _redeem(http, base, first, reopened, OWN, code)
    assert status == 201, body


async def test_invite_dies_with_its_creators_authority(gw) -> None:
    """Like an API token, an invite acts on its creator's authority: an admin who is
    demoted or disabled leaves no working invitations behind."""
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    _, s2, p2 = await make_agent(svc, "second@example.com", role="admin")
    second = bearer(await login(http, base, "second@example.com", p2, s2, clock.now))
    token = _token((await _invite(http, base, admin))["link"])
    status, _ = await _open(http, base, token)
    assert status == 200
    boss = await svc.store.get_agent_by_email("boss@example.com")
    async with http.patch(
        f"{base}/api/agents/{boss.id}", headers=second, json={"role": "agent"}
    ) as r:
        assert r.status == 200, await r.text()
    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_revoked")
    async with http.get(f"{base}/api/invites", headers=second) as r:
        assert (await r.json())["invites"][0]["status"] == "revoked"
    async with http.patch(
        f"{base}/api/agents/{boss.id}", headers=second, json={"role": "admin"}
    ) as r:
        assert r.status == 200
    status, _ = await _open(http, base, token)
    assert status == 200
    async with http.patch(
        f"{base}/api/agents/{boss.id}", headers=second, json={"disabled": True}
    ) as r:
        assert r.status == 200
    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_revoked")


async def test_mfa_reset_gives_the_agent_a_link_and_the_admin_no_secret(gw) -> None:
    """Issue 16.9: an admin's reset kills the old factor and answers a one-time link; the
    agent proves their *current* password and enrols a secret only they have seen."""
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    agent, old_secret, password = await make_agent(svc, "kai@example.com")
    with capture_logs() as logs:
        async with http.post(f"{base}/api/agents/{agent.id}/reset-mfa", headers=admin) as r:
            assert r.status == 200, await r.text()
            reset = await r.json()
        assert set(reset) == {"agent", "link", "expires_at"}  # no secret, QR or codes
        token = _token(reset["link"])
        clock.advance(30)
        async with http.post(
            f"{base}/api/login",
            json={
                "email": "kai@example.com",
                "password": password,
                "otp": totp_code(old_secret, clock.now),
            },
        ) as r:
            assert r.status == 401  # the old authenticator is dead

        status, opened = await _open(http, base, token)
        assert status == 200 and opened["purpose"] == "mfa_reset"
        assert opened["email"] == "kai@example.com"
        code = totp_code(opened["secret"], clock.now)
        status, body, _ = await _redeem(http, base, token, opened, "not my password at all", code)
        assert (status, body["error"]["code"]) == (403, "wrong_password")
        status, done, cookies = await _redeem(http, base, token, opened, password, code)
        assert status == 201, done
        assert len(done["recovery_codes"]) == 10 and "cd_session" in cookies
    async with http.get(f"{base}/api/me", headers=bearer(done["token"])) as r:
        assert (await r.json())["agent"]["id"] == agent.id
    fresh = await svc.store.get_agent(agent.id)
    assert fresh is not None and fresh.totp_confirmed
    assert fresh.password_hash == agent.password_hash  # the password stays the agent's own
    clock.advance(30)
    await login(http, base, "kai@example.com", password, opened["secret"], clock.now)

    status, body = await _open(http, base, token)
    assert (status, body["error"]["code"]) == (410, "invite_used")
    events = await svc.store.query_audit(tenant_id="demo", limit=500)
    dumped = repr(logs) + repr([e.details for e in events])
    for secret_value in (token, opened["secret"], password):
        assert secret_value not in dumped


async def test_a_second_mfa_reset_revokes_the_first_link(gw) -> None:
    http, base, svc, clock = gw
    admin = await _admin(http, base, svc, clock)
    agent, _, _ = await make_agent(svc, "lee@example.com")
    links = []
    for _ in range(2):
        async with http.post(f"{base}/api/agents/{agent.id}/reset-mfa", headers=admin) as r:
            assert r.status == 200
            links.append(_token((await r.json())["link"]))
    status, body = await _open(http, base, links[0])
    assert (status, body["error"]["code"]) == (410, "invite_revoked")
    status, opened = await _open(http, base, links[1])
    assert status == 200 and opened["purpose"] == "mfa_reset"
