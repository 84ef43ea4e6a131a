"""Custom roles (issue 14.3) over real HTTP, on SQLite and PostgreSQL.

A tenant admin cuts a role from a built-in one (a quality analyst: a supervisor's quality
report and nothing else), gives it to agents, edits and deletes it. What a holder may do
follows the role at once; nobody hands out or takes away what they do not hold; the
tenant always keeps an admin; every change is audited.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from auth.roles import Permission
from gateway.services import Services
from gateway.sessions import agent_principal
from gateway.store._rows import AGENT_COLS, AGENT_SELECT
from gateway.store.base import CustomRole
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

STRONG = "a long enough passphrase 1"


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc
    await runner.cleanup()


_CREDENTIALS: dict[tuple[str, str], tuple[str, str]] = {}


async def _token(http, base: str, svc: Services, email: str, role: str) -> tuple[str, str]:
    agent, secret, password = await make_agent(svc, email, role=role)
    _CREDENTIALS[(base, email)] = (password, secret)
    return agent.id, await login(http, base, email, password, secret, svc.clock())


async def _relogin(http, base: str, svc: Services, email: str) -> str:
    """A fresh session for an agent made by :func:`_token` of this gateway (in the next
    TOTP step: a code is accepted once)."""
    password, secret = _CREDENTIALS[(base, email)]
    svc.clock.advance(31)  # the gateway runs on the FakeClock of ``gw``
    return await login(http, base, email, password, secret, svc.clock())


async def _call(http, method: str, url: str, token: str, body=None) -> tuple[int, dict]:
    async with http.request(method, url, headers=bearer(token), json=body) as r:
        return r.status, await r.json()


def _code(answer: tuple[int, dict]) -> tuple[int, str]:
    status, body = answer
    return status, body.get("error", {}).get("code", "")


async def _define(http, base, token, name, base_role, permissions, description=""):
    return await _call(
        http,
        "PUT",
        f"{base}/api/roles/{name}",
        token,
        {"base": base_role, "permissions": permissions, "description": description},
    )


async def test_a_quality_analyst_can_read_the_report_and_nothing_else(gw) -> None:
    http, base, svc = gw
    _, admin = await _token(http, base, svc, "boss@example.com", "admin")
    status, body = await _define(
        http, base, admin, "qa-analyst", "supervisor", ["quality_read"], "Reads the weekly report"
    )
    assert status == 201, body
    assert body["role"] == {
        **body["role"],
        "name": "qa-analyst",
        "base": "supervisor",
        "permissions": ["quality_read"],
        "holders": 0,
    }
    # Defining it again with the same content is an edit (200), not a second role.
    assert (await _define(http, base, admin, "qa-analyst", "supervisor", ["quality_read"]))[
        0
    ] == 200

    qa_id, qa_token = await _token(http, base, svc, "quinn@example.com", "agent")
    status, body = await _call(
        http, "PATCH", f"{base}/api/agents/{qa_id}", admin, {"custom_role": "qa-analyst"}
    )
    assert status == 200, body
    assert body["agent"]["role"] == "supervisor" and body["agent"]["custom_role"] == "qa-analyst"
    # The old session held the old principal: it is gone.
    assert (await _call(http, "GET", f"{base}/api/me", qa_token))[0] == 401
    qa_token = await _relogin(http, base, svc, "quinn@example.com")
    status, me = await _call(http, "GET", f"{base}/api/me", qa_token)
    assert status == 200 and me["permissions"] == ["quality_read"]
    assert (await _call(http, "GET", f"{base}/api/quality", qa_token))[0] == 200
    # A plain supervisor could read these; the analyst cannot.
    assert _code(await _call(http, "GET", f"{base}/api/audit", qa_token)) == (403, "forbidden")
    assert (await _call(http, "GET", f"{base}/api/history/chats", qa_token))[0] == 403

    status, listing = await _call(http, "GET", f"{base}/api/roles", admin)
    assert status == 200
    assert [r["name"] for r in listing["builtin"]] == ["agent", "supervisor", "admin"]
    assert [(r["name"], r["holders"]) for r in listing["custom"]] == [("qa-analyst", 1)]
    assert set(listing["permissions"]) == {p.value for p in Permission}
    audit = {e.action: e for e in await svc.store.query_audit(tenant_id="demo", limit=50)}
    assert audit["role.defined"].details["permissions"] == ["quality_read"]
    assert audit["role.changed"].details == {
        "old_role": "agent",
        "new_role": "supervisor",
        "old_custom_role": None,
        "new_custom_role": "qa-analyst",
    }

    # Back to the built-in role alone: "" clears the custom role, the base stays.
    status, body = await _call(
        http, "PATCH", f"{base}/api/agents/{qa_id}", admin, {"custom_role": ""}
    )
    assert status == 200 and body["agent"]["custom_role"] is None
    assert body["agent"]["role"] == "supervisor"


async def test_definitions_are_validated(gw) -> None:
    http, base, svc = gw
    _, admin = await _token(http, base, svc, "boss@example.com", "admin")
    cases = [
        ("admin", "supervisor", ["quality_read"], "invalid_role_name"),
        ("Bad Name", "supervisor", ["quality_read"], "invalid_role_name"),
        ("x", "supervisor", ["quality_read"], "invalid_role_name"),
        ("helper", "operator", ["quality_read"], "invalid_base"),
        ("helper", "supervisor", ["root_shell"], "invalid_permissions"),
        ("helper", "supervisor", [], "invalid_permissions"),
        # A custom role only narrows: an agent-based role cannot read the audit log.
        ("helper", "agent", ["chat_handle", "audit_read"], "invalid_permissions"),
    ]
    for name, base_role, perms, code in cases:
        answer = await _define(http, base, admin, name.replace(" ", "%20"), base_role, perms)
        assert _code(answer) == (400, code), (name, base_role, perms, answer)
    # The description is staff free text: masked by the policy, refused when it blocks.
    status, body = await _define(
        http, base, admin, "night", "agent", ["chat_handle"], "call Li on 13800138000"
    )
    assert status == 201 and "13800138000" not in body["role"]["description"]
    answer = await _define(
        http, base, admin, "night", "agent", ["chat_handle"], "card 4111 1111 1111 1111"
    )
    assert _code(answer) == (400, "policy_blocked")
    assert _code(
        await _call(http, "PATCH", f"{base}/api/agents/nobody", admin, {"custom_role": "night"})
    ) == (404, "not_found")
    agent_id, _ = await _token(http, base, svc, "amy@example.com", "agent")
    assert _code(
        await _call(http, "PATCH", f"{base}/api/agents/{agent_id}", admin, {"custom_role": "nope"})
    ) == (400, "unknown_role")
    assert _code(
        await _call(
            http,
            "PATCH",
            f"{base}/api/agents/{agent_id}",
            admin,
            {"custom_role": "night", "role": "agent"},
        )
    ) == (400, "bad_request")
    assert len((await _call(http, "GET", f"{base}/api/roles", admin))[1]["custom"]) == 1


async def test_nobody_hands_out_or_takes_away_what_they_do_not_hold(gw) -> None:
    http, base, svc = gw
    boss_id, boss = await _token(http, base, svc, "boss@example.com", "admin")
    # A people manager: an admin's agent management, without the audit log, flagged
    # originals, plugins, policy or the emergency panel.
    manager_perms = ["agent_manage", "chat_handle"]
    assert (await _define(http, base, boss, "people", "admin", manager_perms))[0] == 201
    hr_id, _ = await _token(http, base, svc, "hr@example.com", "agent")
    assert (
        await _call(http, "PATCH", f"{base}/api/agents/{hr_id}", boss, {"custom_role": "people"})
    )[0] == 200
    hr = await _relogin(http, base, svc, "hr@example.com")
    amy_id, _ = await _token(http, base, svc, "amy@example.com", "agent")
    sup_id, _ = await _token(http, base, svc, "sue@example.com", "supervisor")

    # Creating or inviting an agent works; a supervisor or an admin does not.
    new = {"email": "new@example.com", "role": "agent", "password": STRONG}
    assert (await _call(http, "POST", f"{base}/api/agents", hr, new))[0] == 201
    for role in ("supervisor", "admin"):
        body = {**new, "email": f"{role}@example.com", "role": role}
        assert _code(await _call(http, "POST", f"{base}/api/agents", hr, body)) == (
            403,
            "cannot_grant",
        )
        invite = {"email": f"inv-{role}@example.com", "role": role}
        assert _code(await _call(http, "POST", f"{base}/api/invites", hr, invite)) == (
            403,
            "cannot_grant",
        )
    # Promoting, or defining a role with more than one holds: refused.
    assert _code(
        await _call(http, "PATCH", f"{base}/api/agents/{amy_id}", hr, {"role": "supervisor"})
    ) == (403, "cannot_grant")
    assert _code(await _define(http, base, hr, "spy", "supervisor", ["flag_view_original"])) == (
        403,
        "cannot_grant",
    )
    # Nor may they act on someone with more power: demote, disable, reset a supervisor.
    for method, path, body in (
        ("PATCH", f"/api/agents/{sup_id}", {"role": "agent"}),
        ("PATCH", f"/api/agents/{sup_id}", {"disabled": True}),
        ("PATCH", f"/api/agents/{boss_id}", {"disabled": True}),
        ("POST", f"/api/agents/{boss_id}/reset-mfa", None),
    ):
        assert _code(await _call(http, method, f"{base}{path}", hr, body)) == (
            403,
            "cannot_grant",
        ), (method, path, body)
    # Editing the role they hold (to widen it) is refused too.
    assert _code(
        await _define(http, base, hr, "people", "admin", [*manager_perms, "audit_read"])
    ) == (403, "cannot_grant")
    # Within their own powers everything works: disable a plain agent.
    status, body = await _call(http, "PATCH", f"{base}/api/agents/{amy_id}", hr, {"disabled": True})
    assert status == 200 and body["agent"]["disabled"] is True
    sup = await svc.store.get_agent(sup_id)
    assert sup is not None and sup.role == "supervisor" and not sup.disabled


async def test_edits_reach_holders_at_once_and_removals_end_their_sessions(gw) -> None:
    http, base, svc = gw
    _, admin = await _token(http, base, svc, "boss@example.com", "admin")
    assert (await _define(http, base, admin, "desk", "supervisor", ["chat_handle"]))[0] == 201
    desk_id, _ = await _token(http, base, svc, "dee@example.com", "agent")
    await _call(http, "PATCH", f"{base}/api/agents/{desk_id}", admin, {"custom_role": "desk"})
    desk = await _relogin(http, base, svc, "dee@example.com")
    assert (await _call(http, "GET", f"{base}/api/quality", desk))[0] == 403

    # Widening: the same session may do more on its next request.
    widened = ["chat_handle", "quality_read"]
    assert (await _define(http, base, admin, "desk", "supervisor", widened))[0] == 200
    assert (await _call(http, "GET", f"{base}/api/quality", desk))[0] == 200
    # Narrowing: the holder's sessions end (their console held the wider principal).
    assert (await _define(http, base, admin, "desk", "supervisor", ["chat_handle"]))[0] == 200
    assert (await _call(http, "GET", f"{base}/api/me", desk))[0] == 401
    redefined = [e for e in await svc.store.query_audit(action="role.redefined")]
    assert redefined[0].details["removed"] == ["quality_read"]
    assert redefined[0].details["holders"] == 1

    # A role in use cannot be deleted; once nobody holds it, it can.
    assert _code(await _call(http, "DELETE", f"{base}/api/roles/desk", admin)) == (
        409,
        "role_in_use",
    )
    await _call(http, "PATCH", f"{base}/api/agents/{desk_id}", admin, {"role": "agent"})
    assert (await _call(http, "DELETE", f"{base}/api/roles/desk", admin))[0] == 200
    assert _code(await _call(http, "DELETE", f"{base}/api/roles/desk", admin)) == (
        404,
        "not_found",
    )
    assert [e.target for e in await svc.store.query_audit(action="role.deleted")] == ["desk"]


async def test_the_tenant_always_keeps_an_admin(gw) -> None:
    http, base, svc = gw
    boss_id, boss = await _token(http, base, svc, "boss@example.com", "admin")
    assert (await _define(http, base, boss, "auditor", "admin", ["audit_read"]))[0] == 201
    assert (await _define(http, base, boss, "people", "admin", ["agent_manage"]))[0] == 201
    # The only admin may not take a role that cannot manage agents...
    assert _code(
        await _call(http, "PATCH", f"{base}/api/agents/{boss_id}", boss, {"custom_role": "auditor"})
    ) == (409, "last_admin")
    # ...but may take one that still can, and then no edit may remove that power.
    status, _ = await _call(
        http, "PATCH", f"{base}/api/agents/{boss_id}", boss, {"custom_role": "people"}
    )
    assert status == 200
    boss = await _relogin(http, base, svc, "boss@example.com")
    # The boss no longer holds audit_read, so "auditor" (audit_read) is out of reach too.
    assert _code(
        await _define(http, base, boss, "people", "admin", ["agent_manage", "audit_read"])
    ) == (
        403,
        "cannot_grant",
    )
    second_id, _ = await _token(http, base, svc, "root2@example.com", "admin")
    second = await _relogin(http, base, svc, "root2@example.com")
    # A second full admin exists now, so the edit that strips the boss's power is allowed.
    status, _ = await _define(http, base, second, "people", "admin", ["audit_read"])
    assert status == 200
    # And the full admin cannot disable themselves: nobody else can manage agents now.
    assert _code(
        await _call(http, "PATCH", f"{base}/api/agents/{second_id}", second, {"disabled": True})
    ) == (409, "last_admin")


async def test_a_vanished_role_grants_nothing(gw) -> None:
    _, _, svc = gw
    agent, _, _ = await make_agent(svc, "ghost@example.com", role="supervisor")
    # A reference to a role that is not there (written past the API): nothing is granted.
    assert await svc.store.set_agent_role(agent.id, "supervisor", "missing")
    stored = await svc.store.get_agent(agent.id)
    assert stored is not None and stored.custom_role == "missing"
    assert agent_principal(stored).permissions == frozenset()
    # A custom role naming more than its base (written past the API) is cut to the base.
    await svc.store.save_custom_role(
        CustomRole("demo", "forged", "agent", ("chat_handle", "audit_read"), "", 1.0, 1.0)
    )
    await svc.store.set_agent_role(agent.id, "agent", "forged")
    stored = await svc.store.get_agent(agent.id)
    assert stored is not None
    assert agent_principal(stored).permissions == {Permission.CHAT_HANDLE}
    # The store reads every agent column through the join.
    assert [c.strip() for c in AGENT_COLS.split(",")] == [
        c.strip().removeprefix("a.")
        for c in AGENT_SELECT.removeprefix("SELECT ").split(" FROM ")[0].split(",")
    ][:13]


async def test_a_refused_change_in_a_patch_changes_nothing_else(gw) -> None:
    # A rename sent with a role change, a disable or queues the actor may not set used to
    # be stored before the refusal: the request now does all it asks or nothing.
    http, base, svc = gw
    _, boss = await _token(http, base, svc, "boss@example.com", "admin")
    assert (await _define(http, base, boss, "people", "admin", ["agent_manage"]))[0] == 201
    hr_id, _ = await _token(http, base, svc, "hr@example.com", "agent")
    patch = f"{base}/api/agents/{hr_id}"
    assert (await _call(http, "PATCH", patch, boss, {"custom_role": "people"}))[0] == 200
    hr = await _relogin(http, base, svc, "hr@example.com")
    amy_id, _ = await _token(http, base, svc, "amy@example.com", "agent")
    sup_id, _ = await _token(http, base, svc, "sue@example.com", "supervisor")
    amy, sup = f"{base}/api/agents/{amy_id}", f"{base}/api/agents/{sup_id}"
    for url, token, body, refusal in (
        (amy, hr, {"display_name": "Amy B", "role": "supervisor"}, (403, "cannot_grant")),
        (sup, hr, {"display_name": "Sue B", "disabled": True}, (403, "cannot_grant")),
        (amy, boss, {"display_name": "Amy C", "queues": ["nowhere"]}, (400, "unknown_queue")),
        (amy, boss, {"display_name": "Amy D", "custom_role": "ghost"}, (400, "unknown_role")),
    ):
        assert _code(await _call(http, "PATCH", url, token, body)) == refusal, body
    for agent_id, role in ((amy_id, "agent"), (sup_id, "supervisor")):
        kept = await svc.store.get_agent(agent_id)
        assert kept is not None and kept.role == role and not kept.disabled
        assert kept.display_name not in {"Amy B", "Sue B", "Amy C", "Amy D"}
        assert kept.queues == ()
    assert await svc.store.query_audit(action="agent.renamed") == []
    # Allowed as a whole, the same request does all of it.
    status, body = await _call(http, "PATCH", amy, boss, {"display_name": "Amy E", "queues": []})
    assert status == 200 and body["agent"]["display_name"] == "Amy E"
    assert len(await svc.store.query_audit(action="agent.renamed")) == 1
