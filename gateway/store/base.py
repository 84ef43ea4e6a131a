"""The storage contract every backend implements (SQLite embedded, PostgreSQL production).

Why a protocol: the gateway, the plugin outbox and the CLI talk to *a* store; which engine
sits behind it is configuration (``store = "sqlite:///..."`` or ``"postgresql://..."``).
Both backends pass the same test-suite (``tests/gateway/store``).

What the store never sees: plaintext chat content. Message bodies, outbox payloads, flag
originals, TOTP secrets and plugin secrets arrive here already sealed (``bytes``); the
layer above (``gateway/transcripts.py``, ``gateway/secrets.py``) owns the keys. A chat's
data key is stored *wrapped* by the master key; deleting it (``erase_chat``) makes every
sealed row of that chat unreadable — crypto-shredding.

All timestamps are UNIX seconds as ``float`` supplied by the caller (injectable clocks);
the store never reads the wall clock itself, except ``created`` defaults documented below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ChatState = Literal["queued", "active", "closed"]
Sender = Literal["customer", "agent", "system"]
OutboxState = Literal["pending", "delivered", "dead"]


class StoreError(Exception):
    """Base class of store failures the caller can act on."""


class StoreUnavailable(Exception):
    """The database cannot be reached or cannot write right now (PostgreSQL down or
    restarting, a SQLite disk full or failing). Nothing was committed by the failed call,
    so the caller refuses with a retry code (1013 / HTTP 503) and loses nothing that was
    acknowledged; the next call tries again. Not a :class:`StoreError`: those are answers
    about the data, this is about the service."""


class NotFound(StoreError):
    """The addressed row does not exist (or was erased)."""


class Conflict(StoreError):
    """A uniqueness rule was violated (duplicate e-mail, tenant id, ...)."""


class ChatClosed(StoreError):
    """An append to a chat that is closed: checked in the append's own transaction, so a
    close committed by another node a moment earlier is never missed."""


class NotAssigned(StoreError):
    """An agent's reply (``NewMessage.assigned_only``) to a chat that is no longer active
    and assigned to that agent: checked in the append's own transaction."""


@dataclass(slots=True)
class Tenant:
    id: str
    name: str
    allowed_origins: list[str] = field(default_factory=list)
    # "off" | "optional" | "enforced" (widget identity verification, auth/identity.py)
    identity_mode: str = "off"
    # Identity HMAC secrets, sealed by the master key (gateway/secrets.py); newest first.
    identity_secrets_sealed: bytes | None = None
    # Free-form per-tenant settings (policy overrides, limits, allowed link domains...).
    settings: dict[str, Any] = field(default_factory=dict)
    frozen: bool = False
    created_at: float = 0.0


@dataclass(slots=True)
class Agent:
    id: str
    tenant_id: str
    email: str  # stored case-folded/NFKC-normalised by the caller; unique install-wide
    display_name: str
    role: str  # "agent" | "supervisor" | "admin"
    password_hash: str
    totp_secret_sealed: bytes | None = None
    totp_confirmed: bool = False
    totp_last_step: int = 0  # highest TOTP time step accepted (replay protection)
    disabled: bool = False
    created_at: float = 0.0
    password_changed_at: float = 0.0
    # The queues whose waiting chats this agent sees and may accept; () = all of them.
    # Set only by ``set_agent_queues`` (migration 0012).
    queues: tuple[str, ...] = ()
    # The custom role the agent holds (migration 0017), None for the built-in ``role``
    # alone; set only by ``set_agent_role``. ``custom_permissions`` is that role's
    # permission names as read (joined) with the row: () for a role that has vanished,
    # so a dangling reference grants nothing.
    custom_role: str | None = None
    custom_permissions: tuple[str, ...] = ()


@dataclass(slots=True)
class AgentSession:
    token_hash: str  # SHA-256 hex of the bearer token; the token itself is never stored
    agent_id: str
    tenant_id: str
    created_at: float
    last_seen_at: float
    revoked_at: float | None = None
    ip: str = ""
    user_agent: str = ""
    # When the session last proved password + second factor (login or step-up
    # re-authentication); credential changes need it to be recent.
    reauth_at: float = 0.0
    # How it was opened: "totp", "recovery_code", "passkey", "invite" ("" before 0014).
    factor: str = ""


@dataclass(slots=True)
class LockoutRecord:
    """Brute-force state of one key: an opaque keyed hash chosen by
    ``gateway/ratelimit/login.py`` (never a plaintext e-mail address or IP)."""

    key: str
    failures: float = 0.0  # decays over time, hence a float
    last_failure_at: float = 0.0
    locked_until: float = 0.0
    alerted_at: float = 0.0


LockoutChange = Callable[[LockoutRecord | None], LockoutRecord | None]
"""A pure function from the stored record (None: none) to the new one (None: delete)."""


@dataclass(slots=True)
class AuditEvent:
    """One append-only security event. ``details`` must never hold secrets or chat text."""

    ts: float
    action: str
    tenant_id: str | None = None
    actor: str | None = None  # agent id, "cli" or "system"
    target: str | None = None
    ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # assigned by the store
    # Tamper evidence (gateway/governance/auditchain.py), assigned by the store on append: the
    # chain (tenant id, "" for installation events), position, audit-root id and MAC.
    # None on rows written before the chain existed (or inserted behind our back).
    chain: str | None = None
    seq: int | None = None
    key_id: str | None = None
    mac: bytes | None = None


AuditSeal = Callable[[AuditEvent, int, bytes], tuple[str, bytes]]
"""Called by :meth:`Store.append_audit` inside its transaction with the new row, its
``seq`` and the previous row's MAC; returns ``(key_id, mac)`` to store with it."""


@dataclass(slots=True)
class AuditCheckpoint:
    """A signed statement "chain C had MAC M at position S" (Ed25519, gateway key)."""

    chain: str
    seq: int
    mac: bytes
    ts: float
    signer: str  # base64 Ed25519 verify key that signed
    signature: bytes
    reason: str = "periodic"  # "periodic" | "purge" | "manual"
    id: int = 0


@dataclass(slots=True)
class Alert:
    """An anomaly a rule found in the audit stream (gateway/governance/alerts.py)."""

    tenant_id: str
    rule: str
    subject: str  # the actor (agent id), plugin name or "tenant" the rule counted
    dedup_key: str  # unique: one alert per rule, subject and window
    severity: str
    ts: float
    count: int
    details: dict[str, Any] = field(default_factory=dict)
    state: str = "open"  # open | acknowledged | resolved
    acked_by: str | None = None
    acked_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    incident_id: int | None = None
    id: int = 0


@dataclass(slots=True)
class Incident:
    """An emergency-response record: what happened, who did what, in order."""

    tenant_id: str
    severity: str
    title: str
    opened_by: str
    opened_at: float
    state: str = "open"
    closed_at: float | None = None
    id: int = 0


@dataclass(slots=True)
class AccessGrant:
    """A request to access something sensitive, with its reason, decision and expiry."""

    tenant_id: str
    requester: str
    action: str  # "flag.view_original" | "chat.erase" | ...
    target: str
    reason: str
    state: str  # pending | approved | denied
    created_at: float
    approver: str | None = None
    decided_at: float | None = None
    expires_at: float | None = None
    id: int = 0


