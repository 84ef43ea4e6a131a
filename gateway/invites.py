"""Agent invitations (issue 16.9): the admin never chooses, sees or transmits a credential.

An admin (``agent_manage``) invites an address with a display name and a role and gets a
one-time link ``<console>/invite#<token>``. The token travels in the URL *fragment*, so
it never reaches a server log, a proxy log or a ``Referer``; the invite page POSTs it.
Whoever opens the link chooses their own password (the same argon2id, strength and
common-password rules as everywhere) and enrols TOTP on the page (the secret is shown only
to them and confirmed with a code); the account is created then, already confirmed, and
the invitee is logged in.

The token: 256 random bits (``cdi_`` + 43 URL-safe characters). Stored only as
HMAC-SHA256 under a key derived from the master key (:data:`INVITE_LABEL`), so a
database dump alone cannot even be used to test guesses. Consequence: a master-key
rotation invalidates pending invites (they must be sent again), like every other
derived secret. An invite is single use (claimed by one conditional ``UPDATE``), expires
(tenant setting :data:`TTL_SETTING`, :data:`MIN_TTL_HOURS` to :data:`MAX_TTL_HOURS`,
default :data:`DEFAULT_TTL_HOURS`), can be revoked while pending, and dies with its
creator's authority (creator deleted, disabled, moved or demoted: answered as revoked). Audit:
``invite.created``, ``invite.revoked``, ``invite.redeemed`` (with the new agent's
``agent.created``) and ``invite.redeem_failed`` for a known invite (wrong code, weak
password, taken address). Redemption attempts are rate-limited by the HTTP layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth.emails import InvalidEmail, normalize_email
from auth.roles import TENANT_ROLES, Permission, Role, role_permissions
from auth.totp import new_totp_secret, provisioning_uri
from crypto.envelope import EnvelopeError, Keyring
from gateway.audit import Auditor
from gateway.derived_keys import derived_secret
from gateway.logins import (
    EMAIL_UNAVAILABLE,
    ISSUER,
    ConfirmedTotp,
    CredentialError,
    LoginResult,
    LoginService,
    NewCredentials,
    new_agent_id,
)
from gateway.store.base import Agent, Invite, Store, Tenant

INVITE_LABEL = "cipherdesk/invite-token/v1"
"""Label of the key that hashes invite tokens (:func:`gateway.derived_keys.derived_secret`)."""

TOKEN_PREFIX = "cdi_"  # noqa: S105 - a prefix that makes leaked links greppable
_TOKEN_RE = re.compile(r"^cdi_[A-Za-z0-9_-]{43}$")
TTL_SETTING = "invite_ttl_hours"
DEFAULT_TTL_HOURS = 72
MIN_TTL_HOURS = 1
MAX_TTL_HOURS = 720
MAX_PENDING = 200
"""Pending invites per tenant: enough for onboarding a team, bounded storage."""
ENROLLMENT_TTL = 3600.0
"""How long a TOTP secret shown on the invite page may be confirmed."""
HOUR = 3600.0

CLI_ACTOR = "cli"
"""Creator of invites made with ``cipherdesk agent invite`` (the installation operator)."""

MFA_RESET = "mfa_reset"
"""Purpose of a re-enrolment link (an admin reset the agent's second factor)."""
ACTIVATE = "activate"
"""Purpose of an activation link: an account the identity provider created (SCIM, issue
20.3) gets the password and second factor only its person chooses."""


class InviteError(Exception):
    """A refused invite operation; ``code`` is the documented API error code
    (``invite_invalid``, ``invite_used``, ``invite_expired``, ``invite_revoked``,
    ``too_many_invites``) and ``status`` its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A fresh invite: ``token`` goes into the link shown to the admin once, never again."""

    invite: Invite
    token: str


@dataclass(frozen=True, slots=True)
class InviteEnrollment:
    """What the invite page shows the invitee: who they will be, and a TOTP secret to
    enrol (``enrollment`` is the sealed secret the page sends back with the code)."""

    invite: Invite
    tenant_name: str
    secret: str
    otpauth_uri: str
    enrollment: str


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A redeemed invite: the new account, its first session and its recovery codes."""

    credentials: NewCredentials
    login: LoginResult


def ttl_hours(tenant: Tenant | None) -> int:
    """The tenant's invite lifetime in hours (the default when unset or out of bounds)."""
    raw: Any = (tenant.settings or {}).get(TTL_SETTING) if tenant is not None else None
    if isinstance(raw, bool) or not isinstance(raw, int):
        return DEFAULT_TTL_HOURS
    return raw if MIN_TTL_HOURS <= raw <= MAX_TTL_HOURS else DEFAULT_TTL_HOURS


def well_formed(token: str) -> bool:
    """Whether ``token`` looks like an invite token (checked before any lookup)."""
    return bool(_TOKEN_RE.match(token))


def _enrollment_aad(invite_id: str) -> bytes:
    return f"invite-enroll|{invite_id}".encode()


class InviteService:
    """Creates, lists, revokes and redeems invites. Stateless: built per request."""

    def __init__(
        self,
        *,
        store: Store,
        auditor: Auditor,
        logins: LoginService,
        keyring: Keyring,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._logins = logins
        self._keyring = keyring
        self._clock = clock

    def token_hash(self, token: str) -> str:
        """The keyed hash stored for ``token`` (HMAC under the master-key-derived key)."""
        key = derived_secret(self._keyring, INVITE_LABEL)
        return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ admin side

    async def create(
        self,
        tenant_id: str,
        email: str,
        role: str,
        display_name: str | None,
        *,
        actor: str,
        ip: str,
    ) -> IssuedInvite:
        """A pending invite; :class:`CredentialError` for a bad address or role or an
        address already in use, :class:`InviteError` for too many pending invites."""
        try:
            canonical = normalize_email(email)
        except InvalidEmail as exc:
            raise CredentialError("invalid_email", str(exc)) from None
        if role not in TENANT_ROLES:
            raise CredentialError("invalid_role", "Role must be agent, supervisor or admin.")
        if await self._store.get_agent_by_email(canonical) is not None:
            # The same refusal as creating the agent directly: never says where it is used.
            raise CredentialError("email_taken", EMAIL_UNAVAILABLE)
        now = self._clock()
        pending = [
            i for i in await self._store.list_invites(tenant_id) if i.status(now) == "pending"
        ]
        if len(pending) >= MAX_PENDING:
            raise InviteError(
                409, "too_many_invites", f"at most {MAX_PENDING} pending invites; revoke some"
            )
        name = (display_name or canonical.partition("@")[0]).strip()[:120]
        return await self._issue(
            tenant_id, canonical, name or canonical.partition("@")[0], role, actor=actor, ip=ip
        )

    async def create_agent_link(
        self, agent: Agent, purpose: str, *, actor: str, ip: str
    ) -> IssuedInvite:
        """A one-time link for an existing ``agent``: ``mfa_reset`` after an admin reset
        its second factor (the agent proves its password and enrols a new one), or
        ``activate`` for a provisioned account that never had credentials of its own
        (it chooses a password and enrols a second factor). The admin passes the link on
        and never sees a secret; earlier pending links of the same purpose are revoked
        (one way in at a time)."""
        if purpose not in (MFA_RESET, ACTIVATE):
            raise ValueError(f"not a link for an existing agent: {purpose!r}")
        await self._revoke_pending(agent, purpose, actor)
        return await self._issue(
            agent.tenant_id,
            agent.email,
            agent.display_name,
            agent.role,
            actor=actor,
            ip=ip,
            agent_id=agent.id,
            purpose=purpose,
        )

    async def _revoke_pending(self, agent: Agent, purpose: str, actor: str) -> None:
        """Revoke the agent's pending links of ``purpose``: one way in at a time."""
        now = self._clock()
        for old in await self._store.list_invites(agent.tenant_id):
            if old.purpose == purpose and old.agent_id == agent.id and old.status(now) == "pending":
                await self._store.revoke_invite(agent.tenant_id, old.id, actor, now)

    async def _issue(
        self,
        tenant_id: str,
        email: str,
        display_name: str,
        role: str,
        *,
        actor: str,
        ip: str,
        agent_id: str | None = None,
        purpose: str = "join",
    ) -> IssuedInvite:
        """Store a new invite with a fresh token (only its keyed hash) and audit it."""
        now = self._clock()
        tenant = await self._store.get_tenant(tenant_id)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        invite = Invite(
            id="inv_" + uuid.uuid4().hex,
            tenant_id=tenant_id,
            email=email,
            display_name=display_name,
            role=role,
            token_hash=self.token_hash(token),
            created_by=actor,
            created_at=now,
            expires_at=now + ttl_hours(tenant) * HOUR,
            agent_id=agent_id,
            purpose=purpose,
        )
        await self._store.create_invite(invite)
        await self._auditor.record(
            "invite.created",
            tenant_id=tenant_id,
            actor=actor,
            target=invite.id,
            ip=ip,
            role=role,
            purpose=purpose,
            expires_at=invite.expires_at,
        )
        return IssuedInvite(invite=invite, token=token)

    async def list_invites(self, tenant_id: str) -> list[Invite]:
        """Every invite of the tenant, newest first, in any state."""
        return await self._store.list_invites(tenant_id)

    async def revoke(self, tenant_id: str, invite_id: str, *, actor: str, ip: str) -> bool:
        """Revoke a pending invite; False if unknown, of another tenant, used or revoked."""
        if len(invite_id) > 64:
            return False
        done = await self._store.revoke_invite(tenant_id, invite_id, actor, self._clock())
        if done:
            await self._auditor.record(
                "invite.revoked", tenant_id=tenant_id, actor=actor, target=invite_id, ip=ip
            )
        return done

    # ------------------------------------------------------------------ invitee side

    async def _pending(self, token: str) -> Invite:
        """The pending invite of ``token``, else :class:`InviteError` saying why."""
        invite = None
        if well_formed(token):
            invite = await self._store.get_invite(self.token_hash(token))
        if invite is None:
            raise InviteError(404, "invite_invalid", "This invitation link is not valid.")
        status = await self.status_of(invite)
        if status != "pending":
            messages = {
                "used": "This invitation has already been used.",
                "revoked": "This invitation was withdrawn.",
                "expired": "This invitation has expired.",
            }
            raise InviteError(410, f"invite_{status}", messages[status])
        return invite

    async def status_of(self, invite: Invite) -> str:
        """``pending``, ``used``, ``expired`` or ``revoked`` now, a pending invite whose
        creator lost the authority to invite counting as revoked."""
        status = invite.status(self._clock())
        if status == "pending" and not await self._inviter_may_still_invite(invite):
            return "revoked"
        return status

    async def _inviter_may_still_invite(self, invite: Invite) -> bool:
        """An invite lives on its creator's authority (like an API token): once they are
        gone, disabled, moved or no longer allowed to manage agents, it is void. The
        installation operator's CLI (:data:`CLI_ACTOR`) keeps its authority."""
        if invite.created_by == CLI_ACTOR:
            return True
        inviter = await self._store.get_agent(invite.created_by)
        if inviter is None or inviter.disabled or inviter.tenant_id != invite.tenant_id:
            return False
        try:
            return Permission.AGENT_MANAGE in role_permissions(Role(inviter.role))
        except ValueError:
            return False

    async def open(self, token: str) -> InviteEnrollment:
        """Check the token and start a TOTP enrolment for the invitee (a new secret on
        every call; only the one confirmed at redemption counts)."""
        invite = await self._pending(token)
        tenant = await self._store.get_tenant(invite.tenant_id)
        secret = new_totp_secret()
        payload = json.dumps({"secret": secret, "exp": self._clock() + ENROLLMENT_TTL})
        sealed = self._keyring.seal(payload.encode(), _enrollment_aad(invite.id))
        return InviteEnrollment(
            invite=invite,
            tenant_name=tenant.name if tenant else invite.tenant_id,
            secret=secret,
            otpauth_uri=provisioning_uri(secret, invite.email, ISSUER),
            enrollment=base64.urlsafe_b64encode(sealed).decode("ascii"),
        )

    def _enrolled_secret(self, invite: Invite, enrollment: str) -> str | None:
        try:
            sealed = base64.urlsafe_b64decode(enrollment.encode("ascii"))
            data = json.loads(self._keyring.open(sealed, _enrollment_aad(invite.id)))
            if float(data["exp"]) > self._clock():
                return str(data["secret"])
        except (binascii.Error, UnicodeEncodeError, EnvelopeError, ValueError, KeyError, TypeError):
            return None
        return None

    async def _redeem_existing(
        self,
        invite: Invite,
        token: str,
        password: str,
        totp: ConfirmedTotp,
        ip: str,
        user_agent: str,
    ) -> Redeemed:
        """Redeem a link for an account that exists: ``mfa_reset`` proves the agent's
        current password, ``activate`` (a provisioned account) sets a strong new one; both
        enrol the new second factor, and the link is used up only when everything checks
        out."""
        agent = await self._store.get_agent(invite.agent_id or "")
        if agent is None or agent.tenant_id != invite.tenant_id or agent.disabled:
            await self._failed(invite, "agent_gone", ip)
            raise InviteError(410, "invite_revoked", "This invitation was withdrawn.")
        if invite.purpose == MFA_RESET:
            try:
                creds = await self._logins.reenrol(agent, password, totp, ip=ip)
            except CredentialError:
                await self._failed(invite, "wrong_password", ip)
                raise
            await self._claim(invite, agent.id, token)
        else:
            try:
                self._logins.check_new_password(password, agent.email, agent.display_name)
            except CredentialError:
                await self._failed(invite, "weak_password", ip)
                raise
            await self._claim(invite, agent.id, token)
            creds = await self._logins.activate(agent, password, totp, ip=ip)
        await self._auditor.record(
            "invite.redeemed",
            tenant_id=invite.tenant_id,
            actor=agent.id,
            target=invite.id,
            ip=ip,
            agent=agent.id,
            purpose=invite.purpose,
        )
        login = await self._logins.open_session(
            creds.agent, ip=ip, user_agent=user_agent, factor="totp"
        )
        return Redeemed(credentials=creds, login=login)

    async def _claim(self, invite: Invite, agent_id: str, token: str) -> None:
        """Use the invite up for ``agent_id``, or say why it cannot be (used, revoked or
        expired since it was checked)."""
        if not await self._store.claim_invite(invite.id, agent_id, self._clock()):
            await self._pending(token)
            raise InviteError(410, "invite_used", "This invitation has already been used.")

    async def _failed(self, invite: Invite, reason: str, ip: str) -> None:
        await self._auditor.record(
            "invite.redeem_failed",
            tenant_id=invite.tenant_id,
            actor=None,
            target=invite.id,
            ip=ip,
            reason=reason,
        )

    async def redeem(
        self,
        token: str,
        password: str,
        enrollment: str,
        otp: str,
        *,
        ip: str,
        user_agent: str,
    ) -> Redeemed:
        """Create the invitee's account with their password and confirmed TOTP secret,
        use the invite up and log them in. Nothing is consumed unless everything checks
        out (token pending, code right, password strong enough)."""
        invite = await self._pending(token)
        secret = self._enrolled_secret(invite, enrollment)
        if secret is None:
            raise CredentialError(
                "no_enrollment", "The authenticator set-up expired; reload the page."
            )
        step = self._logins.totp.match_step(secret, otp)
        if step is None:
            await self._failed(invite, "wrong_otp", ip)
            raise CredentialError("invalid_otp", "That code does not match; try the next one.")
        if invite.purpose in (MFA_RESET, ACTIVATE):
            return await self._redeem_existing(
                invite, token, password, ConfirmedTotp(secret=secret, step=step), ip, user_agent
            )
        try:
            self._logins.check_new_password(password, invite.email, invite.display_name)
        except CredentialError:
            await self._failed(invite, "weak_password", ip)
            raise
        if await self._store.get_agent_by_email(invite.email) is not None:
            # Taken since the invite was made: refuse without using the invite up.
            await self._failed(invite, "email_taken", ip)
            raise CredentialError("email_taken", EMAIL_UNAVAILABLE)
        agent_id = new_agent_id()
        await self._claim(invite, agent_id, token)
        try:
            creds = await self._logins.create_agent(
                invite.email,
                invite.tenant_id,
                invite.role,
                password,
                invite.display_name,
                actor=invite.created_by,
                ip=ip,
                totp=ConfirmedTotp(secret=secret, step=step),
                agent_id=agent_id,
            )
        except CredentialError as exc:
            await self._failed(invite, exc.code, ip)
            raise
        await self._auditor.record(
            "invite.redeemed",
            tenant_id=invite.tenant_id,
            actor=agent_id,
            target=invite.id,
            ip=ip,
            agent=agent_id,
        )
        login = await self._logins.open_session(
            creds.agent, ip=ip, user_agent=user_agent, factor="totp"
        )
        return Redeemed(credentials=creds, login=login)
