"""Scoped API tokens for automation (issue 20.4): create, list, revoke, authenticate.

Tokens are created by a tenant admin (tenant permissions) or the installation operator
(installation permissions), always from an interactive session that re-authenticated
recently: a token is a credential, and a token can never mint another one. Each token is
named, carries a subset of its creator's permissions, expires (at most a year), is
stored only as a SHA-256, and is shown once.

On every use (``Authorization: Bearer cdt_...`` on the HTTP API) the gateway checks that
it is live and unexpired, that its creator still exists, is enabled and is still in the
same tenant, intersects its scope with the creator's *current* role, rate-limits it under
its own key and writes an ``api_token.used`` audit entry naming the token and the route.
Actions are attributed to the creator (the ``actor`` of their audit entries) and can be
traced to the token through that entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth.api_tokens import (
    MAX_LIFETIME_DAYS,
    ScopeError,
    check_name,
    check_scope,
    is_api_token,
    new_api_token,
    new_token_id,
)
from auth.roles import OPERATOR_SCOPE, Principal, Role
from auth.tokens import hash_token
from gateway.audit import Auditor
from gateway.services import Services
from gateway.sessions import AgentContext, agent_principal
from gateway.store.base import Agent, AgentSession, ApiToken, Store

__all__ = [
    "MAX_LIVE_TOKENS",
    "ApiTokenService",
    "IssuedToken",
    "ScopeError",
    "api_tokens",
    "effective_permissions",
]

MAX_LIVE_TOKENS = 50
"""Per tenant (and for the operator scope): enough for real automation, bounded storage."""
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token: ``secret`` is shown to the creator once, never again."""

    token: ApiToken
    secret: str


class ApiTokenService:
    """The one place API tokens are issued, checked and revoked."""

    def __init__(self, store: Store, auditor: Auditor, clock: Callable[[], float]) -> None:
        self._store = store
        self._auditor = auditor
        self._clock = clock

    @staticmethod
    def grantable(principal: Principal) -> frozenset:
        """What ``principal`` may put into a token: its own permissions, of its kind."""
        if principal.is_operator:
            return principal.installation_permissions
        return principal.permissions

    async def create(
        self,
        creator: Agent,
        principal: Principal,
        name: str,
        permissions: list[str],
        lifetime_days: int,
        *,
        ip: str,
    ) -> IssuedToken:
        """Issue a token; :class:`ScopeError` for a bad name, scope, lifetime or too many."""
        clean_name = check_name(name)
        scope = check_scope(permissions, self.grantable(principal))
        if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
            raise ScopeError(
                "invalid_lifetime", f"tokens expire after 1 to {MAX_LIFETIME_DAYS} days"
            )
        now = self._clock()
        live = [
            t
            for t in await self._store.list_api_tokens(principal.tenant_id)
            if t.revoked_at is None and t.expires_at > now
        ]
        if len(live) >= MAX_LIVE_TOKENS:
            raise ScopeError(
                "too_many_tokens", f"at most {MAX_LIVE_TOKENS} live tokens; revoke unused ones"
            )
        secret = new_api_token()
        token = ApiToken(
            id=new_token_id(),
            tenant_id=principal.tenant_id,
            owner_id=creator.id,
            name=clean_name,
            token_hash=hash_token(secret),
            permissions=sorted(scope),
            created_at=now,
            expires_at=now + lifetime_days * DAY,
        )
        await self._store.create_api_token(token)
        await self._auditor.record(
            "api_token.created",
            tenant_id=token.tenant_id,
            actor=creator.id,
            target=token.id,
            ip=ip,
            name=clean_name,
            permissions=token.permissions,
            expires_at=token.expires_at,
        )
        return IssuedToken(token=token, secret=secret)

    async def list_tokens(self, tenant_id: str) -> list[ApiToken]:
        """Every token of the tenant (or operator scope), revoked/expired ones included."""
        return await self._store.list_api_tokens(tenant_id)

    async def revoke(self, tenant_id: str, token_id: str, *, actor: str, ip: str) -> bool:
        """Revoke a live token; False if unknown, of another tenant or already revoked."""
        if len(token_id) > 64:
            return False
        done = await self._store.revoke_api_token(tenant_id, token_id, self._clock())
        if done:
            await self._auditor.record(
                "api_token.revoked", tenant_id=tenant_id, actor=actor, target=token_id, ip=ip
            )
        return done

    async def authenticate(self, presented: str) -> AgentContext | None:
        """The caller's context for a live token, or None (unknown, revoked, expired, or
        its creator gone, disabled or moved): all answer 401 like a dead session."""
        if not is_api_token(presented):
            return None
        token = await self._store.get_api_token(hash_token(presented))
        now = self._clock()
        if token is None or token.revoked_at is not None or now >= token.expires_at:
            return None
        owner = await self._store.get_agent(token.owner_id)
        if owner is None or owner.disabled or owner.tenant_id != token.tenant_id:
            return None
        role = Role(owner.role)
        if (role is Role.OPERATOR) != (token.tenant_id == OPERATOR_SCOPE):
            return None
        principal = agent_principal(owner, scope=frozenset(token.permissions))
        # A stand-in session: never stored, never re-authenticated (reauth_at 0), so no
        # credential change can be made with a token.
        session = AgentSession(
            token_hash=f"api-token:{token.id}",
            agent_id=owner.id,
            tenant_id=owner.tenant_id,
            created_at=token.created_at,
            last_seen_at=now,
        )
        return AgentContext(
            agent=owner, session=session, principal=principal, token=presented, api_token=token
        )

    async def record_use(self, ctx: AgentContext, method: str, route: str, ip: str) -> None:
        """Audit one use of a token (id and route, never the token) and mark it used."""
        token = ctx.api_token
        if token is None:
            return
        await self._store.touch_api_token(token.id, self._clock())
        await self._auditor.record(
            "api_token.used",
            tenant_id=token.tenant_id,
            actor=ctx.agent.id,
            target=token.id,
            ip=ip,
            method=method,
            route=route[:200],
        )


def effective_permissions(token: ApiToken, owner: Agent) -> list[str]:
    """What a token can do right now: its scope cut down to the creator's current role
    (custom role included)."""
    principal = agent_principal(owner)
    granted = principal.installation_permissions if principal.is_operator else principal.permissions
    return sorted(set(token.permissions) & {p.value for p in granted})


def api_tokens(svc: Services) -> ApiTokenService:
    """The installation's token service (built with the other services)."""
    return svc.api_tokens
