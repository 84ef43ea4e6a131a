"""SCIM 2.0 provisioning (issue 20.3; RFC 7643 schema, RFC 7644 protocol): the company's
identity provider creates, updates and deactivates agents and pushes groups that map to
roles, so a leaver loses access within a minute of being switched off at the IdP.

What the IdPs send is taken as they send it, because each speaks its own dialect of the
RFC (the tests replay the requests Microsoft documents for Entra ID's provisioning
service and the ones Okta sends): operation names in any case (``Replace``/``replace``),
``active`` as a boolean or the string ``"False"``, a PATCH with a ``path``
(``emails[type eq "work"].value``, ``name.familyName``) or without one and an object
``value``; group members added and removed by value list or by a
``members[value eq "..."]`` path. Attributes cipherdesk does not keep (titles, phone
numbers, enterprise extensions) are accepted and ignored; everything kept is validated
and bounded.

Mapping. A SCIM User is an agent: ``id`` is the agent id, the login e-mail is the primary
(else the first, else the ``userName`` when it is an address) e-mail, the display name is
``displayName`` (else ``name``), ``active: false`` disables the agent (every session
revoked, live sockets closed 4401), DELETE disables it and forgets the SCIM record (the
agent row stays for the audit trail). The role follows the groups: the tenant setting
``scim.group_roles`` maps group display names to a built-in or custom role, the
strongest mapped role of the agent's groups wins, ``scim.default_role`` (``agent``)
otherwise. Role changes go through :class:`~gateway.custom_roles.CustomRoleService`, so
the provisioning token obeys the same rules as an admin: it can hand out only the
permissions it holds itself.

A provisioned agent has no password anyone knows; its person gets an activation link on
which they choose one and enrol a second factor: by e-mail when the operator set an SMTP
relay (``gateway/activation.py``), else from the admin
(``POST /api/agents/{id}/activation-link``).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from msgspec import Meta, Struct, field

from auth.emails import InvalidEmail, normalize_email
from auth.roles import TENANT_ROLES, Principal, Role
from gateway.activation import ActivationMail
from gateway.audit import Auditor
from gateway.custom_roles import CustomRoleService, RoleRefused
from gateway.logins import CredentialError, LoginService
from gateway.staff_screen import StaffTextScreen
from gateway.store.base import Agent, Conflict, ScimGroup, ScimUser, Store, Tenant

__all__ = [
    "SCHEMA_ERROR",
    "SCHEMA_GROUP",
    "SCHEMA_LIST",
    "SCHEMA_USER",
    "ScimError",
    "ScimGroupIn",
    "ScimPatch",
    "ScimService",
    "ScimSettings",
    "ScimUserIn",
]

SCHEMA_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCHEMA_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCHEMA_LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCHEMA_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCHEMA_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SETTING = "scim"
MAX_PAGE = 100
MAX_GROUPS = 500
MAX_MEMBERS_PER_CHANGE = 1000

Short = Annotated[str, Meta(max_length=256)]
Text = Annotated[str, Meta(max_length=1024)]


class ScimError(Exception):
    """A refusal in SCIM's terms (RFC 7644 §3.12): HTTP ``status``, optional
    ``scim_type`` (``uniqueness``, ``invalidFilter``, ``invalidValue``, ``noTarget``,
    ``mutability``, ``invalidSyntax``) and a ``detail`` that never echoes a secret."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


class ScimName(Struct, rename="camel"):
    formatted: Text | None = None
    given_name: Short | None = None
    family_name: Short | None = None


class ScimEmail(Struct):
    value: Short
    type: Short | None = None
    primary: bool | str | None = None


class ScimUserIn(Struct, rename="camel"):
    """A User as POST and PUT send it (other attributes are ignored)."""

    user_name: Annotated[str, Meta(min_length=1, max_length=256)]
    external_id: Short | None = None
    display_name: Text | None = None
    name: ScimName | None = None
    active: bool | str = True
    emails: Annotated[list[ScimEmail], Meta(max_length=20)] = []


class ScimMember(Struct):
    value: Short


class ScimGroupIn(Struct, rename="camel"):
    """A Group as POST and PUT send it."""

    display_name: Annotated[str, Meta(min_length=1, max_length=256)]
    external_id: Short | None = None
    members: Annotated[list[ScimMember], Meta(max_length=MAX_MEMBERS_PER_CHANGE)] = []


class ScimOperation(Struct):
    op: Annotated[str, Meta(max_length=16)]
    path: Text | None = None
    value: Any = None


