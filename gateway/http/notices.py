"""The privacy notice over HTTP: public for the widget, editable by the tenant's admins.

* ``GET /api/public/notice/{tenant_id}`` — the current notice for the widget, which runs
  on the company's site: public (a privacy notice is meant to be read by anyone), no
  credentials, ``Access-Control-Allow-Origin: *`` like ``/.well-known/cipherdesk.json``,
  cached for 30 s. ``version`` 0 means the tenant has no notice.
* ``GET /api/tenant/privacy-notice`` and ``PUT`` (``tenant_manage``) — the current notice
  and the list of versions; a ``PUT`` publishes a new version (gateway/notices.py).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission, require
from gateway.http.plumbing import (
    authed,
    own_tenant,
    public_tenant,
    read_json,
    services_of,
    struct_json,
)
from gateway.http.public import ApiError
from gateway.notices import LANGUAGES, MAX_TEXT_CHARS, NoticeError
from gateway.services import peer_ip
from gateway.sessions import AgentContext
from gateway.store.base import PrivacyNotice

PUBLIC_CACHE_SECONDS = 30
"""How long browsers and proxies may keep the public notice."""


NoticeText = Annotated[str, Meta(max_length=MAX_TEXT_CHARS + 1000)]


class PublicNotice(Struct):
    """The current notice for the widget; ``version`` 0: the tenant has none."""

    version: int
    required: bool
    texts: dict[str, str]


class NoticeView(Struct):
    """A notice version as the admin page reads it."""

    version: int
    required: bool
    texts: dict[str, str]
    created_at: float


class NoticeVersion(Struct):
    """One version in the admin's list (no texts)."""

    version: int
    required: bool
    languages: list[str]
    created_at: float


class NoticeAdminView(Struct):
    current: NoticeView | None
    versions: list[NoticeVersion]


class PublishNoticeBody(Struct, forbid_unknown_fields=True):
    """A new version: texts per language (zh-CN, en, zh-TW), and whether customers must
    accept it before writing."""

    texts: Annotated[dict[Annotated[str, Meta(max_length=16)], NoticeText], Meta(max_length=3)]
    required: bool = False


def _view(notice: PrivacyNotice) -> NoticeView:
    return NoticeView(notice.version, notice.required, dict(notice.texts), notice.created_at)


async def public_notice(request: web.Request) -> web.Response:
    """The tenant's current notice for its widget (see the module docstring)."""
    svc = services_of(request)
    tenant_id = (await public_tenant(svc, request.match_info["tenant_id"])).id
    notice = await svc.chats.notices.current(tenant_id) if svc.chats.notices else None
    body = (
        PublicNotice(notice.version, notice.required, dict(notice.texts))
        if notice
        else PublicNotice(0, False, {})
    )
    return struct_json(
        body,
        headers={
            "Cache-Control": f"public, max-age={PUBLIC_CACHE_SECONDS}",
            "Access-Control-Allow-Origin": "*",
        },
    )


@authed(Permission.TENANT_MANAGE)
async def get_notice(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    assert svc.chats.notices is not None  # wired in gateway/app.py
    versions = await svc.chats.notices.versions(tenant.id)
    return struct_json(
        NoticeAdminView(
            current=_view(versions[0]) if versions else None,
            versions=[
                NoticeVersion(
                    version=v.version,
                    required=v.required,
                    languages=[lang for lang in LANGUAGES if lang in v.texts],
                    created_at=v.created_at,
                )
                for v in versions
            ],
        )
    )


@authed(Permission.TENANT_MANAGE)
async def put_notice(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    body = await read_json(request, PublishNoticeBody)
    assert svc.chats.notices is not None  # wired in gateway/app.py
    try:
        notice = await svc.chats.notices.publish(
            tenant.id, body.texts, body.required, actor=ctx.agent.id, ip=peer_ip(request, svc)
        )
    except NoticeError as exc:
        status = 409 if exc.code == "conflict" else 400
        raise ApiError(status, exc.code, str(exc), field="texts") from None
    return struct_json(_view(notice))


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/public/notice/{tenant_id}", public_notice)
    r.add_get("/api/tenant/privacy-notice", get_notice)
    r.add_put("/api/tenant/privacy-notice", put_notice)
