"""The registry of every HTTP operation and the Structs of their answers.

Adding a route? Add one :func:`gateway.http.operations.document` call below (the test that
checks coverage prints the exact line). Request bodies are the handlers' own Structs,
imported from their modules; the answers are described here with Structs that forbid
unknown fields, so schemathesis (``tests/ops/test_api_fuzz.py``) fails when a handler
answers something this file does not say.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

from gateway.canned import CannedList, CannedResponse
from gateway.http.account import ConfirmTotpBody, LoginBody, PasswordBody, ReauthBody
from gateway.http.agents import CreateAgentBody, PatchAgentBody
from gateway.http.chats import MAX_FLAGS_PAGE, CustomerEraseBody
from gateway.http.customer_access import CustomerExportRequest
from gateway.http.e2e import (
    CertificateBody,
    ClosedOut,
    DeviceBody,
    DeviceList,
    DeviceWrap,
    E2ESettingsBody,
    E2ESettingsOut,
    EndPolicyOut,
    ReleaseCloseBody,
    SignedPolicyBody,
    SignedPolicyOut,
)
from gateway.http.files import FileUploadedOut
from gateway.http.governance import (
    ApprovalRequestBody,
    CloseIncidentBody,
    GovernanceSettingsBody,
    IncidentBody,
    KeepBody,
    PauseBody,
)
from gateway.http.health import Liveness, Readiness
from gateway.http.history import HistoryList, HistoryQueryParams, Transcript
from gateway.http.inbound import InboundRequest
from gateway.http.invites import CreateInviteBody, OpenInviteBody, RedeemInviteBody
from gateway.http.notices import NoticeAdminView, NoticeView, PublicNotice, PublishNoticeBody
from gateway.http.oidc import OidcSettingsBody, OidcSettingsOut
from gateway.http.operations import JSON as JSON_TYPE
from gateway.http.operations import document
from gateway.http.operator import CreateTenantBody
from gateway.http.passkeys import (
    CeremonyOut,
    PasskeyBody,
    PasskeyList,
    PasskeyLoginBody,
    PasskeyWrap,
)
from gateway.http.plugins import ConfigureBody
from gateway.http.policy import KeywordListBody, PolicyTestBody
from gateway.http.quality import (
    QualityCsvQueryParams,
    QualityOut,
    QualityQueryParams,
    QualityTargets,
)
from gateway.http.roles import DefineRoleBody
from gateway.http.scim import (
    SCIM_TYPE,
    ActivationLink,
    ScimSettingsBody,
    ScimSettingsOut,
    ServiceProviderConfig,
)
from gateway.http.sessions import DormancyBody
from gateway.http.tenant import FreezeBody, PatchTenantBody
from gateway.http.tokens import CreateTokenBody
from gateway.scim import (
    ScimErrorOut,
    ScimGroupIn,
    ScimGroupList,
    ScimGroupOut,
    ScimPatch,
    ScimResourceTypeList,
    ScimSchemaList,
    ScimUserIn,
    ScimUserList,
    ScimUserOut,
)


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
    # Queue scoping: the queues whose waiting chats the agent sees; [] = all of them.
    queues: list[str] = []
    # In the agent list only: how many passkeys the agent registered (issue 20.1).
    passkeys: int | None = None
    # The custom role the agent holds (issue 14.3); None: the built-in role alone.
    custom_role: str | None = None
    # In the agent list only: created by the identity provider over SCIM (issue 20.3).
    provisioned: bool | None = None


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
    """``tenant`` is null for an installation operator (who belongs to no tenant);
    ``reauth_until`` is set while a step-up (``POST /api/me/reauth``) is fresh."""

    agent: AgentOut
    tenant: MeTenant | None
    role: str
    permissions: list[str]
    installation_permissions: list[str]
    reauth_until: float | None
    csrf: str
    session: SessionInfo
    recovery_codes_left: int
    password_change_required: bool
    passkey_gate: Literal["passkey_enrollment_required", "passkey_required"] | None
    """Set when the tenant requires a passkey session and this one is not (see
    gateway/passkeys.py): the page offers enrolment or a passkey login."""
    session_factor: str


class Reauthenticated(Strict):
    ok: bool
    reauth_until: float


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


class MfaResetLink(Strict):
    """The agent's second factor was reset; ``link`` (shown once) lets them enrol a new
    one after proving their password: the admin never sees the secret."""

    agent: AgentOut
    link: str
    expires_at: float


class Unlocked(Strict):
    ok: bool
    was_locked: bool


class SessionsRevoked(Strict):
    ok: bool
    sessions_revoked: int


class AuditEventOut(Strict):
    """``actor_name``/``target_name``: display name or e-mail of an own-tenant agent id."""

    id: int
    ts: float
    action: str
    tenant: str | None
    actor: str | None
    target: str | None
    ip: str | None
    details: dict[str, Any]
    actor_name: str | None
    target_name: str | None


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
    """Newest first."""
    next_before: int | None
    """The ``before`` of the next (older) page; null on the last page."""


class FlagsQuery(Struct):
    all: Literal["", "1", "true", "0", "false"] | None = None
    before: Annotated[int, Meta(ge=1)] | Empty | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_FLAGS_PAGE)] | Empty | None = None


class FlagOriginal(Strict):
    flag_id: int
    chat: str
    seq: int
    kinds: list[str]
    original: str


class DestructionReportOut(Strict):
    """The signed content of a destruction report (gateway/reports.py): counts per data
    class, hashed chat ids, the actor's id; never personal data."""

    v: int
    id: str
    kind: Literal["erase", "retention"]
    tenant: str
    actor: str
    at: float
    counts: dict[str, int]
    chats: list[str]


class ReportFileOut(Strict):
    """A report as exported: verify offline with ``cipherdesk report verify``."""

    report: DestructionReportOut
    signature: str
    signer: str


class ReportList(Strict):
    reports: list[ReportFileOut]
    next_before: float | None


class ReportsQuery(Struct):
    before: Annotated[float, Meta(ge=0, le=1e12)] | Empty | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] | Empty | None = None


class CustomerErased(Strict):
    ok: bool
    erased: int
    """How many chats were crypto-shredded (0 when none were found)."""
    report: ReportFileOut


class ExportedMessageOut(Strict):
    seq: int
    from_: str = field(name="from")
    ts: float
    text: str
    e2e: bool = False
    """End-to-end encrypted: the gateway cannot read it, ``text`` is empty."""


class ExportedChatOut(Strict):
    id: str
    created_at: float
    closed_at: float | None
    state: str
    close_reason: str | None
    customer: dict[str, Any] | None
    messages: list[ExportedMessageOut]


