"""What every handler of the agents' and admins' JSON API shares: bodies read under
limits, authentication, CSRF, permission checks and error answers.

The API itself is split by resource: :mod:`gateway.http.account` (login, own account),
:mod:`gateway.http.agents`, :mod:`gateway.http.audit`, :mod:`gateway.http.tenant`,
:mod:`gateway.http.policy`, :mod:`gateway.http.chats` and the other modules of this
package.

Conventions (documented for console and SDK authors):

* Requests with a body must be ``Content-Type: application/json`` (else 415
  ``unsupported_media_type``) and at most 64 KiB (else 413 ``too_large``). Malformed JSON,
  unknown, missing or mistyped fields answer 400 ``bad_request`` with ``field`` naming the
  offending field when known. No response ever carries a traceback.
* Authentication: ``Authorization: Bearer <token>`` (SDKs, bots) or the HttpOnly
  ``cd_session`` cookie set by ``POST /api/login`` (browsers). Missing/expired/revoked
  sessions answer 401 ``unauthenticated``. Scoped API tokens (``Bearer cdt_...``,
  ``gateway/api_tokens.py``) work only on routes declaring a permission, within their scope.
* CSRF: a cookie-authenticated POST/PUT/PATCH/DELETE must carry ``X-CSRF-Token`` equal to
  the ``csrf`` value returned by login and ``GET /api/me``, and its ``Origin`` (when sent)
  must be one of the console's origins; otherwise 403 ``csrf``. Bearer requests are not
  subject to CSRF (a browser never attaches them by itself). The CSRF token is
  HMAC-SHA256 of the session token under a secret *derived from the current master key*
  (HMAC(master key, "cipherdesk/csrf-secret/v1"), recomputed on every use by
  :func:`gateway.derived_keys.derived_secret`, never cached): every node sharing the
  keyring agrees on it without extra files, and rotating the master key rotates it at once
  (the console re-reads ``/api/me``).
* Step-up: credential changes (``/api/me/password``, ``/api/me/totp``,
  ``/api/me/totp/confirm``, ``/api/me/recovery-codes``, an admin's
  ``/api/agents/{id}/reset-mfa``) need password + second factor proven on this session
  within ``auth.reauth_window`` (5 minutes; a login counts): ``POST /api/me/reauth
  {"password","otp"}``. Otherwise 403 ``reauth_required``; a wrong password or code 403
  ``reauth_failed`` (throttled like logins: 429 ``rate_limited``).
* Authorisation: every handler checks the role's permission *and* the tenant of the
  resource with :func:`auth.roles.require`. A resource of another tenant answers exactly
  like a missing one (404 ``not_found``); a permission the role lacks answers 403
  ``forbidden``.
* Rate limits: ``login_per_ip`` / ``login_per_account`` on login, ``api_per_token`` on
  every authenticated call: 429 ``rate_limited`` with ``Retry-After``.

Error codes: ``bad_request``, ``unsupported_media_type``, ``too_large``,
``unauthenticated``, ``login_failed``, ``rate_limited``, ``csrf``, ``forbidden``,
``not_found``, ``weak_password``, ``wrong_password``, ``invalid_otp``, ``no_enrollment``,
``reauth_required``, ``reauth_failed``, ``token_not_allowed`` (a scoped API token on a
route for interactive sessions only, see ``gateway/http/tokens.py``),
``invalid_email``, ``email_taken``, ``invalid_role``, ``last_admin``, ``cannot_grant``,
``invalid_role_name``, ``invalid_base``, ``invalid_permissions``, ``unknown_role``, ``role_in_use``,
``too_many_roles``, ``invalid_policy``,
``invalid_origin``, ``invalid_secret``, ``password_change_required``, ``approval_required``,
``internal``, ``unavailable`` (503 with ``Retry-After``: the database cannot be reached or
written right now; nothing was changed, retry).
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import re
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.api_tokens import is_api_token
from auth.roles import (
    Forbidden,
    InstallationPermission,
    Permission,
    require,
    require_operator,
)
from auth.tokens import SessionLifetime, csrf_token_for
from gateway.api_tokens import api_tokens
from gateway.custom_roles import RoleRefused
from gateway.derived_keys import CSRF_LABEL, derived_secret
from gateway.governance.siem import siem_record
from gateway.http.public import ApiError
from gateway.jsonlimits import MAX_BODY_DEPTH, JsonTooDeep, check_depth
from gateway.logins import CredentialError
from gateway.qr import qr_png
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext, token_from_request
from gateway.store.base import Agent, AuditEvent, Tenant

log = structlog.get_logger("cipherdesk.api")


MAX_BODY = 64 * 1024
CSRF_HEADER = "X-CSRF-Token"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a forced password change still allows: reading the own account, the step-up that
# /api/me/password may need (it only proves password + code), the change, logging out.
_RESET_ALLOWED = frozenset({"/api/me", "/api/me/reauth", "/api/me/password", "/api/logout"})
# The tenant's phishing-resistant MFA rule (gateway/passkeys.py): what a session opened
# without a passkey may still do.
_PASSKEY_GATE_ALLOWED: dict[str, frozenset[str]] = {
    "passkey_enrollment_required": frozenset(
        {
            "/api/me",
            "/api/me/reauth",
            "/api/logout",
            "/api/me/passkeys",
            "/api/me/passkeys/options",
        }
    ),
    "passkey_required": frozenset({"/api/me", "/api/logout"}),
}
_PASSKEY_GATE_TEXT = {
    "passkey_enrollment_required": "your tenant requires a passkey: register one first"
    " (POST /api/me/passkeys/options)",
    "passkey_required": "your tenant requires signing in with your passkey",
}

Email = Annotated[str, Meta(min_length=1, max_length=1024)]
Password = Annotated[str, Meta(max_length=1024)]
Otp = Annotated[str, Meta(max_length=64)]
Name = Annotated[str, Meta(min_length=1, max_length=120)]
RoleName = Literal["agent", "supervisor", "admin"]
CustomRoleName = Annotated[str, Meta(max_length=32, pattern=r"^([a-z][a-z0-9_-]+)?$")]
"""A custom role's name, or "" where the API means "none" (gateway/custom_roles.py)."""
QueueName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]

