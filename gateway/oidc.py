"""OpenID Connect single sign-on (issue 20.2): agents log in through their company's
identity provider (Keycloak, Microsoft Entra ID, Feishu/DingTalk/WeCom where they speak
OIDC, ...).

The flow is the authorization code flow with PKCE (S256), a random ``state`` and
``nonce`` per login kept server-side and taken by the first callback (any node), and a
confidential client (``client_secret_basic``). The ID token is checked with joserfc
against the provider's published keys: signature (asymmetric algorithms only), ``iss``,
``aud`` (and ``azp`` when there are several audiences), ``exp``/``iat`` on the gateway's
clock, ``nonce``; the e-mail must be verified. When the tenant requires it (the default)
the provider must say the person used a second factor (``amr`` holding one of the
tenant's accepted values, such as ``mfa``, ``otp``, ``hwk``); otherwise the login is
refused -- there is no local second factor on top.

The agent is the tenant's agent with that e-mail; an unknown one is refused unless the
tenant turned on just-in-time creation, which gives the role the provider's groups map to
(the SCIM group mapping). Roles of existing agents stay with admins and SCIM.

Disabled at the provider -> sessions end: the login asks for a refresh token
(``offline_access``), kept sealed beside the session; :class:`OidcSessionCheck` uses it
every ``oidc.check_interval`` seconds and ends the session (live sockets close 4401) as
soon as the provider refuses it.

Tenant admins choose the provider but only among the issuers the installation operator
allowed (``oidc.allowed_issuers``): the gateway fetches the provider's metadata and keys,
so a tenant must not be able to point it anywhere else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from auth.emails import InvalidEmail, normalize_email
from auth.roles import Principal, Role
from auth.tokens import hash_token
from crypto.envelope import EnvelopeError, Keyring
from gateway.aad import oidc_refresh_aad, oidc_secret_aad
from gateway.audit import Auditor
from gateway.config import OidcConfig
from gateway.custom_roles import CustomRoleService, RoleRefused
from gateway.logins import CredentialError, LoginResult, LoginService
from gateway.periodic import Periodic
from gateway.scim import ScimSettings, strongest_role
from gateway.staff_screen import StaffTextScreen
from gateway.store.base import OidcSession, Store, Tenant

__all__ = [
    "DEFAULT_MFA_VALUES",
    "OidcError",
    "OidcService",
    "OidcSessionCheck",
    "OidcSettings",
]

log = structlog.get_logger("cipherdesk.oidc")

SETTING = "oidc"
STATE_TTL = 600.0
LEEWAY = 60.0
DEFAULT_MFA_VALUES = ("mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "pin")
"""RFC 8176 authentication method references that mean a second factor was used."""
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
SCOPE = "openid email profile offline_access"


class OidcError(Exception):
    """A refused single sign-on; ``code`` is what the console shows (localised)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """A tenant's single sign-on settings (``settings["oidc"]``); the client secret is
    sealed (AAD: the tenant) and never returned by the API."""

    issuer: str
    client_id: str
    secret_sealed: str
    require_mfa: bool = True
    mfa_values: tuple[str, ...] = DEFAULT_MFA_VALUES
    acr_values: tuple[str, ...] = ()
    """Authentication context classes that mean a second factor too (asked for in the
    request, accepted in the ID token's ``acr``), for providers that state assurance
    levels rather than methods."""
    jit: bool = False

    @classmethod
    def of(cls, tenant: Tenant | None) -> OidcSettings | None:
        raw = (tenant.settings if tenant else {}).get(SETTING)
        if not isinstance(raw, dict) or not raw.get("issuer") or not raw.get("client_id"):
            return None
        values = raw.get("mfa_values")
        acr = raw.get("acr_values")
        return cls(
            issuer=str(raw["issuer"]),
            client_id=str(raw["client_id"]),
            secret_sealed=str(raw.get("secret_sealed", "")),
            require_mfa=bool(raw.get("require_mfa", True)),
            mfa_values=tuple(str(v) for v in values)
            if isinstance(values, list)
            else DEFAULT_MFA_VALUES,
            acr_values=tuple(str(v) for v in acr) if isinstance(acr, list) else (),
            jit=bool(raw.get("jit", False)),
        )

    def as_json(self) -> dict[str, Any]:
        """What is stored in the tenant settings (the sealed secret included)."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "secret_sealed": self.secret_sealed,
            "require_mfa": self.require_mfa,
            "mfa_values": list(self.mfa_values),
            "acr_values": list(self.acr_values),
            "jit": self.jit,
        }

    def public_json(self) -> dict[str, Any]:
        """What the admin API shows: everything but the secret."""
        out = self.as_json()
        out.pop("secret_sealed")
        out["has_secret"] = bool(self.secret_sealed)
        return out


@dataclass(frozen=True, slots=True)
class _Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks: KeySet


class OidcService:
    """Starts and finishes single sign-on logins and keeps their sessions honest."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        logins: LoginService,
        roles: CustomRoleService,
        auditor: Auditor,
        names: StaffTextScreen,
        config: OidcConfig,
        base_url: Callable[[], str],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._logins = logins
        self._roles = roles
        self._auditor = auditor
        self._names = names
        self._config = config
        self._base_url = base_url
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._providers: dict[str, tuple[float, _Provider]] = {}

    @property
    def redirect_uri(self) -> str:
        """The one callback address to register at the identity provider (from
        ``server.public_url``)."""
        return self._base_url().rstrip("/") + "/oidc/callback"

    def allowed(self, issuer: str) -> bool:
        """Is ``issuer`` one the installation operator allowed?"""
        return issuer.rstrip("/") in {i.rstrip("/") for i in self._config.allowed_issuers}

    # -- settings -------------------------------------------------------------------
    async def configure(
        self,
        tenant: Tenant,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        require_mfa: bool,
        jit: bool,
        mfa_values: tuple[str, ...] | None = None,
        acr_values: tuple[str, ...] = (),
    ) -> OidcSettings:
        """Validate and seal a tenant's settings; the provider is contacted once, so a
        wrong issuer is said now, not at the first login. :class:`OidcError`
        ``issuer_not_allowed`` / ``provider_unreachable`` / ``no_secret``."""
        issuer = issuer.rstrip("/")
        if not self.allowed(issuer):
            raise OidcError("issuer_not_allowed", "the installation operator did not allow it")
        await self._provider(issuer, fresh=True)
        current = OidcSettings.of(tenant)
        sealed = current.secret_sealed if current and current.issuer == issuer else ""
        if client_secret:
            token = self._keyring.seal(client_secret.encode(), oidc_secret_aad(tenant.id))
            sealed = base64.b64encode(token).decode()
        if not sealed:
            raise OidcError("no_secret", "the client secret is missing")
        return OidcSettings(
            issuer=issuer,
            client_id=client_id,
            secret_sealed=sealed,
            require_mfa=require_mfa,
            mfa_values=mfa_values or DEFAULT_MFA_VALUES,
            acr_values=acr_values,
            jit=jit,
        )

    # -- login ----------------------------------------------------------------------
    async def start(self, tenant: Tenant) -> str:
        """The provider's authorization URL for a new login of ``tenant``'s agent."""
        settings = self._settings(tenant)
        provider = await self._provider(settings.issuer)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        await self._store.add_oidc_state(
            hash_token(state), tenant.id, nonce, verifier, self._clock() + STATE_TTL
        )
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
            "prompt": "login consent",  # a fresh login; consent lets offline_access through
        }
        if settings.acr_values:
            query["acr_values"] = " ".join(settings.acr_values)
        return f"{provider.authorization_endpoint}?{urlencode(query)}"

    async def finish(
        self, tenants: Callable[[str], Any], code: str, state: str, *, ip: str, user_agent: str
    ) -> LoginResult:
        """The callback: take the state, exchange the code, check the ID token, find (or
        create) the agent and open a session. :class:`OidcError` names what failed."""
        taken = await self._store.take_oidc_state(hash_token(state), self._clock())
        if taken is None:
            raise OidcError("invalid_state", "unknown, used or expired login")
        tenant_id, nonce, verifier = taken
        tenant = await tenants(tenant_id)
        if tenant is not None and tenant.frozen:
            raise OidcError("sso_off", "the company's chat is paused")
        settings = self._settings(tenant)
        provider = await self._provider(settings.issuer)
        tokens = await self._token(
            provider,
            settings,
            tenant.id,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            },
        )
        claims = self._id_claims(provider, settings, str(tokens.get("id_token", "")), nonce)
        if settings.require_mfa and not second_factor(claims, settings):
            await self._refused(tenant.id, "mfa_required", ip)
            raise OidcError("mfa_required", "the identity provider did not report a second factor")
        if claims.get("email_verified") is not True or not isinstance(claims.get("email"), str):
            await self._refused(tenant.id, "email_unverified", ip)
            raise OidcError("email_unverified", "no verified e-mail address in the ID token")
        agent = await self._agent(tenant, settings, claims, ip)
        result = await self._logins.open_session(agent, ip=ip, user_agent=user_agent, factor="oidc")
        refresh = tokens.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            token_hash = result.session.token_hash
            sealed = self._keyring.seal(refresh.encode(), oidc_refresh_aad(token_hash))
            await self._store.save_oidc_session(
                OidcSession(token_hash, agent.id, tenant.id, sealed, self._clock())
            )
        return result

    # -- sessions -------------------------------------------------------------------
    async def check_sessions(self, limit: int = 200) -> int:
        """Refresh every session not checked for ``oidc.check_interval``; end those the
        provider refuses. Returns how many ended."""
        now = self._clock()
        ended = 0
        for session in await self._store.oidc_sessions_due(
            now - self._config.check_interval, limit
        ):
            live = await self._store.get_session(session.token_hash)
            if live is None or live.revoked_at is not None:
                await self._store.delete_oidc_session(session.token_hash)  # logged out
                continue
            tenant = await self._store.get_tenant(session.tenant_id)
            settings = OidcSettings.of(tenant)
            try:
                refresh = self._keyring.open(
                    session.refresh_sealed, oidc_refresh_aad(session.token_hash)
                ).decode()
                if settings is None or tenant is None:
                    raise OidcError("sso_off")
                provider = await self._provider(settings.issuer)
                tokens = await self._token(
                    provider,
                    settings,
                    tenant.id,
                    {"grant_type": "refresh_token", "refresh_token": refresh},
                )
            except (OidcError, EnvelopeError) as exc:
                code = exc.code if isinstance(exc, OidcError) else "unreadable"
                if code == "provider_unreachable":
                    continue  # try again next round; the session keeps its lifetime limits
                await self._logins.end_session(
                    session.agent_id, session.tenant_id, session.token_hash, reason="sso_" + code
                )
                await self._store.delete_oidc_session(session.token_hash)
                ended += 1
                continue
            new = tokens.get("refresh_token")
            if isinstance(new, str) and new:
                session.refresh_sealed = self._keyring.seal(
                    new.encode(), oidc_refresh_aad(session.token_hash)
                )
            session.checked_at = now
            await self._store.save_oidc_session(session)
        return ended

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    # -- helpers --------------------------------------------------------------------
    def _settings(self, tenant: Tenant | None) -> OidcSettings:
        settings = OidcSettings.of(tenant)
        if tenant is None or settings is None or not self.allowed(settings.issuer):
            raise OidcError("sso_off", "single sign-on is not set up for this company")
        return settings

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self._config.timeout)
            self._http = aiohttp.ClientSession(timeout=timeout)
        return self._http

    async def _provider(self, issuer: str, fresh: bool = False) -> _Provider:
        """The provider's metadata and keys (kept 10 minutes; the issuer must match)."""
        cached = self._providers.get(issuer)
        if cached is not None and not fresh and self._clock() - cached[0] < 600:
            return cached[1]
        try:
            http = self._session()
            async with http.get(f"{issuer}/.well-known/openid-configuration") as r:
                r.raise_for_status()
                meta = await r.json(content_type=None)
            if meta.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
                raise OidcError("provider_mismatch", "the metadata names another issuer")
            async with http.get(str(meta["jwks_uri"])) as r:
                r.raise_for_status()
                jwks = KeySet.import_key_set(await r.json(content_type=None))
            provider = _Provider(
                issuer=issuer,
                authorization_endpoint=str(meta["authorization_endpoint"]),
                token_endpoint=str(meta["token_endpoint"]),
                jwks=jwks,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError, JoseError):
            raise OidcError(
                "provider_unreachable", "the identity provider did not answer"
            ) from None
        self._providers[issuer] = (self._clock(), provider)
        return provider

    async def _token(
        self, provider: _Provider, settings: OidcSettings, tenant_id: str, form: dict[str, str]
    ) -> dict[str, Any]:
        secret = self._keyring.open(
            base64.b64decode(settings.secret_sealed), oidc_secret_aad(tenant_id)
        ).decode()
        # client_secret_basic: each part form-urlencoded before base64 (RFC 6749 §2.3.1)
        pair = f"{quote(settings.client_id, safe='')}:{quote(secret, safe='')}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        try:
            async with self._session().post(
                provider.token_endpoint, data=form, headers=headers
            ) as r:
                body = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OidcError("provider_unreachable", "the token endpoint did not answer") from None
        if status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            # invalid_grant: the code or refresh token is no good (the account may be gone)
            raise OidcError("invalid_grant" if error == "invalid_grant" else "token_refused")
        return body

    def _id_claims(
        self, provider: _Provider, settings: OidcSettings, id_token: str, nonce: str
    ) -> dict[str, Any]:
        try:
            token = jwt.decode(id_token, provider.jwks, algorithms=ALGORITHMS)
        except (JoseError, ValueError):
            raise OidcError("invalid_id_token", "the ID token signature does not verify") from None
        claims = dict(token.claims)
        now = self._clock()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        checks = (
            (claims.get("iss") == provider.issuer, "issuer"),
            (settings.client_id in audiences, "audience"),
            (len(audiences) == 1 or claims.get("azp") == settings.client_id, "azp"),
            (isinstance(claims.get("exp"), int) and claims["exp"] > now - LEEWAY, "expired"),
            (isinstance(claims.get("iat"), int) and claims["iat"] < now + LEEWAY, "iat"),
            (claims.get("nonce") == nonce, "nonce"),
            (isinstance(claims.get("sub"), str) and claims["sub"], "sub"),
        )
        for passed, what in checks:
            if not passed:
                raise OidcError("invalid_id_token", f"ID token {what} check failed")
        return claims

    async def _agent(
        self, tenant: Tenant, settings: OidcSettings, claims: dict[str, Any], ip: str
    ) -> Any:
        """The tenant's enabled agent with the token's e-mail -- created when ``jit`` is on
        -- with the role its mapped groups give (see :meth:`_follow_groups`)."""
        try:
            email = normalize_email(str(claims["email"]))  # as login e-mails are stored
        except InvalidEmail:
            raise OidcError("email_unverified", "not an e-mail address") from None
        agent = await self._store.get_agent_by_email(email)
        if agent is not None and agent.tenant_id != tenant.id:
            agent = None  # another tenant's address: looks unknown, like a missing one
        if agent is None and settings.jit:
            # The provider's name claim through the tenant's policy; a name it would block
            # is not used (the account takes the e-mail's local part, as without a claim).
            claimed = str(claims.get("name") or "").strip()[:120]
            name = await self._names.display_name(tenant.id, claimed) if claimed else None
            try:
                created = await self._logins.create_agent(
                    email,
                    tenant.id,
                    Role.AGENT.value,
                    secrets.token_urlsafe(32),  # never used: this agent signs in by SSO
                    name or None,
                    actor="oidc",
                    ip=ip,
                )
            except CredentialError:
                raise OidcError("unknown_agent") from None
            agent = created.agent
            if claimed and name is None:
                # Left silent, a security officer could not tell why an account is named
                # after its e-mail; the refused claim itself is not recorded (the policy
                # refused to store what it holds).
                await self._auditor.record(
                    "agent.name_refused",
                    tenant_id=tenant.id,
                    actor="oidc",
                    target=agent.id,
                    ip=ip,
                    field="name",
                    reason="policy_blocked",
                )
        if agent is None or agent.disabled:
            await self._refused(tenant.id, "unknown_agent", ip)
            raise OidcError("unknown_agent", "no enabled agent with this e-mail")
        return await self._follow_groups(tenant, agent, claims, ip)

    async def _follow_groups(
        self, tenant: Tenant, agent: Any, claims: dict[str, Any], ip: str
    ) -> Any:
        """Roles from the provider's ``groups`` claim, through the tenant's group mapping
        (the one SCIM uses): an agent in at least one mapped group gets the strongest role
        those groups give, at every sign-in; an agent in none keeps the role admins gave.
        The mapping was checked against its admin's permissions when it was set, so the
        change is made in the gateway's name; one that would leave the tenant without an
        admin is skipped (and logged), the sign-in goes on."""
        groups = claims.get("groups")
        names = {str(g) for g in groups} if isinstance(groups, list) else set()
        mapping = ScimSettings.of(tenant)
        if not names & set(mapping.group_roles):
            return agent
        role, custom = strongest_role(mapping, names, await self._roles.roles(tenant.id))
        system = Principal(agent_id="oidc", tenant_id=tenant.id, role=Role.ADMIN)
        try:
            await self._roles.assign(
                system, agent, role=None if custom else role.value, custom_role=custom, ip=ip
            )
        except RoleRefused as exc:
            log.warning("sso_role_not_changed", agent=agent.id, reason=exc.code)
        return await self._store.get_agent(agent.id) or agent

    async def _refused(self, tenant_id: str, reason: str, ip: str) -> None:
        await self._auditor.record(
            "login.failed", tenant_id=tenant_id, ip=ip, reason=f"sso_{reason}"
        )


def second_factor(claims: dict[str, Any], settings: OidcSettings) -> bool:
    """Did the provider say a second factor was used: an ``amr`` method the tenant
    accepts, or an ``acr`` class it listed? (An ``amr`` that is not a list counts as
    none.)"""
    amr = claims.get("amr")
    methods = {str(m) for m in amr} if isinstance(amr, list) else set()
    acr = claims.get("acr")
    return bool(methods & set(settings.mfa_values)) or (
        isinstance(acr, str) and acr in settings.acr_values
    )


class OidcSessionCheck:
    """The periodic worker of :meth:`OidcService.check_sessions`."""

    def __init__(self, service: OidcService, interval: float) -> None:
        self._service = service
        self._periodic = Periodic(
            "oidc-session-check",
            max(interval, 5.0),  # a round at most every 5 s, whatever "due" means
            service.check_sessions,
            failure_event="oidc_check_failed",
            delay_first=True,
        )

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
