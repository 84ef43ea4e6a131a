"""``cipherdesk agent …``, ``cipherdesk tenant …``, ``cipherdesk operator …`` and
``cipherdesk audit``.

Every command runs against the same services as the gateway (``offline_services``) and
goes through :class:`gateway.logins.LoginService`, so the CLI enforces exactly the rules
of the HTTP API (e-mail normalisation, password strength, sealed TOTP secrets). Every
change is audited with actor ``"cli"``. Secrets are read from a prompt or stdin, never
from the command line (it would land in shell history and ``ps``).

The first admin of a fresh install::

    cipherdesk agent add admin@example.com --tenant demo --role admin

prints the ``otpauth://`` URI, a QR code to scan and ten recovery codes, once.

Installation operators (master-key rotation, tenants of the whole installation; no tenant
of their own) exist only through this CLI — there is no API that creates one::

    cipherdesk operator add ops@example.com
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import Any

from auth.emails import InvalidEmail, normalize_email
from auth.roles import OPERATOR_SCOPE
from gateway.cli.audit import register_audit_actions
from gateway.cli.common import CliError, config_from, offline_services, table
from gateway.cli.tokens import register as register_token_commands
from gateway.invites import CLI_ACTOR, InviteError, InviteService, IssuedInvite
from gateway.logins import CredentialError, NewCredentials
from gateway.qr import qr_terminal
from gateway.store.base import Agent, Tenant
from gateway.tenant_admin import NewTenant, TenantRefused, create_tenant, is_real_tenant
from gateway.tenants import DEMO_TENANT


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _read_secret_stdin(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError(f"no {what} on standard input")
    return value


def _prompt_password() -> str:
    try:
        first = getpass.getpass("Password for the new agent: ")
        second = getpass.getpass("Repeat the password: ")
    except EOFError:
        print(file=sys.stderr)  # end the prompt's line
        raise CliError(
            "no password given: standard input is closed (pipe one with --password-stdin)"
        ) from None
    if first != second:
        raise CliError("the two passwords differ")
    return first


def _print_credentials(creds: NewCredentials, heading: str) -> None:
    out = sys.stdout
    print(heading, file=out)
    print("", file=out)
    print("Scan this QR code with an authenticator app (or import the URI below):", file=out)
    print(qr_terminal(creds.otpauth_uri), file=out)
    print(f"otpauth URI: {creds.otpauth_uri}", file=out)
    print("", file=out)
    print("Recovery codes (each works once; store them offline — shown only now):", file=out)
    for code in creds.recovery_codes:
        print(f"  {code}", file=out)
    print("", file=out)
    print("The agent's first login with a code from the app confirms the enrolment.", file=out)


async def _agent_by_email(svc: Any, email: str) -> Agent:
    try:
        canonical = normalize_email(email)
    except InvalidEmail as exc:
        raise CliError(str(exc)) from None
    agent = await svc.store.get_agent_by_email(canonical)
    if agent is None:
        raise CliError(f"no agent {canonical}")
    return agent


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


# ---------------------------------------------------------------------- agent


def cmd_agent_add(args: argparse.Namespace) -> None:
    config = config_from(args)
    password = _read_secret_stdin("password") if args.password_stdin else _prompt_password()

    async def run() -> NewCredentials:
        async with offline_services(config) as svc:
            if args.tenant != DEMO_TENANT and await svc.store.get_tenant(args.tenant) is None:
                raise CliError(f"no tenant {args.tenant!r}; create it with 'cipherdesk tenant add'")
            try:
                return await svc.logins.create_agent(
                    args.email, args.tenant, args.role, password, args.name, actor="cli"
                )
            except CredentialError as exc:
                raise CliError(exc.message) from None

    creds = _run(run())
    agent = creds.agent
    _print_credentials(
        creds,
        f"Agent {agent.email} ({agent.role}, tenant {agent.tenant_id}) created with id {agent.id}.",
    )


def cmd_agent_invite(args: argparse.Namespace) -> None:
    """A one-time invitation link: the invitee chooses their own password and enrols their
    own authenticator, so nobody else ever knows either (the operator passes the link on)."""
    config = config_from(args)

    async def run() -> IssuedInvite:
        async with offline_services(config) as svc:
            if args.tenant != DEMO_TENANT and await svc.store.get_tenant(args.tenant) is None:
                raise CliError(f"no tenant {args.tenant!r}; create it with 'cipherdesk tenant add'")
            service = InviteService(
                store=svc.store,
                auditor=svc.auditor,
                logins=svc.logins,
                keyring=svc.keyring,
                clock=svc.clock,
            )
            try:
                return await service.create(
                    args.tenant, args.email, args.role, args.name, actor=CLI_ACTOR, ip="cli"
                )
            except (CredentialError, InviteError) as exc:
                raise CliError(exc.message) from None

    issued = _run(run())
    invite = issued.invite
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(invite.expires_at))
    print(f"Invitation for {invite.email} ({invite.role}, tenant {invite.tenant_id}).")
    print("Send this link to the invitee over a channel you trust; it is shown only now,")
    print(f"works once and expires {expires}:")
    print(f"  {config.base_url}/invite#{issued.token}")


def cmd_agent_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[Agent]:
        async with offline_services(config) as svc:
            return await svc.store.list_agents(args.tenant)

    agents = _run(run())
    rows = [
        (
            a.email,
            a.tenant_id,
            a.role,
            a.display_name,
            "disabled" if a.disabled else "active",
            "yes" if a.totp_confirmed else "pending",
            a.id,
        )
        for a in agents
    ]
    print(table(("EMAIL", "TENANT", "ROLE", "NAME", "STATE", "TOTP", "ID"), rows))


def cmd_agent_disable(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> Agent:
        async with offline_services(config) as svc:
            agent = await _agent_by_email(svc, args.email)
            await svc.logins.set_disabled(agent, not args.enable, actor="cli")
            return agent

    agent = _run(run())
    state = "enabled" if args.enable else "disabled; all of its sessions are revoked"
    print(f"agent {agent.email} {state}")


def cmd_agent_unlock(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> tuple[Agent, bool]:
        async with offline_services(config) as svc:
            agent = await _agent_by_email(svc, args.email)
            return agent, await svc.logins.unlock(agent, actor="cli")

    agent, had = _run(run())
    print(f"agent {agent.email} unlocked" if had else f"agent {agent.email} was not locked")


def cmd_agent_reset_mfa(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> NewCredentials:
        async with offline_services(config) as svc:
            agent = await _agent_by_email(svc, args.email)
            return await svc.logins.reset_mfa(agent, actor="cli")

    creds = _run(run())
    _print_credentials(creds, f"MFA of {creds.agent.email} reset; its sessions are revoked.")


# ---------------------------------------------------------------------- tenant


def cmd_tenant_add(args: argparse.Namespace) -> None:
    config = config_from(args)
    secret = _read_secret_stdin("identity secret") if args.identity_secret_stdin else None
    request = NewTenant(
        args.tenant_id, args.name, tuple(args.origin or ()), args.identity_mode, secret
    )

    async def run() -> Tenant:
        async with offline_services(config) as svc:
            try:
                return await create_tenant(svc, request, actor="cli")
            except TenantRefused as exc:
                raise CliError(exc.message) from None

    tenant = _run(run())
    print(f"tenant {tenant.id} created (origins: {', '.join(tenant.allowed_origins) or 'none'})")


def cmd_tenant_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[Tenant]:
        async with offline_services(config) as svc:
            return [t for t in await svc.store.list_tenants() if is_real_tenant(t)]

    rows = [
        (t.id, t.name, t.identity_mode, "yes" if t.frozen else "no", " ".join(t.allowed_origins))
        for t in _run(run())
    ]
    print(table(("ID", "NAME", "IDENTITY", "FROZEN", "ORIGINS"), rows))


# ---------------------------------------------------------------------- operator


def cmd_operator_add(args: argparse.Namespace) -> None:
    config = config_from(args)
    password = _read_secret_stdin("password") if args.password_stdin else _prompt_password()

    async def run() -> NewCredentials:
        async with offline_services(config) as svc:
            try:
                return await svc.logins.create_operator(args.email, password, args.name)
            except CredentialError as exc:
                raise CliError(exc.message) from None

    creds = _run(run())
    _print_credentials(
        creds,
        f"Installation operator {creds.agent.email} created with id "
        f"{creds.agent.id} (no tenant; logs in at /api/login).",
    )


def cmd_operator_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[Agent]:
        async with offline_services(config) as svc:
            return await svc.store.list_agents(OPERATOR_SCOPE)

    rows = [
        (
            a.email,
            a.display_name,
            "disabled" if a.disabled else "active",
            "yes" if a.totp_confirmed else "pending",
            a.id,
        )
        for a in _run(run())
    ]
    print(table(("EMAIL", "NAME", "STATE", "TOTP", "ID"), rows))


# ---------------------------------------------------------------------- audit


def cmd_audit(args: argparse.Namespace) -> None:
    config = config_from(args)
    if not 1 <= args.limit <= 10_000:
        raise CliError("--limit must be between 1 and 10000")

    async def run() -> list[Any]:
        async with offline_services(config) as svc:
            return await svc.store.query_audit(
                tenant_id=args.tenant, action=args.action, actor=args.actor, limit=args.limit
            )

    rows = [
        (
            e.id,
            _when(e.ts),
            e.action,
            e.tenant_id,
            e.actor,
            e.target,
            e.ip,
            " ".join(f"{k}={v}" for k, v in sorted(e.details.items())),
        )
        for e in _run(run())
    ]
    print(table(("ID", "TIME (UTC)", "ACTION", "TENANT", "ACTOR", "TARGET", "IP", "DETAILS"), rows))


# ---------------------------------------------------------------------- parsers


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    agent = sub.add_parser("agent", help="manage agent accounts")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)

    add = agent_sub.add_parser("add", parents=[common], help="create an agent (prints TOTP QR)")
    add.add_argument("email")
    add.add_argument("--tenant", required=True)
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    add.add_argument("--name", help="display name (default: the e-mail's local part)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.set_defaults(func=cmd_agent_add)

    invite = agent_sub.add_parser(
        "invite",
        parents=[common],
        help="a one-time link: the invitee sets their own password and authenticator",
    )
    invite.add_argument("email")
    invite.add_argument("--tenant", required=True)
    invite.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    invite.add_argument("--name", help="display name (default: the e-mail's local part)")
    invite.set_defaults(func=cmd_agent_invite)

    lst = agent_sub.add_parser("list", parents=[common], help="list agents")
    lst.add_argument("--tenant")
    lst.set_defaults(func=cmd_agent_list)

    disable = agent_sub.add_parser(
        "disable", parents=[common], help="disable an agent and revoke its sessions"
    )
    disable.add_argument("email")
    disable.add_argument("--enable", action="store_true", help="re-enable instead")
    disable.set_defaults(func=cmd_agent_disable)

    unlock = agent_sub.add_parser("unlock", parents=[common], help="lift a login lockout")
    unlock.add_argument("email")
    unlock.set_defaults(func=cmd_agent_unlock)

    reset = agent_sub.add_parser(
        "reset-mfa", parents=[common], help="new TOTP secret and recovery codes; revokes sessions"
    )
    reset.add_argument("email")
    reset.set_defaults(func=cmd_agent_reset_mfa)

    tenant = sub.add_parser("tenant", help="manage tenants")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    tadd = tenant_sub.add_parser("add", parents=[common], help="create a tenant")
    tadd.add_argument("tenant_id", metavar="ID")
    tadd.add_argument("--name", required=True)
    tadd.add_argument(
        "--origin",
        action="extend",
        nargs="+",
        metavar="URL",
        help="allowed widget origin (repeatable)",
    )
    tadd.add_argument("--identity-mode", default="off", choices=["off", "optional", "enforced"])
    tadd.add_argument(
        "--identity-secret-stdin",
        action="store_true",
        help="read the widget identity HMAC secret from standard input",
    )
    tadd.set_defaults(func=cmd_tenant_add)
    tlist = tenant_sub.add_parser("list", parents=[common], help="list tenants")
    tlist.set_defaults(func=cmd_tenant_list)

    operator = sub.add_parser("operator", help="manage installation operators (no tenant)")
    op_sub = operator.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    opadd = op_sub.add_parser(
        "add", parents=[common], help="create an installation operator (prints TOTP QR)"
    )
    opadd.add_argument("email")
    opadd.add_argument("--name", help="display name (default: the e-mail's local part)")
    opadd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    opadd.set_defaults(func=cmd_operator_add)
    oplist = op_sub.add_parser("list", parents=[common], help="list installation operators")
    oplist.set_defaults(func=cmd_operator_list)

    register_token_commands(op_sub, common)

    aud = sub.add_parser(
        "audit", parents=[common], help="show (newest first), verify or export the audit log"
    )
    aud.add_argument("--tenant")
    aud.add_argument("--action")
    aud.add_argument("--actor")
    aud.add_argument("--limit", type=int, default=50)
    aud.set_defaults(func=cmd_audit)

    register_audit_actions(aud, common)