S = TypeVar("S", bound=Struct)


def services_of(request: web.Request) -> Services:
    """The node's shared services."""
    return request.app[SERVICES]


_FIELD_RE = re.compile(r"`\$\.([A-Za-z_][A-Za-z0-9_]*)")
_MISSING_RE = re.compile(r"missing required field `([A-Za-z_][A-Za-z0-9_]*)`")
_UNKNOWN_RE = re.compile(r"unknown field `([^`]{0,64})`")


def _field_of(message: str) -> str | None:
    for pattern in (_MISSING_RE, _UNKNOWN_RE, _FIELD_RE):
        m = pattern.search(message)
        if m:
            return m.group(1)
    return None


async def _read_body(
    request: web.Request,
    limit: int = MAX_BODY,
    media_types: tuple[str, ...] = ("application/json",),
) -> bytes:
    ctype = request.content_type
    if ctype not in media_types:
        raise ApiError(415, "unsupported_media_type", f"send the body as {media_types[0]}")
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body must be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(16 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: web.Request,
    kind: type[S],
    *,
    max_body: int = MAX_BODY,
    media_types: tuple[str, ...] = ("application/json",),
) -> S:
    """Decode the JSON body as ``kind`` or answer 415/413/400 (``max_body``: a route that
    takes a larger document, like a signed end policy, says so; ``media_types``: the
    content types it takes, such as SCIM's ``application/scim+json``)."""
    body = await _read_body(request, max_body, media_types)
    try:
        check_depth(body, MAX_BODY_DEPTH)
        return msgspec.json.decode(body, type=kind)
    except JsonTooDeep as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = _field_of(message)
        raise ApiError(
            400, "bad_request", f"invalid request: {message}"[:300], field=field
        ) from None
    except (msgspec.DecodeError, RecursionError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None


def csrf_for(svc: Services, token: str) -> str:
    """The session's CSRF token under the secret of the *current* master key."""
    return csrf_token_for(token, derived_secret(svc.keyring, CSRF_LABEL))


def _is_bearer(request: web.Request) -> bool:
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def check_origin(request: web.Request, svc: Services) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and not svc.console_origin_allowed(origin):
        raise ApiError(403, "csrf", "request origin is not allowed")


def retry_headers(retry_after: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


async def authenticate(request: web.Request, *, api_tokens_allowed: bool = False) -> AgentContext:
    """The caller's context: session (or, where allowed, API token) valid, API budget left,
    CSRF checked for cookie sessions."""
    svc = services_of(request)
    token = token_from_request(request)
    if _is_bearer(request) and token is not None and is_api_token(token):
        return await _authenticate_api_token(request, svc, token, api_tokens_allowed)
    ctx = await svc.sessions.authenticate(token)
    if ctx is None:
        raise ApiError(401, "unauthenticated", "log in first (session missing or expired)")
    await _spend_api_budget(svc, ctx)
    if request.path not in _RESET_ALLOWED and await svc.store.password_reset_forced(ctx.agent.id):
        # Emergency panel: "force password reset at next login" (gateway/governance/emergency.py).
        raise ApiError(
            403, "password_change_required", "choose a new password first (POST /api/me/password)"
        )
    refusal = await svc.passkeys.gate(ctx)
    if refusal is not None and request.path not in _PASSKEY_GATE_ALLOWED.get(refusal, ()):
        raise ApiError(403, refusal, _PASSKEY_GATE_TEXT[refusal])
    if request.method in _MUTATING and not _is_bearer(request):
        check_origin(request, svc)
        presented = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(
            csrf_for(svc, ctx.token).encode(), presented.encode("utf-8", "replace")
        ):
            raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    return ctx


async def _spend_api_budget(svc: Services, ctx: AgentContext) -> None:
    """One call of the session's or token's ``api_per_token`` budget (429 when spent)."""
    decision = await svc.guard.limiter.hit(
        f"api:{ctx.session.token_hash}", svc.guard.limits.api_per_token, scope="api_per_token"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; slow down",
            headers=retry_headers(decision.retry_after),
        )


async def _authenticate_api_token(
    request: web.Request, svc: Services, token: str, allowed: bool
) -> AgentContext:
    """A scoped API token (gateway/api_tokens.py): only on routes that declare a
    permission, rate-limited under its own key, audited on every use."""
    if not allowed:
        raise ApiError(
            403, "token_not_allowed", "API tokens cannot be used here; log in interactively"
        )
    service = api_tokens(svc)
    ctx = await service.authenticate(token)
    if ctx is None or ctx.api_token is None:
        raise ApiError(401, "unauthenticated", "the API token is unknown, revoked or expired")
    await _spend_api_budget(svc, ctx)
    route = request.match_info.route.resource
    await service.record_use(
        ctx,
        request.method,
        route.canonical if route is not None else request.path,
        peer_ip(request, svc),
    )
    return ctx


Handler = Callable[[web.Request, AgentContext], Awaitable[web.StreamResponse]]


def authed(
    permission: Permission | InstallationPermission | None = None, *, api_tokens: bool | None = None
) -> Callable[[Handler], Any]:
    """Decorator: authenticate, then (optionally) require ``permission`` in own tenant
    (an :class:`InstallationPermission` requires the installation operator).

    Scoped API tokens are accepted only where ``api_tokens`` is true, which defaults to
    "the route declares a permission": routes without one (own account, credentials,
    logout) are for interactive sessions only. The permission and the token flag are
    kept on the handler (``required_permission``, ``accepts_api_tokens``) so tests can
    check the scope of every route.
    """
    tokens_ok = permission is not None if api_tokens is None else api_tokens

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def inner(request: web.Request) -> web.StreamResponse:
            ctx = await authenticate(request, api_tokens_allowed=tokens_ok)
            try:
                if isinstance(permission, InstallationPermission):
                    require_operator(ctx.principal, permission)
                elif permission is not None:
                    require(ctx.principal, permission, ctx.principal.tenant_id)
                return await handler(request, ctx)
            except Forbidden:
                raise ApiError(403, "forbidden", "your role does not allow this") from None
            except CredentialError as exc:
                raise credential_error(exc) from None

        inner.__name__ = handler.__name__
        inner.__doc__ = handler.__doc__
        inner.required_permission = permission  # type: ignore[attr-defined]
        inner.accepts_api_tokens = tokens_ok  # type: ignore[attr-defined]
        return inner

    return wrap


_CREDENTIAL_STATUS = {
    "weak_password": 400,
    "wrong_password": 403,
    "invalid_otp": 400,
    "no_enrollment": 409,
    "invalid_email": 400,
    "email_taken": 409,
    "invalid_role": 400,
    "not_found": 404,
    "reauth_required": 403,
    "reauth_failed": 403,
    "rate_limited": 429,
}


def credential_error(exc: CredentialError) -> ApiError:
    extra = dict(exc.extra)
    headers = None
    if "retry_after" in extra:
        headers = retry_headers(extra["retry_after"])
        extra["retry_after"] = math.ceil(extra["retry_after"])
    return ApiError(
        _CREDENTIAL_STATUS.get(exc.code, 400), exc.code, exc.message, headers=headers, **extra
    )


def session_lifetime(svc: Services) -> SessionLifetime:
    return SessionLifetime(
        idle_timeout=svc.config.auth.idle_timeout,
        absolute_lifetime=svc.config.auth.absolute_lifetime,
    )


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "email": agent.email,
        "display_name": agent.display_name,
        "role": agent.role,
        "tenant": agent.tenant_id,
        "disabled": agent.disabled,
        "totp_confirmed": agent.totp_confirmed,
        "created_at": agent.created_at,
        "password_changed_at": agent.password_changed_at,
        "queues": list(agent.queues),
        "custom_role": agent.custom_role,
    }


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def tenant_json(svc: Services, tenant: Tenant) -> dict[str, Any]:
    try:
        fingerprints = [_fingerprint(s) for s in svc.tenants.identity_secrets(tenant)]
    except Exception:  # unreadable sealed secrets (wrong master key): say so, never crash
        fingerprints = ["unreadable"]
    return {
        "id": tenant.id,
        "name": tenant.name,
        "allowed_origins": tenant.allowed_origins,
        "identity_mode": tenant.identity_mode,
        "identity_secrets": [{"fingerprint": f} for f in fingerprints],
        "settings": tenant.settings,
        "frozen": tenant.frozen,
        "created_at": tenant.created_at,
    }


#: The fields of an audit row the admin API shows (the SIEM export adds the chain fields).
_AUDIT_FIELDS = ("id", "ts", "action", "tenant", "actor", "target", "ip", "details")


def audit_json(event: AuditEvent, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One audit record; ``actor_name``/``target_name`` label agent ids of the tenant."""
    labels = labels or {}
    record = {key: value for key, value in siem_record(event).items() if key in _AUDIT_FIELDS}
    return record | {
        "actor_name": labels.get(event.actor or ""),
        "target_name": labels.get(event.target or ""),
    }


async def qr_data_url(uri: str) -> str:
    png = await asyncio.to_thread(qr_png, uri)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def ok(**data: Any) -> web.Response:
    return web.json_response({"ok": True, **data})


def int_path(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "no such resource")
    return int(raw)


async def own_tenant(svc: Services, ctx: AgentContext) -> Tenant:
    """The caller's own tenant (404 when it no longer exists)."""
    tenant = await svc.store.get_tenant(ctx.principal.tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    return tenant


async def store_setting(svc: Services, tenant: Tenant, key: str, value: Any) -> None:
    """Write one key of ``tenant``'s settings (``None`` removes it) and drop the cached
    copy, so this node sees it at once and the others within the cache's lifetime."""
    rest = {k: v for k, v in tenant.settings.items() if k != key}
    tenant.settings = rest if value is None else {**rest, key: value}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)


_PUBLIC_TENANT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


async def public_tenant(svc: Services, tenant_id: str) -> Tenant:
    """The tenant a public (widget) route names in its path: 404 ``not_found`` for an id of
    the wrong shape and for an unknown one alike (the answer tells nothing more)."""
    tenant = await svc.tenants.get(tenant_id) if _PUBLIC_TENANT_ID.fullmatch(tenant_id) else None
    if tenant is None:
        raise ApiError(404, "not_found", "unknown tenant")
    return tenant


def struct_json(value: msgspec.Struct, headers: dict[str, str] | None = None) -> web.Response:
    """A typed answer: the Struct the API contract documents, encoded once by msgspec."""
    return web.Response(
        body=msgspec.json.encode(value), content_type="application/json", headers=headers
    )


@contextlib.contextmanager
def role_rules() -> Iterator[None]:
    """Answer a :class:`~gateway.custom_roles.RoleRefused` of the block as its API error
    (status, code, message and field, as the role rules name them)."""
    try:
        yield
    except RoleRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, field=exc.field) from None


_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]*")


