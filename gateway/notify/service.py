"""Sending an alert to every channel a tenant configured; sealing channel secrets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from auth.emails import InvalidEmail, normalize_email
from crypto.encoding import b64decode, b64encode
from crypto.envelope import EnvelopeError, Keyring
from gateway.audit import Auditor
from gateway.config import NotifyConfig
from gateway.notify.base import Channel, ChannelError, TargetPolicy, render
from gateway.notify.dingtalk import DINGTALK_HOST, DingTalkChannel
from gateway.notify.email import EmailChannel
from gateway.notify.mailer import Mailer
from gateway.notify.webhook import WebhookChannel
from gateway.store.base import Alert, Store
from plugins._http import plugin_session

log = structlog.get_logger("cipherdesk.notify")

SECRET_CHANNELS = ("webhook", "dingtalk")
MAX_RECIPIENTS = 10
ATTEMPTS = 2


def _aad(tenant_id: str, channel: str) -> bytes:
    return f"notify|{tenant_id}|{channel}".encode()


class Notifier:
    """Delivers alerts; also validates and seals the tenant's channel settings."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        auditor: Auditor,
        config: NotifyConfig,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._auditor = auditor
        self._config = config
        self._clock = clock
        self.policy = TargetPolicy(frozenset(h.lower() for h in config.allow_hosts))
        self._mailer = Mailer(config)
        # allowed host (operator's notify.allow_hosts) -> unguarded session; else guarded
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._tasks: set[asyncio.Task[dict[str, str]]] = set()

    # -- settings -----------------------------------------------------------------
    def build_settings(
        self, tenant_id: str, current: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        """New ``settings["notify"]`` from an admin's request; ValueError names the field.

        Each key present replaces that channel; ``null`` removes it; absent keys stay."""
        out = dict(current)
        for channel, value in body.items():
            if channel not in ("email", *SECRET_CHANNELS):
                raise ValueError(f"unknown channel {str(channel)[:32]!r}")
            if value is None:
                out.pop(channel, None)
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{channel} must be an object")
            if channel == "email":
                to = value.get("to")
                if (
                    set(value) != {"to"}
                    or not isinstance(to, list)
                    or not 1 <= len(to) <= MAX_RECIPIENTS
                    or not all(isinstance(a, str) for a in to)
                ):
                    raise ValueError(f"email.to is a list of 1-{MAX_RECIPIENTS} addresses")
                if not self._config.smtp_host:
                    raise ValueError("e-mail alerts need an SMTP relay: ask the operator")
                addresses = []
                for address in to:
                    try:
                        addresses.append(normalize_email(address))
                    except InvalidEmail:
                        raise ValueError("email.to holds an invalid address") from None
                out["email"] = {"to": addresses}
                continue
            url, secret = value.get("url"), value.get("secret")
            if (
                set(value) != {"url", "secret"}
                or not isinstance(secret, str)
                or not 16 <= len(secret) <= 256
            ):
                raise ValueError(f"{channel} needs url and a secret of 16-256 characters")
            url = self.policy.check(
                str(url), pinned_host=DINGTALK_HOST if channel == "dingtalk" else None
            )
            sealed = self._keyring.seal(
                json.dumps({"url": url, "secret": secret}).encode(), _aad(tenant_id, channel)
            )
            out[channel] = {"sealed": b64encode(sealed)}
        return out

    @staticmethod
    def describe(settings: dict[str, Any]) -> dict[str, Any]:
        """What the admin page may see: recipients, and which robots are set (no secrets)."""
        found = settings.get("notify")
        notify: dict[str, Any] = found if isinstance(found, dict) else {}
        return {
            "email": notify.get("email"),
            **{c: {"configured": c in notify} for c in SECRET_CHANNELS},
        }

    def _open(self, tenant_id: str, channel: str, entry: Any) -> tuple[str, str] | None:
        try:
            data = json.loads(
                self._keyring.open(b64decode(entry["sealed"]), _aad(tenant_id, channel))
            )
            return str(data["url"]), str(data["secret"])
        except (EnvelopeError, KeyError, TypeError, ValueError):
            log.warning("notify_channel_unreadable", tenant=tenant_id, channel=channel)
            return None

    async def reseal_all(self) -> int:
        """Move every tenant's sealed channel secrets to the current master key."""
        moved = 0
        for tenant in await self._store.list_tenants():
            notify = tenant.settings.get("notify")
            if not isinstance(notify, dict):
                continue
            fresh = dict(notify)
            for channel in SECRET_CHANNELS:
                entry: Any = notify.get(channel)  # a malformed entry is skipped below
                try:
                    blob = b64decode(entry["sealed"])
                    if not self._keyring.needs_rewrap(blob):
                        continue
                    resealed = self._keyring.reseal(blob, _aad(tenant.id, channel))
                except (EnvelopeError, KeyError, TypeError, ValueError):
                    continue  # absent or unreadable: left as it is (reported when used)
                fresh[channel] = {"sealed": b64encode(resealed)}
                moved += 1
            if fresh != notify:
                tenant.settings = {**tenant.settings, "notify": fresh}
                await self._store.update_tenant(tenant)
        return moved

    # -- delivery -----------------------------------------------------------------
    def channels(self, tenant_id: str, settings: dict[str, Any]) -> list[Channel]:
        notify = settings.get("notify")
        if not isinstance(notify, dict):
            return []
        out: list[Channel] = []
        email = notify.get("email")
        if isinstance(email, dict) and email.get("to") and self._mailer.configured:
            out.append(EmailChannel(self._mailer, list(email["to"])))
        for name, cls in (("webhook", WebhookChannel), ("dingtalk", DingTalkChannel)):
            if name in notify:
                opened = self._open(tenant_id, name, notify[name])
                if opened is not None:
                    out.append(cls(self._http(opened[0]), opened[0], opened[1], self._clock))
        return out

    def _http(self, url: str) -> aiohttp.ClientSession:
        """The session for ``url``: the URL check at configuration time cannot see where a
        host name resolves *when the alert is sent* (DNS rebinding, a name pointed inward
        later), so every connection goes through the netguard's socket factory, which
        refuses non-public addresses -- unless the operator listed the host in
        ``notify.allow_hosts`` (an in-house relay). No cookie jar, like plugins'."""
        allowed = (urlsplit(url).hostname or "").lower() in self.policy.allow_hosts
        session = self._sessions.get(allowed)
        if session is None or session.closed:
            session = self._sessions[allowed] = plugin_session(
                allow_private=allowed, total_timeout=self._config.timeout
            )
        return session

    def schedule(self, alert: Alert) -> None:
        """Send in the background (the audited action never waits for a mail server)."""
        task = asyncio.create_task(self.notify(alert), name=f"notify-{alert.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notify(self, alert: Alert) -> dict[str, str]:
        """Send to every channel; returns ``{channel: "ok" | error code}`` (also audited)."""
        tenant = await self._store.get_tenant(alert.tenant_id)
        if tenant is None:
            return {}
        text = render(alert, tenant.name)
        outcomes: dict[str, str] = {}
        for channel in self.channels(tenant.id, tenant.settings):
            outcomes[channel.name] = await self._send(channel, text, alert)
        if outcomes:
            await self._auditor.record(
                "alert.notified",
                tenant_id=alert.tenant_id,
                actor="system",
                target=str(alert.id),
                **outcomes,
            )
        return outcomes

    async def _send(self, channel: Channel, text: Any, alert: Alert) -> str:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with asyncio.timeout(self._config.timeout + 1):
                    await channel.send(text, alert)
                return "ok"
            except ChannelError as exc:
                code, retry = exc.code, exc.retryable
            except TimeoutError:
                code, retry = "timeout", True
            log.warning("notify_failed", channel=channel.name, code=code, attempt=attempt)
            if not retry or attempt == ATTEMPTS:
                return code
            await asyncio.sleep(1.0)
        return "failed"  # pragma: no cover

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
