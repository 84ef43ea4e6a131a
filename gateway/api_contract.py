"""The registry of every HTTP operation and the Structs of their answers.

Adding a route? Add one :func:`gateway.openapi.document` call below (the test that
checks coverage prints the exact line). Request bodies are the handlers' own Structs,
imported from their modules; the answers are described here with Structs that forbid
unknown fields, so schemathesis (``tests/ops/test_api_fuzz.py``) fails when a handler
answers something this file does not say.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from gateway.http_api import (
    ConfirmTotpBody,
    CreateAgentBody,
    FreezeBody,
    LoginBody,
    PasswordBody,
    PatchAgentBody,
    PatchTenantBody,
    PolicyTestBody,
)
from gateway.http_health import Liveness, Readiness
from gateway.http_plugins import ConfigureBody
from gateway.http_sessions import DormancyBody
from gateway.http_tokens import CreateTokenBody
from gateway.openapi import document


class Strict(Struct, forbid_unknown_fields=True):
    """Base of the answer Structs: an undocumented field is a contract violation."""


# ---------------------------------------------------------------------- answers


class Ok(Strict):
    ok: bool


class AgentOut(Strict):
    id: str
    email: str
    display_name: str
    role: str
    tenant: str
    disabled: bool
    totp_confirmed: bool
    created_at: float
    password_changed_at: float


class LoginOut(Strict):
    token: str
    csrf: str
    agent: AgentOut
    expires_at: float


class MeTenant(Strict):
    id: str
    name: str | None
    frozen: bool


class SessionInfo(Strict):
    created_at: float
    last_seen_at: float
    expires_at: float


class MeOut(Strict):
    agent: AgentOut
    tenant: MeTenant
    role: str
    permissions: list[str]
    csrf: str
    session: SessionInfo
    recovery_codes_left: int


class PasswordChanged(Strict):
    ok: bool
    sessions_revoked: int


class TotpEnrollment(Strict):
    otpauth_uri: str
    qr_png: str
    enrollment: str
    confirm: str


class RecoveryCodes(Strict):
    recovery_codes: list[str]


class AgentList(Strict):
    agents: list[AgentOut]


class AgentWrap(Strict):
    agent: AgentOut


class NewCredentials(Strict):
    """Shown once: the TOTP secret (as URI and QR) and the recovery codes."""

    agent: AgentOut
    otpauth_uri: str
    qr_png: str
    recovery_codes: list[str]


class Unlocked(Strict):
    ok: bool
    was_locked: bool


class SessionsRevoked(Strict):
    ok: bool
    sessions_revoked: int


class AuditEventOut(Strict):
    id: int
    ts: float
    action: str
    tenant: str | None
    actor: str | None
    target: str | None
    ip: str | None
    details: dict[str, Any]


class AuditPage(Strict):
    events: list[AuditEventOut]
    next_before_id: int | None


#: An empty query value means "not given" (what an HTML form sends for an empty field).
Empty = Literal[""]


class AuditQuery(Struct):
    action: Annotated[str, Meta(max_length=128)] | None = None
    actor: Annotated[str, Meta(max_length=128)] | None = None
    since: float | Empty | None = None
    until: float | Empty | None = None
    before_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | Empty | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] | Empty | None = None


class SecretFingerprint(Strict):
    fingerprint: str


class TenantOut(Strict):
    id: str
    name: str
    allowed_origins: list[str]
    identity_mode: str
    identity_secrets: list[SecretFingerprint]
    settings: dict[str, Any]
    frozen: bool
    created_at: float


class TenantWrap(Strict):
    tenant: TenantOut


class Frozen(Strict):
    ok: bool
    frozen: bool


class PolicyFinding(Strict):
    kind: str
    start: int
    end: int
    rule: str
    action: str


class PolicyDecision(Strict):
    action: str
    text: str
    findings: list[PolicyFinding]


class FlagOut(Strict):
    id: int
    chat: str
    seq: int
    kinds: list[str]
    created_at: float
    reviewed_by: str | None


class FlagList(Strict):
    flags: list[FlagOut]


class FlagsQuery(Struct):
    all: Literal["", "1", "true", "0", "false"] | None = None


class FlagOriginal(Strict):
    flag_id: int
    chat: str
    seq: int
    kinds: list[str]
    original: str


class Erased(Strict):
    ok: bool
    erased: bool


class KeysRotated(Strict):
    """Counts only, never key material."""

    ok: bool
    previous_key_id: str
    keys_in_ring: int
    key_id: str
    chat_keys: int
    totp_secrets: int
    identity_secrets: int
    plugin_secrets: int
    already_current: int
    skipped: int
    moved: int


class PluginField(Strict):
    name: str
    type: str
    required: bool
    secret: bool
    default: Any
    help: str
    choices: list[Any] | None


class PluginConfigOut(Strict):
    plugin: str
    enabled: bool
    config: dict[str, Any]
    secrets_set: list[str]
    updated_at: float
    secrets_unreadable: bool = False


class PluginHealth(Strict):
    ok: bool
    detail: str


class PluginEntry(Strict):
    """An installed plugin (all fields), or one configured but no longer installed
    (``installed`` false, only ``name`` and ``tenant_config``)."""

    name: str
    installed: bool
    tenant_config: PluginConfigOut | None
    version: str | None = None
    api_version: int | None = None
    description: str | None = None
    scopes: list[str] | None = None
    source: str | None = None
    config_schema: list[PluginField] | None = None
    health: PluginHealth | None = None


class PluginProblem(Strict):
    name: str
    source: str
    reason: str


class PluginList(Strict):
    tenant: str
    plugins: list[PluginEntry]
    problems: list[PluginProblem]


class PluginsQuery(Struct):
    health: Literal["", "1", "true", "yes", "0", "false", "no"] | None = None


class PluginWrap(Strict):
    plugin: PluginConfigOut


class PluginDisabled(Strict):
    plugin: PluginConfigOut
    was_enabled: bool


class DeadLetter(Strict):
    id: int
    plugin: str
    event_type: str
    chat_id: str | None
    attempts: int
    last_error: str | None
    created_at: float


class DeadList(Strict):
    dead: list[DeadLetter]


class DeadQuery(Struct):
    plugin: Annotated[str, Meta(max_length=64)] | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] | Empty | None = None


class Replayed(Strict):
    ok: bool
    replayed: int


class OutboxCounts(Strict):
    counts: dict[str, int]
    by_plugin: dict[str, dict[str, int]]
    capped: bool


class OutboxQuery(Struct):
    state: Literal["", "pending", "delivered", "dead"] | None = None
    plugin: Annotated[str, Meta(max_length=64)] | None = None


class WellKnown(Strict):
    protocol: int
    verify_key: str
    key_id: str
    modes: list[str]
    endpoints: dict[str, str]


class EmbedInfo(Strict):
    src: str
    integrity: str
    gateway_key: str
    tenant: str
    snippet: str


class EmbedQuery(Struct):
    """``tenant`` (default ``demo``) is only echoed into the snippet, cut to 64 characters."""

    tenant: str | None = None


class OpenApiDocument(Struct):
    """This document (OpenAPI 3.1)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class WebsocketQuery(Struct):
    tenant: Annotated[str, Meta(max_length=64)] | None = None


