"""E-mail over the operator's SMTP relay (aiosmtplib), in Chinese and English."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from gateway.notify.base import ChannelError, NotificationText
from gateway.store.base import Alert


class EmailChannel:
    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._recipients = recipients
        self._starttls = starttls
        self._username, self._password = username, password
        self._timeout = timeout

    async def send(self, text: NotificationText, alert: Alert) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message["Subject"] = text.title
        message["X-Cipherdesk-Alert"] = str(alert.id)
        message.set_content(text.body, charset="utf-8")
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                start_tls=self._starttls,
                username=self._username or None,
                password=self._password or None,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused:
            raise ChannelError("recipients_refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelError(f"smtp_{exc.code}", retryable=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError):
            raise ChannelError("unreachable", retryable=True) from None
