"""End-to-end mode on the gateway (issue 13): the parts that need storage, none that read.

In an e2e chat the gateway holds no key that opens a message. What it still does, and
what lives here:

* **Tenant configuration** -- ``mode`` (``inspect``/``e2e``) and the tenant's certificate
  *verify* key, kept in the tenant's settings. The signing key stays with the tenant's
  admins (``cipherdesk e2e keygen``/``certify`` run on their machine).
* **Device registry** -- consoles register X25519 public keys; an admin uploads the
  certificate signed offline, which is checked against the tenant key and the device row
  (tenant, agent, role, key) before it is stored, so a mistaken certificate fails here
  rather than in every customer's widget.
* **Members and wrapped keys** -- who takes part in a chat (the assigned agent and
  supervisors watching) and their certified devices, sent to the customer's end
  (``members``) which wraps the chat key to them; the wraps are stored and handed to
  each device's consoles (``ckeys``).
* **Franking** -- the gateway's tag ``gt`` over every relayed commitment, and the check
  of a report (crypto/e2e.py has the constructions).

The customer's end trusts none of this: it verifies each certificate against the tenant
key pinned in the page (``data-tenant-key``) before wrapping to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from auth.roles import Permission, Principal
from crypto.e2e import (
    CertificateError,
    DeviceCertificate,
    SignedCertificate,
    gateway_tag,
    verify_certificate,
    verify_franking,
    verify_policy,
)
from crypto.encoding import EncodingError, b64decode
from crypto.envelope import Keyring
from gateway.audit import Auditor
from gateway.derived_keys import derived_secret, derived_secrets
from gateway.policy.end import carried_patterns
from gateway.protocol import ChatKeys, KeyForEpoch, MemberDevice, Members, WrapKeys
from gateway.store.base import Agent, Chat, E2EDevice, Store, StoredMessage, Tenant

MODE_SETTING = "mode"
VERIFY_KEY_SETTING = "e2e_verify_key"
RELEASE_SETTING = "e2e_release_transcripts"
"""Whether agents' consoles may release a masked transcript of an e2e chat to the tenant's
helpdesk plugins when they close it (off by default; every release is audited)."""
POLICY_SETTING = "e2e_policy"
"""The end policy document the tenant's admins signed (``{"body", "sig"}``), which widgets
pinning the tenant key run before sealing (gateway/policy/end.py)."""
FRANKING_LABEL = "cipherdesk/e2e-franking/v1"
"""Label of the gateway's franking key (derived from the master key: every node agrees;
tags made under a retired master key still verify while it is in the ring)."""

MAX_DEVICES_PER_AGENT = 10
E2E_POLICY = {"action": "e2e", "kinds": []}
"""The policy metadata stored with an e2e message: the gateway never saw the text."""

Mode = Literal["inspect", "e2e"]


class E2ERefused(Exception):
    """A refused e2e action; ``code`` is documented (docs/API.md, docs/PROTOCOL.md)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class ReleasedLine:
    """One message of an e2e chat as an agent's console releases it to the helpdesk at
    close: its ``seq`` and its text, masked at the end."""

    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class SignedPolicy:
    """An end policy document as signed by the tenant key (``issued``: when it was made)."""

    body: str
    sig: str
    issued: int


@dataclass(frozen=True, slots=True)
class E2EConfig:
    """A tenant's end-to-end settings."""

    mode: Mode
    verify_key: str | None
    policy: SignedPolicy | None = None
    release_transcripts: bool = False


def e2e_config(tenant: Tenant) -> E2EConfig:
    mode = tenant.settings.get(MODE_SETTING, "inspect")
    key = tenant.settings.get(VERIFY_KEY_SETTING)
    stored = tenant.settings.get(POLICY_SETTING)
    policy = None
    if isinstance(stored, dict) and isinstance(key, str):
        # checked when uploaded; a new verify key removes it (see the PUT /api/e2e handler)
        body, sig, issued = stored.get("body"), stored.get("sig"), stored.get("issued")
        if isinstance(body, str) and isinstance(sig, str) and isinstance(issued, int):
            policy = SignedPolicy(body, sig, issued)
    return E2EConfig(
        mode="e2e" if mode == "e2e" else "inspect",
        verify_key=key if isinstance(key, str) else None,
        policy=policy,
        release_transcripts=tenant.settings.get(RELEASE_SETTING) is True,
    )


