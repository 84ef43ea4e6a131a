"""Single sign-on (issue 20.2) against a real OpenID provider run locally
(node-oidc-provider, ``tests/oidc/provider.mjs``), over real HTTP: the authorization code
flow with PKCE end to end, the second-factor claim enforced, unknown agents refused or
created just in time with the role their groups map to, a replayed callback refused, the
issuer allow-list, and an account disabled at the provider losing its session."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest

from gateway.keyrotation import rewrap_all
from gateway.oidc import OidcSessionCheck
from gateway.services import Services
from tests.gateway.helpers import bearer, login, make_agent, start_gateway
from tests.oidc.provider import LocalProvider, local_provider

ACCOUNTS = {
    "u-ann": {"login": "ann", "email": "ann@example.com", "name": "Ann", "amr": ["pwd", "mfa"]},
    "u-bob": {"login": "bob", "email": "bob@example.com", "name": "Bob", "amr": ["pwd"]},
    "u-dee": {
        "login": "dee",
        "email": "dee@example.com",
        "name": "Dee",
        "amr": ["pwd"],
        "acr": "urn:example:loa:mfa",
    },
    "u-cy": {
        "login": "cy",
        "email": "cy@example.com",
        "name": "Cy Lead",
        "amr": ["pwd", "otp"],
        "groups": ["CS Supervisors"],
    },
}


@pytest.fixture
async def sso(tmp_path: Path):
    runner, base, svc = await start_gateway(tmp_path, oidc={"check_interval": 0.0})
    # Every session is due at once (interval 0); the test runs the checks itself, so the
    # node's own worker must not race it.
    for worker in svc.workers:
        if isinstance(worker, OidcSessionCheck):
            await worker.stop()
    # the public address names the port the kernel picked (known only once it listens)
    public = f"http://localhost:{urlsplit(base).port}"
    svc.config.server.public_url = public
    with local_provider(tmp_path, svc.oidc.redirect_uri, ACCOUNTS) as idp:
        svc.config.oidc.allowed_issuers = [idp.issuer]
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            yield http, public, svc, idp
    await runner.cleanup()


async def _admin(http, base: str, svc: Services) -> dict[str, str]:
    _, secret, password = await make_agent(svc, "root@example.com", role="admin")
    return bearer(await login(http, base, "root@example.com", password, secret, svc.clock()))


async def _configure(http, base, admin, idp: LocalProvider, **extra) -> tuple[int, dict]:
    body = {"issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret}
    async with http.put(f"{base}/api/oidc/settings", headers=admin, json={**body, **extra}) as r:
        return r.status, await r.json()


async def _sign_in(http, base: str, who: str) -> tuple[str, str]:
    """Walk the redirects like a browser; returns (where the gateway sent us, the callback
    URL it was reached by)."""
    async with http.get(f"{base}/oidc/demo/login", allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        location = r.headers["Location"]
    if location.startswith("/console"):
        return location, ""
    async with http.get(location) as r:  # the provider's login page
        page = str(r.url)
        assert r.status == 200 and "/interaction/" in page, await r.text()
    async with http.post(f"{page}/login", data={"login": who}, allow_redirects=False) as r:
        assert r.status in (302, 303), await r.text()
        location = urljoin(page, r.headers["Location"])
    while not location.startswith(base):
        async with http.get(location, allow_redirects=False) as r:
            assert r.status in (302, 303), (r.status, await r.text())
            location = urljoin(location, r.headers["Location"])
    callback = location
    async with http.get(callback, allow_redirects=False) as r:
        assert r.status == 302
        return r.headers["Location"], callback


async def _me(http, base: str) -> tuple[int, dict]:
    async with http.get(f"{base}/api/me") as r:
        return r.status, await r.json()


async def test_sign_in_end_to_end_with_pkce_and_a_second_factor(sso) -> None:
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    status, body = await _configure(http, base, admin, idp)
    assert status == 200 and body["settings"]["has_secret"] is True
    assert "client_secret" not in json.dumps(body) and idp.client_secret not in json.dumps(body)
    assert body["redirect_uri"] == svc.oidc.redirect_uri
    ann, _, _ = await make_agent(svc, "ann@example.com")
    http.cookie_jar.clear()

    where, callback = await _sign_in(http, base, "ann")
    assert where == "/console"
    status, me = await _me(http, base)
    assert status == 200 and me["agent"]["id"] == ann.id
    sessions = await svc.store.list_sessions(ann.id)
    assert [s.factor for s in sessions] == ["oidc"]
    # the code and state are used up: replaying the callback is refused
    async with http.get(callback, allow_redirects=False) as r:
        assert r.headers["Location"] == "/console?sso_error=invalid_state"

    # no second factor reported by the provider: refused, no session
    bob, _, _ = await make_agent(svc, "bob@example.com")
    http.cookie_jar.clear()
    where, _ = await _sign_in(http, base, "bob")
    assert where == "/console?sso_error=mfa_required"
    assert await svc.store.list_sessions(bob.id) == []
    failed = await svc.store.query_audit(action="login.failed")
    assert failed[0].details["reason"] == "sso_mfa_required"


async def test_unknown_agents_are_refused_or_created_just_in_time(sso) -> None:
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    assert (await _configure(http, base, admin, idp))[0] == 200
    http.cookie_jar.clear()
    where, _ = await _sign_in(http, base, "cy")
    assert where == "/console?sso_error=unknown_agent"
    assert await svc.store.get_agent_by_email("cy@example.com") is None

    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "scim": {"group_roles": {"CS Supervisors": "supervisor"}}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    admin = await _admin_again(http, base, svc)
    assert (await _configure(http, base, admin, idp, jit=True))[0] == 200
    http.cookie_jar.clear()
    where, _ = await _sign_in(http, base, "cy")
    assert where == "/console"
    cy = await svc.store.get_agent_by_email("cy@example.com")
    assert cy is not None and cy.role == "supervisor" and cy.display_name == "Cy Lead"


async def test_a_name_claim_goes_through_the_policy(sso) -> None:
    """A just-in-time agent's name comes from the provider: a phone in it is masked, and a
    name the policy blocks (a card number) is not used -- the e-mail's local part is."""
    http, base, svc, idp = sso
    idp.set_accounts(
        {
            **ACCOUNTS,
            "u-eve": {
                **ACCOUNTS["u-ann"],
                "login": "eve",
                "email": "eve@example.com",
                "name": "Eve 4111 1111 1111 1111",
            },
            "u-fay": {
                **ACCOUNTS["u-ann"],
                "login": "fay",
                "email": "fay@example.com",
                "name": "Fay 13800138000",
            },
        }
    )
    admin = await _admin(http, base, svc)
    assert (await _configure(http, base, admin, idp, jit=True))[0] == 200
    for who, name in (("eve", "eve"), ("fay", "Fay 138****8000")):
        http.cookie_jar.clear()
        assert (await _sign_in(http, base, who))[0] == "/console"
        agent = await svc.store.get_agent_by_email(f"{who}@example.com")
        assert agent is not None and agent.display_name == name
    # the replaced name is audited (without the refused claim), the masked one is not
    eve = await svc.store.get_agent_by_email("eve@example.com")
    [refused] = await svc.store.query_audit(action="agent.name_refused")
    assert eve is not None and refused.target == eve.id and refused.actor == "oidc"
    assert refused.details == {"field": "name", "reason": "policy_blocked"}
    assert "4111" not in repr(await svc.store.query_audit(tenant_id="demo"))


