"""Ticketbox: an example third-party cipherdesk plugin (see docs/PLUGINS.md).

Entry point (pyproject.toml)::

    [project.entry-points."cipherdesk.plugins"]
    ticketbox = "cipherdesk_ticketbox:plugin"
"""

from __future__ import annotations

from typing import Any

import aiohttp

from plugins.api import (
    API_VERSION,
    ChatClosed,
    ConfigField,
    Event,
    Factory,
    Health,
    PermanentError,
    PluginInfo,
    RetryableError,
    Scope,
)

__version__ = "0.1.0"

INFO = PluginInfo(
    name="ticketbox",
    version=__version__,
    api_version=API_VERSION,
    scopes=frozenset({Scope.CHAT_CLOSED}),  # masked transcripts only; no customer identity
    config_schema=(
        ConfigField(name="url", type="url", required=True, help="Ticketbox API base URL."),
        ConfigField(name="token", required=True, secret=True, help="Ticketbox API token."),
        ConfigField(name="queue", default="support", help="Ticketbox queue for new tickets."),
    ),
    description="Example plugin: closed chats become Ticketbox tickets.",
)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class TicketboxPlugin:
    info = INFO

    def __init__(
        self, config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
    ):
        self._url = config["url"].rstrip("/") + "/v1/tickets"
        self._queue = config.get("queue", "support")
        self._token = secrets["token"]
        self._http = http

    async def deliver(self, event: Event) -> None:
        if not isinstance(event, ChatClosed):
            return
        payload = {
            "external_id": event.chat_id,
            "queue": self._queue,
            "csat": event.csat,
            "messages": [
                {"seq": line.seq, "from": line.sender, "at": line.ts, "text": line.text}
                for line in event.transcript
            ],
        }
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": event.event_id,
        }
        try:
            async with self._http.post(
                self._url, json=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise RetryableError(
                        f"ticketbox: HTTP {resp.status}",
                        retry_after=_retry_after(resp.headers.get("Retry-After")),
                    )
                if resp.status >= 400:
                    raise PermanentError(f"ticketbox: HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"ticketbox: network error ({type(exc).__name__})") from None

    async def health(self) -> Health:
        return Health(ok=True, detail="not probed")

    async def aclose(self) -> None:
        return None


def create(
    config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
) -> TicketboxPlugin:
    return TicketboxPlugin(config, secrets, http)


plugin = Factory(INFO, create)