@dataclass(slots=True)
class IncidentEvent:
    incident_id: int
    ts: float
    actor: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(slots=True)
class Chat:
    id: str
    tenant_id: str
    state: ChatState
    created_at: float
    queue: str = "default"
    assigned_agent_id: str | None = None
    resume_token_hash: str = ""
    # Verified widget identity ({"user_id", "name", "email"}), sealed with the chat key.
    identity_sealed: bytes | None = None
    verified: bool = False
    # Pre-chat form (name, e-mail, topic), sealed with the chat key.
    profile_sealed: bytes | None = None
    last_seq: int = 0
    closed_at: float | None = None
    close_reason: str | None = None
    csat: int | None = None
    accepted_at: float | None = None  # first agent accept (queue time = accepted - created)
    # The customer's consent to the privacy notice ({"version", "at"}), sealed with the
    # chat key; set only by ``set_chat_consent`` (never by ``update_chat``).
    consent_sealed: bytes | None = None
    # Service-quality facts (issue 15.4), each written only by its own store method:
    first_response_at: float | None = None  # first agent reply (``mark_first_response``)
    transfers: int = 0  # hand-overs to another agent or queue (``count_transfer``)
    rated_at: float | None = None  # when ``csat`` was given (``rate_chat``)
    csat_comment_sealed: bytes | None = None  # the rating's comment, sealed with the chat key
    sla_alerted: int = 0  # SLA alerts raised (``mark_sla_alerted``): bit 1 queue, 2 reply
    # "inspect" or "e2e" (issue 13), fixed at open; e2e chats store ciphertext only.
    mode: str = "inspect"
    e2e_epoch: int = 0  # current chat-key epoch (``add_e2e_wraps``), 0 before any key
    # When it last started waiting in a queue (open, or sent back by a transfer); None in
    # rows before migration 0016 (= created_at). Moved only by ``assign_chat``.
    queued_at: float | None = None
    # When the current assignment began, and the first agent reply since (migration 0018):
    # the first-response SLA is timed per assignment. Moved only by ``assign_chat`` and
    # ``mark_answered``; None in rows before 0018.
    assigned_at: float | None = None
    answered_at: float | None = None

    @property
    def waiting_since(self) -> float:
        """When the current (or last) wait in a queue began."""
        return self.queued_at if self.queued_at is not None else self.created_at


@dataclass(frozen=True, slots=True)
class OpenQueue:
    """What consoles list of a tenant's open chats (``Store.list_queue``): every active
    chat, the longest-waiting queued chats of each queue, and how many wait in each queue
    in all (so a console can say how many it does not list)."""

    chats: list[Chat]
    waiting: dict[str, int]


@dataclass(frozen=True, slots=True)
class OpenChatCount:
    """How many open chats share a queue, a state and an assigned agent
    (``Store.count_open_chats``): the team view's load figures, whatever their number."""

    queue: str
    state: ChatState
    assigned_agent_id: str | None
    count: int


@dataclass(slots=True)
class StoredMessage:
    chat_id: str
    seq: int
    msg_id: str  # stored form of the client's id (sealed, transcripts.seal_msg_id); unique per chat
    sender: Sender
    ts: float
    body_sealed: bytes
    sender_agent_id: str | None = None
    # Policy outcome metadata (action + finding kinds), no text: {"action": "mask", "kinds": [...]}
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class NewMessage:
    """What the caller hands to :meth:`Store.append_message`; the store assigns ``seq``."""

    chat_id: str
    msg_id: str
    sender: Sender
    ts: float
    body_sealed: bytes
    sender_agent_id: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    assigned_only: bool = False
    """An agent's own reply: stored only while the chat is active and assigned to
    ``sender_agent_id``, checked in the append's own transaction (else
    :class:`NotAssigned`), so a reply sent as the chat is transferred away is never
    stored, and the caller need not read the chat before each reply."""

    def refused_by_assignment(self, state: str, assigned_agent_id: str | None) -> bool:
        """Whether the chat's ``state`` and assignee refuse this message (an
        ``assigned_only`` reply to a chat no longer active and assigned to its sender)."""
        return self.assigned_only and (
            state != "active" or assigned_agent_id != self.sender_agent_id
        )


@dataclass(slots=True)
class AppendResult:
    message: StoredMessage
    duplicate: bool  # True when msg_id was already stored: nothing new was written


@dataclass(slots=True)
class OutboxEvent:
    """An event for one plugin of one tenant, written in the same transaction as its cause."""

    tenant_id: str
    plugin: str
    event_type: str
    idempotency_key: str  # stable across retries; unique per (plugin, key)
    payload_sealed: bytes  # sealed with the chat's data key when chat_id is set
    chat_id: str | None = None
    created_at: float = 0.0


@dataclass(slots=True)
class OutboxItem:
    id: int  # monotonic: dispatch order per (plugin, chat) follows id
    tenant_id: str
    plugin: str
    event_type: str
    idempotency_key: str
    payload_sealed: bytes
    chat_id: str | None
    created_at: float
    state: OutboxState = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    delivered_at: float | None = None
    lease_token: int = 0  # fencing token of the current claim (incremented by each claim)


@dataclass(slots=True)
class PluginConfig:
    tenant_id: str
    plugin: str
    enabled: bool
    config: dict[str, Any] = field(default_factory=dict)  # non-secret settings
    secrets_sealed: bytes | None = None  # secret settings, sealed by the master key
    updated_at: float = 0.0


@dataclass(slots=True)
class PolicyFlag:
    """A message the policy flagged: supervisors may open the sealed original (audited)."""

    chat_id: str
    tenant_id: str
    seq: int
    kinds: list[str]
    original_sealed: bytes  # sealed with the chat's data key
    created_at: float
    id: int = 0
    reviewed_by: str | None = None


@dataclass(slots=True)
class KeywordListRecord:
    """A keyword list a tenant uploaded as data (validated by ``gateway.policy.lists``)."""

    tenant_id: str
    name: str
    body: str
    terms: int
    digest: str
    updated_at: float
    updated_by: str | None = None


@dataclass(slots=True)
class PurgeCutoffs:
    """Housekeeping: rows dead before these times are deleted (see gateway.housekeeping)."""

    sessions_ended_before: float
    sessions_idle_before: float
    sessions_created_before: float
    tokens_dead_before: float
    lockouts_idle_before: float


@dataclass(frozen=True, slots=True)
class LifecycleCutoffs:
    """Retention of one tenant's secondary data (see :mod:`gateway.retention`): rows
    older than these times are deleted; ``None`` keeps that class forever."""

    flags_before: float | None = None
    """Policy flags (the sealed original of a flagged message) created before this."""
    delivered_before: float | None = None
    """Outbox rows delivered before this."""
    dead_before: float | None = None
    """Dead letters whose event was created before this."""