async def test_disabled_at_the_provider_ends_the_session(sso) -> None:
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    assert (await _configure(http, base, admin, idp))[0] == 200
    await make_agent(svc, "ann@example.com")
    http.cookie_jar.clear()
    assert (await _sign_in(http, base, "ann"))[0] == "/console"
    assert (await _me(http, base))[0] == 200
    assert await svc.oidc.check_sessions() == 0  # the provider still knows her
    assert (await _me(http, base))[0] == 200
    # A master-key rotation moves the client secret and the refresh token too; both still
    # work afterwards (the next check refreshes with them).
    svc.keyring.adopt(svc.keyring.with_new_key())
    report = await rewrap_all(svc)
    assert report.oidc_secrets == 2 and report.skipped == 0
    assert await svc.oidc.check_sessions() == 0
    assert (await _me(http, base))[0] == 200

    idp.set_accounts({**ACCOUNTS, "u-ann": {**ACCOUNTS["u-ann"], "disabled": True}})
    assert await svc.oidc.check_sessions() == 1
    assert (await _me(http, base))[0] == 401
    revoked = await svc.store.query_audit(action="sessions.revoked")
    assert revoked[0].details["reason"] == "sso_invalid_grant"


async def test_only_issuers_the_operator_allowed(sso) -> None:
    http, base, svc, _idp = sso
    admin = await _admin(http, base, svc)
    for issuer in ("http://127.0.0.1:9/elsewhere", "file:///etc/passwd", "http://169.254.169.254"):
        async with http.put(
            f"{base}/api/oidc/settings",
            headers=admin,
            json={"issuer": issuer, "client_id": "x", "client_secret": "y"},
        ) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (400, "issuer_not_allowed"), issuer
    # nothing configured: a login says so instead of failing somewhere else
    http.cookie_jar.clear()
    async with http.get(f"{base}/oidc/demo/login", allow_redirects=False) as r:
        assert r.headers["Location"] == "/console?sso_error=sso_off"
    async with http.get(f"{base}/oidc/callback?error=access_denied", allow_redirects=False) as r:
        assert r.headers["Location"] == "/console?sso_error=denied"
    async with http.get(f"{base}/oidc/callback?code=x&state=y", allow_redirects=False) as r:
        assert r.headers["Location"] == "/console?sso_error=invalid_state"


