"""HTTP API of end-to-end mode (issue 13); the rules live in ``gateway/e2e.py``.

* ``GET /api/e2e`` — the tenant's mode and certificate verify key (any staff member).
* ``PUT /api/e2e {"mode"?, "verify_key"?}`` — tenant admins; a fresh step-up is needed
  (403 ``reauth_required``). ``mode: "e2e"`` needs a verify key (409 ``no_tenant_key``).
  A new verify key invalidates every certificate made with the old one (each device must
  be certified again). Errors: 400 ``bad_key``. Audit: ``e2e.settings_changed``.
* ``GET /api/me/e2e/devices``, ``POST /api/me/e2e/devices {"public_key", "name"}`` — the
  caller's device keys; the console registers its X25519 public key (201). Errors: 400
  ``bad_key``, 409 ``too_many_devices``.
* ``GET /api/e2e/devices`` — tenant admins: every device with its agent, role and key
  fingerprint, to certify offline (``cipherdesk e2e certify``).
* ``PUT /api/e2e/devices/{device_id}/certificate {"body", "sig"}`` — tenant admins: the
  certificate signed by the tenant key; checked against the verify key and the device
  (400 ``certificate_bad_signature`` / ``certificate_expired`` / ``certificate_malformed``
  / ``certificate_wrong_tenant`` / ``certificate_mismatch``, 404, 409 ``revoked``).
* ``DELETE /api/e2e/devices/{device_id}`` — revoke (own device, or any as agent manager).
* ``GET /api/e2e/policy`` — tenant admins: the end policy document the tenant's policy
  compiles to now (``document``, the text to sign), the signed one widgets get
  (``signed``) and whether they are the same (``current``).
* ``PUT /api/e2e/policy {"body", "sig"}`` — tenant admins (an API token with
  ``tenant_manage`` too, for ``cipherdesk e2e sign-policy``): a document signed by the
  tenant key for this tenant (400 ``policy_bad_signature`` / ``policy_malformed`` /
  ``policy_wrong_tenant``, 409 ``no_tenant_key``). Audit: ``e2e.policy_signed``.
* ``POST /api/e2e/chats/{chat_id}/close {"reason"?, "release": [{"seq", "text"}]}`` — the
  assigned agent closes an e2e chat and releases the transcript their console masked to
  the helpdesk plugins (tenant option ``release_transcripts``, set with ``PUT /api/e2e``;
  audited ``e2e.transcript_released``). Errors: 400 ``bad_release`` (a seq that is not an
  e2e message of the chat), 403 ``release_disabled`` / ``not_assigned``, 409
  ``chat_closed`` / ``not_e2e``.
* ``GET /api/public/e2e/{tenant}`` — no login: the mode, verify key and signed end policy
  the widget uses; a page that pins the key (``data-tenant-key``) checks both.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission
from crypto.e2e import MAX_POLICY_CHARS, SignedCertificate, fingerprint
from gateway.chats import ChatError
from gateway.e2e import (
    MODE_SETTING,
    POLICY_SETTING,
    RELEASE_SETTING,
    VERIFY_KEY_SETTING,
    E2ERefused,
    ReleasedLine,
    check_signed_policy,
    check_verify_key,
    e2e_config,
)
from gateway.http.chats import chat_error
from gateway.http.plumbing import (
    authed,
    own_tenant,
    public_tenant,
    read_json,
    services_of,
    struct_json,
)
from gateway.http.public import ApiError
from gateway.policy.end import end_document
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_staff_text
from gateway.store.base import E2EDevice, Tenant

_DEVICE_ID = re.compile(r"dev_[0-9a-f]{32}")
_CHAT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MAX_RELEASED = 5_000
"""Lines one release may carry (a chat longer than that is cut by the console, oldest
first, and says so)."""
_RELEASE_STATUS = {"bad_release": 400, "release_disabled": 403, "not_assigned": 403}


class E2ESettingsBody(Struct, forbid_unknown_fields=True):
    mode: Literal["inspect", "e2e"] | None = None
    verify_key: Annotated[str, Meta(min_length=44, max_length=44)] | None = None
    release_transcripts: bool | None = None


class ReleasedLineBody(Struct, forbid_unknown_fields=True):
    """One message of the released transcript: its seq and its text masked at the end."""

    seq: Annotated[int, Meta(ge=1)]
    text: Annotated[str, Meta(max_length=16_000)]


class ReleaseCloseBody(Struct, forbid_unknown_fields=True):
    """Close an e2e chat, releasing a masked transcript to the helpdesk plugins."""

    release: Annotated[list[ReleasedLineBody], Meta(min_length=1, max_length=MAX_RELEASED)]
    reason: Annotated[str, Meta(max_length=200)] = "resolved"


class ClosedOut(Struct, forbid_unknown_fields=True):
    """The chat after the close, and how many lines went to the helpdesk."""

    chat: str
    state: str
    released: int


class SignedPolicyBody(Struct, forbid_unknown_fields=True):
    """An end policy document's text and the tenant key's signature over it."""

    body: Annotated[str, Meta(min_length=2, max_length=MAX_POLICY_CHARS)]
    sig: Annotated[str, Meta(min_length=88, max_length=88)]


class SignedPolicyOut(Struct, forbid_unknown_fields=True):
    """The signed end policy widgets run (``issued``: Unix seconds it was compiled)."""

    body: str
    sig: str
    issued: int


class E2ESettingsOut(Struct, forbid_unknown_fields=True):
    """A tenant's end-to-end settings (``verify_key``: base64 Ed25519 public key;
    ``policy``: the signed end policy, if the admins signed one)."""

    mode: Literal["inspect", "e2e"]
    verify_key: str | None
    policy: SignedPolicyOut | None = None
    release_transcripts: bool = False


class EndPolicyOut(Struct, forbid_unknown_fields=True):
    """What an admin signs: ``document`` (the tenant's policy compiled now), the ``signed``
    one widgets get, and ``current``: whether the signed one says the same."""

    document: str
    signed: SignedPolicyOut | None
    current: bool


class DeviceBody(Struct, forbid_unknown_fields=True):
    public_key: Annotated[str, Meta(min_length=44, max_length=44)]
    name: Annotated[str, Meta(max_length=64)] = ""


class CertificateBody(Struct, forbid_unknown_fields=True):
    body: Annotated[str, Meta(min_length=2, max_length=2048)]
    sig: Annotated[str, Meta(min_length=88, max_length=88)]


class DeviceOut(Struct, forbid_unknown_fields=True):
    """A device key: ``state`` is ``pending`` (no certificate yet), ``certified``,
    ``expired`` or ``revoked``; ``fingerprint`` is what an admin compares with the
    console before certifying."""

    id: str
    agent: str
    name: str
    public_key: str
    fingerprint: str
    state: Literal["pending", "certified", "expired", "revoked"]
    created_at: float
    expires_at: float | None
    certificate: str | None
    sig: str | None
    agent_role: str | None = None
    agent_name: str | None = None


class DeviceList(Struct, forbid_unknown_fields=True):
    devices: list[DeviceOut]


class DeviceWrap(Struct, forbid_unknown_fields=True):
    device: DeviceOut


def _refused(exc: E2ERefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def _state(device: E2EDevice, now: float) -> Literal["pending", "certified", "expired", "revoked"]:
    if device.revoked_at is not None:
        return "revoked"
    if device.certificate is None or device.expires_at is None:
        return "pending"
    return "certified" if device.expires_at > now else "expired"


def _device(device: E2EDevice, now: float, agent: tuple[str, str] | None = None) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        agent=device.agent_id,
        name=device.name,
        public_key=device.public_key,
        fingerprint=fingerprint(device.public_key),
        state=_state(device, now),
        created_at=device.created_at,
        expires_at=device.expires_at,
        certificate=device.certificate,
        sig=device.signature,
        agent_role=agent[0] if agent else None,
        agent_name=agent[1] if agent else None,
    )


async def _save_settings(svc: Services, tenant: Tenant, settings: dict[str, Any]) -> None:
    """Store the tenant's new settings; every node re-reads them (tenant cache)."""
    tenant.settings = settings
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)


