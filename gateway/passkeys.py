"""Passkeys for agents (issue 20.1): registration, login, and the tenant rule that
requires them.

Ceremonies are two calls each: ``begin`` stores a random challenge (table
``webauthn_challenges``, 2 minutes, single use on whichever node the answer reaches)
and hands the browser its options; ``finish`` takes the challenge back and verifies the
browser's answer with :mod:`auth.passkeys` against the gateway's RP id and origins.

* **Registration** needs a logged-in agent whose session re-authenticated within the
  step-up window (a stolen session alone cannot add an attacker's passkey); audited
  ``passkey.added`` / ``passkey.removed``.
* **Login** with a passkey alone (user verification required: the authenticator's PIN
  or biometric is the second factor) opens a session whose ``factor`` is ``passkey``;
  failures are audited ``login.failed`` (reason ``passkey_invalid``, so the spraying
  rule counts them) and flood-limited per address like password logins.
* **Tenant rule** ``phishing_resistant_mfa`` (``off``, ``admins``, ``staff`` =
  supervisors and admins, ``all``): a covered agent's session opened any other way is
  limited to enrolling a passkey (``passkey_enrollment_required``) while they have
  none, and refused (``passkey_required``) once they have one — HTTP 403 and, on the
  console socket, close 4403. TOTP stays for everyone the rule does not cover;
  recovery stays possible: an admin's MFA reset (audited) removes the agent's passkeys.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import structlog

from auth.passkeys import (
    KnownPasskey,
    PasskeyError,
    RelyingParty,
    credential_id_of,
    login,
    registration,
    verify_login,
    verify_registration,
)
from auth.roles import Role
from gateway.audit import Auditor
from gateway.governance.dormancy import refuse_if_dormant
from gateway.logins import LoginFailed, LoginResult, LoginService
from gateway.store.base import Agent, AgentSession, Passkey, Store, Tenant
from gateway.tenants import TenantDirectory

if TYPE_CHECKING:
    from gateway.sessions import AgentContext

log = structlog.get_logger("cipherdesk.passkeys")

CHALLENGE_TTL = 120.0
MAX_PASSKEYS = 10
SETTING = "phishing_resistant_mfa"
Requirement = Literal["off", "admins", "staff", "all"]
REQUIREMENTS: tuple[Requirement, ...] = ("off", "admins", "staff", "all")
_COVERED: dict[str, frozenset[str]] = {
    "off": frozenset(),
    "admins": frozenset({Role.ADMIN.value}),
    "staff": frozenset({Role.ADMIN.value, Role.SUPERVISOR.value}),
    "all": frozenset({Role.ADMIN.value, Role.SUPERVISOR.value, Role.AGENT.value}),
}


class PasskeyRefused(Exception):
    """A ceremony cannot go on; ``code`` is the documented API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Started:
    """A ceremony in flight: the id the answer must quote, and the browser's options."""

    challenge_id: str
    options_json: str


def relying_party(base_url: str, origins: set[str]) -> RelyingParty:
    """The gateway's RP: its public host name (``localhost`` by default; browsers refuse
    IP addresses as RP ids) and the origins its pages are served from."""
    host = urlsplit(base_url).hostname or "localhost"
    return RelyingParty(rp_id=host, name="cipherdesk", origins=tuple(sorted(origins)))


def requirement(tenant: Tenant | None) -> Requirement:
    raw = (tenant.settings or {}).get(SETTING) if tenant is not None else None
    return raw if raw in REQUIREMENTS else "off"


def _known(p: Passkey) -> KnownPasskey:
    return KnownPasskey(p.credential_id, p.public_key, p.sign_count, p.transports)


