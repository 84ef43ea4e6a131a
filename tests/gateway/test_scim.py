"""SCIM 2.0 provisioning (issue 20.3) over real HTTP, on SQLite and PostgreSQL.

The identity providers' own request sequences are replayed from fixtures -- Microsoft
Entra ID's as Microsoft documents them, Okta's as Okta does -- and every answer is checked
against what those clients expect (status, SCIM shapes, the role that group membership
gives). Then the security side: only an ``agent_manage`` token speaks SCIM, it hands out
no more than it holds, bad input gets SCIM errors, and a leaver's live console closes
4401 within a minute of the IdP switching them off.
"""

from __future__ import annotations

import asyncio
import base64
import email
import json
import re
import time
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from nacl.public import PrivateKey

from auth.roles import Permission
from gateway.custom_roles import RoleDefinition
from gateway.services import Services
from gateway.sessions import agent_principal
from gateway.store.base import ScimUser, Tenant
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    free_port,
    login,
    make_agent,
    start_gateway,
    totp_code,
)

FIXTURES = Path(__file__).parent / "fixtures"
SCIM = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


ROOT = "root@example.com"
_ROOT_CREDENTIALS: dict[str, tuple[str, str]] = {}


async def _token(svc: Services, permissions: list[str]) -> str:
    """An API token of the tenant's admin, as the admin page makes it."""
    owner = await svc.store.get_agent_by_email(ROOT)
    if owner is None:
        owner, secret, password = await make_agent(svc, ROOT, role="admin")
        _ROOT_CREDENTIALS[svc.config.server.data_dir] = (password, secret)
    issued = await svc.api_tokens.create(
        owner, agent_principal(owner), "scim", permissions, 30, ip="127.0.0.1"
    )
    return issued.secret


async def _map_groups(svc: Services, mapping: dict[str, str]) -> None:
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "scim": {"group_roles": mapping}}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")


def _fill(value: Any, saved: dict[str, str]) -> Any:
    text = json.dumps(value)
    for name, got in sorted(saved.items(), key=lambda kv: -len(kv[0])):
        text = text.replace("$" + name, got)
    return json.loads(text)


async def _replay(http, base: str, svc: Services, token: str, fixture: str) -> dict[str, str]:
    """Send a recorded sequence; check each answer as the IdP would read it."""
    steps = json.loads((FIXTURES / fixture).read_text("utf-8"))["steps"]
    saved: dict[str, str] = {}
    headers = {**bearer(token), "Accept": SCIM}
    for step in steps:
        path = _fill(step["path"], saved)
        body = _fill(step["body"], saved) if "body" in step else None
        async with http.request(
            step["method"],
            base + path,
            headers={**headers, "Content-Type": SCIM} if body is not None else headers,
            data=json.dumps(body) if body is not None else None,
        ) as r:
            raw = await r.read()
            assert r.status == step["status"], (step["name"], r.status, raw[:300])
            answer = json.loads(raw) if raw else None
            if raw:
                assert r.content_type == SCIM, step["name"]
        for key, want in _fill(step.get("expect", {}), saved).items():
            assert answer is not None and answer[key] == want, (step["name"], key, answer)
        for key in step.get("absent", []):
            assert answer is not None and key not in answer, (step["name"], key)
        if "save" in step:
            saved[step["save"]] = answer["id"]
        if "role" in step:
            agent_id, role = _fill(step["role"], saved)
            agent = await svc.store.get_agent(agent_id)
            assert agent is not None and agent.role == role, (step["name"], agent)
        if "custom_role" in step:
            agent_id, role = _fill(step["custom_role"], saved)
            agent = await svc.store.get_agent(agent_id)
            assert agent is not None and agent.custom_role == role, (step["name"], agent)
    return saved


async def test_the_entra_id_sequence(gw) -> None:
    http, base, svc, _clock = gw
    token = await _token(svc, [p.value for p in Permission])
    await _map_groups(svc, {"CS Supervisors": "supervisor"})
    saved = await _replay(http, base, svc, token, "scim_entra.json")
    # Deleted: disabled, SCIM record gone, the agent row kept for the audit trail.
    agent = await svc.store.get_agent(saved["user"])
    assert agent is not None and agent.disabled
    assert agent.email == "updatedemail@microsoft.com"
    assert await svc.store.scim_user("demo", saved["user"]) is None
    actions = [e.action for e in await svc.store.query_audit(tenant_id="demo", limit=300)]
    for action in (
        "scim.user_created",
        "scim.user_updated",
        "scim.group_updated",
        "scim.group_deleted",
        "scim.user_deleted",
        "agent.disabled",
        "role.changed",
    ):
        assert action in actions, action
    assert actions.count("api_token.used") >= 20  # every call is an audited token use