async def _admin_again(http, base: str, svc: Services) -> dict[str, str]:
    """A second admin session (the first one's cookie was cleared with the jar)."""
    _, secret, password = await make_agent(svc, "root2@example.com", role="admin")
    return bearer(await login(http, base, "root2@example.com", password, secret, svc.clock()))


async def test_a_logged_out_session_forgets_its_refresh_token(sso) -> None:
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    assert (await _configure(http, base, admin, idp))[0] == 200
    await make_agent(svc, "ann@example.com")
    http.cookie_jar.clear()
    assert (await _sign_in(http, base, "ann"))[0] == "/console"
    status, me = await _me(http, base)
    assert status == 200 and len(await svc.store.oidc_sessions_due(1e18, 10)) == 1
    async with http.post(f"{base}/api/logout", headers={"X-CSRF-Token": me["csrf"]}) as r:
        assert r.status == 200
    assert await svc.oidc.check_sessions() == 0  # nothing to end: it was logged out
    assert await svc.store.oidc_sessions_due(1e18, 10) == []
    assert await svc.store.query_audit(action="sessions.revoked") == []


async def test_mapped_groups_set_the_role_at_each_sign_in(sso) -> None:
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    assert (await _configure(http, base, admin, idp))[0] == 200
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "scim": {"group_roles": {"CS Supervisors": "supervisor"}}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    cy, _, _ = await make_agent(svc, "cy@example.com")  # an agent, in a mapped group at the IdP
    ann, _, _ = await make_agent(svc, "ann@example.com", role="supervisor")  # in no group
    for who, agent_id in (("cy", cy.id), ("ann", ann.id)):
        http.cookie_jar.clear()
        assert (await _sign_in(http, base, who))[0] == "/console"
        # the sign-in stands even where it changed the role (its session came after)
        status, me = await _me(http, base)
        assert status == 200 and me["agent"]["id"] == agent_id
    cy_now, ann_now = await svc.store.get_agent(cy.id), await svc.store.get_agent(ann.id)
    assert cy_now is not None and cy_now.role == "supervisor"
    assert ann_now is not None and ann_now.role == "supervisor"  # kept what the admin gave
    [changed] = await svc.store.query_audit(action="role.changed")
    assert (changed.actor, changed.target, changed.details["new_role"]) == (
        "oidc",
        cy.id,
        "supervisor",
    )


async def test_an_assurance_class_can_stand_for_the_second_factor(sso) -> None:
    """Providers that state assurance levels (acr) rather than methods (amr)."""
    http, base, svc, idp = sso
    admin = await _admin(http, base, svc)
    dee, _, _ = await make_agent(svc, "dee@example.com")
    assert (await _configure(http, base, admin, idp))[0] == 200
    http.cookie_jar.clear()
    assert (await _sign_in(http, base, "dee"))[0] == "/console?sso_error=mfa_required"
    admin = await _admin_again(http, base, svc)
    status, body = await _configure(
        http, base, admin, idp, acr_values=["urn:example:loa:mfa"], mfa_values=["hwk"]
    )
    assert status == 200 and body["settings"]["acr_values"] == ["urn:example:loa:mfa"]
    assert body["settings"]["mfa_values"] == ["hwk"]
    http.cookie_jar.clear()
    assert (await _sign_in(http, base, "dee"))[0] == "/console"
    status, me = await _me(http, base)
    assert status == 200 and me["agent"]["id"] == dee.id