class ScimPatch(Struct):
    """A PatchOp message (``schemas`` must name it)."""

    schemas: Annotated[list[Short], Meta(max_length=4)]
    operations: Annotated[list[ScimOperation], Meta(max_length=100)] = field(
        name="Operations", default_factory=list
    )


class ScimMeta(Struct, rename="camel"):
    resource_type: str
    created: str
    last_modified: str
    location: str


class ScimNameOut(Struct):
    formatted: str


class ScimEmailOut(Struct):
    value: str
    type: str
    primary: bool


class ScimUserOut(Struct, rename="camel", omit_defaults=True):
    """A User resource (RFC 7643 §4.1) of what cipherdesk keeps."""

    schemas: list[str]
    id: str
    user_name: str
    display_name: str
    name: ScimNameOut
    active: bool
    emails: list[ScimEmailOut]
    meta: ScimMeta
    external_id: str | None = None


class ScimMemberOut(Struct):
    value: str
    ref: str = field(name="$ref")


class ScimGroupOut(Struct, rename="camel", omit_defaults=True):
    """A Group resource (RFC 7643 §4.2); ``members`` left out when asked to."""

    schemas: list[str]
    id: str
    display_name: str
    meta: ScimMeta
    external_id: str | None = None
    members: list[ScimMemberOut] | None = None


class ScimUserList(Struct, rename="camel"):
    """A ListResponse of Users (RFC 7644 §3.4.2)."""

    schemas: list[str]
    total_results: int
    start_index: int
    items_per_page: int
    resources: list[ScimUserOut] = field(name="Resources")


class ScimGroupList(Struct, rename="camel"):
    """A ListResponse of Groups."""

    schemas: list[str]
    total_results: int
    start_index: int
    items_per_page: int
    resources: list[ScimGroupOut] = field(name="Resources")


class ScimErrorOut(Struct, omit_defaults=True):
    """Every SCIM error answer (RFC 7644 §3.12)."""

    schemas: list[str]
    status: str
    detail: str
    scim_type: str | None = field(name="scimType", default=None)


class ScimAttribute(Struct, rename="camel", omit_defaults=True):
    """One attribute of a schema (RFC 7643 §7), as this service keeps it."""

    name: str
    type: str
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    sub_attributes: list[ScimAttribute] | None = None


class ScimSchema(Struct):
    """A schema definition (RFC 7643 §7): what ``/Schemas`` lists."""

    schemas: list[str]
    id: str
    name: str
    description: str
    attributes: list[ScimAttribute]
    meta: dict[str, str]


class ScimSchemaList(Struct, rename="camel"):
    schemas: list[str]
    total_results: int
    start_index: int
    items_per_page: int
    resources: list[ScimSchema] = field(name="Resources")


class ScimResourceType(Struct):
    """A resource type (RFC 7643 §6): what ``/ResourceTypes`` lists."""

    schemas: list[str]
    id: str
    name: str
    endpoint: str
    description: str
    schema: str
    meta: dict[str, str]


class ScimResourceTypeList(Struct, rename="camel"):
    schemas: list[str]
    total_results: int
    start_index: int
    items_per_page: int
    resources: list[ScimResourceType] = field(name="Resources")


def _attr(name: str, kind: str = "string", **extra: Any) -> ScimAttribute:
    return ScimAttribute(name=name, type=kind, **extra)


_USER_ATTRIBUTES = [
    _attr("userName", required=True, uniqueness="server"),
    _attr("externalId", case_exact=True),
    _attr("displayName"),
    _attr(
        "name",
        "complex",
        sub_attributes=[_attr("formatted"), _attr("givenName"), _attr("familyName")],
    ),
    _attr("active", "boolean"),
    _attr(
        "emails",
        "complex",
        multi_valued=True,
        sub_attributes=[_attr("value"), _attr("type"), _attr("primary", "boolean")],
    ),
]
_GROUP_ATTRIBUTES = [
    _attr("displayName", required=True, uniqueness="server"),
    _attr("externalId", case_exact=True),
    _attr(
        "members",
        "complex",
        multi_valued=True,
        sub_attributes=[
            _attr("value", mutability="immutable"),
            _attr("$ref", "reference", mutability="immutable"),
        ],
    ),
]
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
SCHEMA_RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def schema_list() -> ScimSchemaList:
    """``GET /Schemas``: the User and Group attributes cipherdesk keeps (others sent are
    accepted and ignored)."""
    found = [
        ScimSchema(
            [SCHEMA_SCHEMA],
            schema_id,
            name,
            description,
            attributes,
            {"resourceType": "Schema", "location": f"/scim/v2/Schemas/{schema_id}"},
        )
        for schema_id, name, description, attributes in (
            (SCHEMA_USER, "User", "A cipherdesk agent", _USER_ATTRIBUTES),
            (SCHEMA_GROUP, "Group", "A group whose name may map to a role", _GROUP_ATTRIBUTES),
        )
    ]
    return ScimSchemaList([SCHEMA_LIST], len(found), 1, len(found), found)