class PasskeyService:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        logins: LoginService,
        auditor: Auditor,
        clock: Callable[[], float],
        rp: RelyingParty,
        tenants: TenantDirectory,
    ) -> None:
        self.tenants = tenants
        self.store = store
        self.logins = logins
        self.auditor = auditor
        self.clock = clock
        self.rp = rp

    async def _challenge(self, purpose: str, agent_id: str | None, challenge: bytes) -> str:
        challenge_id = "wac_" + secrets.token_urlsafe(24)
        expires = self.clock() + CHALLENGE_TTL
        await self.store.add_challenge(challenge_id, purpose, agent_id, challenge, expires)
        return challenge_id

    # ------------------------------------------------------------------ registration

    async def begin_registration(self, agent: Agent) -> Started:
        known = await self.store.list_passkeys(agent.id)
        if len(known) >= MAX_PASSKEYS:
            raise PasskeyRefused("too_many_passkeys", f"at most {MAX_PASSKEYS} passkeys")
        ceremony = registration(
            self.rp, agent.id.encode(), agent.email, agent.display_name, [_known(p) for p in known]
        )
        challenge_id = await self._challenge("register", agent.id, ceremony.challenge)
        return Started(challenge_id, ceremony.options_json)

    async def finish_registration(
        self, agent: Agent, challenge_id: str, credential_json: str, name: str, ip: str | None
    ) -> Passkey:
        pending = await self.store.take_challenge(challenge_id, "register", self.clock())
        if pending is None or pending.agent_id != agent.id:
            raise PasskeyRefused("challenge_expired", "start the registration again")
        try:
            new = verify_registration(self.rp, pending.challenge, credential_json)
        except PasskeyError as exc:
            log.info("passkey_registration_refused", agent=agent.id, reason=str(exc)[:120])
            raise PasskeyRefused("passkey_invalid", "the passkey could not be verified") from None
        passkey = Passkey(
            credential_id=new.credential_id,
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            name=name.strip() or "passkey",
            public_key=new.public_key,
            sign_count=new.sign_count,
            transports=new.transports,
            created_at=self.clock(),
        )
        if not await self.store.add_passkey(passkey):
            raise PasskeyRefused("passkey_exists", "this passkey is registered already")
        await self.auditor.record(
            "passkey.added",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
            credential=passkey.credential_id[:16],
            backed_up=new.backed_up,
        )
        return passkey

    async def remove(self, agent: Agent, credential_id: str, ip: str | None) -> bool:
        if not await self.store.delete_passkey(credential_id, agent.id):
            return False
        await self.auditor.record(
            "passkey.removed",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
            credential=credential_id[:16],
        )
        return True

    # ------------------------------------------------------------------ login

    async def begin_login(self, ip: str) -> Started:
        await self.logins.shed_flood("passkey", ip)
        ceremony = login(self.rp)
        return Started(
            await self._challenge("login", None, ceremony.challenge), ceremony.options_json
        )

    async def finish_login(
        self, challenge_id: str, credential_json: str, *, ip: str, user_agent: str
    ) -> LoginResult:
        """A session for the passkey's agent, or :class:`LoginFailed` (one answer for
        every reason: unknown, expired, forged, phished, disabled)."""
        await self.logins.shed_flood("passkey", ip)
        pending = await self.store.take_challenge(challenge_id, "login", self.clock())
        stored: Passkey | None = None
        agent: Agent | None = None
        reason = "passkey_invalid"
        try:
            stored = await self.store.get_passkey(credential_id_of(credential_json))
            if pending is None:
                reason = "challenge_expired"
                raise PasskeyError(reason)
            if stored is None:
                raise PasskeyError("unknown credential")
            agent = await self.store.get_agent(stored.agent_id)
            count = verify_login(self.rp, pending.challenge, credential_json, _known(stored))
            if not await self.store.passkey_used(stored.credential_id, count, self.clock()):
                raise PasskeyError("sign counter did not grow")
        except PasskeyError as exc:
            await self._failed(agent, stored, ip, reason, str(exc))
            raise LoginFailed(None) from None
        if agent is None or agent.disabled:
            await self._failed(agent, stored, ip, "disabled", "disabled")
            raise LoginFailed(None)
        if await refuse_if_dormant(self.logins, agent, self.clock()):
            await self._failed(agent, stored, ip, "dormant", "dormant")
            raise LoginFailed(None)
        return await self.logins.open_session(agent, ip=ip, user_agent=user_agent, factor="passkey")

    async def _failed(
        self, agent: Agent | None, stored: Passkey | None, ip: str, reason: str, detail: str
    ) -> None:
        log.info("passkey_login_refused", reason=reason, detail=detail[:120])
        await self.auditor.record(
            "login.failed",
            tenant_id=agent.tenant_id if agent else (stored.tenant_id if stored else None),
            actor=agent.id if agent else None,
            target=agent.id if agent else None,
            ip=ip,
            reason=reason,
            factor="passkey",
        )

    # ------------------------------------------------------------------ tenant rule

    async def gate(self, ctx: AgentContext) -> str | None:
        """None when the caller may act; else the refusal code of the tenant's
        phishing-resistant MFA rule (see the module docstring). Operators (no tenant)
        and API tokens (automation, scoped) are not covered."""
        if ctx.principal.is_operator or ctx.api_token is not None:
            return None
        return await self.gate_session(ctx.agent, ctx.session)

    async def gate_session(self, agent: Agent, session: AgentSession) -> str | None:
        if session.factor == "passkey":
            return None
        tenant = await self.tenants.get(agent.tenant_id)
        if agent.role not in _COVERED[requirement(tenant)]:
            return None
        if await self.store.list_passkeys(agent.id):
            return "passkey_required"
        return "passkey_enrollment_required"
