"""Agent login and credential management: the gateway side of ``auth/``.

:class:`LoginService` owns every security-relevant step of an agent's credentials:
password + TOTP (or recovery code) login, brute-force lockout, sessions, password
change, TOTP enrolment, recovery codes, agent creation, MFA reset and revocation.
The HTTP API (:mod:`gateway.http.plumbing`) and the CLI (:mod:`gateway.cli.admin`) are thin
shells around it, so both enforce the same rules.

Rules worth knowing:

* Every login failure raises :class:`LoginFailed` with ONE generic message, whatever
  went wrong (unknown account, wrong password, wrong or replayed code, disabled,
  locked). An unknown account still spends the time of an argon2 verification
  (``verify_dummy``). argon2 runs in a worker thread so a login storm never stalls
  the event loop that carries chats.
* Brute force (:mod:`gateway.ratelimit.login`): per (account, source address) progressive
  delays and a temporary lock of that pair only; per address a budget scaled for offices
  behind NAT; per account a ceiling that only *slows* attempts and audits an alert —
  an attacker can never lock the owner out from another address. OTP failures count like
  password failures; failures decay; counting is atomic in the store. Independently, the
  ``login_per_ip`` and ``login_per_account`` rate limits shed floods; the latter counts
  per (account, address) for the same reason. Refusals answer with ``retry_after``.
* Step-up re-authentication (:meth:`LoginService.reauthenticate`): every credential change
  (password, TOTP, recovery codes, an admin's MFA reset of someone else) needs password
  + second factor proven on this session within ``auth.reauth_window`` seconds (a login
  counts); the change revokes the agent's other sessions (closed with 4401
  ``credentials changed``) and is audited.
* The one-time code is a 6-digit TOTP (each time step accepted once per agent, race-free
  via ``store.advance_totp_step``) or a recovery code (single use via
  ``store.use_recovery_code``). An agent created by the CLI (or after an MFA reset) has
  an unconfirmed TOTP secret, confirmed by its first successful TOTP login.
* Console re-enrolment keeps the current secret active until the new one is confirmed
  with a valid code: the pending secret is sealed (master key, bound to the agent and
  the session) and handed to the client as an opaque ``enrollment`` token, and also
  remembered in memory on this node (so ``{"otp"}`` alone works on one node).
* Audit events never hold a password, a code, a secret or a token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from auth.emails import InvalidEmail, normalize_email
from auth.passwords import PasswordHasher, WeakPassword, check_password_strength
from auth.recovery import (
    InvalidRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
)
from auth.roles import OPERATOR_SCOPE, TENANT_ROLES, Role
from auth.tokens import hash_token, new_session_token
from auth.totp import TotpVerifier, new_totp_secret, provisioning_uri
from crypto.envelope import EnvelopeError, Keyring
from gateway.aad import totp_aad, totp_enrollment_aad
from gateway.audit import Auditor
from gateway.bus.base import Bus, BusEvent, agent_topic
from gateway.config import Config
from gateway.governance.dormancy import refuse_if_dormant
from gateway.metrics import Metrics
from gateway.ratelimit.limits import Limits, RateLimiter
from gateway.ratelimit.login import LoginThrottle, ThrottleKeys
from gateway.store.base import Agent, AgentSession, Conflict, Store, Tenant

T = TypeVar("T")

log = structlog.get_logger("cipherdesk.logins")

GENERIC_FAILURE = "Login failed: check your e-mail, password and one-time code."
RECOVERY_CODES = 10
ENROLLMENT_TTL = 600.0
EMAIL_UNAVAILABLE = "This e-mail address cannot be used for a new agent; use another address."
"""The one answer for an address already in use, whichever tenant uses it (issue 11.12)."""
ISSUER = "cipherdesk"


class LoginFailed(Exception):
    """Any login failure. ``retry_after`` is set when the caller must wait (rate limit,
    progressive delay or lock); the message is always :data:`GENERIC_FAILURE`."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__(GENERIC_FAILURE)
        self.retry_after = retry_after