def check_signed_policy(tenant: Tenant, body: str, sig: str) -> SignedPolicy:
    """A signed end policy as uploaded, checked against the tenant's verify key; refused
    with ``no_tenant_key`` (409) or ``policy_<code>`` (400) otherwise."""
    key = e2e_config(tenant).verify_key
    if key is None:
        raise E2ERefused("no_tenant_key", "set the tenant's verify key first", status=409)
    try:
        doc = verify_policy(key, body, sig, tenant=tenant.id)
    except CertificateError as exc:
        raise E2ERefused(f"policy_{exc.code}", str(exc)) from None
    issued = doc.get("issued")
    if not isinstance(issued, int) or isinstance(issued, bool):
        raise E2ERefused("policy_malformed", "the document has no issue time")
    for field, own in carried_patterns().items():
        if field in doc and doc[field] != own:
            raise E2ERefused(
                "policy_malformed",
                f"the document's {field} are not this gateway's: sign the document "
                "GET /api/e2e/policy gives",
            )
    return SignedPolicy(body, sig, issued)


def check_verify_key(value: str) -> str:
    """A tenant verify key as uploaded: base64 of 32 bytes, else ``bad_key``."""
    try:
        b64decode(value, expected_len=32)
    except EncodingError:
        raise E2ERefused("bad_key", "the tenant key must be base64 of 32 bytes") from None
    return value


@dataclass(frozen=True, slots=True)
class SealedBody:
    """What an e2e message is stored as (itself sealed at rest like any message body)."""

    c: str
    fc: str
    e: int
    dev: str | None = None

    def dumps(self) -> str:
        data: dict[str, object] = {"c": self.c, "fc": self.fc, "e": self.e}
        if self.dev is not None:
            data["dev"] = self.dev
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> SealedBody:
        data = json.loads(text)
        return cls(c=data["c"], fc=data["fc"], e=int(data["e"]), dev=data.get("dev"))


def is_sealed(message: StoredMessage) -> bool:
    """Whether a stored message is an e2e one (its body is a :class:`SealedBody`)."""
    return message.policy.get("action") == E2E_POLICY["action"]


def franking_sender(sender: str, device: str | None) -> str:
    """Who the franking and the message record name as author: ``customer`` or
    ``agent:<device>`` (the reader checks it against the frame)."""
    return "customer" if sender == "customer" else f"agent:{device or ''}"


