"""LoginService: password + second-factor steps, lockout, replayed and wrong codes,
recovery codes, enrolment expiry, step-up and credential changes — on the service itself
with the test clock (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auth.totp import TotpVerifier
from gateway.bus import MemoryBus
from gateway.bus.base import BusEvent, agent_topic
from gateway.logins import (
    ENROLLMENT_TTL,
    CredentialError,
    LoginFailed,
    LoginService,
    NewCredentials,
)
from gateway.store import Store
from gateway.store.base import Tenant
from tests.gateway.helpers import DEFAULT_PASSWORD, FakeClock
from tests.gateway.unit.conftest import TENANT, AuditLog

IP = "203.0.113.7"
EMAIL = "ana@acme.example"


@dataclass
class Account:
    creds: NewCredentials
    totp: TotpVerifier

    @property
    def agent_id(self) -> str:
        return self.creds.agent.id

    def code(self) -> str:
        return self.totp.current_code(self.creds.totp_secret)


@pytest.fixture
async def account(logins: LoginService, tenant: Tenant, clock: FakeClock) -> Account:
    creds = await logins.create_agent(EMAIL, TENANT, "agent", DEFAULT_PASSWORD)
    return Account(creds, TotpVerifier(clock=clock))


async def test_password_and_totp_log_in_and_confirm_the_secret(
    logins: LoginService, account: Account, store: Store, audit: AuditLog
) -> None:
    assert not account.creds.agent.totp_confirmed
    result = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP, user_agent="ua")
    assert result.agent.id == account.agent_id
    session = await store.get_session(result.session.token_hash)
    assert session is not None and session.agent_id == account.agent_id
    stored = await store.get_agent(account.agent_id)
    assert stored is not None and stored.totp_confirmed
    assert audit.actions()[-2:] == ["totp.confirmed", "login.ok"]
    assert audit.details("login.ok") == [{"factor": "totp"}]


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("nobody@acme.example", DEFAULT_PASSWORD, "unknown_account"),
        (EMAIL, "not the password at all 99", "wrong_password"),
    ],
)
async def test_unknown_account_and_wrong_password_fail_alike(
    logins: LoginService, account: Account, audit: AuditLog, email: str, password: str, reason: str
) -> None:
    with pytest.raises(LoginFailed) as failed:
        await logins.login(email, password, account.code(), ip=IP)
    assert str(failed.value) == str(LoginFailed())
    assert audit.details("login.failed") == [{"reason": reason}]


async def test_wrong_code_fails_and_a_replayed_code_is_refused(
    logins: LoginService, account: Account, audit: AuditLog, clock: FakeClock
) -> None:
    code = account.code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, wrong, ip=IP)
    await logins.login(EMAIL, DEFAULT_PASSWORD, code, ip=IP)
    clock.advance(5)  # same time step: the code was used once already
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, code, ip=IP)
    assert audit.details("login.failed") == [{"reason": "wrong_otp"}, {"reason": "wrong_otp"}]
    clock.advance(30)
    await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)


async def test_recovery_code_works_once(
    logins: LoginService, account: Account, store: Store
) -> None:
    code = account.creds.recovery_codes[0]
    await logins.login(EMAIL, DEFAULT_PASSWORD, code, ip=IP)
    assert await store.count_recovery_codes(account.agent_id) == 9
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, code, ip="198.51.100.9")


async def test_disabled_agent_cannot_log_in(logins: LoginService, account: Account) -> None:
    await logins.set_disabled(account.creds.agent, True, actor="admin")
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)


async def _fail_until_locked(logins: LoginService, clock: FakeClock, audit: AuditLog) -> None:
    """Wrong passwords from ``IP``, each after the wait the previous refusal asked for
    (progressive delay, rate limit), until the (account, address) pair is locked."""
    for _ in range(4 * logins.config.auth.lock_after):
        with pytest.raises(LoginFailed) as failed:
            await logins.login(EMAIL, "wrong password, long enough 1", "000000", ip=IP)
        if "login.locked" in audit.actions():
            return
        clock.advance(max(failed.value.retry_after or 0.0, 12.0))
    pytest.fail("the pair was never locked")


async def test_repeated_failures_lock_the_pair_until_the_lock_ends(
    logins: LoginService, account: Account, audit: AuditLog, clock: FakeClock
) -> None:
    await _fail_until_locked(logins, clock, audit)
    assert audit.details("login.failed").count({"reason": "wrong_password"}) == (
        logins.config.auth.lock_after
    )
    # Locked: even the right credentials are refused, with a retry_after.
    with pytest.raises(LoginFailed) as locked:
        await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    assert locked.value.retry_after is not None and locked.value.retry_after >= 1
    assert audit.details("login.failed")[-1] == {"reason": "locked"}
    # Another address is not locked out by this one's failures.
    await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip="198.51.100.9")
    clock.advance(logins.config.auth.lock_duration + 31)
    await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)


async def test_unlock_lifts_a_lock_and_is_audited(
    logins: LoginService, account: Account, audit: AuditLog, clock: FakeClock
) -> None:
    await _fail_until_locked(logins, clock, audit)
    assert await logins.unlock(account.creds.agent, actor="admin") is True
    assert audit.details("login.unlocked") == [{"had_lock": True}]
    await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)


async def test_enrolment_confirms_with_a_code_of_the_new_secret_and_expires(
    logins: LoginService, account: Account, store: Store, clock: FakeClock
) -> None:
    first = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    token_hash = first.session.token_hash
    enrolment = await logins.start_enrollment(first.agent, token_hash)
    totp = TotpVerifier(clock=clock)
    clock.advance(30)
    with pytest.raises(CredentialError) as wrong:
        await logins.confirm_enrollment(first.agent, token_hash, account.code())
    assert wrong.value.code == "invalid_otp"
    # Expired: neither the remembered secret nor the sealed token confirm any more.
    clock.advance(ENROLLMENT_TTL)
    for token in (None, enrolment.token):
        with pytest.raises(CredentialError) as expired:
            await logins.confirm_enrollment(
                first.agent, token_hash, totp.current_code(enrolment.secret), token
            )
        assert expired.value.code == "no_enrollment"
    # A fresh enrolment confirms, and the old secret stops working.
    again = await logins.start_enrollment(first.agent, token_hash)
    await logins.confirm_enrollment(
        first.agent, token_hash, totp.current_code(again.secret), again.token
    )
    agent = await store.get_agent(account.agent_id)
    assert agent is not None and logins.open_totp_secret(agent) == again.secret
    clock.advance(30)
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)


async def test_enrolment_token_is_bound_to_its_session(
    logins: LoginService, account: Account, clock: FakeClock
) -> None:
    first = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    enrolment = await logins.start_enrollment(first.agent, first.session.token_hash)
    code = TotpVerifier(clock=clock).current_code(enrolment.secret)
    with pytest.raises(CredentialError) as refused:
        await logins.confirm_enrollment(first.agent, "another-session", code, enrolment.token)
    assert refused.value.code == "no_enrollment"


async def test_step_up_needs_both_factors_and_expires_with_the_window(
    logins: LoginService, account: Account, clock: FakeClock, audit: AuditLog
) -> None:
    result = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    session = result.session
    logins.require_reauth(session)  # a login counts as a fresh step-up
    clock.advance(logins.config.auth.reauth_window)
    with pytest.raises(CredentialError) as stale:
        logins.require_reauth(session)
    assert stale.value.code == "reauth_required"
    with pytest.raises(CredentialError) as failed:
        await logins.reauthenticate(result.agent, session, DEFAULT_PASSWORD, "000000", ip=IP)
    assert failed.value.code == "reauth_failed"
    assert audit.details("reauth.failed") == [{"reason": "wrong_otp"}]
    clock.advance(30)
    await logins.reauthenticate(result.agent, session, DEFAULT_PASSWORD, account.code(), ip=IP)
    logins.require_reauth(session)


async def test_password_change_revokes_other_sessions_and_refuses_weak_ones(
    logins: LoginService, account: Account, store: Store, bus: MemoryBus, clock: FakeClock
) -> None:
    kept = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    clock.advance(30)
    other = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    events: list[BusEvent] = []
    await bus.subscribe(agent_topic(account.agent_id), events.append)  # type: ignore[arg-type]
    with pytest.raises(CredentialError) as wrong:
        await logins.change_password(
            kept.agent, "not my password 1234", "a much better passphrase 77", keep_session=None
        )
    assert wrong.value.code == "wrong_password"
    with pytest.raises(CredentialError) as weak:
        await logins.change_password(kept.agent, DEFAULT_PASSWORD, "password", keep_session=None)
    assert weak.value.code == "weak_password"
    revoked = await logins.change_password(
        kept.agent,
        DEFAULT_PASSWORD,
        "a much better passphrase 77",
        keep_session=kept.session.token_hash,
    )
    assert revoked == 1
    gone = await store.get_session(other.session.token_hash)
    assert gone is not None and gone.revoked_at is not None
    still = await store.get_session(kept.session.token_hash)
    assert still is not None and still.revoked_at is None
    assert [e.sessions for e in events if e.kind == "revoke"] == [[other.session.token_hash]]


@pytest.mark.parametrize(
    ("email", "tenant_id", "role", "code"),
    [
        ("not-an-email", TENANT, "agent", "invalid_email"),
        ("b@acme.example", TENANT, "operator", "invalid_role"),
        ("b@acme.example", "nope", "agent", "not_found"),
        (EMAIL, TENANT, "agent", "email_taken"),
    ],
)
async def test_create_agent_refusals(
    logins: LoginService, account: Account, email: str, tenant_id: str, role: str, code: str
) -> None:
    with pytest.raises(CredentialError) as refused:
        await logins.create_agent(email, tenant_id, role, DEFAULT_PASSWORD)
    assert refused.value.code == code


async def test_mfa_reset_revokes_sessions_and_the_old_secret(
    logins: LoginService, account: Account, store: Store, clock: FakeClock
) -> None:
    first = await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    fresh = await store.get_agent(account.agent_id)
    assert fresh is not None
    new = await logins.reset_mfa(fresh, actor="admin")
    assert new.totp_secret != account.creds.totp_secret
    session = await store.get_session(first.session.token_hash)
    assert session is not None and session.revoked_at is not None
    clock.advance(30)
    with pytest.raises(LoginFailed):
        await logins.login(EMAIL, DEFAULT_PASSWORD, account.code(), ip=IP)
    code = TotpVerifier(clock=clock).current_code(new.totp_secret)
    await logins.login(EMAIL, DEFAULT_PASSWORD, code, ip=IP)