ReportKind = Literal["erase", "retention"]


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A signed destruction report as stored (migration 0008, :mod:`gateway.reports`).

    ``body`` is the canonical JSON exactly as signed, so verification never depends on
    re-encoding; ``tenant_id`` is ``""`` for the installation-wide part of a run."""

    id: str
    tenant_id: str
    kind: ReportKind
    created_at: float
    body: str
    signature: str
    signer: str


@dataclass(slots=True)
class PrivacyNotice:
    """One version of a tenant's privacy notice (migration 0010, ``gateway/notices.py``).

    Versions are never edited: a change is a new version, so the version recorded with a
    chat's consent keeps naming the text the customer was shown. ``texts`` maps a
    language tag (``zh-CN``, ``en``, ``zh-TW``) to the notice in that language."""

    tenant_id: str
    version: int
    required: bool
    texts: dict[str, str]
    created_by: str
    created_at: float


@dataclass(slots=True)
class Invite:
    """An invitation for a new agent (migration 0007, ``gateway/invites.py``).

    The admin fixes the address, name and role; the invitee picks the password and
    enrols TOTP, so the admin never knows either. ``token_hash`` is an HMAC of the link's
    token under a key derived from the master key (the token itself is never stored).
    ``used_at``/``agent_id`` are set once, when the invite is redeemed.
    """

    id: str
    tenant_id: str
    email: str
    display_name: str
    role: str
    token_hash: str
    created_by: str
    created_at: float
    expires_at: float
    used_at: float | None = None
    agent_id: str | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None
    # "join": a new agent; "mfa_reset": the existing agent ``agent_id`` re-enrols their
    # second factor after an admin reset it (migration 0011).
    purpose: str = "join"

    def status(self, now: float) -> str:
        """``used``, ``revoked``, ``expired`` or ``pending`` at ``now`` (in that order)."""
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "pending"


@dataclass(slots=True)
class CustomRole:
    """A tenant's own role (migration 0017, ``gateway/custom_roles.py``): a named subset
    of a built-in role's permissions, for staff who need less than that role gives."""

    tenant_id: str
    name: str
    base: str  # "agent" | "supervisor" | "admin"
    permissions: tuple[str, ...]
    description: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class OidcSession:
    """A session opened by single sign-on (migration 0020, ``gateway/oidc.py``) and the
    identity provider's refresh token, sealed, checked on a schedule."""

    token_hash: str
    agent_id: str
    tenant_id: str
    refresh_sealed: bytes
    checked_at: float


@dataclass(slots=True)
class ScimUser:
    """The identity provider's view of an agent (migration 0019, ``gateway/scim.py``):
    its SCIM ``userName`` and ``externalId``; the agent row holds everything else."""

    agent_id: str
    tenant_id: str
    user_name: str
    external_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class ScimGroup:
    """A group the identity provider pushes (migration 0019); its display name may map to
    a role (tenant setting ``scim.group_roles``). ``members``: agent ids."""

    id: str
    tenant_id: str
    display_name: str
    external_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    members: tuple[str, ...] = ()


@dataclass(slots=True)
class ApiToken:
    """A scoped API token for automation (migration 0006, ``gateway/api_tokens.py``).

    Only the SHA-256 of the token is kept; ``permissions`` are permission names (tenant
    permissions, or installation permissions for a token of the installation operator).
    """

    id: str
    tenant_id: str
    owner_id: str
    name: str
    token_hash: str
    permissions: list[str]
    created_at: float
    expires_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None


@dataclass(slots=True)
class HistoryQuery:
    """Which closed chats a history listing or search wants (issue 16 item 5).

    Every filter is optional except the tenant. ``token_hashes`` are keyed hashes of the
    search words (gateway/search_index.py): a chat matches when it holds all of them.
    ``before`` is the keyset cursor (closed_at, id) of the last row of the previous page."""

    tenant_id: str
    closed_from: float | None = None
    closed_to: float | None = None
    queue: str | None = None
    agent_id: str | None = None
    csat: int | None = None
    token_hashes: list[str] = field(default_factory=list)
    customer_of: str | None = None
    exclude_chat: str | None = None
    before: tuple[float, str] | None = None
    limit: int = 50


@dataclass(slots=True)
class AgentCsat:
    """How one agent's closed chats in a history range were rated (count and mean 1..5)."""

    agent_id: str
    rated: int
    average: float


@dataclass(slots=True)
class Passkey:
    """A registered WebAuthn credential of an agent (issue 20.1): the public key and the
    authenticator's signature counter; nothing secret."""

    credential_id: str  # base64url, from the authenticator
    agent_id: str
    tenant_id: str
    name: str
    public_key: bytes  # COSE
    sign_count: int
    transports: tuple[str, ...]
    created_at: float
    last_used_at: float | None = None


@dataclass(slots=True)
class E2EDevice:
    """An agent's device key for end-to-end mode (issue 13): the X25519 public key the
    console generated, and -- once a tenant admin signed it offline -- the certificate.
    Nothing secret: the private key never leaves the browser, the signing key never
    reaches the gateway."""

    id: str
    agent_id: str
    tenant_id: str
    public_key: str  # base64, 32 bytes
    name: str
    created_at: float
    certificate: str | None = None  # the signed JSON text (crypto/e2e.py)
    signature: str | None = None  # base64 Ed25519 signature by the tenant key
    expires_at: float | None = None  # the certificate's expiry, copied for queries
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    """A WebAuthn challenge in flight, as the answer takes it back (single use)."""

    agent_id: str | None
    challenge: bytes


@dataclass(frozen=True, slots=True)
class QualityFacts:
    """The service-quality facts of one chat (issue 15.4): no text, no customer data, so
    they outlive the chat's crypto-shredding and feed the quality report and SLA watch."""

    chat_id: str
    queue: str
    state: ChatState
    agent_id: str | None  # the agent holding the chat last (at close: who handled it)
    created_at: float
    accepted_at: float | None
    first_response_at: float | None
    closed_at: float | None
    transfers: int
    csat: int | None
    sla_alerted: int
    queued_at: float | None = None  # last (re)queued; None before 0016 (= created_at)
    assigned_at: float | None = None  # current assignment began; None before 0018
    answered_at: float | None = None  # first agent reply of the current assignment

    @property
    def waiting_since(self) -> float:
        return self.queued_at if self.queued_at is not None else self.created_at

    @property
    def assigned_since(self) -> float | None:
        """When the agent now holding the chat got it (the reply SLA's start)."""
        return self.assigned_at if self.assigned_at is not None else self.accepted_at


EventsArg = list[OutboxEvent] | Callable[[StoredMessage], list[OutboxEvent]] | None


def events_for(stored: StoredMessage, events: EventsArg) -> list[OutboxEvent]:
    """The outbox events to write with ``stored``. A caller may pass a builder instead of a
    list because an event often needs the seq, which only the store assigns."""
    if callable(events):
        return events(stored)
    return events or []