# ---------------------------------------------------------------------- operations

_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_INT_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}

# public
document("GET", "/healthz", "Liveness: the process runs (no store or bus check)",
         tag="health", ok=Liveness, auth=False, extra_ok={503: Liveness})
document("GET", "/readyz", "Readiness: store, migrations, bus, keyring, not draining",
         tag="health", ok=Readiness, auth=False, extra_ok={503: Readiness})
document("GET", "/.well-known/cipherdesk.json", "The gateway's verify key for pinning",
         tag="public", ok=WellKnown, auth=False)
document("GET", "/api/openapi.json", "This contract (OpenAPI 3.1)", tag="public",
         ok=OpenApiDocument, auth=False)
document("GET", "/metrics", "Prometheus metrics (bearer token, or loopback when none set)",
         tag="public", auth=False, content_type="text/plain", errors=(403, 404))
document("GET", "/embed.json", "The embed snippet, widget SRI hash and verify key",
         tag="web", ok=EmbedInfo, auth=False, query=EmbedQuery)
for _page, _what in (("/", "Start page"), ("/demo", "Widget demo page"),
                     ("/console", "Agent console"), ("/admin", "Admin pages")):
    document("GET", _page, _what, tag="web", auth=False, content_type="text/html")
document("GET", "/widget.js", "The widget script (tweetnacl + widget, one SRI hash)",
         tag="web", auth=False, content_type="text/javascript")
document("GET", "/widget.css", "The widget's styles", tag="web", auth=False,
         content_type="text/css")
