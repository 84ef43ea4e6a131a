"""Alert e-mails to the tenant's recipients, in Chinese and English, through the
installation's :class:`~gateway.notify.mailer.Mailer`."""

from __future__ import annotations

from gateway.notify.base import NotificationText
from gateway.notify.mailer import Mailer
from gateway.store.base import Alert


class EmailChannel:
    name = "email"

    def __init__(self, mailer: Mailer, recipients: list[str]) -> None:
        self._mailer = mailer
        self._recipients = recipients

    async def send(self, text: NotificationText, alert: Alert) -> None:
        await self._mailer.send(
            self._recipients, text.title, text.body, {"X-Cipherdesk-Alert": str(alert.id)}
        )