def _settings(tenant: Tenant) -> E2ESettingsOut:
    config = e2e_config(tenant)
    policy = config.policy
    return E2ESettingsOut(
        mode=config.mode,
        verify_key=config.verify_key,
        policy=SignedPolicyOut(policy.body, policy.sig, policy.issued) if policy else None,
        release_transcripts=config.release_transcripts,
    )


@authed()
async def get_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/e2e``."""
    tenant = await own_tenant(services_of(request), ctx)
    return struct_json(_settings(tenant))


@authed(Permission.TENANT_MANAGE, api_tokens=False)
async def put_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/e2e``: the verify key decides whom every widget trusts, so changing it
    takes an interactive, freshly re-authenticated admin."""
    svc = services_of(request)
    svc.logins.require_reauth(ctx.session)
    body = await read_json(request, E2ESettingsBody)
    tenant = await own_tenant(svc, ctx)
    settings = dict(tenant.settings)
    changed: list[str] = []
    try:
        if body.verify_key is not None and body.verify_key != settings.get(VERIFY_KEY_SETTING):
            settings[VERIFY_KEY_SETTING] = check_verify_key(body.verify_key)
            settings.pop(POLICY_SETTING, None)  # signed by the old key: sign it again
            changed.append("verify_key")
    except E2ERefused as exc:
        raise ApiError(400, exc.code, exc.message, field="verify_key") from None
    if body.mode is not None and body.mode != settings.get(MODE_SETTING, "inspect"):
        if body.mode == "e2e" and not settings.get(VERIFY_KEY_SETTING):
            raise ApiError(409, "no_tenant_key", "set the tenant's verify key first")
        settings[MODE_SETTING] = body.mode
        changed.append("mode")
    if (
        body.release_transcripts is not None
        and body.release_transcripts != e2e_config(tenant).release_transcripts
    ):
        settings[RELEASE_SETTING] = body.release_transcripts
        changed.append("release_transcripts")
    if changed:
        await _save_settings(svc, tenant, settings)
        await svc.auditor.record(
            "e2e.settings_changed",
            tenant_id=tenant.id,
            actor=ctx.agent.id,
            ip=peer_ip(request, svc),
            fields=changed,
            mode=settings.get(MODE_SETTING, "inspect"),
            release_transcripts=settings.get(RELEASE_SETTING) is True,
        )
    return struct_json(_settings(tenant))