def time_zone(
    raw: str | None,
    fallback: zoneinfo.ZoneInfo | None = None,
    headers: dict[str, str] | None = None,
) -> zoneinfo.ZoneInfo:
    """The IANA zone a client names in ``?tz=`` (``fallback``, else UTC, when absent);
    400 ``bad_request`` on ``tz`` for anything else. Names only -- letters, digits,
    ``_+-/`` and no dot -- so a value can never name a file outside the zone database."""
    if not raw:
        return fallback or zoneinfo.ZoneInfo("UTC")
    message = "tz must be an IANA time zone such as Asia/Shanghai"
    if len(raw) > 64 or not _ZONE_NAME.fullmatch(raw):
        raise ApiError(400, "bad_request", message, headers=headers, field="tz")
    try:
        return zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ApiError(400, "bad_request", message, headers=headers, field="tz") from None


def allow_origin(origin: str) -> dict[str, str]:
    """CORS headers letting ``origin`` (one the caller checked) read this answer."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight_answer(cors: dict[str, str], methods: str) -> web.Response:
    """A CORS preflight's answer for an origin the caller allowed (``cors`` carries its
    ``Access-Control-Allow-Origin``): the ``methods`` and ``Content-Type``, cached 10 min."""
    return web.Response(
        status=204,
        headers={
            **cors,
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )
