"""Every HTTP route of the gateway, registered once (the middlewares live in
:mod:`gateway.http.public` and :mod:`gateway.http.security`)."""

from __future__ import annotations

from aiohttp import web

from gateway.http import (
    account,
    agents,
    audit,
    chats,
    customer_access,
    e2e,
    files,
    governance,
    history,
    inbound,
    invites,
    keys,
    notices,
    oidc,
    operator,
    ops,
    passkeys,
    plugins,
    policy,
    quality,
    reports,
    roles,
    scim,
    sessions,
    team,
    tenant,
    tokens,
)
from gateway.http import web as pages


def setup_routes(app: web.Application) -> None:
    """Register the JSON API, the operator API, the inbound plugin API and the web pages."""
    for module in (account, agents, audit, tenant, policy, chats, governance, keys, operator):
        module.setup_routes(app)
    for module in (team, plugins, tokens, invites, sessions, reports, pages, inbound, history):
        module.setup_routes(app)
    notices.setup_routes(app)
    quality.setup_routes(app)
    passkeys.setup_routes(app)
    roles.setup_routes(app)
    scim.setup_routes(app)
    oidc.setup_routes(app)
    e2e.setup_routes(app)
    customer_access.setup_routes(app)
    files.setup_routes(app)
    ops.setup(app)