@authed()
async def my_devices(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/me/e2e/devices``."""
    svc = services_of(request)
    devices = await svc.store.list_e2e_devices(ctx.principal.tenant_id, ctx.agent.id)
    now = svc.clock()
    return struct_json(DeviceList(devices=[_device(d, now) for d in devices]))


@authed(api_tokens=False)
async def add_device(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/me/e2e/devices``: the console's public key (never a private one)."""
    svc = services_of(request)
    body = await read_json(request, DeviceBody)
    label = "".join(c for c in body.name if c.isprintable()).strip()[:64]
    name = await screen_staff_text(svc, ctx.principal.tenant_id, label, "name")
    try:
        device = await svc.e2e.register_device(ctx.agent, body.public_key, name or "browser")
    except E2ERefused as exc:
        raise _refused(exc) from None
    answer = struct_json(DeviceWrap(device=_device(device, svc.clock())))
    answer.set_status(201)
    return answer


@authed(Permission.TENANT_MANAGE)
async def tenant_devices(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/e2e/devices``: what an admin certifies (or revokes)."""
    svc = services_of(request)
    now = svc.clock()
    out = []
    agents = {a.id: a for a in await svc.store.list_agents(ctx.principal.tenant_id)}
    for d in await svc.store.list_e2e_devices(ctx.principal.tenant_id):
        agent = agents.get(d.agent_id)
        out.append(_device(d, now, (agent.role, agent.display_name) if agent else None))
    return struct_json(DeviceList(devices=out))


def _device_id(request: web.Request) -> str:
    device_id = request.match_info["device_id"]
    if not _DEVICE_ID.fullmatch(device_id):
        raise ApiError(404, "not_found", "no such device")
    return device_id


@authed(Permission.TENANT_MANAGE)
async def certify_device(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/e2e/devices/{device_id}/certificate``."""
    svc = services_of(request)
    device_id = _device_id(request)
    body = await read_json(request, CertificateBody)
    tenant = await own_tenant(svc, ctx)
    try:
        device = await svc.e2e.certify(
            ctx.principal, tenant, device_id, SignedCertificate(body=body.body, sig=body.sig)
        )
    except E2ERefused as exc:
        raise _refused(exc) from None
    return struct_json(DeviceWrap(device=_device(device, svc.clock())))


@authed(api_tokens=False)
async def revoke_device(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/e2e/devices/{device_id}``."""
    svc = services_of(request)
    device = await svc.e2e.revoke(ctx.principal, _device_id(request))
    if device is None:
        raise ApiError(404, "not_found", "no such device")
    # The agent's open e2e chats: their customers' ends re-key without this device.
    await svc.chats.member_devices_changed(device.tenant_id, device.agent_id)
    return web.json_response({"ok": True})


def _same_policy(signed_body: str, document: dict[str, object]) -> bool:
    try:
        signed = json.loads(signed_body)
    except ValueError:
        return False
    if not isinstance(signed, dict):
        return False
    signed.pop("issued", None)
    return signed == {k: v for k, v in document.items() if k != "issued"}


@authed(Permission.TENANT_MANAGE)
async def get_end_policy(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/e2e/policy``."""
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    engine = await svc.policies.engine(tenant.id, tenant.settings)
    document = end_document(engine, tenant.id, int(svc.clock()))
    signed = e2e_config(tenant).policy
    return struct_json(
        EndPolicyOut(
            document=json.dumps(document, ensure_ascii=False, separators=(",", ":")),
            signed=SignedPolicyOut(signed.body, signed.sig, signed.issued) if signed else None,
            current=signed is not None and _same_policy(signed.body, document),
        )
    )


@authed(Permission.TENANT_MANAGE)
async def put_end_policy(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/e2e/policy``: the signature is the tenant key's, which the gateway never
    holds, so the gateway can store a policy but never write or weaken one."""
    svc = services_of(request)
    body = await read_json(request, SignedPolicyBody, max_body=4 * MAX_POLICY_CHARS)
    tenant = await own_tenant(svc, ctx)
    try:
        signed = check_signed_policy(tenant, body.body, body.sig)
    except E2ERefused as exc:
        raise _refused(exc) from None
    await _save_settings(
        svc,
        tenant,
        {
            **tenant.settings,
            POLICY_SETTING: {"body": signed.body, "sig": signed.sig, "issued": signed.issued},
        },
    )
    await svc.auditor.record(
        "e2e.policy_signed",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        issued=signed.issued,
    )
    return struct_json(SignedPolicyOut(signed.body, signed.sig, signed.issued))


@authed(Permission.CHAT_HANDLE, api_tokens=False)
async def close_releasing(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/e2e/chats/{chat_id}/close``: an HTTP body, not a frame, because a long
    transcript outgrows the 64 KiB frame limit."""
    svc = services_of(request)
    chat_id = request.match_info["chat_id"]
    if not _CHAT_ID.fullmatch(chat_id):
        raise ApiError(404, "not_found", "no such chat")
    body = await read_json(request, ReleaseCloseBody, max_body=4 * 1024 * 1024)
    lines = [ReleasedLine(seq=line.seq, text=line.text) for line in body.release]
    try:
        chat = await svc.chats.close(
            chat_id,
            ctx.principal.tenant_id,
            by="agent",
            principal=ctx.principal,
            reason=body.reason,
            release=lines,
        )
    except ChatError as exc:
        status = _RELEASE_STATUS.get(exc.code)
        raise (ApiError(status, exc.code, exc.message) if status else chat_error(exc)) from None
    return struct_json(ClosedOut(chat=chat.id, state=chat.state, released=len(lines)))


async def public_settings(request: web.Request) -> web.Response:
    """``GET /api/public/e2e/{tenant}``: unauthenticated, like the widget's other public
    reads (an unknown tenant is 404, as for ``/api/public/notice``)."""
    svc = services_of(request)
    tenant = await public_tenant(svc, request.match_info["tenant"])
    return struct_json(
        _settings(tenant),
        headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
    )


def setup_routes(app: web.Application) -> None:
    """Register the end-to-end routes."""
    r = app.router
    r.add_get("/api/e2e", get_settings)
    r.add_put("/api/e2e", put_settings)
    r.add_get("/api/me/e2e/devices", my_devices)
    r.add_post("/api/me/e2e/devices", add_device)
    r.add_get("/api/e2e/devices", tenant_devices)
    r.add_put("/api/e2e/devices/{device_id}/certificate", certify_device)
    r.add_delete("/api/e2e/devices/{device_id}", revoke_device)
    r.add_get("/api/e2e/policy", get_end_policy)
    r.add_put("/api/e2e/policy", put_end_policy)
    r.add_post("/api/e2e/chats/{chat_id}/close", close_releasing)
    r.add_get("/api/public/e2e/{tenant}", public_settings)
