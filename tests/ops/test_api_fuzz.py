"""schemathesis against a real gateway: every documented operation, stateful sequences.

Run as the MFA-logged-in admin of tenant ``acme`` (Bearer token) against the production
app on 127.0.0.1 (see tests/ops/api_fuzz.py). Checks on every response: not a server
error (5xx), status code and content type documented, body matching the documented
schema, and no id or name of the other tenant (``globex``). ``make test`` runs a few
hundred cases; ``make api-fuzz`` many more (CIPHERDESK_API_FUZZ_EXAMPLES).

Operations the loop cannot call meaningfully are named with the reason (``NOT_FUZZED``:
the never-ending SSE stream; ``ONLY_REFUSED``: operator routes and the vendor-signed
inbound webhook) and checked by their own tests here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.http.openapi import OPENAPI_PATH
from tests.ops.api_fuzz import (
    EXAMPLES,
    STATEFUL_EXAMPLES,
    Admin,
    FuzzGateway,
    lift_passkey_rule,
    no_cross_tenant_leak,
    start,
)

#: Documented operations the generic loop leaves out, each with the reason and the test
#: that checks it instead.
NOT_FUZZED = {
    "GET /api/alerts/stream": "Server-Sent Events: the answer never ends (a keep-alive every "
    "15 s), so no case would complete; "
    "test_alert_stream_speaks_the_documented_schema reads it",
}

#: Operations the fuzzed tenant admin can only be refused by (they stay in the loop, where
#: the refusal is checked against the contract like any answer); the success answers are
#: covered elsewhere: operator routes in tests/gateway/test_operator.py, the signed
#: inbound webhook in test_signed_inbound_calls below.
ONLY_REFUSED = {
    "GET /api/operator/tenants": 403,
    "POST /api/operator/tenants": 403,
    "POST /api/operator/tenants/{tenant_id}/freeze": 403,
    "GET /api/operator/settings": 403,
    "POST /api/inbound/{tenant}/{plugin}": 401,
}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzGateway]:
    yield from start(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def admin(gateway: FuzzGateway) -> Admin:
    return Admin(gateway)


@pytest.fixture(scope="module")
def api_schema(gateway: FuzzGateway) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{gateway.base}/api/openapi.json")
    for label in NOT_FUZZED:
        method, path = label.split(" ", 1)
        schema = schema.exclude(method=method, path=path)
    # 413 (body over 64 KiB, e.g. a text past its maxLength) is a rejection too
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


def _fuzz_operation(
    operation: Any, mode: GenerationMode, gateway: FuzzGateway, admin: Admin
) -> None:
    checks = CHECKS if mode is GenerationMode.NEGATIVE else CHECKS[:4]
    leak = no_cross_tenant_leak(gateway)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: schemathesis.Case) -> None:
        if mode is GenerationMode.NEGATIVE and _query_valid_on_the_wire(case):
            reject()
        response = case.call(headers=admin.headers(), timeout=30)
        admin.after(response)
        case.validate_response(response, checks=checks, additional_checks=[leak])

    run()


#: Locations whose negative values never reach the server as generated: the fuzzed
#: admin's own Authorization header (and session) replace them on every call.
_REPLACED = {"header", "cookie"}


def _query_valid_on_the_wire(case: schemathesis.Case) -> bool:
    """A "negative" case whose only invalid part is a query value that, once requests has
    encoded it, reads as a valid query. schemathesis filters such scalars itself but not
    lists and objects: ``{"plugin": [["x"]]}`` goes out as ``?plugin=x``, which no server
    can tell from a valid call. Decided with the operation's own query Struct (the one the
    contract documents), on exactly the query string that is sent; a parameter sent twice
    stays negative (the gateway refuses repeated parameters)."""
    import urllib.parse
    from collections import Counter

    import msgspec

    from gateway.http.openapi import registry

    negative = {
        str(getattr(loc, "value", loc))
        for loc, info in case.meta.components.items()
        if info.mode is GenerationMode.NEGATIVE
    }
    op = registry().get((case.method.upper(), case.operation.path))
    if op is None or op.query is None or negative - _REPLACED != {"query"}:
        return False
    kwargs = case.as_transport_kwargs(base_url="http://fuzz.invalid")
    url = (
        requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params")).prepare().url
        or ""
    )
    pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    if any(n > 1 for n in Counter(name for name, _ in pairs).values()):
        return False
    try:
        msgspec.convert(dict(pairs), op.query, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def _describe(exc: BaseException, depth: int = 0) -> str:
    """The failure text schemathesis prints (checks, response, curl to reproduce),
    including nested groups (hypothesis wraps an unreliable failure in one)."""
    parts = [f"{type(exc).__name__}: {exc}"]
    for sub in getattr(exc, "exceptions", ())[:3] if depth < 3 else ():
        parts.append(_describe(sub, depth + 1))
    return "\n".join(parts)[:4000]


def test_every_operation(
    api_schema: schemathesis.BaseSchema, gateway: FuzzGateway, admin: Admin
) -> None:
    """Positive and negative cases for every operation; all failures are collected and
    reported together, each under its operation."""
    failures: list[str] = []
    operations = [r.ok() for r in api_schema.get_all_operations()]
    documented = {
        f"{m.upper()} {p}" for p, ms in api_schema.raw_schema["paths"].items() for m in ms
    }
    # schemathesis leaves out the operation that serves the schema it loaded
    assert documented - {o.label for o in operations} == {f"GET {OPENAPI_PATH}", *NOT_FUZZED}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, gateway, admin)
            except Unsatisfiable:  # nothing to make invalid: no parameters and no body
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # keep going, report at the end
                failures.append(f"{operation.label} [{mode.value}]: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)


def test_stateful_sequences(
    api_schema: schemathesis.BaseSchema, gateway: FuzzGateway, admin: Admin
) -> None:
    """Sequences that follow the contract's links (create an agent, then patch, unlock,
    revoke, reset it). Failures are collected rather than raised inside the machine:
    hypothesis cannot replay a scenario against a server whose state moved on."""
    leak = no_cross_tenant_leak(gateway)
    failures: list[str] = []

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict:
            try:
                return {"headers": admin.headers(), "timeout": 30}
            except AssertionError as exc:  # reported below; the call goes out unauthenticated
                failures.append(str(exc))
                return {"timeout": 30}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            admin.after(response)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(
                    response,
                    checks=CHECKS[:4],
                    additional_checks=[leak],
                    transport_kwargs=kwargs or None,
                )
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{case.method} {case.formatted_path}: {_describe(exc)}")

        def teardown(self) -> None:
            scenarios.append(1)
            super().teardown()

    scenarios: list[int] = []
    before = gateway.calls
    for _attempt in range(10):
        if len(scenarios) >= STATEFUL_EXAMPLES:
            break
        try:
            # generate only (schemathesis' own default for stateful runs)
            Machine.run(
                settings=settings(
                    max_examples=STATEFUL_EXAMPLES - len(scenarios),
                    deadline=None,
                    stateful_step_count=8,
                    phases=[Phase.generate],
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
            )
        except Flaky:
            # hypothesis re-drew a scenario and the server (rightly) answered differently
            # the second time; schemathesis' own runner treats this the same way: go on
            pass
    assert not failures, "\n\n".join(failures)
    print(f"stateful: {len(scenarios)} scenarios, {gateway.calls - before} calls")
    assert len(scenarios) >= STATEFUL_EXAMPLES // 2


def test_the_harness_recovers_when_its_admin_mfa_is_reset(
    gateway: FuzzGateway, admin: Admin
) -> None:
    """The loop may reset the scripted admin's own MFA (a valid call whose answer is a
    re-enrolment link for a person): the harness then gives it a known factor again."""
    url = f"{gateway.base}/api/agents/{gateway.admin_id}/reset-mfa"
    headers = admin.headers()
    reauth = requests.get(f"{gateway.base}/api/me", headers=headers, timeout=30)
    assert reauth.status_code == 200, reauth.text
    resp = requests.post(url, headers=headers, timeout=30)
    if resp.status_code == 403 and resp.json()["error"]["code"] == "reauth_required":
        admin.token = ""  # a fresh login is a fresh step-up
        resp = requests.post(url, headers=admin.headers(), timeout=30)
    admin.after(resp)
    assert resp.status_code == 200 and "link" in resp.json(), resp.text
    again = requests.get(f"{gateway.base}/api/me", headers=admin.headers(), timeout=30)
    if again.status_code == 401:
        admin.after(again)
        again = requests.get(f"{gateway.base}/api/me", headers=admin.headers(), timeout=30)
    assert again.status_code == 200, again.text


def test_fuzzed_admin_still_works_and_case_count(gateway: FuzzGateway, admin: Admin) -> None:
    """After the run: the admin can still act (nothing broke the server), and the number
    of generated cases is reported."""
    resp = requests.get(f"{gateway.base}/api/me", headers=admin.headers(), timeout=30)
    if resp.status_code == 401:
        admin.token = ""
        resp = requests.get(f"{gateway.base}/api/me", headers=admin.headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    print(f"schemathesis generated {gateway.calls} API calls")
    assert gateway.calls >= 100


def test_alert_stream_speaks_the_documented_schema(
    api_schema: schemathesis.BaseSchema, gateway: FuzzGateway, admin: Admin
) -> None:
    """The operation the loop cannot call: its content type is the documented one and the
    first event's data decodes as the documented ``AlertList`` (unknown fields refused)."""
    import msgspec

    from gateway.http.contract import AlertList

    gateway.run(lift_passkey_rule(gateway.svc))  # the loop may have left it on (valid call)
    op = api_schema.raw_schema["paths"]["/api/alerts/stream"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"text/event-stream"}
    headers = admin.headers()

    async def first_event() -> tuple[int, str, list[str]]:
        # read on the gateway's own loop with aiohttp: the stream never ends by itself
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gateway.base}/api/alerts/stream", headers=headers) as resp,
        ):
            lines = []
            while not lines or lines[-1] != "":
                raw = await asyncio.wait_for(resp.content.readline(), 10)
                lines.append(raw.decode().rstrip("\n"))
            return resp.status, resp.headers["Content-Type"], lines

    status, content_type, lines = gateway.run(first_event())
    gateway.calls += 1
    assert status == 200
    assert content_type.startswith("text/event-stream")
    assert lines[0] == "event: alerts" and lines[1].startswith("data: "), lines
    data = lines[1].removeprefix("data: ")
    alerts = msgspec.json.decode(data, type=AlertList)
    assert isinstance(alerts.alerts, list)
    assert not [s for s in gateway.sentinels if s in data]