class E2EService:
    """Devices, certificates, members, wrapped keys and franking; see the module doc."""

    def __init__(
        self,
        *,
        store: Store,
        keyring: Keyring,
        auditor: Auditor,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.auditor = auditor
        self.clock = clock

    # ------------------------------------------------------------------ franking

    def tag(self, *, chat: str, sender: str, msg_id: str, seq: int, ts: float, fc: str) -> str:
        secret = derived_secret(self.keyring, FRANKING_LABEL)
        return gateway_tag(secret, chat=chat, sender=sender, msg_id=msg_id, seq=seq, ts=ts, fc=fc)

    def verify_report(
        self,
        *,
        chat: str,
        sender: str,
        msg_id: str,
        seq: int,
        ts: float,
        body: SealedBody,
        gt: str,
        text: str,
        franking_key: str,
    ) -> bool:
        return verify_franking(
            derived_secrets(self.keyring, FRANKING_LABEL),
            chat=chat,
            sender=sender,
            msg_id=msg_id,
            seq=seq,
            ts=ts,
            fc=body.fc,
            gt=gt,
            text=text,
            franking_key=franking_key,
        )

    # ------------------------------------------------------------------ devices

    async def register_device(self, agent: Agent, public_key: str, name: str) -> E2EDevice:
        """A console's new device key, waiting for an admin's certificate."""
        try:
            b64decode(public_key, expected_len=32)
        except EncodingError:
            raise E2ERefused("bad_key", "public_key must be base64 of 32 bytes") from None
        live = [
            d
            for d in await self.store.list_e2e_devices(agent.tenant_id, agent.id)
            if d.revoked_at is None
        ]
        if len(live) >= MAX_DEVICES_PER_AGENT:
            raise E2ERefused(
                "too_many_devices", "remove an old device before adding another", status=409
            )
        device = E2EDevice(
            id="dev_" + uuid.uuid4().hex,
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            public_key=public_key,
            name=name,
            created_at=self.clock(),
        )
        await self.store.add_e2e_device(device)
        await self.auditor.record(
            "e2e.device_registered",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=device.id,
        )
        return device

    async def certify(
        self, principal: Principal, tenant: Tenant, device_id: str, signed: SignedCertificate
    ) -> E2EDevice:
        """Store a certificate signed offline by the tenant key, after checking that it
        speaks of exactly this device (tenant, agent, current role, key)."""
        if not principal.can(Permission.TENANT_MANAGE, tenant.id):
            raise E2ERefused("forbidden", "only admins certify devices", status=403)
        config = e2e_config(tenant)
        if config.verify_key is None:
            raise E2ERefused("no_tenant_key", "set the tenant's verify key first", status=409)
        device = await self.store.get_e2e_device(device_id)
        if device is None or device.tenant_id != tenant.id:
            raise E2ERefused("not_found", "no such device", status=404)
        if device.revoked_at is not None:
            raise E2ERefused("revoked", "this device was revoked", status=409)
        try:
            cert = verify_certificate(config.verify_key, signed, now=self.clock(), tenant=tenant.id)
        except CertificateError as exc:
            raise E2ERefused(f"certificate_{exc.code}", str(exc)) from None
        agent = await self.store.get_agent(device.agent_id)
        if agent is None or agent.disabled:
            raise E2ERefused("not_found", "no such device", status=404)
        mismatch = _mismatch(cert, device, agent)
        if mismatch is not None:
            raise E2ERefused("certificate_mismatch", f"the certificate names another {mismatch}")
        if not await self.store.certify_e2e_device(
            device.id, tenant.id, signed.body, signed.sig, float(cert.expires_at)
        ):
            raise E2ERefused("revoked", "this device was revoked", status=409)
        await self.auditor.record(
            "e2e.device_certified",
            tenant_id=tenant.id,
            actor=principal.agent_id,
            target=device.id,
            agent=device.agent_id,
            expires_at=cert.expires_at,
        )
        return await self.store.get_e2e_device(device.id) or device

    async def revoke(self, principal: Principal, device_id: str) -> E2EDevice | None:
        """An admin revokes any device of the tenant; an agent their own. Returns the
        revoked device (None: unknown, not theirs, or revoked already)."""
        device = await self.store.get_e2e_device(device_id)
        if device is None or device.tenant_id != principal.tenant_id:
            return None
        if device.agent_id != principal.agent_id and not principal.can(
            Permission.AGENT_MANAGE, principal.tenant_id
        ):
            return None
        if not await self.store.revoke_e2e_device(device.id, device.tenant_id, self.clock()):
            return None
        await self.auditor.record(
            "e2e.device_revoked",
            tenant_id=device.tenant_id,
            actor=principal.agent_id,
            target=device.id,
            agent=device.agent_id,
        )
        return device

    async def usable_device(self, agent_id: str, device_id: str) -> E2EDevice | None:
        """The agent's device if it is certified, current and not revoked."""
        device = await self.store.get_e2e_device(device_id)
        if device is None or device.agent_id != agent_id or not self._usable(device):
            return None
        return device

    async def certified_devices(self, tenant_id: str, agent_id: str) -> list[E2EDevice]:
        devices = await self.store.list_e2e_devices(tenant_id, agent_id)
        return [d for d in devices if self._usable(d)]

    def _usable(self, device: E2EDevice) -> bool:
        return (
            device.certificate is not None
            and device.revoked_at is None
            and device.expires_at is not None
            and device.expires_at > self.clock()
        )

    # ------------------------------------------------------------------ members and keys

    async def members(self, chat: Chat) -> Members:
        """Who takes part in ``chat`` now, with certified devices, for the customer's end."""
        devices = await self.member_devices(chat)
        holders = await self.store.e2e_wrapped_devices(chat.id, chat.e2e_epoch)
        return Members(chat=chat.id, epoch=chat.e2e_epoch, devices=devices, holders=sorted(holders))

    async def member_devices(self, chat: Chat) -> list[MemberDevice]:
        """The certified devices of the agents taking part in ``chat`` now: the assigned
        agent's and those of supervisors watching."""
        agents: list[tuple[str, str]] = []
        if chat.state == "active" and chat.assigned_agent_id is not None:
            agents.append((chat.assigned_agent_id, "assigned"))
        if chat.state != "closed":
            seen = {a for a, _ in agents}
            agents += [m for m in await self.store.list_e2e_members(chat.id) if m[0] not in seen]
        devices: list[MemberDevice] = []
        for agent_id, reason in agents:
            for d in await self.certified_devices(chat.tenant_id, agent_id):
                devices.append(
                    MemberDevice(
                        device=d.id,
                        agent=agent_id,
                        reason=reason,
                        cert=d.certificate or "",
                        sig=d.signature or "",
                    )
                )
        return devices

    async def accept_wraps(self, chat: Chat, frame: WrapKeys) -> list[ChatKeys]:
        """Store the customer's wrapped keys for member devices; returns one ``ckeys`` frame
        per device for the bus. Wraps for devices that are not members now are refused
        (``not_member``): the customer's end acts on a stale member list and will get a
        fresh one."""
        allowed = {d.device for d in await self.member_devices(chat)}
        named = {w.device for w in frame.keys}
        for earlier in frame.older.values():
            named |= {w.device for w in earlier}
        if not named <= allowed:
            raise E2ERefused("not_member", "a wrapped key names a device that is not a member")
        older: list[tuple[int, str, str]] = []
        for epoch_text, wraps in frame.older.items():
            epoch = int(epoch_text)  # ASCII digits: the frame decoder checked
            if not 1 <= epoch < frame.epoch:
                raise E2ERefused("bad_epoch", "older keys must name earlier epochs")
            older += [(epoch, w.device, w.k) for w in wraps]
        if not await self.store.add_e2e_wraps(
            chat.id,
            frame.epoch,
            [(w.device, w.k) for w in frame.keys],
            self.clock(),
            older,
            rekey=frame.rekey,
        ):
            raise E2ERefused("stale_epoch", "the chat key epoch moved on; use the current one")
        out: list[ChatKeys] = []
        for device in sorted(named):
            frame_keys = await self.keys_for(chat.id, device)
            if frame_keys is not None:
                out.append(frame_keys)
        return out

    async def keys_for(self, chat_id: str, device_id: str) -> ChatKeys | None:
        wraps = await self.store.e2e_wraps_for(chat_id, device_id)
        if not wraps:
            return None
        return ChatKeys(
            chat=chat_id, device=device_id, keys=[KeyForEpoch(e=e, k=k) for e, k in wraps]
        )


def _mismatch(cert: DeviceCertificate, device: E2EDevice, agent: Agent) -> str | None:
    if cert.device != device.id:
        return "device"
    if cert.agent != device.agent_id:
        return "agent"
    if cert.public_key != device.public_key:
        return "key"
    if cert.role != agent.role:
        return "role"
    return None
