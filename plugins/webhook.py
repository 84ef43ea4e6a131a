"""Built-in plugin ``webhook``: POST each event as JSON to a URL, signed.

Request::

    POST <url>
    Content-Type: application/json
    User-Agent: cipherdesk/<version>
    X-Cipherdesk-Event: chat.closed
    Idempotency-Key: <event_id>            (stable across retries: de-duplicate on it)
    X-Cipherdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

During a secret rotation (``previous_secret`` set) the header carries one ``v1=`` per
secret; a receiver accepts the request when any of them matches a secret it knows.

Receivers verify with :func:`verify_signature` — constant-time comparison, and a replay
window (``tolerance``, 300 s by default): a request whose ``t`` is further than that from
the receiver's clock is refused, so a captured request cannot be replayed later. Within
the window, de-duplicate on ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from plugins import __version__
from plugins._http import request_json
from plugins.api import (
    CHAT_EVENT_SCOPES,
    EVENT_SCOPES,
    ConfigField,
    Event,
    Factory,
    Health,
    PluginInfo,
    Scope,
    event_to_dict,
)

SIGNATURE_HEADER = "X-Cipherdesk-Signature"
EVENT_HEADER = "X-Cipherdesk-Event"
DEFAULT_TOLERANCE = 300

INFO = PluginInfo(
    name="webhook",
    version=__version__,
    scopes=frozenset(EVENT_SCOPES | {Scope.CUSTOMER_IDENTITY.value}),
    config_schema=(
        ConfigField(
            name="url",
            type="url",
            required=True,
            help="Receiver URL (https).",
        ),
        ConfigField(name="secret", required=True, secret=True, help="HMAC-SHA256 signing secret."),
        ConfigField(
            name="previous_secret",
            secret=True,
            help="Old secret, also signed with during a rotation.",
        ),
        ConfigField(
            name="inbound_secret",
            secret=True,
            help="Signing secret of the inbound API (helpdesk replies into chats); "
            "unset: no inbound API.",
        ),
        ConfigField(
            name="events",
            type="list",
            default=sorted(CHAT_EVENT_SCOPES),
            choices=tuple(sorted(EVENT_SCOPES)),
            help="Event types to send (default: every chat event; add audit.recorded to "
            "send the tenant's audit log to a SIEM).",
        ),
        ConfigField(
            name="include_identity",
            type="bool",
            default=False,
            help="Send the customer's identity (name, e-mail, user id).",
        ),
        ConfigField(name="timeout", type="float", default=10.0, help="Request timeout, s."),
    ),
    description="POSTs signed JSON events to a URL (Stripe-style HMAC signature).",
)


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str | bytes], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets]
    return ",".join(parts)


def verify_signature(
    secret: str | bytes | Iterable[str | bytes],
    header: str | None,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` (``t=...,v1=...[,v1=...]``) signs ``body`` with ``secret``
    (or any of several secrets) and ``t`` is within ``tolerance`` seconds of ``now``."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    ok = False
    for s in secrets:
        expected = sign(s, timestamp, body)
        for cand in candidates:
            # Evaluate every pair: no early exit that would leak which one matched.
            ok |= hmac.compare_digest(expected, cand)
    return ok


def encode_body(event: Event) -> bytes:
    return json.dumps(event_to_dict(event), separators=(",", ":"), sort_keys=True).encode()


class WebhookPlugin:
    def __init__(
        self,
        config: dict[str, Any],
        secrets: dict[str, Any],
        http: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self._url: str = config["url"]
        self._secrets = [secrets["secret"]] + (
            [secrets["previous_secret"]] if secrets.get("previous_secret") else []
        )
        self._timeout = float(config.get("timeout", 10.0))
        self._http = http
        self._clock = clock
        scopes = set(config.get("events") or CHAT_EVENT_SCOPES) & EVENT_SCOPES
        if config.get("include_identity"):
            scopes.add(Scope.CUSTOMER_IDENTITY.value)
        # The instance's info narrows the factory's scopes to what this tenant configured.
        self.info = PluginInfo(
            name=INFO.name,
            version=INFO.version,
            api_version=INFO.api_version,
            scopes=frozenset(scopes),
            config_schema=INFO.config_schema,
            description=INFO.description,
        )

    def __repr__(self) -> str:  # never show secrets
        return f"<WebhookPlugin scopes={sorted(self.info.scopes)}>"

    async def deliver(self, event: Event) -> None:
        body = encode_body(event)
        ts = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self._secrets, ts, body),
            "Idempotency-Key": event.event_id,
            EVENT_HEADER: event.type,
        }
        await request_json(
            self._http,
            "webhook",
            "POST",
            self._url,
            data=body,
            headers=headers,
            timeout_s=self._timeout,
            parse_json=False,
        )

    async def health(self) -> Health:
        # Probing would mean sending a fake event to the receiver: report config only.
        return Health(ok=True, detail="configured (not probed)")

    async def aclose(self) -> None:
        return None


def create(
    config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
) -> WebhookPlugin:
    return WebhookPlugin(config, secrets, http)


factory = Factory(INFO, create)
info = INFO
