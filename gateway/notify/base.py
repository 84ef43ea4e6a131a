"""What every notification channel shares: the rendered text, the target URL policy."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from gateway.store.base import Alert

RULE_TITLES: dict[str, tuple[str, str]] = {
    "bulk_transcript_access": ("批量查看会话记录", "bulk transcript access"),
    "new_login_context": ("新网络或新浏览器登录", "login from a new network or browser"),
    "off_hours_access": ("非工作时间访问", "access outside working hours"),
    "mass_erasure": ("批量删除会话", "mass erasure of chats"),
    "login_spraying": ("多账号登录失败（撞库）", "login failures over many accounts (spraying)"),
    "blocked_messages": ("坐席发送大量被拦截消息", "agent sending many blocked messages"),
    "plugin_dead_letters": ("插件大量投递失败", "plugin dead-lettering in bulk"),
}
SEVERITY = {"high": ("高", "high"), "medium": ("中", "medium"), "low": ("低", "low")}


class ChannelError(Exception):
    """A delivery failed; ``code`` is a short stable reason (never a secret or URL)."""

    def __init__(self, code: str, retryable: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class NotificationText:
    title: str
    body: str


def render(alert: Alert, tenant_name: str) -> NotificationText:
    """Bilingual text of an alert (Chinese first). Ids and counts only, no content."""
    zh, en = RULE_TITLES.get(alert.rule, (alert.rule, alert.rule))
    sev_zh, sev_en = SEVERITY.get(alert.severity, (alert.severity, alert.severity))
    window = alert.details.get("window_seconds")
    extra_zh = f"，{window} 秒内 {alert.count} 次" if window else ""
    extra_en = f", {alert.count} in {window} s" if window else ""
    title = f"[cipherdesk 安全告警 / security alert] {zh} / {en}"
    body = (
        f"租户 {tenant_name}：{zh}（级别：{sev_zh}），对象 {alert.subject}{extra_zh}。"
        f"告警编号 #{alert.id}，请在管理后台确认并处理。\n"
        f"Tenant {tenant_name}: {en} (severity {sev_en}), subject {alert.subject}{extra_en}. "
        f"Alert #{alert.id}: acknowledge and resolve it on the admin page."
    )
    return NotificationText(title=title, body=body)


class Channel(Protocol):
    name: str

    async def send(self, text: NotificationText, alert: Alert) -> None:
        """Deliver once; raise :class:`ChannelError`."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which URLs a tenant may point notifications at.

    Public HTTPS only, unless the operator lists the host in ``notify.allow_hosts``
    (then plain HTTP and private addresses are allowed for that host: an in-house relay,
    or a local test server). Literal private, loopback and link-local addresses and
    ``localhost`` are refused, so a tenant admin cannot make the gateway call into the
    installation's own network. Host names are not resolved here; where a name points is
    checked on every connection instead (the notifier's sessions use the netguard socket
    factory of :mod:`plugins.netguard`, so a name that resolves inward is refused).
    """

    allow_hosts: frozenset[str] = frozenset()

    def check(self, url: str, *, pinned_host: str | None = None) -> str:
        """The normalised URL, or ValueError saying what is wrong (never echoing it)."""
        if not isinstance(url, str) or len(url) > 2048:
            raise ValueError("the URL must be at most 2048 characters")
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
            raise ValueError("use an https:// URL without credentials")
        allowed = host in self.allow_hosts
        if pinned_host is not None and host != pinned_host and not allowed:
            raise ValueError(f"the URL must point at {pinned_host}")
        if allowed:
            return url.strip()
        if parts.scheme != "https":
            raise ValueError("use an https:// URL")
        if host == "localhost" or host.endswith(".localhost"):
            raise ValueError("the URL must point at a public host")
        try:
            addr = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return url.strip()
        if not addr.is_global:
            raise ValueError("the URL must point at a public host")
        return url.strip()


class SignedHttpChannel:
    """A channel that POSTs to one URL and signs each request with a shared secret
    (the signed webhook, DingTalk's 加签): what both keep between sends."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, secret: str, clock: Callable[[], float]
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._clock = clock