document("GET", "/static/{name}", "Console/admin assets", tag="web", auth=False,
         content_type="application/octet-stream", errors=(404,),
         error_content_type="text/plain",
         path_params={"name": {"type": "string", "maxLength": 128}})
document("GET", "/favicon.ico", "Icon", tag="web", auth=False, content_type="image/svg+xml")
_WS = ("Websocket endpoint (wire protocol v1, docs/PROTOCOL.md). A request without a "
       "websocket upgrade answers 400 text/plain; refusals after the upgrade are close "
       "codes (4401, 4403, 4429), not HTTP statuses.")
document("GET", "/ws/customer", "Customer websocket", tag="websocket", auth=False,
         content_type="text/plain", ok_status=101, errors=(400,), description=_WS,
         query=WebsocketQuery, extra_ok={400: None})
document("GET", "/ws/agent", "Agent websocket (session token as cookie or Bearer)",
         tag="websocket", auth=False, content_type="text/plain", ok_status=101,
         description=_WS, extra_ok={400: None})

# login and own account
document("POST", "/api/login", "Log in with e-mail, password and TOTP (or recovery) code",
         tag="session", ok=LoginOut, body=LoginBody, auth=False, errors=(401, 403, 429))
document("POST", "/api/logout", "End this session", tag="session", ok=Ok, errors=(403,))
document("GET", "/api/me", "Own account, permissions, CSRF token, session expiry",
         tag="session", ok=MeOut)
document("POST", "/api/me/password", "Change own password (other sessions are revoked)",
         tag="session", ok=PasswordChanged, body=PasswordBody, errors=(403,))
document("POST", "/api/me/totp", "Start TOTP re-enrolment", tag="session", ok=TotpEnrollment,
         errors=(403, 409))
document("POST", "/api/me/totp/confirm", "Confirm TOTP re-enrolment with a code",
         tag="session", ok=Ok, body=ConfirmTotpBody, errors=(403, 409))
document("POST", "/api/me/recovery-codes", "Replace own recovery codes", tag="session",
         ok=RecoveryCodes, errors=(403,))

# agents
_AGENT = {"agent_id": _ID}
document("GET", "/api/agents", "Agents of own tenant", tag="agents", ok=AgentList,
         errors=(403,))
_NEW_AGENT = {"agent_id": "$response.body#/agent/id"}
document("POST", "/api/agents", "Create an agent (answers its TOTP URI and recovery codes)",
         tag="agents", ok=NewCredentials, ok_status=201, body=CreateAgentBody,
         errors=(403, 404, 409), links={
             name: {"operationId": op_id, "parameters": _NEW_AGENT}
             for name, op_id in (("PatchAgent", "patch_api_agents_agent_id"),
                                 ("UnlockAgent", "post_api_agents_agent_id_unlock"),
                                 ("RevokeSessions", "post_api_agents_agent_id_revoke_sessions"),
                                 ("ResetMfa", "post_api_agents_agent_id_reset_mfa"))})
document("PATCH", "/api/agents/{agent_id}", "Rename, change role, disable/enable",
         tag="agents", ok=AgentWrap, body=PatchAgentBody, errors=(403, 404, 409),
         path_params=_AGENT)
document("POST", "/api/agents/{agent_id}/unlock", "Clear a login lockout", tag="agents",
         ok=Unlocked, errors=(403, 404), path_params=_AGENT)
document("POST", "/api/agents/{agent_id}/revoke-sessions", "Log the agent out everywhere",
         tag="agents", ok=SessionsRevoked, errors=(403, 404), path_params=_AGENT)
document("POST", "/api/agents/{agent_id}/reset-mfa", "New TOTP secret and recovery codes",
         tag="agents", ok=NewCredentials, errors=(403, 404), path_params=_AGENT)

# tenant, audit, policy, flags, chats, emergency
document("GET", "/api/audit", "Audit log of own tenant (newest first, paged)", tag="audit",
         ok=AuditPage, query=AuditQuery, errors=(403,))
document("GET", "/api/tenant", "Own tenant's settings", tag="tenant", ok=TenantWrap,
         errors=(403, 404))
document("PATCH", "/api/tenant", "Change own tenant's settings", tag="tenant",
         ok=TenantWrap, body=PatchTenantBody, errors=(403, 404))
document("POST", "/api/policy/test", "Run the tenant's policy on a text (nothing stored)",
         tag="policy", ok=PolicyDecision, body=PolicyTestBody, errors=(403, 404, 409))
