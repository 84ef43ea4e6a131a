"""HTTP plumbing shared by the built-in plugins: status-code → error mapping that never
puts response bodies (which may echo payload text) or credentials into error messages."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from plugins import __version__
from plugins.api import PermanentError, PluginError, RetryableError
from plugins.netguard import BlockedTarget, guarded_socket_factory

USER_AGENT = f"cipherdesk/{__version__}"

# 4xx codes that are worth retrying; every other 4xx is permanent.
_RETRYABLE_4XX = {408, 409, 423, 425, 429}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date. None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,47}$")
MAX_ERROR_BODY = 64 * 1024


def vendor_error_code(raw: bytes) -> str | None:
    """The vendor's machine-readable error code from an error body — Zendesk
    ``{"error": "RecordInvalid"}``, Freshdesk ``{"code": "invalid_credentials"}`` or
    ``{"errors": [{"code": "missing_field"}]}`` — and nothing else of the body: only a
    short identifier-shaped string passes, so no echoed payload text can ride along."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    candidates: list[Any] = []
    if isinstance(data, dict):
        candidates += [data.get("code"), data.get("error")]
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            candidates.append(errors[0].get("code"))
        if isinstance(data.get("error"), dict):
            candidates.append(data["error"].get("code"))
    for value in candidates:
        if isinstance(value, str) and _CODE.match(value):
            return value
    return None


def error_for_status(
    vendor: str, status: int, headers: Mapping[str, str], code: str | None = None
) -> Exception | None:
    """The exception for a non-2xx status, or None for 2xx. Messages: vendor, HTTP status
    and the vendor's error code (see :func:`vendor_error_code`) only."""
    if 200 <= status < 300:
        return None
    suffix = f" [{code}]" if code else ""
    if status == 429:
        return RetryableError(
            f"{vendor}: HTTP 429 rate limited{suffix}",
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status >= 500 or status in _RETRYABLE_4XX:
        return RetryableError(
            f"{vendor}: HTTP {status}{suffix}",
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    hint = {
        401: "authentication failed (check credentials)",
        403: "forbidden (check the account's permissions)",
        404: "not found (check the base URL / resource)",
        422: "payload rejected",
        400: "bad request",
    }.get(status, "redirect not followed" if 300 <= status < 400 else "client error")
    return PermanentError(f"{vendor}: HTTP {status} {hint}{suffix}")


def plugin_session(
    *, allow_private: bool = False, total_timeout: float = 30.0
) -> aiohttp.ClientSession:
    """The HTTP session plugins get: no cookie jar (a cookie one vendor sets for tenant A
    must never ride along on tenant B's request), and — unless the operator allowed private
    targets — a socket factory that refuses every non-public address at connect time
    (:mod:`plugins.netguard`)."""
    connector = aiohttp.TCPConnector(
        socket_factory=None if allow_private else guarded_socket_factory
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=total_timeout),
    )


def blocked_reason(exc: BaseException) -> str | None:
    """The refusal text when ``exc`` is (or wraps) a :class:`BlockedTarget`."""
    inner = getattr(exc, "os_error", None)
    for candidate in (exc, inner):
        if isinstance(candidate, BlockedTarget):
            return str(candidate)
    text = str(exc)
    if "target address not allowed" in text:
        return "target address not allowed"
    return None


async def request_json(
    http: aiohttp.ClientSession,
    vendor: str,
    method: str,
    url: str,
    *,
    timeout_s: float = 10.0,
    parse_json: bool = True,
    **kwargs: Any,
) -> Any:
    """Send one request; return the decoded JSON (or None for an empty body) on 2xx,
    raise RetryableError/PermanentError otherwise. Network failures are retryable; a
    target refused by :mod:`plugins.netguard` is permanent. Redirects are not followed
    (a 3xx is a permanent error): a receiver must not steer requests elsewhere."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    headers.update(kwargs.pop("headers", {}) or {})
    try:
        async with http.request(
            method,
            url,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
            **kwargs,
        ) as resp:
            if 200 <= resp.status < 300:
                raw = await resp.read()
            else:
                body = await resp.content.read(MAX_ERROR_BODY)
                code = vendor_error_code(body)
                err = error_for_status(vendor, resp.status, resp.headers, code)
                assert isinstance(err, PluginError)
                err.status, err.vendor_code = resp.status, code
                raise err
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = blocked_reason(exc)
        if reason is not None:
            raise PermanentError(f"{vendor}: {reason}") from None
        raise RetryableError(f"{vendor}: network error ({type(exc).__name__})") from None
    if not raw or not parse_json:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise RetryableError(f"{vendor}: invalid JSON in response") from None