@runtime_checkable
class Store(Protocol):
    """Persistent state of one cipherdesk installation.

    Every method is a coroutine and safe to call concurrently from many connections.
    Methods that write several rows do so in one transaction.
    """

    # -- lifecycle --------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and apply pending migrations (idempotent, safe on every start)."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # -- tenants ----------------------------------------------------------------------
    async def create_tenant(self, tenant: Tenant) -> None:
        """Raises :class:`Conflict` when the id exists."""

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(self) -> list[Tenant]: ...

    async def update_tenant(self, tenant: Tenant) -> None:
        """Overwrite every mutable field (all but ``id`` and ``created_at``).

        Raises :class:`NotFound`."""

    # -- agents -----------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        """Raises :class:`Conflict` when the e-mail (or id) is taken, :class:`NotFound`
        when the tenant does not exist."""

    async def get_agent(self, agent_id: str) -> Agent | None: ...

    async def get_agent_by_email(self, email: str) -> Agent | None: ...

    async def list_agents(self, tenant_id: str | None = None) -> list[Agent]: ...

    async def update_agent(self, agent: Agent) -> None:
        """Overwrite every mutable field. Raises :class:`NotFound`, or :class:`Conflict`
        when the new e-mail is taken.

        ``id``, ``tenant_id`` and ``created_at`` are immutable. ``totp_last_step`` is only
        ever raised (``max(stored, given)``): a stale copy must not reopen a replay window.
        """

    async def advance_totp_step(self, agent_id: str, step: int) -> bool:
        """Atomically raise ``totp_last_step`` to ``step`` if it is higher.

        Returns False when ``step`` is not higher (the code was already used): this is the
        race-free replay check for concurrent logins with the same code.
        """

    async def set_recovery_codes(self, agent_id: str, code_hashes: list[str]) -> None:
        """Replace the agent's recovery codes (all unused). Raises :class:`NotFound`."""

    async def use_recovery_code(self, agent_id: str, code_hash: str, now: float) -> bool:
        """Atomically mark an unused code as used; False when unknown or already used."""

    async def count_recovery_codes(self, agent_id: str) -> int:
        """Number of unused codes left."""

    # -- agent sessions ---------------------------------------------------------------
    async def create_session(self, session: AgentSession) -> None:
        """Raises :class:`Conflict` for a known token hash, :class:`NotFound` for an
        unknown agent."""

    async def get_session(self, token_hash: str) -> AgentSession | None: ...

    async def touch_session(self, token_hash: str, now: float) -> None:
        """Raise ``last_seen_at`` to ``now`` (never lowers it); revoked sessions are left
        alone; unknown tokens are ignored."""

    async def revoke_session(self, token_hash: str, now: float) -> bool:
        """Returns False when the session was unknown or already revoked."""

    async def revoke_agent_sessions(self, agent_id: str, now: float) -> list[str]:
        """Revoke every live session of an agent; returns their token hashes."""

    async def list_sessions(self, agent_id: str) -> list[AgentSession]:
        """Every session of the agent, revoked ones included, newest first."""

    async def mark_session_reauth(self, token_hash: str, now: float) -> bool:
        """Record a successful step-up re-authentication on a live session (raises
        ``reauth_at``, never lowers it). False when unknown or revoked."""

    # -- brute-force state ------------------------------------------------------------
    async def get_lockout(self, key: str) -> LockoutRecord | None: ...

    async def put_lockout(self, record: LockoutRecord) -> None: ...

    async def clear_lockout(self, key: str) -> None: ...

    async def update_lockout(
        self, key: str, change: LockoutChange
    ) -> tuple[LockoutRecord | None, LockoutRecord | None]:
        """Atomically read-modify-write one key: ``change`` sees the committed record
        and its result is stored (or the row deleted for None) before any concurrent
        update of the same key reads it. Returns ``(before, after)``.

        This is what makes parallel login failures count exactly (issue 21.4).
        """

    async def clear_lockouts(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (an admin unlock clears all the
        source-pairs of one account). Returns how many rows went."""

    # -- audit (append-only) ----------------------------------------------------------
    async def append_audit(self, event: AuditEvent, seal: AuditSeal | None = None) -> int:
        """Append and return the new event id. There is no update; deletion is the
        retention purge below a signed checkpoint only (:meth:`purge_audit`).

        With ``seal`` the row joins its chain: in one transaction the chain head is locked
        (row lock on PostgreSQL, the write lock on SQLite), ``seal`` computes the MAC over
        the row and the previous MAC, and row and head are written together, so
        concurrent appends from several nodes never fork a chain. Without ``seal`` the
        row is unchained (the verifier reports such rows).
        """

    async def query_audit(
        self,
        *,
        tenant_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first; page with ``before_id`` = the last id of the previous page.

        ``since <= ts < until``; every given filter must match.
        """

    # -- chats ------------------------------------------------------------------------
    async def create_chat(
        self, chat: Chat, wrapped_key: bytes, customer_keys: Sequence[str] = ()
    ) -> None:
        """Create a chat together with its wrapped data key and its customer keys
        (:mod:`gateway.customers`), in one transaction.

        Raises :class:`Conflict` for a known id, :class:`NotFound` for an unknown tenant.
        """

    async def get_chat(self, chat_id: str) -> Chat | None: ...

    async def get_chat_key(self, chat_id: str) -> bytes | None:
        """The wrapped data key, or None once the chat was erased."""

    async def list_chat_keys(self, after_chat_id: str, limit: int) -> list[tuple[str, bytes]]:
        """Wrapped data keys ordered by chat id, strictly after ``after_chat_id`` ("" for
        the first page): the key-rotation job walks them in batches."""
        ...

    async def replace_chat_key(self, chat_id: str, wrapped: bytes) -> bool:
        """Store a re-wrapped data key; False when the chat has no key (erased meanwhile:
        an erased chat never gets its key back)."""
        ...

    async def update_chat(self, chat: Chat) -> None:
        """Overwrite every mutable field. Raises :class:`NotFound` (erased chats included).

        ``id``, ``tenant_id``, ``created_at`` and ``last_seq`` are not written: ``last_seq``
        belongs to :meth:`append_message`, so a stale copy cannot rewind it.
        """

    async def assign_chat(
        self,
        chat_id: str,
        *,
        agent_id: str | None,
        queue: str | None = None,
        from_states: tuple[ChatState, ...] = ("queued",),
        expected_agent_id: str | None = None,
        check_agent: bool = False,
        now: float,
    ) -> Chat | None:
        """Compare-and-set the chat's assignment; the race-free way to accept/transfer.

        Succeeds only when the chat's state is in ``from_states`` (and, if
        ``check_agent``, its current agent equals ``expected_agent_id``). On success the
        chat becomes ``active`` assigned to ``agent_id`` (``accepted_at`` set if unset),
        or ``queued`` in ``queue`` with no agent when ``agent_id`` is None, and the updated
        chat is returned. Returns None when the condition did not hold (someone else won).
        """

    async def list_chats(
        self,
        tenant_id: str,
        *,
        states: tuple[ChatState, ...] = ("queued", "active"),
        agent_id: str | None = None,
        limit: int = 500,
    ) -> list[Chat]:
        """Oldest first (queue order)."""

    async def list_queue(self, tenant_id: str, *, waiting_per_queue: int) -> OpenQueue:
        """Every active chat of the tenant and the ``waiting_per_queue`` longest-waiting
        queued chats of each of its queues, oldest first, with the number of queued chats
        per queue: one read that stays bounded however many customers wait, and in which
        an agent's own chats are never cut off (``list_chats`` stops at its ``limit``)."""

    async def count_open_chats(self, tenant_id: str) -> list[OpenChatCount]:
        """The tenant's open chats counted by queue, state and assigned agent."""

    async def close_chat(self, chat_id: str, *, closed_at: float, reason: str) -> Chat | None:
        """Compare-and-set a chat to ``closed``: the race-free way to close.

        Succeeds only when the chat exists, is not erased and is not closed yet; sets
        ``closed_at`` and ``close_reason`` and returns the closed chat (a rating is
        recorded apart, by :meth:`rate_chat`). Returns None when the chat was already
        closed (another caller won), erased or is unknown — exactly one of any number of
        concurrent closes gets the chat.
        """

    async def erase_chat(self, chat_id: str, *, shred: bool = True) -> bool:
        """Crypto-shred: delete the chat's data key, messages, flags and pending outbox rows.

        The chat row stays as a tombstone (state "closed", close_reason "erased") so audit
        references resolve; its sealed identity/profile and resume token are cleared.
        Dead outbox rows of the chat go too (a replay could no longer be opened), and so
        do its customer keys (:meth:`chats_of_customer` no longer finds it);
        delivered ones stay as history (their payload is unreadable without the key).
        Afterwards :meth:`get_chat_key` is None, :meth:`messages_after` is empty and
        :meth:`append_message` raises :class:`NotFound`. Returns False when the chat does
        not exist (True again for an already erased chat).

        ``shred=False`` leaves what the engine still keeps of the old bytes outside its
        tables (SQLite's write-ahead log) to one :meth:`shred_erased` call after a run of
        erasures: a retention run or a customer's erasure request erasing many chats in a
        row then shreds once, not once per chat (on SQLite that tripled an erase's cost).
        """

    async def shred_erased(self) -> None:
        """Remove what the engine still keeps of chats erased with ``shred=False``: on
        SQLite, checkpoint and truncate the write-ahead log (the freed pages are zeroed by
        ``secure_delete``); on PostgreSQL nothing (its WAL is the server's)."""

    async def put_attachment(
        self, chat_id: str, file_id: str, blob_sealed: bytes, size: int, created_at: float
    ) -> None:
        """Store a file's sealed bytes and its plain ``size``; a second put of the same
        ``(chat_id, file_id)`` (a re-sent upload) keeps the first. Erasing the chat deletes
        them."""

    async def get_attachment(self, chat_id: str, file_id: str) -> bytes | None:
        """The sealed bytes of a file, or None (unknown, deleted, chat erased)."""

    async def attachment_size(self, chat_id: str, file_id: str) -> int | None:
        """A stored file's plain size without reading its bytes, or None (not stored)."""

    async def delete_attachment(self, chat_id: str, file_id: str) -> None:
        """Forget a file no message names (its upload was refused after storing)."""

    async def list_history(self, query: HistoryQuery) -> list[Chat]:
        """Closed, not erased chats matching ``query``, newest close first."""
        ...

    # -- end-to-end mode (issue 13) -------------------------------------------------------
    async def add_e2e_device(self, device: E2EDevice) -> None:
        """Register a console's device key (uncertified)."""
        ...

    async def get_e2e_device(self, device_id: str) -> E2EDevice | None: ...

    async def list_e2e_devices(
        self, tenant_id: str, agent_id: str | None = None
    ) -> list[E2EDevice]:
        """The tenant's device keys (one agent's when ``agent_id``), oldest first."""
        ...

    async def certify_e2e_device(
        self, device_id: str, tenant_id: str, certificate: str, signature: str, expires_at: float
    ) -> bool:
        """Attach a verified certificate; False when the device is unknown, of another
        tenant or revoked."""
        ...

    async def revoke_e2e_device(self, device_id: str, tenant_id: str, at: float) -> bool: ...

    async def count_pending_e2e_devices(self, agent_id: str) -> int:
        """How many of the agent's live devices still wait for a certificate."""
        ...

    async def add_e2e_member(self, chat_id: str, agent_id: str, reason: str, at: float) -> bool:
        """An agent besides the assigned one takes part (a supervisor watching); False when
        already a member."""
        ...

    async def remove_e2e_member(self, chat_id: str, agent_id: str) -> bool: ...

    async def list_e2e_members(self, chat_id: str) -> list[tuple[str, str]]:
        """``(agent_id, reason)`` of the members, in joining order."""
        ...

    async def add_e2e_wraps(
        self,
        chat_id: str,
        epoch: int,
        wraps: Sequence[tuple[str, str]],
        at: float,
        older: Sequence[tuple[int, str, str]] = (),
        *,
        rekey: bool = False,
    ) -> bool:
        """Store ``(device_id, wrapped key)`` pairs for ``epoch`` -- the current epoch, or
        with ``rekey`` the next one (the chat's epoch moves to it in the same transaction)
        -- and ``(epoch, device_id, wrapped key)`` of earlier epochs (history for a device
        that joined later). False, storing nothing, when ``epoch`` is not the one expected
        (another end re-keyed first) or the chat is not e2e or erased."""
        ...

    async def e2e_wraps_for(self, chat_id: str, device_id: str) -> list[tuple[int, str]]:
        """``(epoch, wrapped key)`` of every epoch wrapped to the device, oldest first."""
        ...

    async def e2e_wrapped_devices(self, chat_id: str, epoch: int) -> set[str]: ...

    # -- passkeys (issue 20.1) ------------------------------------------------------------
    async def add_passkey(self, passkey: Passkey) -> bool:
        """Store a new credential; False when its id is registered already (anyone's)."""
        ...

    async def list_passkeys(self, agent_id: str) -> list[Passkey]:
        """An agent's passkeys, oldest first."""
        ...

    async def get_passkey(self, credential_id: str) -> Passkey | None: ...

    async def passkey_counts(self, tenant_id: str) -> dict[str, int]:
        """How many passkeys each agent of a tenant has (agents with none are absent)."""
        ...

    async def delete_passkey(self, credential_id: str, agent_id: str) -> bool:
        """Remove one of the agent's passkeys; False when it is not theirs or unknown."""
        ...

    async def passkey_used(self, credential_id: str, sign_count: int, at: float) -> bool:
        """Record a login: the counter only moves forward (False: another login with the
        same or a later count won, a cloned authenticator's replay)."""
        ...

    async def add_challenge(
        self,
        challenge_id: str,
        purpose: str,
        agent_id: str | None,
        challenge: bytes,
        expires_at: float,
    ) -> None:
        """Remember a ceremony's challenge until ``expires_at`` (expired ones are purged)."""
        ...

    async def take_challenge(
        self, challenge_id: str, purpose: str, now: float
    ) -> PendingChallenge | None:
        """Remove and return a live challenge: each is answered at most once."""
        ...

    # -- service quality (issue 15.4) ----------------------------------------------------
    async def mark_answered(self, chat_id: str, at: float) -> float | None:
        """Record an agent reply at ``at`` as the answer of the chat's current assignment
        (and as the chat's first response when it has none). Returns the chat's
        first-response time when this call recorded the answer; None when the assignment
        was answered already (so exactly one node's reply counts) or the chat is erased."""
        ...

    async def count_transfer(self, chat_id: str) -> None:
        """One more hand-over of the chat to another agent or queue."""
        ...

    async def rate_chat(
        self, chat_id: str, csat: int, at: float, comment_sealed: bytes | None
    ) -> bool:
        """Record the customer's rating of a closed chat, once: False when it was rated
        already, is not closed, is erased or unknown."""
        ...

    async def mark_sla_alerted(self, chat_id: str, bit: int) -> bool:
        """Set SLA alert ``bit`` (1 queue wait, 2 first response) on the chat; True only
        for the one caller that set it (the alert is raised once across nodes)."""
        ...

    async def quality_facts(
        self, tenant_id: str, since: float, until: float, limit: int
    ) -> list[QualityFacts]:
        """Facts of the tenant's chats created in [since, until), oldest first, at most
        ``limit`` (erased chats included: their facts hold no personal data)."""
        ...

    async def reopened_chats(
        self, tenant_id: str, since: float, until: float, within: float
    ) -> set[str]:
        """Ids of closed chats created in [since, until) whose customer (same customer
        key) opened another chat within ``within`` seconds after the close."""
        ...

    async def sla_due(
        self, tenant_id: str, queue_cutoff: float, reply_cutoff: float, limit: int
    ) -> list[QualityFacts]:
        """Open chats without their SLA alert yet: never accepted and created at or
        before ``queue_cutoff``, or accepted at or before ``reply_cutoff`` and not yet
        answered (a cutoff of -1 disables that check)."""
        ...

    async def csat_by_agent(self, query: HistoryQuery) -> list[AgentCsat]:
        """CSAT count and average per agent over every chat matching ``query`` (no paging)."""
        ...

    async def chats_to_index(self, limit: int = 50) -> list[Chat]:
        """Closed, not erased chats whose words are not in the history search index yet,
        earliest close first (gateway/search_indexer.py)."""
        ...

    async def index_closed_chat(self, chat_id: str, token_hashes: Sequence[str]) -> bool:
        """Add a closed chat's keyed-hash search tokens and mark it indexed, in one
        transaction (idempotent: tokens already there are kept). False, and nothing
        written, when the chat is not closed or was erased meanwhile."""
        ...

    async def chats_closed_before(
        self, cutoff: float, limit: int = 500, tenant_id: str | None = None
    ) -> list[str]:
        """Ids of closed, not yet erased chats closed before ``cutoff`` (retention), of
        one tenant or of all."""
        ...

    async def chats_idle_before(self, tenant_id: str, cutoff: float, limit: int = 500) -> list[str]:
        """Ids of a tenant's open (queued or active) chats with no message since
        ``cutoff`` (their creation counts when they have none): idle auto-close."""
        ...

    async def purge_lifecycle(
        self, tenant_id: str, cutoffs: LifecycleCutoffs, batch: int
    ) -> dict[str, int]:
        """Delete at most ``batch`` of each of a tenant's flags, delivered outbox rows and
        dead letters past ``cutoffs``, in one short transaction; returns the count per
        class (``flags``, ``delivered_outbox``, ``dead_letters``; 0 for a class kept
        forever). Callers repeat while a count equals ``batch``: a day of a busy tenant's
        rows deleted at once held SQLite's only writer (every message append) for
        seconds."""
        ...

    # -- customers (issue 15.3) -------------------------------------------------------
    async def chats_of_customer(self, tenant_id: str, keys: Sequence[str]) -> list[str]:
        """Ids of the tenant's not yet erased chats stored under any of the customer
        ``keys`` (:mod:`gateway.customers`)."""
        ...

    async def customer_keys_of(self, chat_id: str) -> list[str]:
        """The customer keys stored for a chat (empty once it is erased)."""
        ...

    async def chat_by_resume_hash(self, tenant_id: str, token_hash: str) -> str | None:
        """The tenant's not yet erased chat whose resume token hashes to ``token_hash``."""
        ...

    # -- destruction reports ------------------------------------------------------------
    async def add_report(self, report: StoredReport) -> None:
        """Store a signed destruction report (never updated or deleted by the gateway)."""
        ...

    async def list_reports(
        self, tenant_id: str, *, before: float | None = None, limit: int = 50
    ) -> list[StoredReport]:
        """A tenant's reports, newest first, optionally created before ``before``."""
        ...

    async def get_report(self, report_id: str) -> StoredReport | None:
        """One report by id, or None."""
        ...

    # -- messages ---------------------------------------------------------------------
    async def append_message(self, message: NewMessage, events: EventsArg = None) -> AppendResult:
        """Persist a message, assign the chat's next ``seq`` and enqueue outbox events.

        ``events`` is a list, or a function called inside the transaction with the stored
        message (its ``seq`` is only known there) that returns the events to enqueue.

        One transaction: the message, ``chats.last_seq`` and the events land together or
        not at all. If ``(chat_id, msg_id)`` exists, nothing is written and the stored
        message is returned with ``duplicate=True`` (also in a closed chat: a re-send of a
        message stored before the close). Raises :class:`NotFound` for an unknown or erased
        chat and :class:`ChatClosed` for a closed one — the state is read in the append's
        transaction, under the same lock as :meth:`close_chat`.
        """

    def queue_append(
        self, message: NewMessage, events: EventsArg = None
    ) -> Awaitable[AppendResult]:
        """:meth:`append_message` in two steps: the append is queued by this call, and the
        awaitable returned gives its result (or raises what ``append_message`` raises).

        Appends queued one after the other to the same chat are stored in that order
        (consecutive seqs), whether or not the caller waited for one before queueing the
        next. So a connection can queue a message and read its next frame while the first
        is being committed, and its messages still share commits in their order (issue
        18). The append happens even if the result is never awaited.
        """
        ...

    async def messages_after(
        self, chat_id: str, after_seq: int, limit: int = 1000
    ) -> list[StoredMessage]:
        """Messages with ``seq > after_seq``, ascending."""

    async def add_flag(self, flag: PolicyFlag) -> int:
        """Returns the new flag id. Raises :class:`NotFound` for an unknown/erased chat."""

    async def list_flags(
        self,
        tenant_id: str,
        *,
        unreviewed_only: bool = True,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[PolicyFlag]:
        """Newest first, at most ``limit``; page with ``before_id`` = the last id of the
        previous page. Customers make flags (every message the policy flags), so a tenant
        can hold millions: never all at once."""

    async def get_flag(self, flag_id: int) -> PolicyFlag | None: ...

    async def mark_flag_reviewed(self, flag_id: int, reviewer: str) -> None:
        """Raises :class:`NotFound`."""

    # -- plugin outbox ----------------------------------------------------------------
    async def enqueue_events(self, events: list[OutboxEvent]) -> None:
        """Enqueue events that have no message (chat opened/closed...). Duplicate
        ``(plugin, idempotency_key)`` pairs are ignored. New items are due at their
        ``created_at``. Raises :class:`NotFound` (nothing written) when a tenant or chat
        does not exist."""

    async def claim_due_events(self, now: float, limit: int = 100) -> list[OutboxItem]:
        """Pending items with ``next_attempt_at <= now``, at most ``limit``, returned by
        ascending id; when more are due, the longest overdue (then the oldest) are taken.

        Only the *oldest* pending item of each (plugin, chat_id) is returned, so per-chat
        order holds even while an earlier event is backing off (items with no chat are
        each a group of their own).

        Claiming takes a lease: the returned items are not returned again by any claim,
        on any node, until ``now + lease_seconds`` (a constructor argument, default 60 s)
        or until :meth:`mark_delivered` / :meth:`reschedule_event` / :meth:`dead_letter`
        settles them. A node that dies mid-delivery therefore delays its items by one
        lease, after which another node retries them: delivery is *at-least-once*, and
        receivers de-duplicate by ``idempotency_key``. The lease only stops two nodes
        from sending the same item at the same time; deliveries must finish within it.

        Each claim increments the item's ``lease_token`` (returned on the item): the
        fencing token the settling calls below must present.
        """

    async def mark_delivered(self, item_id: int, now: float, *, lease: int | None = None) -> bool:
        """Settle a pending item (ends its lease). With ``lease`` only while the item is
        still claimed with that token: a dispatcher whose lease expired and was taken over
        by another claim is *fenced* (False, nothing written). Unknown ids are ignored:
        the item may have been erased with its chat while it was being delivered."""

    async def reschedule_event(
        self,
        item_id: int,
        *,
        attempts: int,
        next_attempt_at: float,
        error: str,
        lease: int | None = None,
    ) -> bool:
        """Back off a pending item (ends its lease); False (no-op) unless it is pending
        and, with ``lease``, still claimed with that token."""

    async def dead_letter(
        self, item_id: int, *, attempts: int, error: str, lease: int | None = None
    ) -> bool:
        """Give up on a pending item (ends its lease); False (no-op) unless it is pending
        and, with ``lease``, still claimed with that token."""

    async def list_events(
        self,
        *,
        tenant_id: str | None = None,
        plugin: str | None = None,
        state: OutboxState | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        """Items by ascending id (dispatch order)."""

    async def get_event(self, item_id: int) -> OutboxItem | None:
        """One outbox item by id, whatever its state (None if there is none): an admin's
        look-up of one dead letter to replay, found by its key instead of by listing the
        tenant's dead letters. The caller checks the tenant and the state."""

    async def count_events(
        self,
        *,
        tenant_id: str,
        state: OutboxState,
        plugin: str | None = None,
        cap: int,
    ) -> dict[str, int]:
        """How many of ``tenant_id``'s items are in ``state``, per plugin, counting at most
        ``cap`` items in all (an admin's outbox counts: figures, without loading rows and
        their payloads)."""

    async def replay_dead(self, item_id: int, now: float) -> bool:
        """Move a dead item back to pending (attempts reset). False if not dead."""

    # -- plugin configuration -----------------------------------------------------------
    async def put_plugin_config(self, config: PluginConfig) -> None:
        """Insert or overwrite. Raises :class:`NotFound` for an unknown tenant."""

    async def get_plugin_config(self, tenant_id: str, plugin: str) -> PluginConfig | None: ...

    async def list_plugin_configs(self, tenant_id: str | None = None) -> list[PluginConfig]: ...

    # -- tenant keyword lists (policy) ----------------------------------------------------
    async def put_keyword_list(self, record: KeywordListRecord) -> None:
        """Insert or replace one of a tenant's keyword lists."""

    async def list_keyword_lists(self, tenant_id: str) -> list[KeywordListRecord]:
        """A tenant's keyword lists, by name."""
        ...

    async def delete_keyword_list(self, tenant_id: str, name: str) -> bool:
        """Remove a list; False when it did not exist."""
        ...

    # -- per-plugin key-value store ------------------------------------------------------
    async def kv_get(self, tenant_id: str, plugin: str, key: str, now: float) -> bytes | None:
        """A plugin's stored value (sealed bytes); None when absent or expired."""

    async def kv_live_keys(
        self, tenant_id: str, plugin: str, keys: Sequence[str], now: float
    ) -> set[str]:
        """Which of ``keys`` hold a live value: ``kv_get`` for many keys in a few round
        trips (the queue asks for every open chat's mark on each change)."""

    async def kv_put(
        self,
        tenant_id: str,
        plugin: str,
        key: str,
        value: bytes,
        *,
        now: float,
        expires_at: float | None = None,
        only_if_absent: bool = False,
    ) -> bool:
        """Insert or overwrite; with ``only_if_absent`` write only when no live value
        exists (False then). Raises :class:`NotFound` for an unknown tenant."""

    async def kv_delete(self, tenant_id: str, plugin: str, key: str) -> bool:
        """Remove a value; False when there was none."""

    # -- widget identity replay protection ------------------------------------------------
    async def remember_nonce(
        self, tenant_id: str, nonce: str, expires_at: float, now: float
    ) -> bool:
        """Record a nonce; False when it was already recorded and has not expired.

        Expired nonces are purged opportunistically.
        """

    # -- governance: audit chain, checkpoints, keys (gateway/governance/auditchain.py)
    async def audit_chain_rows(
        self, chain: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[AuditEvent]:
        """Rows of one chain by ascending id, unchained rows of the same tenant included
        (``chain`` "" = rows without a tenant), for the verifier."""

    async def audit_chain_heads(self) -> list[tuple[str, int, bytes]]:
        """``(chain, seq, mac)`` of every chain's newest row."""

    async def audit_last_before(self, chain: str, cutoff: float) -> AuditEvent | None:
        """The chained row of highest seq with ``ts < cutoff`` (retention's purge bound)."""

    async def purge_audit(self, chain: str, upto_seq: int) -> int:
        """Delete the chain's rows with ``seq <= upto_seq``; the database refuses unless a
        checkpoint at or above ``upto_seq`` exists. Returns the number deleted."""

    async def add_audit_checkpoint(self, checkpoint: AuditCheckpoint) -> bool:
        """Store a checkpoint; False when one exists for the same (chain, seq)."""

    async def list_audit_checkpoints(self, chain: str) -> list[AuditCheckpoint]:
        """Checkpoints of a chain by ascending seq."""

    async def list_audit_keys(self) -> list[tuple[str, bytes, bool]]:
        """``(key_id, wrapped root, is_current)`` of every audit root."""

    async def add_audit_key(self, key_id: str, wrapped: bytes, now: float) -> bool:
        """Insert the *current* audit root unless one is already current (first node
        wins); returns whether this one was stored."""

    async def replace_audit_key(self, key_id: str, wrapped: bytes) -> None:
        """Store a re-wrapped root (master-key rotation)."""

    # -- governance: alerts and incidents -----------------------------------------------
    async def add_alert(self, alert: Alert) -> int | None:
        """Store an alert; None when its ``dedup_key`` exists (already fired)."""

    async def list_alerts(
        self, tenant_id: str, *, states: tuple[str, ...] | None = None, limit: int = 200
    ) -> list[Alert]:
        """Newest first."""

    async def get_alert(self, alert_id: int) -> Alert | None: ...

    async def set_alert_state(
        self,
        alert_id: int,
        state: str,
        actor: str,
        now: float,
        incident_id: int | None = None,
    ) -> Alert | None:
        """Acknowledge or resolve; returns the updated alert, None when unknown."""

    async def create_incident(self, incident: Incident) -> int: ...

    async def get_incident(self, incident_id: int) -> Incident | None: ...

    async def list_incidents(self, tenant_id: str, limit: int = 50) -> list[Incident]:
        """Newest first."""

    async def close_incident(self, incident_id: int, now: float) -> None: ...

    async def add_incident_event(self, event: IncidentEvent) -> int: ...

    async def list_incident_events(self, incident_id: int) -> list[IncidentEvent]:
        """Timeline, oldest first."""

    # -- governance: forced password resets -------------------------------------------
    async def force_password_resets(self, agent_ids: list[str], actor: str, now: float) -> int:
        """Mark agents as having to change their password; returns how many are marked."""

    async def password_reset_forced(self, agent_id: str) -> bool: ...

    async def clear_forced_password_reset(self, agent_id: str) -> None: ...

    # -- governance: approvals for sensitive access -----------------------------------
    async def add_grant(self, grant: AccessGrant) -> int: ...

    async def get_grant(self, grant_id: int) -> AccessGrant | None: ...

    async def decide_grant(
        self, grant_id: int, *, approved: bool, approver: str, now: float, expires_at: float | None
    ) -> bool:
        """Approve or deny a *pending* grant; False when it was no longer pending."""

    async def list_grants(
        self, tenant_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[AccessGrant]:
        """Newest first."""

    async def live_grant(
        self, tenant_id: str, requester: str, action: str, target: str, now: float
    ) -> AccessGrant | None:
        """An approved grant for exactly this access that has not expired."""

    # -- scoped API tokens (migration 0006) ---------------------------------------------
    async def create_api_token(self, token: ApiToken) -> None:
        """Store a new token (its hash, never the token)."""
        ...

    async def get_api_token(self, token_hash: str) -> ApiToken | None:
        """The token with this hash, revoked and expired ones included."""
        ...

    async def list_api_tokens(self, tenant_id: str) -> list[ApiToken]:
        """Every token of a tenant (or of the operator scope), newest first."""
        ...

    async def revoke_api_token(self, tenant_id: str, token_id: str, now: float) -> bool:
        """Revoke a live token of ``tenant_id``; False if unknown, foreign or revoked."""
        ...

    async def purge_dead_rows(self, cutoffs: PurgeCutoffs) -> dict[str, int]:
        """Delete ended sessions, dead API tokens, dead invites and idle lockout rows past
        ``cutoffs``; returns the count per table (``sessions``, ``api_tokens``,
        ``lockouts``, ``invites``)."""
        ...

    async def touch_api_token(self, token_id: str, now: float) -> None:
        """Raise ``last_used_at`` to ``now``."""
        ...

    async def record_login(self, agent_id: str, at: float) -> None:
        """Remember ``at`` as the agent's last login (never moves it back)."""
        ...

    async def last_logins(self, tenant_id: str) -> dict[str, float]:
        """Agent id -> last login time, for the agents of a tenant that ever logged in."""
        ...

    async def set_agent_queues(self, agent_id: str, queues: Sequence[str]) -> bool:
        """Scope an agent to these queues (empty: all); False for an unknown agent."""
        ...

    # -- single sign-on (migration 0020) ------------------------------------------------
    async def add_oidc_state(
        self, state_hash: str, tenant_id: str, nonce: str, verifier: str, expires_at: float
    ) -> None:
        """Store a login in flight (and drop expired ones)."""
        ...

    async def take_oidc_state(self, state_hash: str, now: float) -> tuple[str, str, str] | None:
        """(tenant, nonce, verifier) of a live state, deleted in the same statement: the
        first callback wins, on any node; None for an unknown, used or expired state."""
        ...

    async def save_oidc_session(self, session: OidcSession) -> None:
        """Create or update (rotated refresh token, check time) a single sign-on session."""
        ...

    async def oidc_sessions_due(self, checked_before: float, limit: int) -> list[OidcSession]:
        """Sessions last checked before ``checked_before``, oldest first."""
        ...

    async def delete_oidc_session(self, token_hash: str) -> None:
        """Forget a single sign-on session's refresh token."""
        ...

    # -- SCIM provisioning (migration 0019) -----------------------------------------------
    async def scim_users(
        self, tenant_id: str, *, user_name: str | None = None, external_id: str | None = None
    ) -> list[ScimUser]:
        """A tenant's provisioned agents, oldest first; ``user_name`` compares without
        case (SCIM's ``userName`` is case-insensitive), ``external_id`` exactly."""
        ...

    async def scim_user(self, tenant_id: str, agent_id: str) -> ScimUser | None:
        """The SCIM record of one agent of the tenant, or None."""
        ...

    async def save_scim_user(self, user: ScimUser, *, new: bool) -> None:
        """Insert (``new``) or update a record; :class:`Conflict` for a ``userName`` the
        tenant already has (compared without case)."""
        ...

    async def delete_scim_user(self, tenant_id: str, agent_id: str) -> bool:
        """Forget the SCIM record (the agent row stays, for the audit trail)."""
        ...

    async def scim_groups(self, tenant_id: str) -> list[ScimGroup]:
        """A tenant's groups with their members, by display name."""
        ...

    async def save_scim_group(self, group: ScimGroup, *, new: bool) -> None:
        """Insert (``new``) or rename a group (members apart); :class:`Conflict` for a
        display name the tenant already has."""
        ...

    async def delete_scim_group(self, tenant_id: str, group_id: str) -> bool:
        """Delete a group and its memberships."""
        ...

    async def change_scim_members(
        self,
        group_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        """Change a group's members in one transaction (``replace``: drop the others
        first)."""
        ...

    async def scim_group_names(self, tenant_id: str, agent_id: str) -> list[str]:
        """The display names of the groups an agent is in."""
        ...

    # -- custom roles (migration 0017) ----------------------------------------------------
    async def list_custom_roles(self, tenant_id: str) -> list[CustomRole]:
        """A tenant's custom roles, by name."""
        ...

    async def save_custom_role(self, role: CustomRole) -> None:
        """Create the role or replace its base, permissions and description (the
        creation time of an existing role is kept)."""
        ...

    async def delete_custom_role(self, tenant_id: str, name: str) -> bool:
        """Delete a role no agent holds; False if unknown *or still held* (one statement,
        so an assignment racing the deletion cannot leave a dangling reference)."""
        ...

    async def set_agent_role(self, agent_id: str, role: str, custom_role: str | None) -> bool:
        """Give an agent a built-in role and optionally a custom role of that base;
        False for an unknown agent."""
        ...

    # -- privacy notices and consent (migration 0010) ---------------------------------
    async def add_privacy_notice(self, notice: PrivacyNotice) -> None:
        """Store a new version; :class:`Conflict` if that version number exists."""
        ...

    async def privacy_notices(self, tenant_id: str, limit: int = 50) -> list[PrivacyNotice]:
        """A tenant's notice versions, newest first."""
        ...

    async def set_chat_consent(self, chat_id: str, consent_sealed: bytes) -> bool:
        """Record the customer's (sealed) consent on an unerased chat; False otherwise."""
        ...

    # -- agent invitations (migration 0007) ---------------------------------------------
    async def create_invite(self, invite: Invite) -> None:
        """Store a new invitation (the keyed hash of its token, never the token)."""
        ...

    async def get_invite(self, token_hash: str) -> Invite | None:
        """The invitation with this token hash, in any state."""
        ...

    async def list_invites(self, tenant_id: str) -> list[Invite]:
        """Every invitation of a tenant, newest first."""
        ...

    async def revoke_invite(self, tenant_id: str, invite_id: str, actor: str, now: float) -> bool:
        """Revoke an unused, unrevoked invitation of ``tenant_id``; False otherwise."""
        ...

    async def claim_invite(self, invite_id: str, agent_id: str, now: float) -> bool:
        """Mark the invitation used by ``agent_id`` if it is still pending at ``now``
        (atomic: of two concurrent claims exactly one is True)."""
        ...
