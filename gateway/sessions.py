"""Agent sessions: turning a bearer token or cookie into a live principal.

The token is 256 random bits; only its SHA-256 is stored, so a database dump yields no
usable session. Each check enforces revocation, idle timeout and absolute lifetime
(auth/tokens.py), and refreshes ``last_seen`` at most every few seconds to keep the
database quiet under chat traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from auth.roles import Principal, Role, parse_permissions
from auth.tokens import SessionLifetime, SessionStatus, hash_token
from gateway.store.base import Agent, AgentSession, ApiToken, Store

COOKIE = "cd_session"
TOUCH_EVERY = 15.0


@dataclass(slots=True, frozen=True)
class AgentContext:
    """Who is calling: the live agent row, its session and the derived principal."""

    agent: Agent
    session: AgentSession
    principal: Principal
    token: str
    api_token: ApiToken | None = None
    """Set when the caller is a scoped API token (gateway/api_tokens.py), not a login."""


def agent_principal(agent: Agent, scope: frozenset[str] | None = None) -> Principal:
    """The principal of ``agent`` as stored now: its built-in role, narrowed by its custom
    role (if any) and by ``scope`` (an API token's), and its queues when scoped."""
    return Principal(
        agent_id=agent.id,
        tenant_id=agent.tenant_id,
        role=Role(agent.role),
        scope=scope,
        queues=frozenset(agent.queues) if agent.queues else None,
        granted=None if agent.custom_role is None else parse_permissions(agent.custom_permissions),
    )


def token_from_request(request: web.Request) -> str | None:
    """Bearer header first (SDKs, bots), then the HttpOnly cookie (browsers)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or None


class SessionAuthenticator:
    def __init__(self, store: Store, lifetime: SessionLifetime, clock: Callable[[], float]) -> None:
        self._store = store
        self._lifetime = lifetime
        self._clock = clock

    async def authenticate(self, token: str | None) -> AgentContext | None:
        """The caller's context, or None for a missing/unknown/expired/revoked session or
        a disabled agent (all look the same to the caller: 4401 / HTTP 401)."""
        if not token or len(token) > 256:
            return None
        token_hash = hash_token(token)
        session = await self._store.get_session(token_hash)
        if session is None:
            return None
        now = self._clock()
        status = self._lifetime.check(
            session.created_at, session.last_seen_at, session.revoked_at, now
        )
        if status is not SessionStatus.VALID:
            return None
        agent = await self._store.get_agent(session.agent_id)
        if agent is None or agent.disabled or agent.tenant_id != session.tenant_id:
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await self._store.touch_session(token_hash, now)
            session.last_seen_at = now
        principal = agent_principal(agent)
        return AgentContext(agent=agent, session=session, principal=principal, token=token)

    async def recheck(self, token_hash: str) -> AgentSession | None:
        """The session if it is still valid *now*, re-read from the store, without
        touching it: a socket watchdog must never keep a session alive by itself.
        None for a revoked, expired or unknown session or a disabled/moved agent."""
        session = await self._store.get_session(token_hash)
        if session is None or not self.still_valid(session, self._clock()):
            return None
        agent = await self._store.get_agent(session.agent_id)
        if agent is None or agent.disabled or agent.tenant_id != session.tenant_id:
            return None
        return session

    def expires_at(self, session: AgentSession) -> float:
        """When ``session`` ends unless it is used (or revoked) before."""
        return self._lifetime.expires_at(session.created_at, session.last_seen_at)

    def still_valid(self, session: AgentSession, now: float) -> bool:
        return (
            self._lifetime.check(session.created_at, session.last_seen_at, session.revoked_at, now)
            is SessionStatus.VALID
        )