async def test_discovery_names_what_is_kept(gw) -> None:
    http, base, svc, _clock = gw
    token = await _token(svc, ["agent_manage"])
    status, schemas = await _scim(http, base, token, "GET", "/scim/v2/Schemas")
    assert status == 200
    by_id = {s["id"]: s for s in schemas["Resources"]}
    user = {a["name"]: a for a in by_id["urn:ietf:params:scim:schemas:core:2.0:User"]["attributes"]}
    assert user["userName"]["required"] is True and user["userName"]["uniqueness"] == "server"
    assert {"emails", "active", "name", "externalId", "displayName"} <= set(user)
    status, types = await _scim(http, base, token, "GET", "/scim/v2/ResourceTypes")
    assert status == 200
    assert [(t["id"], t["endpoint"]) for t in types["Resources"]] == [
        ("User", "/Users"),
        ("Group", "/Groups"),
    ]
    status, config = await _scim(http, base, token, "GET", "/scim/v2/ServiceProviderConfig")
    assert status == 200 and config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False


async def test_the_okta_sequence_with_a_custom_role(gw) -> None:
    http, base, svc, _clock = gw
    token = await _token(svc, [p.value for p in Permission])
    admin = await svc.store.get_agent_by_email(ROOT)
    assert admin is not None
    qa = RoleDefinition("qa-analyst", "supervisor", ("quality_read",))
    await svc.custom_roles.define(agent_principal(admin), qa)
    await _map_groups(svc, {"QA": "qa-analyst"})
    saved = await _replay(http, base, svc, token, "scim_okta.json")
    agent = await svc.store.get_agent(saved["user"])
    assert agent is not None and not agent.disabled and agent.display_name == "Wang Fang (Support)"
    # Okta's create carried a password: it is never used -- nobody knows the account's.
    async with http.post(
        f"{base}/api/login",
        json={"email": "wang.fang@example.com", "password": "1mz050nq", "otp": "000000"},
    ) as r:
        assert r.status == 401


async def _scim(
    http, base, token: str | None, method: str, path: str, body: Any = None, ctype: str = SCIM
) -> tuple[int, dict]:
    headers = bearer(token) if token else {}
    if body is not None:
        headers["Content-Type"] = ctype
    async with http.request(
        method,
        base + path,
        headers=headers,
        data=body if isinstance(body, str) else json.dumps(body) if body is not None else None,
    ) as r:
        raw = await r.read()
        if raw:
            assert r.content_type == SCIM, (path, r.content_type, raw[:200])
        return r.status, json.loads(raw) if raw else {}


USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "li.lei@example.com",
    "emails": [{"value": "li.lei@example.com", "primary": True}],
    "active": True,
}


