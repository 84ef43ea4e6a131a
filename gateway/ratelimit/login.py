"""Login throttling that slows attackers without letting them lock the owner out.

Issue 11.2: ten wrong passwords from one address used to lock the victim everywhere for
15 minutes, renewable forever. The design now follows OWASP ASVS 5.0 §6.3 and Keycloak's
temporary lockout, with three kinds of key per attempt (rules in :mod:`auth.lockout`):

``pair`` — (account, source address)
    Progressive delays after ``auth.free_failures`` failures, a temporary lock of this
    pair only at ``auth.lock_after``. Checked *before* the password: a refusal costs no
    argon2 work. The owner logging in from another address is not affected.
``source`` — the address alone, across accounts
    Against password spraying: the same shape with an office-behind-NAT budget
    (``2 * lock_after`` free failures, a lock at ``5 * lock_after``).
``account`` — the account alone, across all addresses
    A ceiling that never refuses: above ``auth.account_ceiling`` decaying failures every
    attempt is *paced* (held for up to ``auth.account_max_delay`` seconds before being
    checked) and an alert is audited (``login.account_throttled``) at most once an hour.
    A correct password with a fresh TOTP code still logs in, just slower.

Failures decay (one forgotten per ``auth.decay_every`` seconds); a success forgets the
pair, not the address or account ceilings (logging into one's own account must not reset
the budget of an address that is spraying others, and an attack in progress stays
visible). Every update is one atomic read-modify-write in the store
(:meth:`gateway.store.base.Store.update_lockout`), so parallel failures all count.

Keys are ``HMAC-SHA256(derived key, value)`` — no tried e-mail address or IP in
plaintext in the store (issue 11.10); the key is derived from the current master key, so
a master-key rotation starts every throttle afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth.lockout import LockoutDecision, LockoutPolicy, LockoutState
from crypto.envelope import Keyring
from gateway.clientip import rate_limit_key
from gateway.config import AuthConfig
from gateway.derived_keys import LOGIN_THROTTLE_LABEL, derived_secret
from gateway.store.base import LockoutRecord, Store

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """The three store keys of one attempt (opaque hashes)."""

    pair: str
    source: str
    account: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """``refusal`` set: answer "retry after" without checking; else hold ``pace`` s."""

    refusal: LockoutDecision | None
    pace: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """What a recorded failure started: a lock of the pair or source, an account alert."""

    locked: bool = False
    account_alert: bool = False
    account_failures: float = 0.0


def _state(record: LockoutRecord | None) -> LockoutState:
    if record is None:
        return LockoutState()
    return LockoutState(
        record.failures, record.last_failure_at, record.locked_until, record.alerted_at
    )


def _record(state: LockoutState) -> LockoutRecord:
    return LockoutRecord(
        "", state.failures, state.last_failure_at, state.locked_until, state.alerted_at
    )


class LoginThrottle:
    """Brute-force state of agent logins and step-up re-authentications."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        auth: AuthConfig,
        clock: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.sleep = sleep
        self.pair = LockoutPolicy(
            free_failures=auth.free_failures,
            lock_after=auth.lock_after,
            lock_duration=auth.lock_duration,
            max_delay=auth.lock_duration,
            decay_every=auth.decay_every,
        )
        self.source = LockoutPolicy(
            free_failures=2 * auth.lock_after,
            lock_after=5 * auth.lock_after,
            lock_duration=auth.lock_duration,
            max_delay=auth.lock_duration,
            decay_every=auth.decay_every / 5,
        )
        self.account = LockoutPolicy(
            free_failures=auth.account_ceiling,
            lock_after=None,
            max_delay=auth.account_max_delay,
            decay_every=auth.decay_every / 10,
        )

    # ------------------------------------------------------------------ keys

    def _digest(self, kind: str, value: str) -> str:
        secret = derived_secret(self.keyring, LOGIN_THROTTLE_LABEL)
        return hmac.new(secret, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:40]

    def account_prefix(self, account: str) -> str:
        """Prefix shared by every pair key of ``account`` (for an admin unlock)."""
        return f"p:{self._digest('acct', account)}:"

    def keys(self, account: str, ip: str) -> ThrottleKeys:
        """Keys of an attempt on ``account`` from ``ip``. The source is the address for
        IPv4 and its /64 for IPv6 (one subscriber holds a whole /64: per /128 an attacker
        would have 2**64 fresh budgets), and only a keyed hash of it is ever stored."""
        acct = self._digest("acct", account)
        src = self._digest("ip", rate_limit_key(ip))
        return ThrottleKeys(pair=f"p:{acct}:{src}", source=f"s:{src}", account=f"a:{acct}")

    # ------------------------------------------------------------------ decisions

    async def check(self, keys: ThrottleKeys) -> Verdict:
        """Before verifying: refuse (pair/source) or pace (account ceiling)."""
        now = self.clock()
        blocked = []
        for key, policy in ((keys.pair, self.pair), (keys.source, self.source)):
            decision = policy.check(_state(await self.store.get_lockout(key)), now)
            if not decision.allowed:
                blocked.append(decision)
        if blocked:
            return Verdict(
                LockoutDecision(
                    False, max(d.retry_after for d in blocked), any(d.locked for d in blocked)
                )
            )
        pace = self.account.pace(_state(await self.store.get_lockout(keys.account)), now)
        return Verdict(None, pace)

    async def hold(self, verdict: Verdict) -> None:
        """Apply the ceiling's pace (an injectable sleep, so tests need not wait)."""
        if verdict.pace > 0:
            await self.sleep(verdict.pace)

    async def _fail(
        self, key: str, policy: LockoutPolicy, now: float, alert: bool = False
    ) -> tuple[LockoutState, LockoutState]:
        def change(before: LockoutRecord | None) -> LockoutRecord:
            after = policy.record_failure(_state(before), now)
            if alert and policy.alert_due(after, now):
                after = LockoutState(
                    after.failures, after.last_failure_at, after.locked_until, alerted_at=now
                )
            return _record(after)

        before, after = await self.store.update_lockout(key, change)
        return _state(before), _state(after)

    async def record_failure(self, keys: ThrottleKeys) -> FailureOutcome:
        """Count one failed attempt on all three keys (each atomically)."""
        now = self.clock()
        locked = False
        for key, policy in ((keys.pair, self.pair), (keys.source, self.source)):
            before, after = await self._fail(key, policy, now)
            locked = locked or (
                after.locked_until > now and after.locked_until != before.locked_until
            )
        before, after = await self._fail(keys.account, self.account, now, alert=True)
        return FailureOutcome(
            locked=locked,
            account_alert=after.alerted_at == now != before.alerted_at,
            account_failures=round(after.failures, 2),
        )

    async def record_success(self, keys: ThrottleKeys) -> None:
        """The pair is forgiven; the address and account ceilings keep decaying."""
        await self.store.clear_lockout(keys.pair)

    async def unlock(self, account: str) -> bool:
        """An admin lifts every pair lock and the ceiling of ``account``."""
        cleared = await self.store.clear_lockouts(self.account_prefix(account))
        key = f"a:{self._digest('acct', account)}"
        had_ceiling = await self.store.get_lockout(key) is not None
        await self.store.clear_lockout(key)
        return bool(cleared) or had_ceiling
