"""Plain-text e-mail through the installation operator's SMTP relay (aiosmtplib).

One sender for everything the gateway mails -- alert notifications
(``gateway/notify/email.py``) and the activation links of agents the identity provider
created (``gateway/scim.py``) -- so there is one place that speaks SMTP and maps its
failures. Only the operator configures the relay (``[notify]`` smtp_*); tenants never
name a mail server.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from gateway.config import NotifyConfig
from gateway.notify.base import ChannelError

__all__ = ["Mailer"]


class Mailer:
    """Sends one message at a time; :class:`ChannelError` says why one was not sent."""

    def __init__(self, config: NotifyConfig) -> None:
        self._config = config

    @property
    def configured(self) -> bool:
        """True when the operator set an SMTP relay (otherwise nothing is mailed)."""
        return bool(self._config.smtp_host)

    async def send(
        self, recipients: list[str], subject: str, body: str, headers: dict[str, str]
    ) -> None:
        c = self._config
        message = EmailMessage()
        message["From"] = c.smtp_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        for name, value in headers.items():
            message[name] = value
        message.set_content(body, charset="utf-8")
        try:
            await aiosmtplib.send(
                message,
                hostname=c.smtp_host,
                port=c.smtp_port,
                start_tls=c.smtp_starttls,
                username=c.smtp_username or None,
                password=c.smtp_password or None,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused:
            raise ChannelError("recipients_refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelError(f"smtp_{exc.code}", retryable=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError):
            raise ChannelError("unreachable", retryable=True) from None