async def test_refusals_are_scim_errors(gw) -> None:
    http, base, svc, _clock = gw
    token = await _token(svc, [p.value for p in Permission])
    for bad in (None, "cdt_" + "x" * 43):
        status, body = await _scim(http, base, bad, "GET", "/scim/v2/Users")
        assert (status, body["schemas"], body["status"]) == (401, [ERROR], "401")
    # A token without agent_manage, or an agent's own session, may not provision.
    narrow = await _token(svc, ["audit_read"])
    assert (await _scim(http, base, narrow, "GET", "/scim/v2/Users"))[0] == 403
    cases = [
        ("GET", '/scim/v2/Users?filter=userName sw "li"', None, 400, "invalidFilter"),
        ("GET", "/scim/v2/Users?filter=" + "x" * 2000, None, 400, "invalidFilter"),
        ("GET", "/scim/v2/Users/nope", None, 404, None),
        ("GET", "/scim/v2/Groups/nope", None, 404, None),
        ("POST", "/scim/v2/Users", {**USER, "userName": "", "emails": []}, 400, "invalidValue"),
        (
            "POST",
            "/scim/v2/Users",
            {**USER, "userName": "no-address", "emails": []},
            400,
            "invalidValue",
        ),
        ("POST", "/scim/v2/Users", {**USER, "active": "maybe"}, 400, "invalidValue"),
        (
            "PATCH",
            "/scim/v2/Users/nope",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
            404,
            None,
        ),
    ]
    for method, path, body, want, scim_type in cases:
        status, answer = await _scim(http, base, token, method, path, body)
        assert status == want, (method, path, answer)
        assert answer["schemas"] == [ERROR] and answer["status"] == str(want)
        if scim_type:
            assert answer.get("scimType") == scim_type, (path, answer)
    # Not JSON at all, or the wrong media type: still SCIM errors.
    assert (await _scim(http, base, token, "POST", "/scim/v2/Users", "{", SCIM))[0] == 400
    status, _ = await _scim(http, base, token, "POST", "/scim/v2/Users", USER, "text/plain")
    assert status == 415
    status, created = await _scim(http, base, token, "POST", "/scim/v2/Users", USER)
    assert status == 201
    uid = created["id"]
    bad_patches = [
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "move", "path": "active", "value": False}],
        },
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "userName"}],
        },
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "emails", "value": "not an address"}],
        },
    ]
    for patch in bad_patches:
        status, answer = await _scim(http, base, token, "PATCH", f"/scim/v2/Users/{uid}", patch)
        assert status == 400 and answer["schemas"] == [ERROR], (patch, answer)
    # A member from another tenant is refused (and cannot be probed).
    await svc.store.create_tenant(Tenant(id="acme", name="Acme"))
    other, _, _ = await make_agent(svc, "mole@acme.example", tenant="acme")
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "G",
        "members": [{"value": other.id}],
    }
    status, answer = await _scim(http, base, token, "POST", "/scim/v2/Groups", group)
    assert (status, answer.get("scimType")) == (400, "invalidValue")
    assert (await _scim(http, base, token, "GET", f"/scim/v2/Users/{other.id}"))[0] == 404
    # An existing login address cannot be taken over through SCIM.
    await make_agent(svc, "taken@example.com")
    status, answer = await _scim(
        http,
        base,
        token,
        "POST",
        "/scim/v2/Users",
        {**USER, "userName": "x@example.com", "emails": [{"value": "taken@example.com"}]},
    )
    assert (status, answer.get("scimType")) == (409, "uniqueness")


async def test_a_token_grants_no_more_than_it_holds(gw) -> None:
    http, base, svc, _clock = gw
    await _map_groups(svc, {"Admins": "admin"})
    token = await _token(svc, ["agent_manage", "chat_handle"])
    status, user = await _scim(http, base, token, "POST", "/scim/v2/Users", USER)
    assert status == 201
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Admins",
        "members": [{"value": user["id"]}],
    }
    status, answer = await _scim(http, base, token, "POST", "/scim/v2/Groups", group)
    assert status == 403 and answer["schemas"] == [ERROR]
    # Nothing was written: no group, the agent still an agent.
    assert await svc.store.scim_groups("demo") == []
    agent = await svc.store.get_agent(user["id"])
    assert agent is not None and agent.role == "agent"
    # Nor can it disable someone with more power than it has.
    admin = await svc.store.get_agent_by_email("root@example.com")
    assert admin is not None
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    await svc.store.save_scim_user(ScimUser(admin.id, "demo", ROOT, None, 1.0, 1.0), new=True)
    assert (await _scim(http, base, token, "PATCH", f"/scim/v2/Users/{admin.id}", patch))[0] == 403
    admin = await svc.store.get_agent(admin.id)
    assert admin is not None and not admin.disabled


