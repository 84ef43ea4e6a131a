"""The registry of documented HTTP operations: :func:`document` declares one.

Kept apart from :mod:`gateway.http.openapi` (which renders the registry) so the contract
module can declare operations while the renderer imports the contract, with no cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented HTTP operation (see :func:`document`)."""

    method: str
    path: str
    summary: str
    tag: str
    ok: type | None = None
    ok_status: int = 200
    body: type | None = None
    query: type | None = None
    auth: bool = True
    errors: tuple[int, ...] = ()
    content_type: str = JSON
    description: str = ""
    extra_ok: dict[int, type | None] = field(default_factory=dict)
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_content_type: str = JSON
    error_kind: type | None = None
    """The Struct of error answers when it is not the API's own (SCIM's error document)."""

    @property
    def operation_id(self) -> str:
        words = re.sub(r"[{}]", "", self.path).strip("/").replace(".", "_")
        return f"{self.method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', words) or 'root'}"


REGISTRY: dict[tuple[str, str], Operation] = {}


def document(
    method: str,
    path: str,
    summary: str,
    *,
    tag: str,
    ok: type | None = None,
    ok_status: int = 200,
    body: type | None = None,
    query: type | None = None,
    auth: bool = True,
    errors: tuple[int, ...] = (),
    content_type: str = JSON,
    description: str = "",
    extra_ok: dict[int, type | None] | None = None,
    path_params: dict[str, dict[str, Any]] | None = None,
    links: dict[str, dict[str, Any]] | None = None,
    error_content_type: str = JSON,
    error_kind: type | None = None,
) -> Operation:
    """Declare one operation. ``path`` is the aiohttp route path (``/api/agents/{agent_id}``).

    ``body``: the Struct the handler decodes (415/413/400 are added); ``ok``: the Struct of
    the success answer (``None`` with a non-JSON ``content_type``); ``errors``: further
    statuses it can answer (401/429 are added for ``auth``); ``path_params``: JSON schema
    per path parameter (default: a string); ``links``: OpenAPI links of the success answer
    (``{"name": {"operationId": ..., "parameters": {...}}}``), which schemathesis follows
    in stateful sequences; ``error_content_type``: ``text/plain`` for pages whose errors
    are aiohttp's plain ones (only ``/api/`` and ``/.well-known/`` answer JSON errors);
    ``error_kind``: the error Struct when it is not :class:`ErrorBody` (SCIM's).
    """
    op = Operation(
        method.upper(),
        path,
        summary,
        tag,
        ok,
        ok_status,
        body,
        query,
        auth,
        tuple(errors),
        content_type,
        description,
        dict(extra_ok or {}),
        dict(path_params or {}),
        dict(links or {}),
        error_content_type,
        error_kind,
    )
    key = (op.method, op.path)
    if key in REGISTRY:
        raise RuntimeError(f"{op.method} {op.path} is documented twice")
    REGISTRY[key] = op
    return op
