"""Alert notifications: a generic signed webhook, e-mail over SMTP and a DingTalk group robot.

Why these three: the webhook feeds any SOAR/ticketing tool, e-mail reaches a security
officer anywhere, and Chinese teams live in their workplace IM — DingTalk's custom group
robot (``钉钉自定义机器人``) with its documented HMAC "加签" signature.

Who configures what: the *installation operator* sets the SMTP relay and which hosts
may be reached over plain HTTP or on private addresses (config ``[notify]``); a *tenant
admin* only sets recipients and robot/webhook URLs, which must be public HTTPS. Channel
secrets (webhook signing secret, robot URL with its access token, robot secret) are
sealed under the master keyring inside the tenant settings and never returned by the API.

A notification carries the alert's rule, severity, subject id, count and window, in
Chinese and English — never message text or customer data.
"""

from gateway.notify.base import (
    Channel,
    ChannelError,
    NotificationText,
    TargetPolicy,
    render,
)
from gateway.notify.service import Notifier

__all__ = ["Channel", "ChannelError", "NotificationText", "Notifier", "TargetPolicy", "render"]