def test_installation_routes_refuse_the_tenant_admin(
    api_schema: schemathesis.BaseSchema, gateway: FuzzGateway, admin: Admin
) -> None:
    """A tenant admin holds no installation permission and no vendor signature: a valid
    call to each of these operations gets exactly the documented refusal."""
    gateway.run(lift_passkey_rule(gateway.svc))  # the loop may have left it on (valid call)
    for label, expected in ONLY_REFUSED.items():
        method, path = label.split(" ", 1)
        _expect_refusal(api_schema[path][method], label, expected, admin)


def _expect_refusal(operation: Any, label: str, expected: int, admin: Admin) -> None:
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def refused(case: schemathesis.Case) -> None:
        response = case.call(headers=admin.headers(), timeout=30)
        admin.after(response)
        assert response.status_code == expected, (label, response.text)
        assert response.json()["error"]["code"] in ("forbidden", "bad_signature"), label
        case.validate_response(response, checks=CHECKS[:4])

    refused()


async def _unfreeze(svc: Any, tenant_id: str) -> None:
    from gateway.tenant_admin import set_frozen

    tenant = await svc.store.get_tenant(tenant_id)
    if tenant is not None and tenant.frozen:
        await set_frozen(svc, tenant, False, actor="test")


INBOUND_SECRET = "fuzz-inbound-9Qm2Lx7Tv4Rk"


