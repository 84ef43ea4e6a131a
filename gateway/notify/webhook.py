"""Generic webhook: POST the alert as JSON, signed like the ``webhook`` plugin.

Receivers verify ``X-Cipherdesk-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``
with :func:`plugins.webhook.verify_signature` (same scheme, same library code), so one
receiver handles plugin events and alerts alike.
"""

from __future__ import annotations

import json

import aiohttp

from gateway.notify.base import ChannelError, NotificationText, SignedHttpChannel
from gateway.store.base import Alert
from plugins.webhook import SIGNATURE_HEADER, signature_header


class WebhookChannel(SignedHttpChannel):
    name = "webhook"

    async def send(self, text: NotificationText, alert: Alert) -> None:
        body = json.dumps(
            {
                "type": "alert",
                "id": alert.id,
                "tenant": alert.tenant_id,
                "rule": alert.rule,
                "severity": alert.severity,
                "subject": alert.subject,
                "count": alert.count,
                "ts": alert.ts,
                "details": alert.details,
                "title": text.title,
                "text": text.body,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header([self._secret], int(self._clock()), body),
        }
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise ChannelError(f"http_{resp.status}", retryable=True)
                if resp.status >= 300:
                    raise ChannelError(f"http_{resp.status}")
        except aiohttp.ClientError:
            raise ChannelError("unreachable", retryable=True) from None
