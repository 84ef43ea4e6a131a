"""HTTP plumbing shared by the built-in plugins: status-code → error mapping that never
puts response bodies (which may echo payload text) or credentials into error messages."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from plugins import __version__
from plugins.api import PermanentError, RetryableError

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


def error_for_status(vendor: str, status: int, headers: Mapping[str, str]) -> Exception | None:
    """The exception for a non-2xx status, or None for 2xx. Messages: vendor + code only."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return RetryableError(
            f"{vendor}: HTTP 429 rate limited",
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status >= 500 or status in _RETRYABLE_4XX:
        return RetryableError(
            f"{vendor}: HTTP {status}", retry_after=parse_retry_after(headers.get("Retry-After"))
        )
    hint = {
        401: "authentication failed (check credentials)",
        403: "forbidden (check the account's permissions)",
        404: "not found (check the base URL / resource)",
        422: "payload rejected",
        400: "bad request",
    }.get(status, "client error")
    return PermanentError(f"{vendor}: HTTP {status} {hint}")


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
    raise RetryableError/PermanentError otherwise. Network failures are retryable."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    headers.update(kwargs.pop("headers", {}) or {})
    try:
        async with http.request(
            method, url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
        ) as resp:
            err = error_for_status(vendor, resp.status, resp.headers)
            if err is not None:
                raise err
            raw = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(f"{vendor}: network error ({type(exc).__name__})") from None
    if not raw or not parse_json:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise RetryableError(f"{vendor}: invalid JSON in response") from None