class CustomerExportOut(Strict):
    """Every chat of one customer, decrypted (at most 200; ``truncated`` when more)."""

    chats: list[ExportedChatOut]
    truncated: bool


class Erased(Strict):
    ok: bool
    erased: bool
    report: ReportFileOut | None


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


# policy schema and keyword lists


class PolicySettingOut(Strict):
    """One tenant policy setting: its key, type, default and meaning (English, Chinese)."""

    key: str
    type: str
    default: Any
    en: str
    zh: str


class PolicyKindRow(Strict):
    """The effective treatment of one finding kind per audience (``log`` is always
    ``never``: findings never reach logs)."""

    kind: str
    customer: str
    agent: str
    mask: str
    plugin: str
    export: str
    audience_mask: str
    log: Literal["never"]


class PolicySchemaOut(Strict):
    settings: list[PolicySettingOut]
    kinds: list[PolicyKindRow]


class KeywordListSummary(Strict):
    name: str
    terms: int
    bytes: int
    digest: str
    updated_at: float


class KeywordListLimits(Strict):
    lists: int
    bytes_per_list: int
    terms_per_tenant: int


class KeywordLists(Strict):
    lists: list[KeywordListSummary]
    limits: KeywordListLimits


class KeywordListOut(Strict):
    name: str
    text: str
    terms: int


class KeywordListSaved(Strict):
    ok: bool
    name: str
    terms: int
    digest: str


class KeywordListDeleted(Strict):
    ok: bool
    name: str


# governance: audit chain, alerts, settings, incidents, emergency, approvals


class ChainReportOut(Strict):
    """The audit hash chain check; ``first_broken_*`` and ``problem`` name the first bad
    row when ``ok`` is false."""

    chain: str
    ok: bool
    rows: int
    legacy_rows: int
    checkpoints: int
    head_seq: int
    first_broken_id: int | None
    first_broken_seq: int | None
    problem: str | None
    detail: str


class AuditVerified(Strict):
    report: ChainReportOut


class AlertOut(Strict):
    id: int
    rule: str
    subject: str
    severity: str
    ts: float
    count: int
    details: dict[str, Any]
    state: Literal["open", "acknowledged", "resolved"]
    acked_by: str | None
    acked_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    incident: int | None


class AlertList(Strict):
    """Also the ``data:`` of every ``alerts`` event of ``GET /api/alerts/stream``."""

    alerts: list[AlertOut]


class AlertsQuery(Struct):
    state: Literal["", "open", "acknowledged", "resolved"] | None = None


class AlertChanged(Strict):
    """The alert after the change, and the incident it was filed under (opened if none)."""

    alert: AlertOut
    incident: int


class AlertRuleOut(Strict):
    threshold: int
    window: float
    enabled: bool
    severity: str
    description: str


class EmailChannelOut(Strict):
    to: list[str]


class SecretChannelOut(Strict):
    """A robot channel: only whether it is set (URL and secret are write-only)."""

    configured: bool


class NotifyOut(Strict):
    email: EmailChannelOut | None
    webhook: SecretChannelOut
    dingtalk: SecretChannelOut


class ApprovalPolicyOut(Strict):
    mode: str
    ttl_minutes: int


class RetentionOut(Strict):
    """A tenant's effective retention per data class (0 = keep / never auto-close)."""

    closed_chat_days: float
    idle_close_minutes: float
    flag_days: float
    delivered_outbox_days: float
    dead_letter_days: float
    audit_days: float


class AttachmentLimitsOut(Strict):
    """What the tenant accepts in chats now (the installation's limits, narrowed)."""

    enabled: bool
    max_bytes: int
    types: list[str]


class GovernanceSettingsOut(Strict):
    alert_rules: dict[str, AlertRuleOut]
    working_hours: dict[str, Any] | None
    audit_retention_days: int
    notify: NotifyOut
    plugins_paused: bool
    approvals: ApprovalPolicyOut
    retention: RetentionOut
    quality: QualityTargets
    phishing_resistant_mfa: Literal["off", "admins", "staff", "all"]
    attachments: AttachmentLimitsOut


class GovernanceSettingsWrap(Strict):
    settings: GovernanceSettingsOut


class IncidentOut(Strict):
    id: int
    severity: str
    title: str
    state: Literal["open", "closed"]
    opened_by: str
    opened_at: float
    closed_at: float | None


class IncidentList(Strict):
    incidents: list[IncidentOut]


class IncidentWrap(Strict):
    incident: IncidentOut


class TimelineEntry(Strict):
    ts: float
    actor: str
    action: str
    details: dict[str, Any]


class IncidentDetail(Strict):
    incident: IncidentOut
    timeline: list[TimelineEntry]


class PasswordResetsForced(Strict):
    ok: bool
    agents: int


class PluginsPaused(Strict):
    ok: bool
    paused: bool


class GrantOut(Strict):
    id: int
    requester: str
    action: str
    target: str
    reason: str
    state: Literal["pending", "approved", "denied"]
    approver: str | None
    created_at: float
    decided_at: float | None
    expires_at: float | None


class GrantWrap(Strict):
    grant: GrantOut


class GrantList(Strict):
    grants: list[GrantOut]


class GrantsQuery(Struct):
    state: Literal["", "pending", "approved", "denied"] | None = None


# installation operator


class OperatorTenant(Strict):
    id: str
    name: str
    allowed_origins: list[str]
    identity_mode: str
    frozen: bool
    created_at: float


class OperatorTenantList(Strict):
    tenants: list[OperatorTenant]


class OperatorTenantWrap(Strict):
    tenant: OperatorTenant


class OperatorTenantFrozen(Strict):
    ok: bool
    tenant: OperatorTenant


class InstallationSettings(Strict):
    """Installation state without secrets: key ids, store and bus kinds, counts."""

    key_ids: list[str]
    store: str
    bus: str
    operators: int
    tenants: int


# team, canned responses, helpdesk records, inbound webhook


class TeamAgentOut(Strict):
    """``online`` is null when presence cannot be asked (no e-mail addresses here)."""

    id: str
    name: str
    role: str
    online: bool | None
    consoles: int
    active_chats: int


class TeamQueueOut(Strict):
    name: str
    waiting: int
    active: int


class TeamOut(Strict):
    agents: list[TeamAgentOut]
    queues: list[TeamQueueOut]
    presence_known: bool


class CannedOut(Strict):
    responses: list[CannedResponse]
    variables: list[str]


class HelpdeskTicket(Strict):
    id: str
    subject: str
    status: str
    url: str | None


class HelpdeskRecords(Strict):
    plugin: str
    open_tickets: list[HelpdeskTicket]


class ChatHelpdesk(Strict):
    chat: str
    helpdesk: list[HelpdeskRecords]