def resource_type_list() -> ScimResourceTypeList:
    """``GET /ResourceTypes``: Users and Groups."""
    found = [
        ScimResourceType(
            [SCHEMA_RESOURCE_TYPE],
            name,
            name,
            f"/{name}s",
            description,
            schema_id,
            {"resourceType": "ResourceType", "location": f"/scim/v2/ResourceTypes/{name}"},
        )
        for name, description, schema_id in (
            ("User", "Agents", SCHEMA_USER),
            ("Group", "Groups mapped to roles", SCHEMA_GROUP),
        )
    ]
    return ScimResourceTypeList([SCHEMA_LIST], len(found), 1, len(found), found)


@dataclass(frozen=True, slots=True)
class ScimSettings:
    """A tenant's provisioning settings (``settings["scim"]``)."""

    group_roles: dict[str, str]
    default_role: str = "agent"

    @classmethod
    def of(cls, tenant: Tenant | None) -> ScimSettings:
        raw = (tenant.settings if tenant else {}).get(SETTING)
        raw = raw if isinstance(raw, dict) else {}
        roles = raw.get("group_roles")
        mapping = (
            {str(k): str(v) for k, v in roles.items() if isinstance(v, str)}
            if isinstance(roles, dict)
            else {}
        )
        return cls(group_roles=mapping, default_role=str(raw.get("default_role") or "agent"))

    def as_json(self) -> dict[str, Any]:
        return {"group_roles": dict(self.group_roles), "default_role": self.default_role}


_CONDITION = re.compile(
    r'\s*(userName|externalId|id|displayName|emails\[type eq "work"\]\.value|emails\.value|emails)'
    r'\s+eq\s+"((?:[^"\\]|\\.)*)"\s*',
    re.IGNORECASE,
)
_MEMBER_PATH = re.compile(r'^\s*members\[\s*value\s+eq\s+"([^"]{1,256})"\s*\]\s*$', re.IGNORECASE)
_WORK_EMAIL = re.compile(r'^emails(\[type eq "work"\])?(\.value)?$', re.IGNORECASE)


def parse_filter(raw: str | None) -> list[tuple[str, str]]:
    """``attr eq "value"`` conditions joined by ``and`` (what IdPs send); attribute names
    lower-cased. :class:`ScimError` 400 ``invalidFilter`` for anything else."""
    if raw is None or not raw.strip():
        return []
    if len(raw) > 1024:
        raise ScimError(400, "filter too long", "invalidFilter")
    parts = re.split(r"\s+and\s+(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", raw.strip(), flags=re.I)
    out = []
    for part in parts:
        found = _CONDITION.fullmatch(part)
        if found is None:
            raise ScimError(
                400, "only 'attribute eq \"value\"' filters are supported", "invalidFilter"
            )
        attr = found.group(1).lower()
        if attr.startswith("emails"):
            attr = "emails"
        out.append((attr, found.group(2).replace('\\"', '"').replace("\\\\", "\\")))
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScimError(400, "active must be true or false", "invalidValue")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _UserDraft:
    """The attributes of a User cipherdesk keeps, while a request changes them."""

    user_name: str
    external_id: str | None
    display_name: str
    email: str
    active: bool