document("GET", "/api/flags", "Flagged messages (unreviewed unless all=1)", tag="policy",
         ok=FlagList, query=FlagsQuery, errors=(403,))
document("GET", "/api/flags/{flag_id}/original", "Read a flagged original (audited)",
         tag="policy", ok=FlagOriginal, errors=(403, 404), path_params={"flag_id": _INT_ID})
document("POST", "/api/chats/{chat_id}/erase", "Crypto-shred a chat", tag="chats",
         ok=Erased, errors=(403, 404), path_params={"chat_id": _ID})
document("POST", "/api/emergency/freeze", "Freeze or unfreeze own tenant", tag="emergency",
         ok=Frozen, body=FreezeBody, errors=(403, 404))
document("POST", "/api/emergency/rotate-keys", "Rotate the master key (single node, key "
         "file)", tag="emergency", ok=KeysRotated, errors=(403, 409))

# plugins
_PLUGIN = {"name": {"type": "string", "minLength": 1, "maxLength": 64}}
document("GET", "/api/plugins", "Installed plugins and own tenant's configurations",
         tag="plugins", ok=PluginList, query=PluginsQuery, errors=(403,))
document("GET", "/api/plugins/dead", "Dead letters of own tenant", tag="plugins",
         ok=DeadList, query=DeadQuery, errors=(403,))
document("POST", "/api/plugins/dead/{item_id}/replay", "Replay a dead letter",
         tag="plugins", ok=Replayed, errors=(403, 404), path_params={"item_id": _INT_ID})
document("GET", "/api/plugins/outbox", "Outbox counts per state and plugin", tag="plugins",
         ok=OutboxCounts, query=OutboxQuery, errors=(403,))
document("PUT", "/api/plugins/{name}", "Configure a plugin for own tenant", tag="plugins",
         ok=PluginWrap, body=ConfigureBody, errors=(403, 404), path_params=_PLUGIN)
document("POST", "/api/plugins/{name}/disable", "Stop delivering to a plugin",
         tag="plugins", ok=PluginDisabled, errors=(403, 404), path_params=_PLUGIN)


# ------------------------------------------------- API tokens and sessions (issue 20)


class TokenOwner(Strict):
    id: str
    email: str | None


class ApiTokenOut(Strict):
    id: str
    name: str
    permissions: list[str]
    effective_permissions: list[str]
    created_by: TokenOwner
    created_at: float
    expires_at: float
    last_used_at: float | None
    revoked_at: float | None
    state: Literal["live", "expired", "revoked"]


class TokenList(Strict):
    tokens: list[ApiTokenOut]
    grantable: list[str]


class TokenIssued(Strict):
    token: str
    api_token: ApiTokenOut


class OwnSession(Strict):
    id: str
    device: str
    place: str
    created_at: float
    last_seen_at: float
    current: bool


class OwnSessions(Strict):
    sessions: list[OwnSession]


class AgentActivity(Strict):
    id: str
    email: str
    disabled: bool
    last_login_at: float | None
    idle_days: int
    dormant: bool


class ActivityList(Strict):
    dormant_disable_days: int | None
    agents: list[AgentActivity]


class DormancySet(Strict):
    ok: bool
    dormant_disable_days: int | None


_TOKEN = {"token_id": _ID}
document("GET", "/api/tokens", "Scoped API tokens of own tenant (session only)",
         tag="tokens", ok=TokenList, errors=(403,))
document("POST", "/api/tokens", "Create a scoped API token (shown once; needs step-up)",
         tag="tokens", ok=TokenIssued, ok_status=201, body=CreateTokenBody,
         errors=(400, 403, 409))
document("DELETE", "/api/tokens/{token_id}", "Revoke an API token", tag="tokens", ok=Ok,
         errors=(403, 404), path_params=_TOKEN)
document("GET", "/api/me/sessions", "Own live sessions (device, network prefix)",
         tag="me", ok=OwnSessions, errors=(403,))
document("DELETE", "/api/me/sessions/{session_id}", "End another of own sessions",
         tag="me", ok=Ok, errors=(403, 404, 409), path_params={"session_id": _ID})
document("GET", "/api/agents/activity", "Last logins and dormant accounts", tag="agents",
         ok=ActivityList, errors=(403,))
document("PUT", "/api/tenant/dormancy", "Disable accounts after N days dormant",
         tag="tenant", ok=DormancySet, body=DormancyBody, errors=(403, 404))
