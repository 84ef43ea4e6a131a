"""``cipherdesk operator token …``: installation-scope API tokens from the command line.

Shell access to the server is the installation operator's strongest credential already, so
these commands need no login or step-up; they are audited with actor ``cli`` context
(``api_token.created`` / ``api_token.revoked`` name the operator account that owns the
token). The token is printed once, on standard output, and never again.

    cipherdesk operator token create ops@example.com --name backup-bot --permission settings
    cipherdesk operator token list
    cipherdesk operator token revoke tok_0123456789abcdef
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from auth.api_tokens import DEFAULT_LIFETIME_DAYS, ScopeError
from auth.emails import InvalidEmail, normalize_email
from auth.roles import OPERATOR_SCOPE, InstallationPermission, Principal, Role
from gateway.api_tokens import api_tokens
from gateway.cli.common import CliError, config_from, offline_services
from gateway.store.base import ApiToken


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def cmd_create(args: argparse.Namespace) -> None:
    config = config_from(args)
    try:
        email = normalize_email(args.email)
    except InvalidEmail:
        raise CliError(f"not an e-mail address: {args.email!r}"[:200]) from None

    async def run() -> tuple[str, ApiToken]:
        async with offline_services(config) as svc:
            owner = await svc.store.get_agent_by_email(email)
            if owner is None or owner.role != Role.OPERATOR.value or owner.disabled:
                raise CliError(f"no enabled installation operator {email}")
            principal = Principal(owner.id, OPERATOR_SCOPE, Role.OPERATOR)
            try:
                issued = await api_tokens(svc).create(
                    owner, principal, args.name, args.permission or [], args.days, ip="cli"
                )
            except ScopeError as exc:
                raise CliError(str(exc)) from None
            return issued.secret, issued.token

    secret, token = _run(run())
    print(f"API token {token.id} ({', '.join(token.permissions)}) created; it is shown once:")
    print(secret)


def cmd_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[ApiToken]:
        async with offline_services(config) as svc:
            return await api_tokens(svc).list_tokens(OPERATOR_SCOPE)

    for t in _run(run()):
        state = "revoked" if t.revoked_at is not None else "live"
        print(f"{t.id}\t{t.name}\t{' '.join(t.permissions)}\t{state}")


def cmd_revoke(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> bool:
        async with offline_services(config) as svc:
            return await api_tokens(svc).revoke(
                OPERATOR_SCOPE, args.token_id, actor="cli", ip="cli"
            )

    if not _run(run()):
        raise CliError(f"no live installation token {args.token_id!r}"[:200])
    print(f"revoked {args.token_id}")


def register(op_sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``token create|list|revoke`` under ``cipherdesk operator``."""
    token = op_sub.add_parser("token", help="installation-scope API tokens")
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", parents=[common], help="create a token (shown once)")
    create.add_argument("email", help="the operator account that owns the token")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--permission", action="append", choices=[p.value for p in InstallationPermission]
    )
    create.add_argument("--days", type=int, default=DEFAULT_LIFETIME_DAYS)
    create.set_defaults(func=cmd_create)
    listing = tsub.add_parser("list", parents=[common], help="list installation tokens")
    listing.set_defaults(func=cmd_list)
    revoke = tsub.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_revoke)