class ScimService:
    """The provisioning protocol on top of the agent, role and login services."""

    def __init__(
        self,
        store: Store,
        logins: LoginService,
        roles: CustomRoleService,
        auditor: Auditor,
        activation: ActivationMail,
        names: StaffTextScreen,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._logins = logins
        self._roles = roles
        self._auditor = auditor
        self._activation = activation
        self._names = names
        self._clock = clock

    # -- users ----------------------------------------------------------------------
    async def list_users(
        self, tenant_id: str, raw_filter: str | None, start: int, count: int
    ) -> tuple[list[ScimUserOut], int]:
        """One page of users matching the filter, and how many match in all."""
        conditions = parse_filter(raw_filter)
        agents = {a.id: a for a in await self._store.list_agents(tenant_id)}
        found = []
        for record in await self._store.scim_users(tenant_id):
            agent = agents.get(record.agent_id)
            if agent is None or not _user_matches(conditions, record, agent):
                continue
            found.append((record, agent))
        page = found[max(0, start - 1) : max(0, start - 1) + max(0, min(count, MAX_PAGE))]
        return [self.user_json(r, a) for r, a in page], len(found)

    async def get_user(self, tenant_id: str, agent_id: str) -> ScimUserOut:
        record, agent = await self._user(tenant_id, agent_id)
        return self.user_json(record, agent)

    async def create_user(self, actor: Principal, body: ScimUserIn, ip: str) -> ScimUserOut:
        tenant_id = actor.tenant_id
        draft = _draft(body, fallback_email=None)
        await self._screen_name(tenant_id, draft)
        if await self._store.scim_users(tenant_id, user_name=draft.user_name):
            raise ScimError(409, "a user with this userName exists", "uniqueness")
        role, custom = await self._default_role(tenant_id)
        try:  # created with the base role first, so the base is what must be grantable
            self._roles.check_grantable(actor, role.value)
        except RoleRefused as exc:
            raise ScimError(403 if exc.status == 403 else 409, exc.message) from None
        try:
            # A password nobody knows: the person chooses theirs on the activation link.
            created = await self._logins.create_agent(
                draft.email,
                tenant_id,
                role.value,
                secrets.token_urlsafe(32),
                draft.display_name,
                actor=actor.agent_id,
                ip=ip,
            )
        except CredentialError as exc:
            raise _credential(exc) from None
        agent = created.agent
        now = self._clock()
        record = ScimUser(agent.id, tenant_id, draft.user_name, draft.external_id, now, now)
        await self._store.save_scim_user(record, new=True)
        if custom is not None:
            await self._assign(actor, agent, role, custom, ip)
        if not draft.active:
            await self._logins.set_disabled(agent, True, actor=actor.agent_id, ip=ip, reason="scim")
        else:  # the activation link by e-mail, where the operator set a relay
            await self._activation.offer(agent, actor=actor.agent_id, ip=ip)
        await self._auditor.record(
            "scim.user_created", tenant_id=tenant_id, actor=actor.agent_id, target=agent.id, ip=ip
        )
        return await self.get_user(tenant_id, agent.id)

    async def replace_user(
        self, actor: Principal, agent_id: str, body: ScimUserIn, ip: str
    ) -> ScimUserOut:
        record, agent = await self._user(actor.tenant_id, agent_id)
        await self._apply(actor, record, agent, _draft(body, fallback_email=agent.email), ip)
        return await self.get_user(actor.tenant_id, agent_id)

    async def patch_user(
        self, actor: Principal, agent_id: str, patch: ScimPatch, ip: str
    ) -> ScimUserOut:
        _check_patch(patch)
        record, agent = await self._user(actor.tenant_id, agent_id)
        draft = _UserDraft(
            record.user_name,
            record.external_id,
            agent.display_name,
            agent.email,
            not agent.disabled,
        )
        for operation in patch.operations:
            _patch_user(draft, operation)
        await self._apply(actor, record, agent, draft, ip)
        return await self.get_user(actor.tenant_id, agent_id)

    async def delete_user(self, actor: Principal, agent_id: str, ip: str) -> None:
        record, agent = await self._user(actor.tenant_id, agent_id)
        if not agent.disabled:
            await self._disable(actor, agent, ip)
        await self._store.delete_scim_user(record.tenant_id, record.agent_id)
        await self._auditor.record(
            "scim.user_deleted",
            tenant_id=agent.tenant_id,
            actor=actor.agent_id,
            target=agent.id,
            ip=ip,
        )

    def user_json(self, record: ScimUser, agent: Agent) -> ScimUserOut:
        """A User resource of what cipherdesk keeps."""
        return ScimUserOut(
            schemas=[SCHEMA_USER],
            id=agent.id,
            user_name=record.user_name,
            display_name=agent.display_name,
            name=ScimNameOut(formatted=agent.display_name),
            active=not agent.disabled,
            emails=[ScimEmailOut(value=agent.email, type="work", primary=True)],
            meta=ScimMeta(
                "User",
                _iso(record.created_at),
                _iso(record.updated_at),
                f"/scim/v2/Users/{agent.id}",
            ),
            external_id=record.external_id,
        )

    async def _screen_name(self, tenant_id: str, draft: _UserDraft) -> None:
        """The directory's display name through the tenant's policy, as an admin's would
        go (gateway/staff_screen.py): customers and plugins see it."""
        screened = await self._names.display_name(tenant_id, draft.display_name)
        if screened is None:
            raise ScimError(
                400, "displayName: the policy does not allow what it contains", "invalidValue"
            )
        draft.display_name = screened

    async def _user(self, tenant_id: str, agent_id: str) -> tuple[ScimUser, Agent]:
        record = await self._store.scim_user(tenant_id, agent_id) if len(agent_id) <= 64 else None
        agent = await self._store.get_agent(agent_id) if record is not None else None
        if record is None or agent is None or agent.tenant_id != tenant_id:
            raise ScimError(404, "no such user")
        return record, agent

    async def _apply(
        self, actor: Principal, record: ScimUser, agent: Agent, draft: _UserDraft, ip: str
    ) -> None:
        """Write a changed User: checks first (name and e-mail free, power over the
        agent), then the SCIM record, the agent row, and the active flag."""
        if draft.display_name != agent.display_name:
            await self._screen_name(agent.tenant_id, draft)
        if draft.user_name.lower() != record.user_name.lower() and any(
            u.agent_id != agent.id
            for u in await self._store.scim_users(agent.tenant_id, user_name=draft.user_name)
        ):
            raise ScimError(409, "a user with this userName exists", "uniqueness")
        if draft.email != agent.email:
            other = await self._store.get_agent_by_email(draft.email)
            if other is not None and other.id != agent.id:
                raise ScimError(409, "this e-mail address is not available", "uniqueness")
        changes_agent = draft.email != agent.email or draft.display_name != agent.display_name
        if changes_agent or draft.active != (not agent.disabled):
            try:
                self._roles.check_power_over(actor, agent)
            except RoleRefused as exc:
                raise ScimError(403, exc.message) from None
        record.user_name, record.external_id = draft.user_name, draft.external_id
        record.updated_at = self._clock()
        try:
            await self._store.save_scim_user(record, new=False)
        except Conflict:
            raise ScimError(409, "a user with this userName exists", "uniqueness") from None
        if changes_agent:
            agent.email, agent.display_name = draft.email, draft.display_name
            try:
                await self._store.update_agent(agent)
            except Conflict:
                raise ScimError(409, "this e-mail address is not available", "uniqueness") from None
        if draft.active and agent.disabled:
            await self._logins.set_disabled(
                agent, False, actor=actor.agent_id, ip=ip, reason="scim"
            )
        elif not draft.active and not agent.disabled:
            await self._disable(actor, agent, ip)
        await self._auditor.record(
            "scim.user_updated",
            tenant_id=agent.tenant_id,
            actor=actor.agent_id,
            target=agent.id,
            ip=ip,
            active=draft.active,
        )

    async def _disable(self, actor: Principal, agent: Agent, ip: str) -> None:
        """A leaver: disabled at once, every session revoked (live sockets close 4401).
        The identity provider is the authority here, so the last admin is not spared."""
        try:
            self._roles.check_power_over(actor, agent)
        except RoleRefused as exc:
            raise ScimError(403, exc.message) from None
        await self._logins.set_disabled(agent, True, actor=actor.agent_id, ip=ip, reason="scim")

    # -- groups ---------------------------------------------------------------------
    async def list_groups(
        self, tenant_id: str, raw_filter: str | None, start: int, count: int, members: bool
    ) -> tuple[list[ScimGroupOut], int]:
        conditions = parse_filter(raw_filter)
        found = [
            g for g in await self._store.scim_groups(tenant_id) if _group_matches(conditions, g)
        ]
        page = found[max(0, start - 1) : max(0, start - 1) + max(0, min(count, MAX_PAGE))]
        return [self.group_json(g, members) for g in page], len(found)

    async def get_group(self, tenant_id: str, group_id: str, members: bool) -> ScimGroupOut:
        return self.group_json(await self._group(tenant_id, group_id), members)

    async def create_group(self, actor: Principal, body: ScimGroupIn, ip: str) -> ScimGroupOut:
        tenant_id = actor.tenant_id
        groups = await self._store.scim_groups(tenant_id)
        if len(groups) >= MAX_GROUPS:
            raise ScimError(409, f"at most {MAX_GROUPS} groups per tenant")
        if any(g.display_name == body.display_name for g in groups):
            raise ScimError(409, "a group with this displayName exists", "uniqueness")
        now = self._clock()
        group = ScimGroup(
            "grp_" + uuid.uuid4().hex, tenant_id, body.display_name, body.external_id, now, now
        )
        members = [m.value for m in body.members]
        await self._members_exist(tenant_id, members)
        plan = await self._plan(actor, group, None, set(members))
        await self._store.save_scim_group(group, new=True)
        await self._store.change_scim_members(group.id, add=members)
        await self._carry_out(actor, plan, ip)
        await self._auditor.record(
            "scim.group_created",
            tenant_id=tenant_id,
            actor=actor.agent_id,
            target=group.id,
            ip=ip,
            name=group.display_name,
            members=len(members),
        )
        return await self.get_group(tenant_id, group.id, members=True)

    async def replace_group(
        self, actor: Principal, group_id: str, body: ScimGroupIn, ip: str
    ) -> ScimGroupOut:
        group = await self._group(actor.tenant_id, group_id)
        members = [m.value for m in body.members]
        await self._members_exist(actor.tenant_id, members)
        await self._change_group(
            actor, group, body.display_name, body.external_id, add=members, replace=True, ip=ip
        )
        return await self.get_group(actor.tenant_id, group_id, members=True)

    async def patch_group(self, actor: Principal, group_id: str, patch: ScimPatch, ip: str) -> None:
        _check_patch(patch)
        group = await self._group(actor.tenant_id, group_id)
        name, external = group.display_name, group.external_id
        add: list[str] = []
        remove: list[str] = []
        replace = False
        for operation in patch.operations:
            op = operation.op.lower()
            path = (operation.path or "").strip()
            one = _MEMBER_PATH.match(path)
            if op == "remove" and one:
                remove.append(one.group(1))
            elif path.lower() == "members":
                values = _member_values(operation.value)
                if op == "add":
                    add += values
                elif op == "remove":
                    remove += values
                elif op == "replace":
                    add, remove, replace = values, [], True
                else:
                    raise ScimError(400, f"unsupported op {operation.op[:16]!r}", "invalidSyntax")
            elif path.lower() in ("displayname", "externalid") and op in ("add", "replace"):
                if path.lower() == "displayname":
                    name = _string(operation.value, "displayName")
                else:
                    external = _string(operation.value, "externalId")
            elif not path and op in ("add", "replace") and isinstance(operation.value, dict):
                value = operation.value
                if "displayName" in value:
                    name = _string(value["displayName"], "displayName")
                if "externalId" in value:
                    external = _string(value["externalId"], "externalId")
                if "members" in value:
                    add, remove, replace = _member_values(value["members"]), [], op == "replace"
            else:
                raise ScimError(400, f"cannot {operation.op[:16]} {path[:64]!r}", "noTarget")
        await self._members_exist(actor.tenant_id, add)
        await self._change_group(
            actor, group, name, external, add=add, remove=remove, replace=replace, ip=ip
        )

    async def delete_group(self, actor: Principal, group_id: str, ip: str) -> None:
        group = await self._group(actor.tenant_id, group_id)
        plan = await self._plan(actor, group, group.display_name, set())
        await self._store.delete_scim_group(actor.tenant_id, group.id)
        await self._carry_out(actor, plan, ip)
        await self._auditor.record(
            "scim.group_deleted",
            tenant_id=actor.tenant_id,
            actor=actor.agent_id,
            target=group.id,
            ip=ip,
            name=group.display_name,
        )

    def group_json(self, group: ScimGroup, members: bool) -> ScimGroupOut:
        """A Group resource; ``members`` left out on request (Entra asks with
        ``excludedAttributes=members``)."""
        return ScimGroupOut(
            schemas=[SCHEMA_GROUP],
            id=group.id,
            display_name=group.display_name,
            meta=ScimMeta(
                "Group",
                _iso(group.created_at),
                _iso(group.updated_at),
                f"/scim/v2/Groups/{group.id}",
            ),
            external_id=group.external_id,
            members=[ScimMemberOut(m, f"/scim/v2/Users/{m}") for m in group.members]
            if members
            else None,
        )

    async def _group(self, tenant_id: str, group_id: str) -> ScimGroup:
        for group in await self._store.scim_groups(tenant_id):
            if group.id == group_id:
                return group
        raise ScimError(404, "no such group")

    async def _members_exist(self, tenant_id: str, members: Iterable[str]) -> None:
        for agent_id in dict.fromkeys(members):
            agent = await self._store.get_agent(agent_id) if len(agent_id) <= 64 else None
            if agent is None or agent.tenant_id != tenant_id:
                raise ScimError(400, "a member is not a user of this tenant", "invalidValue")

    async def _change_group(
        self,
        actor: Principal,
        group: ScimGroup,
        name: str,
        external: str | None,
        *,
        add: list[str],
        remove: list[str] | None = None,
        replace: bool = False,
        ip: str,
    ) -> None:
        if len(name) > 256 or not name.strip():
            raise ScimError(400, "displayName must be 1-256 characters", "invalidValue")
        if name != group.display_name and any(
            g.display_name == name and g.id != group.id
            for g in await self._store.scim_groups(group.tenant_id)
        ):
            raise ScimError(409, "a group with this displayName exists", "uniqueness")
        before = group.display_name
        after = set(add) if replace else (set(group.members) | set(add)) - set(remove or ())
        group.display_name, group.external_id = name, external
        plan = await self._plan(actor, group, before, after)
        group.updated_at = self._clock()
        await self._store.save_scim_group(group, new=False)
        await self._store.change_scim_members(
            group.id, add=add, remove=remove or [], replace=replace
        )
        await self._carry_out(actor, plan, ip)
        await self._auditor.record(
            "scim.group_updated",
            tenant_id=group.tenant_id,
            actor=actor.agent_id,
            target=group.id,
            ip=ip,
            name=name,
            renamed_from=before if before != name else None,
            members=len(after),
        )

    # -- roles from groups -----------------------------------------------------------
    async def _plan(
        self,
        actor: Principal,
        group: ScimGroup,
        old_name: str | None,
        after: set[str],
    ) -> list[tuple[Agent, Role, str | None]]:
        """The role each agent touched by a change of ``group`` will have -- ``old_name``
        its display name before (None: new), ``after`` its members after -- with every
        assignment checked (power, grants, last admin) before anything is written."""
        tenant = await self._store.get_tenant(group.tenant_id)
        settings = ScimSettings.of(tenant)
        custom_roles = await self._roles.roles(group.tenant_id)
        plan = []
        for agent_id in sorted(set(group.members) | after):
            agent = await self._store.get_agent(agent_id)
            if agent is None or agent.tenant_id != group.tenant_id:
                continue
            names = set(await self._store.scim_group_names(group.tenant_id, agent_id))
            names.discard(old_name or "")  # display names are unique: only this group
            if agent_id in after:
                names.add(group.display_name)
            role, custom = strongest_role(settings, names, custom_roles)
            await self._check_role(actor, agent, role, custom)
            plan.append((agent, role, custom))
        return plan

    async def _carry_out(
        self, actor: Principal, plan: list[tuple[Agent, Role, str | None]], ip: str
    ) -> None:
        for agent, role, custom in plan:
            await self._assign(actor, agent, role, custom, ip)

    async def _default_role(self, tenant_id: str) -> tuple[Role, str | None]:
        """The role of a user in no mapped group (``scim.default_role``)."""
        tenant = await self._store.get_tenant(tenant_id)
        return strongest_role(ScimSettings.of(tenant), set(), await self._roles.roles(tenant_id))

    async def _check_role(
        self, actor: Principal, agent: Agent, role: Role, custom: str | None
    ) -> None:
        try:
            await self._roles.check_assignment(
                actor, agent, role=None if custom else role.value, custom_role=custom
            )
        except RoleRefused as exc:
            raise ScimError(403 if exc.status == 403 else 409, exc.message) from None

    async def _assign(
        self, actor: Principal, agent: Agent, role: Role, custom: str | None, ip: str
    ) -> None:
        fresh = await self._store.get_agent(agent.id)
        if fresh is None:
            return
        try:
            await self._roles.assign(
                actor,
                fresh,
                role=None if custom else role.value,
                custom_role=custom or None,
                ip=ip,
            )
        except RoleRefused as exc:
            raise ScimError(403 if exc.status == 403 else 409, exc.message) from None


def strongest_role(
    settings: ScimSettings, group_names: set[str], custom_roles: Iterable[Any]
) -> tuple[Role, str | None]:
    """The strongest role the groups map to (built-in rank, a built-in role before a
    custom one of the same base), the default role when none maps."""
    bases = {r.name: Role(r.base) for r in custom_roles}
    best: tuple[int, int, Role, str | None] | None = None
    for name in group_names:
        mapped = settings.group_roles.get(name)
        if mapped is None:
            continue
        candidate: tuple[int, int, Role, str | None]
        if mapped in {r.value for r in TENANT_ROLES}:
            candidate = (Role(mapped).rank, 1, Role(mapped), None)
        elif mapped in bases:
            candidate = (bases[mapped].rank, 0, bases[mapped], mapped)
        else:
            continue  # a mapping to a role since deleted grants nothing
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is not None:
        return best[2], best[3]
    default = settings.default_role
    if default in bases:
        return bases[default], default
    return (Role(default) if default in {r.value for r in TENANT_ROLES} else Role.AGENT), None


def _draft(body: ScimUserIn, fallback_email: str | None) -> _UserDraft:
    active = _truthy(body.active)
    email = _email_of(body.emails, body.user_name, fallback_email)
    display = (body.display_name or "").strip()
    if not display and body.name is not None:
        display = (body.name.formatted or "").strip() or " ".join(
            p for p in (body.name.given_name, body.name.family_name) if p
        )
    return _UserDraft(
        user_name=body.user_name.strip(),
        external_id=body.external_id,
        display_name=(display or email.partition("@")[0])[:120],
        email=email,
        active=active,
    )


def _email_of(emails: list[ScimEmail], user_name: str, fallback: str | None) -> str:
    chosen = [e for e in emails if e.primary in (True, "true", "True")] or emails
    candidates = [e.value for e in chosen] + [user_name] + ([fallback] if fallback else [])
    for candidate in candidates:
        try:
            return normalize_email(candidate)
        except InvalidEmail:
            continue
    raise ScimError(400, "a user needs an e-mail address (emails or userName)", "invalidValue")


def _patch_user(draft: _UserDraft, operation: ScimOperation) -> None:
    op = operation.op.lower()
    if op not in ("add", "replace", "remove"):
        raise ScimError(400, f"unsupported op {operation.op[:16]!r}", "invalidSyntax")
    path = (operation.path or "").strip()
    if not path:
        if op == "remove" or not isinstance(operation.value, dict):
            raise ScimError(400, "a PATCH without a path needs an object value", "invalidSyntax")
        for key, value in operation.value.items():
            _set_user(draft, str(key), value)
        return
    if op == "remove":
        if path.lower() == "externalid":
            draft.external_id = None
            return
        if path.lower() in ("displayname", "name.formatted"):
            draft.display_name = draft.email.partition("@")[0]
            return
        raise ScimError(400, f"{path[:64]!r} cannot be removed", "mutability")
    _set_user(draft, path, operation.value)


def _set_user(draft: _UserDraft, path: str, value: Any) -> None:
    """One attribute of a User, as a PATCH names it (unknown attributes are ignored)."""
    key = path.lower()
    if key == "active":
        draft.active = _truthy(value)
    elif key == "username":
        draft.user_name = _string(value, "userName")
    elif key == "externalid":
        draft.external_id = _string(value, "externalId")
    elif key in ("displayname", "name.formatted"):
        draft.display_name = _string(value, path)[:120]
    elif key == "name" and isinstance(value, dict):
        formatted = value.get("formatted")
        if isinstance(formatted, str) and formatted.strip():
            draft.display_name = formatted.strip()[:120]
    elif _WORK_EMAIL.match(path):
        if isinstance(value, list):
            emails = [
                ScimEmail(value=_string(v.get("value"), "emails"), primary=v.get("primary"))
                for v in value
                if isinstance(v, dict)
            ]
            draft.email = _email_of(emails, "", draft.email)
        else:
            try:
                draft.email = normalize_email(_string(value, "emails"))
            except InvalidEmail:
                raise ScimError(400, "not an e-mail address", "invalidValue") from None


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise ScimError(400, f"{name} must be a string of 1-256 characters", "invalidValue")
    return value.strip()


def _member_values(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_MEMBERS_PER_CHANGE:
        raise ScimError(400, "members must be a list of {value: id}", "invalidValue")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise ScimError(400, "members must be a list of {value: id}", "invalidValue")
        out.append(_string(item.get("value"), "members.value"))
    return out


def _check_patch(patch: ScimPatch) -> None:
    if SCHEMA_PATCH not in patch.schemas or not patch.operations:
        raise ScimError(400, "a PatchOp message with Operations is expected", "invalidSyntax")


def _user_matches(conditions: list[tuple[str, str]], record: ScimUser, agent: Agent) -> bool:
    for attr, value in conditions:
        if attr == "username" and record.user_name.lower() != value.lower():
            return False
        if attr == "externalid" and record.external_id != value:
            return False
        if attr == "id" and agent.id != value:
            return False
        if attr == "emails" and agent.email != _normalized(value):
            return False
        if attr == "displayname" and agent.display_name != value:
            return False
    return True


def _normalized(address: str) -> str | None:
    """An address as login e-mails are stored (None: not an address, matches nothing)."""
    try:
        return normalize_email(address)
    except InvalidEmail:
        return None


def _group_matches(conditions: list[tuple[str, str]], group: ScimGroup) -> bool:
    for attr, value in conditions:
        if attr == "displayname" and group.display_name != value:
            return False
        if attr == "externalid" and group.external_id != value:
            return False
        if attr == "id" and group.id != value:
            return False
        if attr in ("username", "emails"):
            return False
    return True


def _credential(exc: CredentialError) -> ScimError:
    if exc.code == "email_taken":
        return ScimError(409, "this e-mail address is not available", "uniqueness")
    return ScimError(400, exc.message, "invalidValue")