class InboundResult(Strict):
    """``action`` is the command carried out (a vendor ``comment``/``status`` translated;
    ``ignored``: a status that means nothing to the chat). ``seq`` (null when the message
    was not stored) only for ``reply``; ``policy`` for ``reply`` and ``note``."""

    ok: bool
    action: Literal["reply", "note", "handled", "close", "ignored"]
    seq: int | None = None
    policy: str | None = None


# ---------------------------------------------------------------------- operations

_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_INT_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}

# public
document(
    "GET",
    "/healthz",
    "Liveness: the process runs (no store or bus check)",
    tag="health",
    ok=Liveness,
    auth=False,
    extra_ok={503: Liveness},
)
document(
    "GET",
    "/readyz",
    "Readiness: store, migrations, bus, keyring, not draining",
    tag="health",
    ok=Readiness,
    auth=False,
    extra_ok={503: Readiness},
)
document(
    "GET",
    "/.well-known/cipherdesk.json",
    "The gateway's verify key for pinning",
    tag="public",
    ok=WellKnown,
    auth=False,
)
document(
    "GET",
    "/api/openapi.json",
    "This contract (OpenAPI 3.1)",
    tag="public",
    ok=OpenApiDocument,
    auth=False,
)
document(
    "GET",
    "/metrics",
    "Prometheus metrics (bearer token, or loopback when none set)",
    tag="public",
    auth=False,
    content_type="text/plain",
    errors=(403, 404),
)
document(
    "GET",
    "/embed.json",
    "The embed snippet, widget SRI hash and verify key",
    tag="web",
    ok=EmbedInfo,
    auth=False,
    query=EmbedQuery,
)
for _page, _what in (
    ("/", "Start page"),
    ("/demo", "Widget demo page"),
    ("/console", "Agent console"),
    ("/admin", "Admin pages"),
    ("/invite", "Invite page: set a password and enrol TOTP (token in the URL fragment)"),
):
    document("GET", _page, _what, tag="web", auth=False, content_type="text/html")
# single sign-on: browser navigations answered with redirects (issue 20.2)
_TENANT = {"tenant": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}}
document(
    "GET",
    "/oidc/{tenant}/login",
    "Single sign-on: 302 to the company's identity provider (or back to /console?sso_error=)",
    tag="web",
    auth=False,
    ok_status=302,
    errors=(404,),
    path_params=_TENANT,
    error_content_type="text/plain",
)
document(
    "GET",
    "/oidc/callback",
    "Single sign-on callback: session cookie and 302 to /console (or /console?sso_error=)",
    tag="web",
    auth=False,
    ok_status=302,
    error_content_type="text/plain",
)
document(
    "GET",
    "/widget.js",
    "The widget script (tweetnacl + widget, one SRI hash)",
    tag="web",
    auth=False,
    content_type="text/javascript",
)
document(
    "GET", "/widget.css", "The widget's styles", tag="web", auth=False, content_type="text/css"
)
document(
    "GET",
    "/static/{name}",
    "Console/admin assets",
    tag="web",
    auth=False,
    content_type="application/octet-stream",
    errors=(404,),
    error_content_type="text/plain",
    path_params={"name": {"type": "string", "maxLength": 128}},
)
document("GET", "/favicon.ico", "Icon", tag="web", auth=False, content_type="image/svg+xml")
_WS = (
    "Websocket endpoint (wire protocol v1, docs/PROTOCOL.md). A request without a "
    "websocket upgrade answers 400 text/plain; refusals after the upgrade are close "
    "codes (4401, 4403, 4429), not HTTP statuses."
)
document(
    "GET",
    "/ws/customer",
    "Customer websocket",
    tag="websocket",
    auth=False,
    content_type="text/plain",
    ok_status=101,
    errors=(400,),
    description=_WS,
    query=WebsocketQuery,
    extra_ok={400: None},
)
document(
    "GET",
    "/ws/agent",
    "Agent websocket (session token as cookie or Bearer)",
    tag="websocket",
    auth=False,
    content_type="text/plain",
    ok_status=101,
    description=_WS,
    extra_ok={400: None},
)