class CredentialError(Exception):
    """A credential-management request was refused; ``code`` is the documented API code
    (``weak_password``, ``wrong_password``, ``invalid_otp``, ``no_enrollment``,
    ``invalid_email``, ``email_taken``, ``invalid_role``, ``not_found``)."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(slots=True, frozen=True)
class LoginResult:
    token: str
    agent: Agent
    session: AgentSession


@dataclass(slots=True, frozen=True)
class NewCredentials:
    """What a new or reset agent must see once: TOTP secret/URI and recovery codes."""

    agent: Agent
    totp_secret: str
    otpauth_uri: str
    recovery_codes: list[str]


@dataclass(slots=True, frozen=True)
class ConfirmedTotp:
    """A TOTP secret its owner already proved to hold, and the step of the code that
    proved it (used up: the next login needs a later code)."""

    secret: str
    step: int


@dataclass(slots=True, frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str
    token: str  # opaque sealed pending secret for the confirm call


CREDENTIALS_CHANGED = "credentials changed"
"""Close reason (with 4401) of the agent's other sockets after a credential change; the
console shows a bilingual notice for it."""


def new_agent_id() -> str:
    """A fresh agent id (random, so ids reveal nothing about order or count)."""
    return "agt_" + uuid.uuid4().hex


def _canonical_or_raw(email: str) -> tuple[str | None, str]:
    """(canonical e-mail or None, the key used for lockout/rate limits)."""
    try:
        canonical = normalize_email(email)
    except InvalidEmail:
        raw = email.strip().casefold()[:320] if isinstance(email, str) else ""
        return None, raw
    return canonical, canonical


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop: on Linux a thread is a task whose
    niceness can be raised alone (argon2 releases the GIL while it hashes)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


#: A login storm must not starve chat traffic: argon2 runs on its own small pool of
#: low-priority threads (one core is always left to the event loop), not on the default
#: executor shared with everything else.
_HASH_POOL = concurrent.futures.ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) - 1),
    thread_name_prefix="argon2",
    initializer=_lower_priority,
)


async def _in_hash_pool(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, fn, *args)


class LoginService:
    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        auditor: Auditor,
        limiter: RateLimiter,
        limits: Limits,
        metrics: Metrics,
        bus: Bus,
        keyring: Keyring,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.config = config
        self.auditor = auditor
        self.limiter = limiter
        self.limits = limits
        self.metrics = metrics
        self.bus = bus
        self.keyring = keyring
        self.clock = clock
        auth = config.auth
        self.hasher = PasswordHasher(
            time_cost=auth.argon2_time_cost,
            memory_cost=auth.argon2_memory_kib,
            parallelism=auth.argon2_parallelism,
        )
        self.throttle = LoginThrottle(store, keyring, auth, clock)
        self.totp = TotpVerifier(clock=clock)
        self._pending: dict[str, tuple[float, str, bytes]] = {}

    # ------------------------------------------------------------------ helpers

    async def _hash(self, password: str) -> str:
        return await _in_hash_pool(self.hasher.hash, password)

    async def _verify(self, stored: str | None, password: str) -> bool:
        if stored is None:
            return await _in_hash_pool(self.hasher.verify_dummy, password)
        return await _in_hash_pool(self.hasher.verify, stored, password)

    def open_totp_secret(self, agent: Agent) -> str | None:
        if not agent.totp_secret_sealed:
            return None
        try:
            return self.keyring.open(agent.totp_secret_sealed, totp_aad(agent.id)).decode()
        except (EnvelopeError, UnicodeDecodeError):
            log.warning("totp_secret_unreadable", agent=agent.id)
            return None

    def _seal_totp(self, agent_id: str, secret: str) -> bytes:
        return self.keyring.seal(secret.encode(), totp_aad(agent_id))

    async def _record_failure(
        self, keys: ThrottleKeys, agent: Agent | None, tenant_id: str | None, ip: str
    ) -> None:
        outcome = await self.throttle.record_failure(keys)
        target = agent.id if agent else None
        if outcome.locked:
            await self.auditor.record(
                "login.locked", tenant_id=tenant_id, actor="system", target=target, ip=ip
            )
        if outcome.account_alert:
            log.warning("login_account_throttled", tenant=tenant_id, agent=target)
            await self.auditor.record(
                "login.account_throttled",
                tenant_id=tenant_id,
                actor="system",
                target=target,
                ip=ip,
                failures=outcome.account_failures,
            )

    async def _rate_limit(self, keys: ThrottleKeys) -> None:
        """Flood shedding before anything else: per address (an IPv6 /64), per (account,
        address). The keys are the throttle's keyed hashes: no address in the limiter's
        memory or in Redis."""
        for key, rate, scope in (
            (f"login:{keys.source}", self.limits.login_per_ip, "login_per_ip"),
            (f"login:{keys.pair}", self.limits.login_per_account, "login_per_account"),
        ):
            decision = await self.limiter.hit(key, rate, scope=scope)
            if not decision.allowed:
                raise LoginFailed(max(decision.retry_after, 1.0))

    async def shed_flood(self, account: str, ip: str) -> None:
        """The flood limits of a login attempt without a password (passkey ceremonies):
        :class:`LoginFailed` with a retry time when spent."""
        await self._rate_limit(self.throttle.keys(account, ip))

    # ------------------------------------------------------------------ login

    async def login(
        self,
        email: str,
        password: str,
        otp: str,
        *,
        ip: str,
        user_agent: str = "",
        tenant_hint: str | None = None,
    ) -> LoginResult:
        canonical, acct = _canonical_or_raw(email)
        keys = self.throttle.keys(acct, ip)

        async def fail(
            reason: str, agent: Agent | None, retry_after: float | None = None, count: bool = True
        ) -> LoginFailed:
            tenant = agent.tenant_id if agent else tenant_hint
            if count:
                await self._record_failure(keys, agent, tenant, ip)
            await self.auditor.record(
                "login.failed",
                tenant_id=tenant,
                actor=agent.id if agent else None,
                target=agent.id if agent else None,
                ip=ip,
                reason=reason,
            )
            return LoginFailed(retry_after)

        # 1. cheap rate limits (floods), then the (account, address) and address throttles
        #    refuse without verification; the account ceiling only slows the attempt.
        await self._rate_limit(keys)
        verdict = await self.throttle.check(keys)
        if verdict.refusal is not None:
            raise await fail(
                "locked" if verdict.refusal.locked else "throttled",
                None,
                retry_after=max(verdict.refusal.retry_after, 1.0),
                count=False,
            )
        await self.throttle.hold(verdict)

        # 2. password (always one argon2 verification, known account or not).
        agent = await self.store.get_agent_by_email(canonical) if canonical else None
        ok = await self._verify(agent.password_hash if agent else None, password)
        if agent is None:
            raise await fail("unknown_account", None)
        if not ok:
            raise await fail("wrong_password", agent)
        if agent.disabled:
            raise await fail("disabled", agent)

        # 3. second factor: TOTP (single use per step) or a recovery code (single use).
        factor = await self._second_factor(agent, otp)
        if factor is None:
            raise await fail("wrong_otp", agent)

        # 4. success, unless the tenant disables accounts dormant this long (issue 20.5).
        await self.throttle.record_success(keys)
        now = self.clock()
        if await refuse_if_dormant(self, agent, now):
            raise await fail("dormant", agent, count=False)
        if factor == "totp" and not agent.totp_confirmed:
            agent.totp_confirmed = True
            fresh = await self.store.get_agent(agent.id)
            if fresh is not None:
                fresh.totp_confirmed = True
                agent = fresh
            await self.store.update_agent(agent)
            await self.auditor.record(
                "totp.confirmed",
                tenant_id=agent.tenant_id,
                actor=agent.id,
                target=agent.id,
                ip=ip,
                via="login",
            )
        if self.hasher.needs_rehash(agent.password_hash):
            agent.password_hash = await self._hash(password)
            await self.store.update_agent(agent)
            await self.auditor.record(
                "password.rehashed", tenant_id=agent.tenant_id, actor="system", target=agent.id
            )
        return await self.open_session(agent, ip=ip, user_agent=user_agent, factor=factor)

    async def open_session(
        self, agent: Agent, *, ip: str, user_agent: str, factor: str
    ) -> LoginResult:
        """A new session for an agent who just proved password + second factor (a login,
        or the redemption of an invite where both were set and the code confirmed)."""
        now = self.clock()
        token = new_session_token()
        session = AgentSession(
            token_hash=hash_token(token),
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            created_at=now,
            last_seen_at=now,
            ip=ip,
            user_agent=(user_agent or "")[:256],
            reauth_at=now,
            factor=factor,
        )
        await self.store.create_session(session)
        await self.store.record_login(agent.id, now)
        await self.auditor.record(
            "login.ok",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
            factor=factor,
        )
        return LoginResult(token=token, agent=agent, session=session)

    async def _second_factor(self, agent: Agent, otp: str) -> str | None:
        if not isinstance(otp, str):
            return None
        cleaned = otp.strip().replace(" ", "")
        if cleaned.isascii() and cleaned.isdigit() and len(cleaned) == self.totp.digits:
            secret = self.open_totp_secret(agent)
            if secret is None:
                return None
            step = self.totp.verify(secret, cleaned, agent.totp_last_step)
            if step is None or not await self.store.advance_totp_step(agent.id, step):
                return None
            return "totp"
        try:
            code_hash = hash_recovery_code(otp)
        except InvalidRecoveryCode:
            return None
        if await self.store.use_recovery_code(agent.id, code_hash, self.clock()):
            await self.auditor.record(
                "recovery_code.used",
                tenant_id=agent.tenant_id,
                actor=agent.id,
                target=agent.id,
                left=await self.store.count_recovery_codes(agent.id),
            )
            return "recovery_code"
        return None

    # ------------------------------------------------------------------ step-up

    def reauth_is_fresh(self, session: AgentSession) -> bool:
        """Has this session proved password + second factor within the window?"""
        age = self.clock() - session.reauth_at
        return session.reauth_at > 0 and 0 <= age < self.config.auth.reauth_window

    def require_reauth(self, session: AgentSession) -> None:
        """Refuse a credential change unless the session re-authenticated recently."""
        if not self.reauth_is_fresh(session):
            minutes = max(1, round(self.config.auth.reauth_window / 60))
            raise CredentialError(
                "reauth_required",
                f"Confirm your password and one-time code first (valid {minutes} minutes).",
                reauth="/api/me/reauth",
            )

    async def reauthenticate(
        self, agent: Agent, session: AgentSession, password: str, otp: str, *, ip: str
    ) -> float:
        """Step-up: verify password + TOTP (or a recovery code) for a live session.

        Throttled and counted exactly like logins (same (account, address) pair), so a
        stolen session cannot be used to guess the password faster than the login form.
        Returns the new ``reauth_at``.
        """
        keys = self.throttle.keys(agent.email, ip)
        verdict = await self.throttle.check(keys)
        if verdict.refusal is not None:
            retry = max(verdict.refusal.retry_after, 1.0)
            raise CredentialError(
                "rate_limited", "Too many attempts; try again later.", retry_after=retry
            )
        await self.throttle.hold(verdict)
        ok = await self._verify(agent.password_hash, password)
        # The second factor is only tried (and a recovery code only spent) after the
        # password was right.
        factor = await self._second_factor(agent, otp) if ok else None
        if factor is None:
            await self._record_failure(keys, agent, agent.tenant_id, ip)
            await self.auditor.record(
                "reauth.failed",
                tenant_id=agent.tenant_id,
                actor=agent.id,
                target=agent.id,
                ip=ip,
                reason="wrong_password" if not ok else "wrong_otp",
            )
            raise CredentialError(
                "reauth_failed", "The password or the one-time code is not correct."
            )
        await self.throttle.record_success(keys)
        now = self.clock()
        await self.store.mark_session_reauth(session.token_hash, now)
        session.reauth_at = now
        await self.auditor.record(
            "reauth.ok",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
            factor=factor,
        )
        return now

    async def _credentials_changed(
        self, agent: Agent, what: str, *, keep: str | None, actor: str, ip: str | None
    ) -> int:
        """Every credential change ends the agent's other sessions and is audited.

        Their sockets close with 4401 :data:`CREDENTIALS_CHANGED`, which the console shows
        as a notice, so the owner learns of a change made elsewhere.
        """
        revoked = await self._revoke_others(agent, keep, reason=CREDENTIALS_CHANGED)
        await self.auditor.record(
            "credentials.changed",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
            what=what,
            sessions_revoked=revoked,
        )
        return revoked

    # ------------------------------------------------------------------ sessions

    async def logout(self, agent: Agent, token_hash: str, *, ip: str | None = None) -> None:
        await self.store.revoke_session(token_hash, self.clock())
        await self.bus.publish(
            agent_topic(agent.id), BusEvent(kind="revoke", sessions=[token_hash])
        )
        await self.auditor.record(
            "logout", tenant_id=agent.tenant_id, actor=agent.id, target=agent.id, ip=ip
        )

    async def end_session(
        self, agent_id: str, tenant_id: str, token_hash: str, *, reason: str
    ) -> None:
        """End one session from outside (its identity provider refused it): revoked, its
        live sockets closed 4401, audited ``sessions.revoked`` with ``reason``."""
        await self.store.revoke_session(token_hash, self.clock())
        await self.bus.publish(
            agent_topic(agent_id), BusEvent(kind="revoke", sessions=[token_hash])
        )
        await self.auditor.record(
            "sessions.revoked",
            tenant_id=tenant_id,
            actor="system",
            target=agent_id,
            count=1,
            reason=reason,
        )

    async def revoke_all(
        self,
        agent_id: str,
        actor: str,
        *,
        ip: str | None = None,
        reason: str = "admin",
        close_reason: str | None = None,
    ) -> int:
        agent = await self.store.get_agent(agent_id)
        hashes = await self.store.revoke_agent_sessions(agent_id, self.clock())
        await self.bus.publish(
            agent_topic(agent_id), BusEvent(kind="revoke", sessions=None, reason=close_reason)
        )
        await self.auditor.record(
            "sessions.revoked",
            tenant_id=agent.tenant_id if agent else None,
            actor=actor,
            target=agent_id,
            ip=ip,
            count=len(hashes),
            reason=reason,
        )
        return len(hashes)

    async def _revoke_others(
        self, agent: Agent, keep_hash: str | None, reason: str | None = None
    ) -> int:
        now = self.clock()
        revoked = []
        for session in await self.store.list_sessions(agent.id):
            if session.token_hash == keep_hash or session.revoked_at is not None:
                continue
            if await self.store.revoke_session(session.token_hash, now):
                revoked.append(session.token_hash)
        if revoked:
            await self.bus.publish(
                agent_topic(agent.id), BusEvent(kind="revoke", sessions=revoked, reason=reason)
            )
        return len(revoked)

    # ------------------------------------------------------------------ passwords

    async def change_password(
        self,
        agent: Agent,
        current: str,
        new: str,
        *,
        keep_session: str | None,
        ip: str | None = None,
    ) -> int:
        """Verify ``current``, set ``new``, revoke every other session. Returns how many."""
        if not await self._verify(agent.password_hash, current):
            await self.auditor.record(
                "password.change_failed",
                tenant_id=agent.tenant_id,
                actor=agent.id,
                target=agent.id,
                ip=ip,
            )
            raise CredentialError("wrong_password", "The current password is not correct.")
        self._check_strength(new, agent.email, agent.display_name)
        agent.password_hash = await self._hash(new)
        agent.password_changed_at = self.clock()
        await self.store.update_agent(agent)
        revoked = await self._credentials_changed(
            agent, "password", keep=keep_session, actor=agent.id, ip=ip
        )
        await self.auditor.record(
            "password.changed",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
            sessions_revoked=revoked,
        )
        return revoked

    @staticmethod
    def check_new_password(password: str, email: str, name: str | None = None) -> None:
        """Refuse (``weak_password``) a password that may not be set for this account;
        for callers that must know before committing to anything (invite redemption)."""
        LoginService._check_strength(password, email, name)

    @staticmethod
    def _check_strength(password: str, email: str, name: str | None = None) -> None:
        try:
            check_password_strength(password, email=email, user_inputs=(name or "",))
        except WeakPassword as exc:
            raise CredentialError("weak_password", exc.reason, reason=exc.code) from None

    # ------------------------------------------------------------------ TOTP

    async def start_enrollment(
        self, agent: Agent, token_hash: str, *, ip: str | None = None
    ) -> Enrollment:
        secret = new_totp_secret()
        uri = provisioning_uri(secret, agent.email, ISSUER)
        expires = self.clock() + ENROLLMENT_TTL
        payload = json.dumps({"secret": secret, "exp": expires}).encode()
        sealed = self.keyring.seal(payload, totp_enrollment_aad(agent.id, token_hash))
        self._pending[agent.id] = (expires, token_hash, sealed)
        if len(self._pending) > 10_000:
            self._pending.clear()
        await self.auditor.record(
            "totp.enrollment_started",
            tenant_id=agent.tenant_id,
            actor=agent.id,
            target=agent.id,
            ip=ip,
        )
        return Enrollment(
            secret=secret, otpauth_uri=uri, token=base64.urlsafe_b64encode(sealed).decode("ascii")
        )

    async def confirm_enrollment(
        self,
        agent: Agent,
        token_hash: str,
        otp: str,
        enrollment: str | None = None,
        *,
        ip: str | None = None,
    ) -> None:
        sealed: bytes | None = None
        if enrollment:
            try:
                sealed = base64.urlsafe_b64decode(enrollment.encode("ascii"))
            except (binascii.Error, ValueError, UnicodeEncodeError):
                sealed = None
        elif agent.id in self._pending and self._pending[agent.id][1] == token_hash:
            sealed = self._pending[agent.id][2]
        secret = None
        if sealed is not None:
            try:
                aad = totp_enrollment_aad(agent.id, token_hash)
                data = json.loads(self.keyring.open(sealed, aad))
                if data["exp"] > self.clock():
                    secret = str(data["secret"])
            except (EnvelopeError, ValueError, KeyError, TypeError):
                secret = None
        if secret is None:
            raise CredentialError("no_enrollment", "No TOTP enrolment is pending; start a new one.")
        step = self.totp.match_step(secret, otp) if isinstance(otp, str) else None
        if step is None:
            await self.auditor.record(
                "totp.confirm_failed",
                tenant_id=agent.tenant_id,
                actor=agent.id,
                target=agent.id,
                ip=ip,
            )
            raise CredentialError("invalid_otp", "That code does not match; try the next one.")
        fresh = await self.store.get_agent(agent.id) or agent
        fresh.totp_secret_sealed = self._seal_totp(agent.id, secret)
        fresh.totp_confirmed = True
        fresh.totp_last_step = step  # this code is used up
        await self.store.update_agent(fresh)
        self._pending.pop(agent.id, None)
        await self.auditor.record(
            "totp.enrolled", tenant_id=agent.tenant_id, actor=agent.id, target=agent.id, ip=ip
        )
        await self._credentials_changed(fresh, "totp", keep=token_hash, actor=agent.id, ip=ip)

    async def regenerate_recovery_codes(
        self, agent: Agent, *, actor: str, ip: str | None = None, keep_session: str | None = None
    ) -> list[str]:
        codes = generate_recovery_codes(RECOVERY_CODES)
        await self.store.set_recovery_codes(agent.id, [hash_recovery_code(c) for c in codes])
        await self.auditor.record(
            "recovery_codes.regenerated",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
        )
        await self._credentials_changed(
            agent, "recovery_codes", keep=keep_session, actor=actor, ip=ip
        )
        return codes

    # ------------------------------------------------------------------ administration

    async def create_agent(
        self,
        email: str,
        tenant: str,
        role: str,
        password: str,
        display_name: str | None = None,
        *,
        actor: str = "cli",
        ip: str | None = None,
        confirmed: bool = False,
        totp: ConfirmedTotp | None = None,
        agent_id: str | None = None,
    ) -> NewCredentials:
        """A tenant agent. ``totp``: a secret the agent already enrolled and confirmed
        (invite redemption) instead of a fresh, unconfirmed one; ``agent_id``: the id to
        use (an invite is claimed for it before the account exists)."""
        try:
            canonical = normalize_email(email)
        except InvalidEmail as exc:
            raise CredentialError("invalid_email", str(exc)) from None
        try:
            role_value = Role(role).value
        except ValueError:
            role_value = ""
        if role_value not in TENANT_ROLES:
            raise CredentialError("invalid_role", "Role must be agent, supervisor or admin.")
        if tenant == OPERATOR_SCOPE or await self.store.get_tenant(tenant) is None:
            raise CredentialError("not_found", "No such tenant.")
        return await self._create_account(
            canonical,
            tenant,
            role_value,
            password,
            display_name,
            actor=actor,
            ip=ip,
            confirmed=confirmed,
            totp=totp,
            agent_id=agent_id,
        )

    async def create_operator(
        self, email: str, password: str, display_name: str | None = None
    ) -> NewCredentials:
        """An installation operator (only the CLI calls this; no API can).

        Operators log in like agents (password + TOTP, same throttling, same sessions)
        but belong to no tenant: their rows are filed under the reserved
        :data:`auth.roles.OPERATOR_SCOPE` placeholder, created frozen here on first use.
        """
        try:
            canonical = normalize_email(email)
        except InvalidEmail as exc:
            raise CredentialError("invalid_email", str(exc)) from None
        if await self.store.get_tenant(OPERATOR_SCOPE) is None:
            with contextlib.suppress(Conflict):
                await self.store.create_tenant(
                    Tenant(
                        id=OPERATOR_SCOPE,
                        name="installation operators (not a tenant)",
                        frozen=True,
                        created_at=self.clock(),
                    )
                )
        return await self._create_account(
            canonical,
            OPERATOR_SCOPE,
            Role.OPERATOR.value,
            password,
            display_name,
            actor="cli",
            ip=None,
            confirmed=False,
        )

    async def _create_account(
        self,
        canonical: str,
        tenant: str,
        role_value: str,
        password: str,
        display_name: str | None,
        *,
        actor: str,
        ip: str | None,
        confirmed: bool,
        totp: ConfirmedTotp | None = None,
        agent_id: str | None = None,
    ) -> NewCredentials:
        name = (display_name or canonical.partition("@")[0]).strip()[:120]
        self._check_strength(password, canonical, name)
        now = self.clock()
        agent_id = agent_id or new_agent_id()
        secret = totp.secret if totp else new_totp_secret()
        # The hash is computed before the uniqueness is known, so a taken address and a
        # free one take the same time to answer.
        agent = Agent(
            id=agent_id,
            tenant_id=tenant,
            email=canonical,
            display_name=name,
            role=role_value,
            password_hash=await self._hash(password),
            totp_secret_sealed=self._seal_totp(agent_id, secret),
            totp_confirmed=confirmed or totp is not None,
            totp_last_step=totp.step if totp else -1,
            created_at=now,
            password_changed_at=now,
        )
        try:
            await self.store.create_agent(agent)
        except Conflict:
            raise await self._email_unavailable(canonical, tenant, actor, ip) from None
        codes = generate_recovery_codes(RECOVERY_CODES)
        await self.store.set_recovery_codes(agent_id, [hash_recovery_code(c) for c in codes])
        await self.auditor.record(
            "agent.created", tenant_id=tenant, actor=actor, target=agent_id, ip=ip, role=role_value
        )
        return NewCredentials(
            agent=agent,
            totp_secret=secret,
            otpauth_uri=provisioning_uri(secret, canonical, ISSUER),
            recovery_codes=codes,
        )

    async def _email_unavailable(
        self, email: str, tenant: str, actor: str, ip: str | None
    ) -> CredentialError:
        """One answer whether the address belongs to this tenant or to another one.

        Login e-mails are unique installation-wide, so *some* refusal is unavoidable;
        it never says where the address is used (issue 11.12). A conflict with another
        tenant is audited at installation level for the operator, without the address.
        """
        existing = await self.store.get_agent_by_email(email)
        await self.auditor.record(
            "agent.create_refused", tenant_id=tenant, actor=actor, ip=ip, reason="email_unavailable"
        )
        if existing is not None and existing.tenant_id != tenant:
            await self.auditor.record(
                "agent.email_conflict",
                tenant_id=None,
                actor=actor,
                target=existing.id,
                ip=ip,
                requested_in=tenant,
            )
        return CredentialError("email_taken", EMAIL_UNAVAILABLE)

    async def reset_mfa(self, agent: Agent, *, actor: str, ip: str | None = None) -> NewCredentials:
        """New unconfirmed TOTP secret + new recovery codes; every session revoked.

        The agent confirms the new secret with its next login (like a CLI-created one).
        """
        secret = new_totp_secret()
        agent.totp_secret_sealed = self._seal_totp(agent.id, secret)
        agent.totp_confirmed = False
        await self.store.update_agent(agent)
        codes = generate_recovery_codes(RECOVERY_CODES)
        await self.store.set_recovery_codes(agent.id, [hash_recovery_code(c) for c in codes])
        self._pending.pop(agent.id, None)
        # Passkeys are a second factor too: a reset (lost phone, lost security key) ends them.
        passkeys = await self.store.list_passkeys(agent.id)
        for passkey in passkeys:
            await self.store.delete_passkey(passkey.credential_id, agent.id)
        await self.auditor.record(
            "mfa.reset",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
            passkeys_removed=len(passkeys),
        )
        await self.revoke_all(
            agent.id, actor, ip=ip, reason="mfa_reset", close_reason=CREDENTIALS_CHANGED
        )
        return NewCredentials(
            agent=agent,
            totp_secret=secret,
            otpauth_uri=provisioning_uri(secret, agent.email, ISSUER),
            recovery_codes=codes,
        )

    async def activate(
        self, agent: Agent, password: str, totp: ConfirmedTotp, *, ip: str | None = None
    ) -> NewCredentials:
        """A provisioned account (SCIM) gets its first password and second factor from its
        activation link (gateway/invites.py); the caller checked the password's strength.
        New recovery codes; audited ``agent.activated``."""
        fresh = await self.store.get_agent(agent.id) or agent
        fresh.password_hash = await self._hash(password)
        fresh.password_changed_at = self.clock()
        await self.store.update_agent(fresh)
        await self.auditor.record(
            "agent.activated", tenant_id=agent.tenant_id, actor=agent.id, target=agent.id, ip=ip
        )
        return await self.reenrol(fresh, password, totp, ip=ip)

    async def reenrol(
        self, agent: Agent, password: str, totp: ConfirmedTotp, *, ip: str | None = None
    ) -> NewCredentials:
        """An agent whose second factor an admin reset proves their password and enrols a
        TOTP secret only they hold (``mfa_reset`` link, gateway/invites.py); new recovery
        codes. :class:`CredentialError` ``wrong_password`` otherwise (nothing changed)."""
        if agent.disabled or not await self._verify(agent.password_hash, password):
            raise CredentialError("wrong_password", "That password is not right.")
        fresh = await self.store.get_agent(agent.id) or agent
        fresh.totp_secret_sealed = self._seal_totp(agent.id, totp.secret)
        fresh.totp_confirmed = True
        fresh.totp_last_step = totp.step  # the code that proved it is used up
        await self.store.update_agent(fresh)
        self._pending.pop(agent.id, None)
        codes = generate_recovery_codes(RECOVERY_CODES)
        await self.store.set_recovery_codes(agent.id, [hash_recovery_code(c) for c in codes])
        await self.auditor.record(
            "totp.enrolled", tenant_id=agent.tenant_id, actor=agent.id, target=agent.id, ip=ip
        )
        return NewCredentials(
            agent=fresh,
            totp_secret=totp.secret,
            otpauth_uri=provisioning_uri(totp.secret, fresh.email, ISSUER),
            recovery_codes=codes,
        )

    async def unlock(self, agent: Agent, *, actor: str, ip: str | None = None) -> bool:
        """Lift the account's lockout. Returns whether there was anything to clear."""
        had = await self.throttle.unlock(agent.email)
        await self.auditor.record(
            "login.unlocked",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
            had_lock=had,
        )
        return had

    async def set_disabled(
        self,
        agent: Agent,
        disabled: bool,
        *,
        actor: str,
        ip: str | None = None,
        reason: str | None = None,
    ) -> None:
        agent.disabled = disabled
        await self.store.update_agent(agent)
        extra = {"reason": reason} if reason else {}
        await self.auditor.record(
            "agent.disabled" if disabled else "agent.enabled",
            tenant_id=agent.tenant_id,
            actor=actor,
            target=agent.id,
            ip=ip,
            **extra,
        )
        if disabled:
            await self.revoke_all(agent.id, actor, ip=ip, reason="disabled")