def test_signed_inbound_calls(api_schema: schemathesis.BaseSchema, gateway: FuzzGateway) -> None:
    """The inbound webhook past its signature check. The loop above can only reach its
    refusals (no session helps; an unsigned call is 401 ``bad_signature``); here acme's
    webhook plugin has an inbound secret and every generated body is signed with it, aimed
    at acme's chats (then the answer must match the documented schema) — and the same
    signed body for globex is refused like a bad signature."""
    import json

    from hypothesis import strategies as st

    from plugins.webhook import SIGNATURE_HEADER, signature_header
    from tests.ops.api_fuzz import seed_chat

    svc = gateway.svc
    gateway.run(_unfreeze(svc, "acme"))  # the loop may have left acme frozen (a valid call)
    gateway.run(
        svc.plugins.configure(
            "acme",
            "webhook",
            {
                "url": "http://127.0.0.1:9/in",
                "secret": "s" * 24,
                "inbound_secret": INBOUND_SECRET,
                "events": ["chat.closed"],
            },
            allow_private=True,
        )
    )
    chats = [gateway.run(seed_chat(svc, "acme", f"inbound {n}")) for n in range(2)]
    operation = api_schema["/api/inbound/{tenant}/{plugin}"]["POST"]
    leak = no_cross_tenant_leak(gateway)
    statuses: list[int] = []

    def call(case: schemathesis.Case, tenant: str) -> requests.Response:
        raw = json.dumps(case.body).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header([INBOUND_SECRET], int(gateway.clock()), raw),
        }
        return requests.post(
            f"{gateway.base}/api/inbound/{tenant}/webhook", data=raw, headers=headers, timeout=30
        )

    @given(
        case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        chat=st.sampled_from([*chats, None]),
    )
    @settings(
        max_examples=max(EXAMPLES * 4, 20),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, chat: str | None) -> None:
        if chat is not None:
            case.body = {**case.body, "chat": chat}
        case.path_parameters = {"tenant": "acme", "plugin": "webhook"}
        assert call(case, "globex").status_code == 401  # acme's secret opens nothing else
        response = call(case, "acme")
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS[:4], additional_checks=[leak])

    run()
    assert 200 in statuses, statuses


def test_leak_check_fails_on_another_tenants_data(gateway: FuzzGateway) -> None:
    """The cross-tenant check can fail: an answer naming the other tenant's agent."""

    class Answer:
        text = f'{{"agents": [{{"id": "{gateway.sentinels[3]}"}}]}}'

    class Call:
        method, formatted_path = "GET", "/api/agents"

    with pytest.raises(AssertionError, match="another tenant"):
        no_cross_tenant_leak(gateway)(None, Answer(), Call())