async def test_a_leavers_live_console_closes_within_a_minute(gw) -> None:
    http, base, svc, clock = gw
    token = await _token(svc, [p.value for p in Permission])
    status, user = await _scim(http, base, token, "POST", "/scim/v2/Users", USER)
    assert status == 201
    # The admin hands the person an activation link; they choose a password and a TOTP.
    password, secret = _ROOT_CREDENTIALS[svc.config.server.data_dir]
    admin_session = await login(http, base, ROOT, password, secret, clock.now)
    async with http.post(
        f"{base}/api/agents/{user['id']}/activation-link", headers=bearer(admin_session)
    ) as r:
        assert r.status == 200, await r.text()
        link = (await r.json())["link"]
    invite_token = link.split("#", 1)[1]
    async with http.post(f"{base}/api/invite/open", json={"token": invite_token}) as r:
        opened = await r.json()
        assert r.status == 200 and opened["email"] == "li.lei@example.com"
    password = "a long enough passphrase for li"
    async with http.post(
        f"{base}/api/invite/redeem",
        json={
            "token": invite_token,
            "password": password,
            "enrollment": opened["enrollment"],
            "otp": totp_code(opened["secret"], clock.now),
        },
    ) as r:
        assert r.status == 201, await r.text()
        session = (await r.json())["token"]
    # A second link for an activated agent is refused.
    async with http.post(
        f"{base}/api/agents/{user['id']}/activation-link", headers=bearer(admin_session)
    ) as r:
        assert r.status == 409

    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(session))
    try:
        assert (await asyncio.wait_for(ws.receive(), 5)).type == aiohttp.WSMsgType.TEXT
        client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
        assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data)["t"] == "sealed"
        started = time.monotonic()
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        }
        status, answer = await _scim(
            http, base, token, "PATCH", f"/scim/v2/Users/{user['id']}", patch
        )
        assert status == 200 and answer["active"] is False
        while True:
            msg = await asyncio.wait_for(ws.receive(), 60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
        closed_after = time.monotonic() - started
        assert closed_after < 60
        print(f"\nSCIM deactivation -> console closed 4401 after {closed_after * 1000:.0f} ms")
    finally:
        await ws.close()
    async with http.get(f"{base}/api/me", headers=bearer(session)) as r:
        assert r.status == 401


class _Mailbox:
    """An SMTP server's inbox (aiosmtpd runs it on its own thread)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.got = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        self.loop.call_soon_threadsafe(self.got.set)
        return "250 OK"


async def test_the_activation_link_is_mailed_when_there_is_a_relay(
    service_store_url: str, tmp_path: Path
) -> None:
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path,
        clock=clock,
        store={"url": service_store_url},
        notify={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "cd@example.com"},
    )
    try:
        async with aiohttp.ClientSession() as http:
            token = await _token(svc, [p.value for p in Permission])
            status, user = await _scim(http, base, token, "POST", "/scim/v2/Users", USER)
            assert status == 201
            await asyncio.wait_for(mailbox.got.wait(), 10)
            [mail] = mailbox.messages
            assert mail["To"] == "li.lei@example.com" and mail["From"] == "cd@example.com"
            assert mail["Subject"] == "您的 cipherdesk 客服账号 / Your cipherdesk agent account"
            body = mail.get_content()
            assert "请在 72 小时内打开" in body and "within 72 hours" in body
            link = re.search(r"/invite#(cdi_[A-Za-z0-9_-]{43})", body)
            assert link is not None
            # The mailed link is the one way in: it opens for this agent and works once.
            async with http.post(f"{base}/api/invite/open", json={"token": link.group(1)}) as r:
                opened = await r.json()
                assert r.status == 200 and opened["email"] == "li.lei@example.com"
            actions = [e.action for e in await svc.store.query_audit(tenant_id="demo", limit=50)]
            assert "invite.mailed" in actions
            assert link.group(1) not in json.dumps(
                [e.details for e in await svc.store.query_audit(tenant_id="demo", limit=50)]
            )
            agent = await svc.store.get_agent(user["id"])
            assert agent is not None and not agent.totp_confirmed
    finally:
        await runner.cleanup()
        smtp.stop()


async def test_group_mappings_name_only_roles_the_admin_may_give(gw) -> None:
    http, base, svc, clock = gw
    await _token(svc, ["agent_manage"])  # creates the tenant admin
    admin = await svc.store.get_agent_by_email(ROOT)
    assert admin is not None
    people = RoleDefinition("people", "admin", ("agent_manage", "chat_handle"))
    qa = RoleDefinition("qa-analyst", "supervisor", ("quality_read",))
    for definition in (people, qa):
        await svc.custom_roles.define(agent_principal(admin), definition)
    password, secret = _ROOT_CREDENTIALS[svc.config.server.data_dir]
    root = bearer(await login(http, base, ROOT, password, secret, clock.now))
    url = f"{base}/api/scim/settings"

    async def put(headers: dict[str, str], body: dict) -> tuple[int, dict]:
        async with http.put(url, headers=headers, json=body) as r:
            return r.status, await r.json()

    status, saved = await put(root, {"group_roles": {"QA": "qa-analyst", "Leads": "supervisor"}})
    assert status == 200 and saved == {
        "group_roles": {"QA": "qa-analyst", "Leads": "supervisor"},
        "default_role": "agent",
    }
    status, body = await put(root, {"group_roles": {"X": "ghost"}})
    assert (status, body["error"]["code"]) == (400, "unknown_role")
    # A people manager may map groups to plain agents, not to roles stronger than theirs.
    hr, hr_secret, hr_password = await make_agent(svc, "hr@example.com")
    await svc.custom_roles.assign(agent_principal(admin), hr, custom_role="people")
    clock.advance(31)
    hr_token = bearer(await login(http, base, "hr@example.com", hr_password, hr_secret, clock.now))
    for role in ("supervisor", "qa-analyst"):
        status, body = await put(hr_token, {"group_roles": {"G": role}})
        assert (status, body["error"]["code"]) == (403, "cannot_grant"), role
    assert (await put(hr_token, {"group_roles": {"G": "agent"}}))[0] == 200
    audit = await svc.store.query_audit(action="scim.settings_changed")
    assert [e.actor for e in audit] == [hr.id, admin.id]


async def test_an_activation_link_needs_power_over_the_agent(gw) -> None:
    """The link's holder takes the account over: a people manager cannot make one for a
    provisioned admin (as for an MFA reset)."""
    http, base, svc, clock = gw
    token = await _token(svc, [p.value for p in Permission])
    admin = await svc.store.get_agent_by_email(ROOT)
    assert admin is not None
    await _map_groups(svc, {"Admins": "admin"})
    status, user = await _scim(http, base, token, "POST", "/scim/v2/Users", USER)
    assert status == 201
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Admins",
        "members": [{"value": user["id"]}],
    }
    assert (await _scim(http, base, token, "POST", "/scim/v2/Groups", group))[0] == 201
    people = RoleDefinition("people", "admin", ("agent_manage", "chat_handle"))
    await svc.custom_roles.define(agent_principal(admin), people)
    hr, hr_secret, hr_password = await make_agent(svc, "hr@example.com")
    await svc.custom_roles.assign(agent_principal(admin), hr, custom_role="people")
    hr_token = await login(http, base, "hr@example.com", hr_password, hr_secret, clock.now)
    url = f"{base}/api/agents/{user['id']}/activation-link"
    async with http.post(url, headers=bearer(hr_token)) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "cannot_grant")
    password, secret = _ROOT_CREDENTIALS[svc.config.server.data_dir]
    root = await login(http, base, ROOT, password, secret, clock.now)
    async with http.post(url, headers=bearer(root)) as r:
        assert r.status == 200 and "/invite#cdi_" in (await r.json())["link"]


async def test_display_names_from_the_directory_go_through_the_policy(gw) -> None:
    """Customers see an agent's display name when the agent joins and plugins receive it
    with every message: a directory's name holding a card number is refused, a phone in it
    masked -- and the person's own name ("张伟先生") kept, which a plain screen would mask."""
    http, base, svc, _clock = gw
    token = await _token(svc, [p.value for p in Permission])
    carded = {**USER, "displayName": "Li Lei 4111 1111 1111 1111"}
    status, answer = await _scim(http, base, token, "POST", "/scim/v2/Users", carded)
    assert (status, answer.get("scimType")) == (400, "invalidValue"), answer
    assert "4111" not in json.dumps(answer)
    assert await svc.store.get_agent_by_email("li.lei@example.com") is None
    status, created = await _scim(
        http, base, token, "POST", "/scim/v2/Users", {**USER, "displayName": "张伟先生"}
    )
    assert (status, created["displayName"]) == (201, "张伟先生")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "张伟 13800138000"}],
    }
    path = f"/scim/v2/Users/{created['id']}"
    status, patched = await _scim(http, base, token, "PATCH", path, patch)
    assert (status, patched["displayName"]) == (200, "张伟 138****8000")
    patch["Operations"][0]["value"] = "4111111111111111"
    status, answer = await _scim(http, base, token, "PATCH", path, patch)
    assert (status, answer.get("scimType")) == (400, "invalidValue")
    agent = await svc.store.get_agent(created["id"])
    assert agent is not None and agent.display_name == "张伟 138****8000"