# login and own account
document(
    "POST",
    "/api/login",
    "Log in with e-mail, password and TOTP (or recovery) code",
    tag="session",
    ok=LoginOut,
    body=LoginBody,
    auth=False,
    errors=(401, 403, 429),
)
document(
    "POST",
    "/api/login/passkey/options",
    "Start a passkey login: options for navigator.credentials.get() (issue 20.1)",
    tag="session",
    ok=CeremonyOut,
    auth=False,
    errors=(403, 429),
)
document(
    "POST",
    "/api/login/passkey",
    "Log in with a passkey (user verification required); answers like /api/login",
    tag="session",
    ok=LoginOut,
    body=PasskeyLoginBody,
    auth=False,
    errors=(401, 403, 429),
)
document(
    "GET",
    "/api/me/passkeys",
    "Own passkeys (names, dates; no key material)",
    tag="session",
    ok=PasskeyList,
    errors=(403,),
)
document(
    "POST",
    "/api/me/passkeys/options",
    "Start registering a passkey (fresh step-up needed): options for "
    "navigator.credentials.create()",
    tag="session",
    ok=CeremonyOut,
    errors=(403, 409),
)
document(
    "POST",
    "/api/me/passkeys",
    "Finish registering a passkey",
    tag="session",
    ok=PasskeyWrap,
    ok_status=201,
    body=PasskeyBody,
    errors=(400, 403, 409),
)
document(
    "DELETE",
    "/api/me/passkeys/{credential_id}",
    "Remove one of the own passkeys (fresh step-up needed)",
    tag="session",
    ok=Ok,
    errors=(400, 403, 404),
    path_params={"credential_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,1366}$"}},
)
# end-to-end mode (issue 13)
_DEVICE = {"device_id": {"type": "string", "pattern": "^dev_[0-9a-f]{32}$"}}
document(
    "GET",
    "/api/e2e",
    "Own tenant's end-to-end mode and certificate verify key",
    tag="e2e",
    ok=E2ESettingsOut,
    errors=(403, 404),
)
document(
    "PUT",
    "/api/e2e",
    "Set the mode and the tenant's certificate verify key (admin, fresh step-up)",
    tag="e2e",
    ok=E2ESettingsOut,
    body=E2ESettingsBody,
    errors=(400, 403, 404, 409),
)
document(
    "GET",
    "/api/me/e2e/devices",
    "Own end-to-end device keys and their certificates",
    tag="e2e",
    ok=DeviceList,
    errors=(403,),
)
document(
    "POST",
    "/api/me/e2e/devices",
    "Register this console's X25519 device key (public half only)",
    tag="e2e",
    ok=DeviceWrap,
    ok_status=201,
    body=DeviceBody,
    errors=(400, 403, 409),
)
document(
    "GET",
    "/api/e2e/devices",
    "Every device key of the tenant, with fingerprints, to certify offline (admin)",
    tag="e2e",
    ok=DeviceList,
    errors=(403,),
)
document(
    "PUT",
    "/api/e2e/devices/{device_id}/certificate",
    "Store a device certificate signed by the tenant key (admin; verified first)",
    tag="e2e",
    ok=DeviceWrap,
    body=CertificateBody,
    errors=(400, 403, 404, 409),
    path_params=_DEVICE,
)
document(
    "DELETE",
    "/api/e2e/devices/{device_id}",
    "Revoke a device key (own, or any as agent manager)",
    tag="e2e",
    ok=Ok,
    errors=(403, 404),
    path_params=_DEVICE,
)
document(
    "GET",
    "/api/e2e/policy",
    "The end policy the tenant's policy compiles to now, and the signed one widgets run (admin)",
    tag="e2e",
    ok=EndPolicyOut,
    errors=(403, 404),
)
document(
    "PUT",
    "/api/e2e/policy",
    "Store an end policy signed by the tenant key (admin or tenant_manage token; verified)",
    tag="e2e",
    ok=SignedPolicyOut,
    body=SignedPolicyBody,
    errors=(400, 403, 404, 409, 413),
)
document(
    "POST",
    "/api/e2e/chats/{chat_id}/close",
    "Close an e2e chat releasing the transcript the console masked to the helpdesk (audited)",
    tag="e2e",
    ok=ClosedOut,
    body=ReleaseCloseBody,
    errors=(400, 403, 404, 409, 413),
    path_params={"chat_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
)
document(
    "GET",
    "/api/public/e2e/{tenant}",
    "A tenant's end-to-end mode, verify key and signed end policy, for widgets (public)",
    tag="public",
    ok=E2ESettingsOut,
    auth=False,
    errors=(404,),
    path_params={"tenant": {"type": "string", "maxLength": 64}},
)
document("POST", "/api/logout", "End this session", tag="session", ok=Ok, errors=(403,))
document(
    "GET",
    "/api/me",
    "Own account, permissions, CSRF token, session expiry",
    tag="session",
    ok=MeOut,
)
document(
    "POST",
    "/api/me/password",
    "Change own password (other sessions are revoked)",
    tag="session",
    ok=PasswordChanged,
    body=PasswordBody,
    errors=(403,),
)
document(
    "POST",
    "/api/me/totp",
    "Start TOTP re-enrolment",
    tag="session",
    ok=TotpEnrollment,
    errors=(403, 409),
)
document(
    "POST",
    "/api/me/totp/confirm",
    "Confirm TOTP re-enrolment with a code",
    tag="session",
    ok=Ok,
    body=ConfirmTotpBody,
    errors=(403, 409),
)
document(
    "POST",
    "/api/me/recovery-codes",
    "Replace own recovery codes",
    tag="session",
    ok=RecoveryCodes,
    errors=(403,),
)

# agents
_AGENT = {"agent_id": _ID}
document("GET", "/api/agents", "Agents of own tenant", tag="agents", ok=AgentList, errors=(403,))
_NEW_AGENT = {"agent_id": "$response.body#/agent/id"}
document(
    "POST",
    "/api/agents",
    "Create an agent (answers its TOTP URI and recovery codes)",
    tag="agents",
    ok=NewCredentials,
    ok_status=201,
    body=CreateAgentBody,
    errors=(403, 404, 409),
    links={
        name: {"operationId": op_id, "parameters": _NEW_AGENT}
        for name, op_id in (
            ("PatchAgent", "patch_api_agents_agent_id"),
            ("UnlockAgent", "post_api_agents_agent_id_unlock"),
            ("RevokeSessions", "post_api_agents_agent_id_revoke_sessions"),
            ("ResetMfa", "post_api_agents_agent_id_reset_mfa"),
        )
    },
)
document(
    "PATCH",
    "/api/agents/{agent_id}",
    "Rename, change (custom) role, scope to queues, disable/enable",
    tag="agents",
    ok=AgentWrap,
    body=PatchAgentBody,
    errors=(403, 404, 409),
    path_params=_AGENT,
)
document(
    "POST",
    "/api/agents/{agent_id}/unlock",
    "Clear a login lockout",
    tag="agents",
    ok=Unlocked,
    errors=(403, 404),
    path_params=_AGENT,
)
document(
    "POST",
    "/api/agents/{agent_id}/revoke-sessions",
    "Log the agent out everywhere",
    tag="agents",
    ok=SessionsRevoked,
    errors=(403, 404),
    path_params=_AGENT,
)
document(
    "POST",
    "/api/agents/{agent_id}/reset-mfa",
    "Reset the agent's second factor; a one-time re-enrolment link for the agent",
    tag="agents",
    ok=MfaResetLink,
    errors=(403, 404),
    path_params=_AGENT,
)

# tenant, audit, policy, flags, chats, emergency
document(
    "GET",
    "/api/audit",
    "Audit log of own tenant (newest first, paged)",
    tag="audit",
    ok=AuditPage,
    query=AuditQuery,
    errors=(403,),
)
document(
    "GET", "/api/tenant", "Own tenant's settings", tag="tenant", ok=TenantWrap, errors=(403, 404)
)
document(
    "PATCH",
    "/api/tenant",
    "Change own tenant's settings",
    tag="tenant",
    ok=TenantWrap,
    body=PatchTenantBody,
    errors=(403, 404),
)
document(
    "POST",
    "/api/policy/test",
    "Run the tenant's policy on a text (nothing stored)",
    tag="policy",
    ok=PolicyDecision,
    body=PolicyTestBody,
    errors=(403, 404, 409),
)
document(
    "GET",
    "/api/flags",
    "Flagged messages (unreviewed unless all=1), newest first, paged by before/limit",
    tag="policy",
    ok=FlagList,
    query=FlagsQuery,
    errors=(403,),
)
document(
    "GET",
    "/api/flags/{flag_id}/original",
    "Read a flagged original (audited)",
    tag="policy",
    ok=FlagOriginal,
    errors=(403, 404),
    path_params={"flag_id": _INT_ID},
)
document(
    "POST",
    "/api/chats/{chat_id}/erase",
    "Crypto-shred a chat",
    tag="chats",
    ok=Erased,
    errors=(403, 404),
    path_params={"chat_id": _ID},
)
document(
    "POST",
    "/api/customers/erase",
    "Crypto-shred every chat of one customer (exactly one of sub, email, chat_token)",
    tag="chats",
    ok=CustomerErased,
    body=CustomerEraseBody,
    errors=(400, 403),
)
document(
    "POST",
    "/api/customers/export",
    "Every chat of one customer, decrypted (exactly one of sub, email, chat_token)",
    tag="chats",
    ok=CustomerExportOut,
    body=CustomerEraseBody,
    errors=(400, 403),
)
document(
    "GET",
    "/api/reports",
    "Signed destruction reports of own tenant, newest first",
    tag="chats",
    ok=ReportList,
    query=ReportsQuery,
    errors=(400, 403),
)
document(
    "GET",
    "/api/reports/{report_id}",
    "One signed destruction report (the file `cipherdesk report verify` checks)",
    tag="chats",
    ok=ReportFileOut,
    errors=(403, 404),
    path_params={"report_id": _ID},
)
document(
    "POST",
    "/api/emergency/freeze",
    "Freeze or unfreeze own tenant",
    tag="emergency",
    ok=Frozen,
    body=FreezeBody,
    errors=(403, 404),
)
document(
    "POST",
    "/api/emergency/rotate-keys",
    "Rotate the master key (single node, key file)",
    tag="emergency",
    ok=KeysRotated,
    errors=(403, 409),
)

# plugins
_PLUGIN = {"name": {"type": "string", "minLength": 1, "maxLength": 64}}
document(
    "GET",
    "/api/plugins",
    "Installed plugins and own tenant's configurations",
    tag="plugins",
    ok=PluginList,
    query=PluginsQuery,
    errors=(403,),
)
document(
    "GET",
    "/api/plugins/dead",
    "Dead letters of own tenant",
    tag="plugins",
    ok=DeadList,
    query=DeadQuery,
    errors=(403,),
)
document(
    "POST",
    "/api/plugins/dead/{item_id}/replay",
    "Replay a dead letter",
    tag="plugins",
    ok=Replayed,
    errors=(403, 404),
    path_params={"item_id": _INT_ID},
)
document(
    "GET",
    "/api/plugins/outbox",
    "Outbox counts per state and plugin",
    tag="plugins",
    ok=OutboxCounts,
    query=OutboxQuery,
    errors=(403,),
)
document(
    "PUT",
    "/api/plugins/{name}",
    "Configure a plugin for own tenant",
    tag="plugins",
    ok=PluginWrap,
    body=ConfigureBody,
    errors=(403, 404),
    path_params=_PLUGIN,
)
document(
    "POST",
    "/api/plugins/{name}/disable",
    "Stop delivering to a plugin",
    tag="plugins",
    ok=PluginDisabled,
    errors=(403, 404),
    path_params=_PLUGIN,
)


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


class BuiltinRoleOut(Strict):
    name: str
    permissions: list[str]


class CustomRoleOut(Strict):
    name: str
    base: str
    permissions: list[str]
    description: str
    holders: int
    created_at: float
    updated_at: float


class RoleList(Strict):
    builtin: list[BuiltinRoleOut]
    custom: list[CustomRoleOut]
    permissions: list[str]
    grantable: list[str]


class RoleWrap(Strict):
    role: CustomRoleOut


class TokenIssued(Strict):
    token: str
    api_token: ApiTokenOut


class InviteOut(Strict):
    id: str
    email: str
    display_name: str
    role: str
    status: Literal["pending", "used", "expired", "revoked"]
    created_by: TokenOwner
    created_at: float
    expires_at: float
    used_at: float | None
    agent_id: str | None
    revoked_at: float | None


class InviteList(Strict):
    invites: list[InviteOut]
    ttl_hours: int


class InviteIssued(Strict):
    """``link`` carries the token in its fragment; it is shown this once."""

    link: str
    invite: InviteOut


class InviteOpened(Strict):
    """For the invitee only: who the invite is for and a TOTP secret to enrol."""

    email: str
    display_name: str
    role: str
    tenant: str
    expires_at: float
    secret: str
    otpauth_uri: str
    qr_png: str
    enrollment: str
    # "join" (choose a password) or "mfa_reset" (prove the current one, re-enrol TOTP).
    purpose: Literal["join", "mfa_reset"] = "join"


class InviteRedeemed(Strict):
    """Like the login answer (plus the session cookie), with the new recovery codes."""

    token: str
    csrf: str
    agent: AgentOut
    expires_at: float
    recovery_codes: list[str]


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
document(
    "GET",
    "/api/tokens",
    "Scoped API tokens of own tenant (session only)",
    tag="tokens",
    ok=TokenList,
    errors=(403,),
)
document(
    "POST",
    "/api/tokens",
    "Create a scoped API token (shown once; needs step-up)",
    tag="tokens",
    ok=TokenIssued,
    ok_status=201,
    body=CreateTokenBody,
    errors=(400, 403, 409),
)
document(
    "DELETE",
    "/api/tokens/{token_id}",
    "Revoke an API token",
    tag="tokens",
    ok=Ok,
    errors=(403, 404),
    path_params=_TOKEN,
)
_ROLE = {"name": _ID}
document(
    "GET",
    "/api/roles",
    "Built-in and custom roles of own tenant, with the permissions the caller may grant",
    tag="agents",
    ok=RoleList,
    errors=(403,),
)
document(
    "PUT",
    "/api/roles/{name}",
    "Create (201) or replace a custom role: a subset of a built-in role's permissions",
    tag="agents",
    ok=RoleWrap,
    body=DefineRoleBody,
    errors=(400, 403, 409),
    path_params=_ROLE,
)
document(
    "DELETE",
    "/api/roles/{name}",
    "Delete a custom role nobody holds",
    tag="agents",
    ok=Ok,
    errors=(403, 404, 409),
    path_params=_ROLE,
)
# SCIM 2.0 (RFC 7644): SCIM documents in and out, SCIM error documents
_SCIM_ID = {"id": {"type": "string", "minLength": 1, "maxLength": 64}}


def _scim(
    method: str,
    path: str,
    summary: str,
    *,
    ok: type | None = None,
    ok_status: int = 200,
    body: type | None = None,
    errors: tuple[int, ...],
    path_params: dict[str, dict[str, Any]] | None = None,
) -> None:
    """A SCIM operation: SCIM documents in and out, SCIM error documents."""
    document(
        method,
        path,
        summary,
        tag="scim",
        ok=ok,
        ok_status=ok_status,
        body=body,
        content_type=SCIM_TYPE if ok is not None else JSON_TYPE,
        errors=errors,
        path_params=path_params,
        error_content_type=SCIM_TYPE,
        error_kind=ScimErrorOut,
    )


_scim(
    "GET",
    "/scim/v2/ServiceProviderConfig",
    "SCIM: what is supported",
    ok=ServiceProviderConfig,
    errors=(403,),
)
_scim("GET", "/scim/v2/Schemas", "SCIM: the attributes kept", ok=ScimSchemaList, errors=(403,))
_scim(
    "GET",
    "/scim/v2/ResourceTypes",
    "SCIM: Users and Groups",
    ok=ScimResourceTypeList,
    errors=(403,),
)
_scim(
    "GET",
    "/scim/v2/Users",
    "SCIM: list users (filter userName/externalId/emails eq)",
    ok=ScimUserList,
    errors=(400, 403),
)
_scim(
    "POST",
    "/scim/v2/Users",
    "SCIM: provision an agent",
    ok=ScimUserOut,
    ok_status=201,
    body=ScimUserIn,
    errors=(403, 409),
)
for _method, _summary, _body, _status in (
    ("GET", "SCIM: one user", None, 200),
    ("PUT", "SCIM: replace a user", ScimUserIn, 200),
    ("PATCH", "SCIM: change a user (active false = leaver)", ScimPatch, 200),
):
    _scim(
        _method,
        "/scim/v2/Users/{id}",
        _summary,
        ok=ScimUserOut,
        body=_body,
        errors=(400, 403, 404, 409),
        path_params=_SCIM_ID,
    )
_scim(
    "DELETE",
    "/scim/v2/Users/{id}",
    "SCIM: deprovision (disable, forget the record)",
    ok_status=204,
    errors=(403, 404),
    path_params=_SCIM_ID,
)
_scim(
    "GET",
    "/scim/v2/Groups",
    "SCIM: list groups (filter displayName eq)",
    ok=ScimGroupList,
    errors=(400, 403),
)
_scim(
    "POST",
    "/scim/v2/Groups",
    "SCIM: create a group",
    ok=ScimGroupOut,
    ok_status=201,
    body=ScimGroupIn,
    errors=(403, 409),
)
_scim(
    "GET",
    "/scim/v2/Groups/{id}",
    "SCIM: one group",
    ok=ScimGroupOut,
    errors=(403, 404),
    path_params=_SCIM_ID,
)
_scim(
    "PUT",
    "/scim/v2/Groups/{id}",
    "SCIM: replace a group and its members",
    ok=ScimGroupOut,
    body=ScimGroupIn,
    errors=(400, 403, 404, 409),
    path_params=_SCIM_ID,
)
_scim(
    "PATCH",
    "/scim/v2/Groups/{id}",
    "SCIM: rename a group, add or remove members (roles follow)",
    ok_status=204,
    body=ScimPatch,
    errors=(400, 403, 404, 409),
    path_params=_SCIM_ID,
)
_scim(
    "DELETE",
    "/scim/v2/Groups/{id}",
    "SCIM: delete a group (its members' roles are worked out again)",
    ok_status=204,
    errors=(403, 404, 409),
    path_params=_SCIM_ID,
)
document(
    "GET",
    "/api/scim/settings",
    "Which role each identity-provider group gives",
    tag="agents",
    ok=ScimSettingsOut,
    errors=(403,),
)
document(
    "PUT",
    "/api/scim/settings",
    "Map identity-provider groups to roles",
    tag="agents",
    ok=ScimSettingsOut,
    body=ScimSettingsBody,
    errors=(400, 403, 404),
)
document(
    "POST",
    "/api/agents/{agent_id}/activation-link",
    "A one-time link on which a provisioned agent sets a password and second factor",
    tag="agents",
    ok=ActivationLink,
    errors=(403, 404, 409),
    path_params=_AGENT,
)
document(
    "GET",
    "/api/oidc/settings",
    "Single sign-on settings of own tenant (never the client secret)",
    tag="tenant",
    ok=OidcSettingsOut,
    errors=(403,),
)
document(
    "PUT",
    "/api/oidc/settings",
    "Set up single sign-on with an identity provider the operator allowed (fresh step-up)",
    tag="tenant",
    ok=OidcSettingsOut,
    body=OidcSettingsBody,
    errors=(400, 403, 404),
)
document(
    "DELETE",
    "/api/oidc/settings",
    "Turn single sign-on off (fresh step-up)",
    tag="tenant",
    ok=OidcSettingsOut,
    errors=(403, 404),
)
_INVITE = {"invite_id": _ID}
document(
    "GET",
    "/api/invites",
    "Agent invites of own tenant, with status (pending, used, expired, revoked)",
    tag="agents",
    ok=InviteList,
    errors=(403,),
)
document(
    "POST",
    "/api/invites",
    "Invite an agent: one-time link, the invitee sets password and TOTP (shown once)",
    tag="agents",
    ok=InviteIssued,
    ok_status=201,
    body=CreateInviteBody,
    errors=(400, 403, 409),
)
document(
    "DELETE",
    "/api/invites/{invite_id}",
    "Revoke a pending invite",
    tag="agents",
    ok=Ok,
    errors=(403, 404),
    path_params=_INVITE,
)
document(
    "POST",
    "/api/invite/open",
    "Invitee: check an invite token and start TOTP enrolment",
    tag="session",
    ok=InviteOpened,
    body=OpenInviteBody,
    auth=False,
    errors=(403, 404, 410, 429),
)
document(
    "POST",
    "/api/invite/redeem",
    "Invitee: set own password, confirm TOTP, create the account and log in",
    tag="session",
    ok=InviteRedeemed,
    ok_status=201,
    body=RedeemInviteBody,
    auth=False,
    errors=(400, 403, 404, 409, 410, 429),
)
document(
    "GET",
    "/api/me/sessions",
    "Own live sessions (device, network prefix)",
    tag="me",
    ok=OwnSessions,
    errors=(403,),
)
document(
    "DELETE",
    "/api/me/sessions/{session_id}",
    "End another of own sessions",
    tag="me",
    ok=Ok,
    errors=(403, 404, 409),
    path_params={"session_id": _ID},
)
document(
    "GET",
    "/api/agents/activity",
    "Last logins and dormant accounts",
    tag="agents",
    ok=ActivityList,
    errors=(403,),
)
document(
    "PUT",
    "/api/tenant/dormancy",
    "Disable accounts after N days dormant",
    tag="tenant",
    ok=DormancySet,
    body=DormancyBody,
    errors=(403, 404),
)
# step-up, policy schema and keyword lists
document(
    "POST",
    "/api/me/reauth",
    "Step up with password and TOTP before credential changes",
    tag="session",
    ok=Reauthenticated,
    body=ReauthBody,
    errors=(403,),
)
document(
    "GET",
    "/api/policy/schema",
    "Policy settings (with meanings) and the effective per-audience table",
    tag="policy",
    ok=PolicySchemaOut,
    errors=(403, 404),
)
_LIST = {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"}}
document(
    "GET",
    "/api/policy/keyword-lists",
    "Own tenant's keyword lists and their limits",
    tag="policy",
    ok=KeywordLists,
    errors=(403, 404),
)
document(
    "GET",
    "/api/policy/keyword-lists/{name}",
    "One keyword list's text",
    tag="policy",
    ok=KeywordListOut,
    errors=(400, 403, 404),
    path_params=_LIST,
)
document(
    "PUT",
    "/api/policy/keyword-lists/{name}",
    "Upload or replace a keyword list (term<TAB>category<TAB>action lines)",
    tag="policy",
    ok=KeywordListSaved,
    body=KeywordListBody,
    errors=(403, 404),
    path_params=_LIST,
)
document(
    "DELETE",
    "/api/policy/keyword-lists/{name}",
    "Delete a keyword list",
    tag="policy",
    ok=KeywordListDeleted,
    errors=(400, 403, 404),
    path_params=_LIST,
)

# governance
document(
    "GET",
    "/api/audit/verify",
    "Verify own tenant's audit hash chain (audited)",
    tag="audit",
    ok=AuditVerified,
    errors=(403,),
)
_FIRST_ALERT = {"alert_id": "$response.body#/alerts/0/id"}
document(
    "GET",
    "/api/alerts",
    "Alerts of own tenant",
    tag="alerts",
    ok=AlertList,
    query=AlertsQuery,
    errors=(403,),
    links={
        name: {"operationId": op_id, "parameters": _FIRST_ALERT}
        for name, op_id in (
            ("AckAlert", "post_api_alerts_alert_id_ack"),
            ("ResolveAlert", "post_api_alerts_alert_id_resolve"),
        )
    },
)
document(
    "GET",
    "/api/alerts/stream",
    "Live alert list (Server-Sent Events)",
    tag="alerts",
    content_type="text/event-stream",
    errors=(403,),
    description="`event: alerts` with `data:` an `AlertList` now and whenever an alert "
    "fires or changes; `: keep-alive` comments every 15 s. Ends when the "
    "session is revoked or expires; never extends the session.",
)
_ALERT = {"alert_id": _INT_ID}
document(
    "POST",
    "/api/alerts/{alert_id}/ack",
    "Acknowledge an alert (files it under the open incident, or opens one)",
    tag="alerts",
    ok=AlertChanged,
    errors=(403, 404, 409),
    path_params=_ALERT,
)
document(
    "POST",
    "/api/alerts/{alert_id}/resolve",
    "Resolve an alert",
    tag="alerts",
    ok=AlertChanged,
    errors=(403, 404, 409),
    path_params=_ALERT,
)
document(
    "GET",
    "/api/governance/settings",
    "Alert rules, working hours, audit and data retention, notification channels, approvals",
    tag="governance",
    ok=GovernanceSettingsWrap,
    errors=(403, 404),
)
document(
    "PUT",
    "/api/governance/settings",
    "Change governance settings (channel secrets are write-only)",
    tag="governance",
    ok=GovernanceSettingsWrap,
    body=GovernanceSettingsBody,
    errors=(403, 404),
)
_INCIDENT = {"incident_id": _INT_ID}
_NEW_INCIDENT = {"incident_id": "$response.body#/incident/id"}
document(
    "GET",
    "/api/incidents",
    "Incidents of own tenant",
    tag="incidents",
    ok=IncidentList,
    errors=(403,),
)
document(
    "POST",
    "/api/incidents",
    "Open an incident (one open at a time)",
    tag="incidents",
    ok=IncidentWrap,
    ok_status=201,
    body=IncidentBody,
    errors=(403, 409),
    links={
        "GetIncident": {
            "operationId": "get_api_incidents_incident_id",
            "parameters": _NEW_INCIDENT,
        },
        "CloseIncident": {
            "operationId": "post_api_incidents_incident_id_close",
            "parameters": _NEW_INCIDENT,
        },
    },
)
document(
    "GET",
    "/api/incidents/{incident_id}",
    "An incident with its timeline (audited)",
    tag="incidents",
    ok=IncidentDetail,
    errors=(403, 404),
    path_params=_INCIDENT,
)
document(
    "POST",
    "/api/incidents/{incident_id}/close",
    "Close an incident with a summary",
    tag="incidents",
    ok=Ok,
    body=CloseIncidentBody,
    errors=(403, 404, 409),
    path_params=_INCIDENT,
)
document(
    "POST",
    "/api/emergency/revoke-sessions",
    "Log every agent of own tenant out "
    "(keeps the caller's session unless keep_own_session is false)",
    tag="emergency",
    ok=SessionsRevoked,
    body=KeepBody,
    errors=(403,),
    description="The body may be left out (then the caller's session is kept).",
)
document(
    "POST",
    "/api/emergency/force-password-reset",
    "Every other agent must choose a new password (their sessions end)",
    tag="emergency",
    ok=PasswordResetsForced,
    errors=(403,),
)
document(
    "POST",
    "/api/emergency/pause-plugins",
    "Pause or resume deliveries to all plugins of own tenant",
    tag="emergency",
    ok=PluginsPaused,
    body=PauseBody,
    errors=(403,),
)
_GRANT = {"grant_id": _INT_ID}
_NEW_GRANT = {"grant_id": "$response.body#/grant/id"}
document(
    "POST",
    "/api/approvals",
    "Ask for access to something sensitive (201 granted at once, 202 waiting for a second person)",
    tag="approvals",
    ok=GrantWrap,
    ok_status=201,
    extra_ok={202: GrantWrap},
    body=ApprovalRequestBody,
    errors=(403,),
    links={
        name: {"operationId": op_id, "parameters": _NEW_GRANT}
        for name, op_id in (
            ("Approve", "post_api_approvals_grant_id_approve"),
            ("Deny", "post_api_approvals_grant_id_deny"),
        )
    },
)
document(
    "GET",
    "/api/approvals",
    "Access requests of own tenant",
    tag="approvals",
    ok=GrantList,
    query=GrantsQuery,
    errors=(403,),
)
document(
    "POST",
    "/api/approvals/{grant_id}/approve",
    "Approve a request (not one's own)",
    tag="approvals",
    ok=GrantWrap,
    errors=(403, 404, 409),
    path_params=_GRANT,
)
document(
    "POST",
    "/api/approvals/{grant_id}/deny",
    "Deny a request",
    tag="approvals",
    ok=GrantWrap,
    errors=(403, 404, 409),
    path_params=_GRANT,
)

# installation operator (403 `forbidden` to everyone else, tenant admins included)
_OPERATOR = "Installation operators only; anyone else gets 403 `forbidden`."
document(
    "GET",
    "/api/operator/tenants",
    "Every tenant of the installation",
    tag="operator",
    ok=OperatorTenantList,
    errors=(403,),
    description=_OPERATOR,
)
document(
    "POST",
    "/api/operator/tenants",
    "Create a tenant",
    tag="operator",
    ok=OperatorTenantWrap,
    ok_status=201,
    body=CreateTenantBody,
    errors=(403, 409),
    description=_OPERATOR,
)
document(
    "POST",
    "/api/operator/tenants/{tenant_id}/freeze",
    "Freeze or unfreeze any tenant",
    tag="operator",
    ok=OperatorTenantFrozen,
    body=FreezeBody,
    errors=(403, 404),
    path_params={"tenant_id": _ID},
    description=_OPERATOR,
)
document(
    "GET",
    "/api/operator/settings",
    "Installation state (no key material)",
    tag="operator",
    ok=InstallationSettings,
    errors=(403,),
    description=_OPERATOR,
)

# console helpers
document(
    "GET",
    "/api/team",
    "Colleagues with presence and load, and queues (transfer picker)",
    tag="team",
    ok=TeamOut,
    errors=(403,),
)
document(
    "GET",
    "/api/canned",
    "Own tenant's canned responses",
    tag="team",
    ok=CannedOut,
    errors=(403, 404),
)
document(
    "PUT",
    "/api/canned",
    "Replace the canned responses (policy-checked)",
    tag="team",
    ok=CannedOut,
    body=CannedList,
    errors=(403, 404),
)
document(
    "GET",
    "/api/chats/{chat_id}/helpdesk",
    "The chat customer's open helpdesk tickets (chat's own agent or takeover)",
    tag="chats",
    ok=ChatHelpdesk,
    errors=(403, 404),
    path_params={"chat_id": _ID},
)
document(
    "POST",
    "/api/inbound/{tenant}/{plugin}",
    "A helpdesk replies to, notes on, marks handled or closes a chat (signed or token webhook)",
    tag="plugins",
    ok=InboundResult,
    body=InboundRequest,
    auth=False,
    errors=(401, 404, 409),
    path_params={
        "tenant": {"type": "string", "minLength": 1, "maxLength": 64},
        "plugin": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    description="Signed with `X-Cipherdesk-Signature: t=<unix>,v1=<hex HMAC-SHA256>` "
    "or Zendesk's `X-Zendesk-Webhook-Signature` (+ `-Timestamp`) using the "
    "tenant plugin's `inbound_secret`; no session. Freshdesk (token mode): the "
    "`inbound_secret` as `X-Cipherdesk-Token` or as the password of Basic "
    "authentication, with `event` and `ts` required in the body. `note` reaches "
    "the chat's agents only, `handled` marks the chat for the console (the "
    "customer's chat stays open). 401 `bad_signature` also for an unknown tenant "
    "or plugin; 400 `stale_event` (token mode, `ts` off by more than 300 s); 409 "
    "`replayed`, `chat_closed` or `too_many_notes`.",
)

# a signed-in customer's own chats, from the widget (issue 15.2)
document(
    "POST",
    "/api/public/export/{tenant_id}",
    "The signed-in customer's own chats (a fresh widget identity token; CORS for the "
    "tenant's allowed origins only)",
    tag="public",
    ok=CustomerExportOut,
    body=CustomerExportRequest,
    auth=False,
    errors=(401, 403, 404, 429),
    path_params={"tenant_id": {"type": "string", "maxLength": 64}},
)

# attachments (issue 16.6)
_FILE_TICKET = {"ticket": {"type": "string", "maxLength": 512}}
document(
    "POST",
    "/api/files/{ticket}",
    "Upload one attachment with the ticket an `upload` frame returned (the body is the "
    "file's name and bytes sealed with the ticket's key, application/octet-stream)",
    tag="public",
    ok=FileUploadedOut,
    ok_status=201,
    auth=False,
    errors=(400, 403, 404, 409, 410, 413, 415, 422, 503),
    path_params=_FILE_TICKET,
    description="The ticket is the credential (no session, no cookie); a customer's ticket "
    "answers the tenant's allowed origins only (CORS), an agent's the console's. The body: "
    "`nonce(24) ‖ secretbox(len(name) as 2 bytes ‖ name in UTF-8 ‖ file)`. 400 "
    "`bad_body`/`bad_name`, 403 `ticket_invalid`/`forbidden`/`files_off`, 410 "
    "`ticket_expired`, 413 `payload_too_large`, 415 `file_type`, 422 "
    "`file_unreadable`/`file_too_big`/`file_infected`/`blocked` (the policy refused the "
    "file name; `kinds`), 503 `busy` (with Retry-After), 409 "
    "`chat_closed`/`not_assigned`/`consent_required`, 503 `scan_unavailable`.",
)
document(
    "GET",
    "/api/files/{ticket}",
    "Read one attachment with the ticket a `fetch` frame returned (sealed with its key)",
    tag="public",
    auth=False,
    content_type="application/octet-stream",
    errors=(403, 404, 410),
    path_params=_FILE_TICKET,
)

# service quality (issue 15.4)
document(
    "GET",
    "/api/quality",
    "Service-quality report by agent, queue or day: queue wait, first response, handle "
    "time, transfers, CSAT, reopen rate, SLA breaches",
    tag="governance",
    ok=QualityOut,
    query=QualityQueryParams,
    errors=(400, 403),
)
document(
    "GET",
    "/api/quality.csv",
    "The quality report as CSV (UTF-8 with BOM, one row per group and a total)",
    tag="governance",
    query=QualityCsvQueryParams,
    content_type="text/csv",
    errors=(400, 403),
)

# chat history (issue 16 item 5)
document(
    "GET",
    "/api/history/chats",
    "Closed chats: filter, keyed-hash text search (a chat is searchable seconds after its"
    " close), a customer's previous chats, CSAT per agent",
    tag="chats",
    ok=HistoryList,
    query=HistoryQueryParams,
    errors=(400, 403, 404),
)
document(
    "GET",
    "/api/history/chats/{chat_id}",
    "Read a closed chat's transcript (read-only, audited; another agent's needs approval)",
    tag="chats",
    ok=Transcript,
    errors=(403, 404),
    path_params={"chat_id": _ID},
)
document(
    "GET",
    "/api/public/notice/{tenant_id}",
    "The tenant's current privacy notice, for its widget (public, CORS *)",
    tag="public",
    ok=PublicNotice,
    auth=False,
    errors=(404,),
    path_params={"tenant_id": {"type": "string", "maxLength": 64}},
)
document(
    "GET",
    "/api/tenant/privacy-notice",
    "Own tenant's privacy notice and its versions",
    tag="tenant",
    ok=NoticeAdminView,
    errors=(403, 404),
)
document(
    "PUT",
    "/api/tenant/privacy-notice",
    "Publish a new version of the privacy notice",
    tag="tenant",
    ok=NoticeView,
    body=PublishNoticeBody,
    errors=(400, 403, 404, 409),
)
