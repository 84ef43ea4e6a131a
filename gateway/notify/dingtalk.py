"""DingTalk custom group robot (钉钉自定义机器人) with the "加签" signature.

Vendor documentation: https://open.dingtalk.com/document/robots/custom-robot-access and
https://open.dingtalk.com/document/robots/customize-robot-security-settings —

* ``POST https://oapi.dingtalk.com/robot/send?access_token=<token>&timestamp=<ms>&sign=<s>``
  with a JSON body, here ``{"msgtype": "markdown", "markdown": {"title", "text"}}``;
* ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``,
  ``timestamp`` in milliseconds, accepted within one hour of DingTalk's clock;
* the answer is HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success, and a
  non-zero ``errcode`` otherwise — e.g. ``310000`` (sign not match / keyword / IP
  check failed), ``300001`` (token missing or invalid), ``130101`` (more than 20
  messages a minute: "send too fast"), ``-1`` (system busy).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

import aiohttp

from gateway.notify.base import ChannelError, NotificationText, SignedHttpChannel
from gateway.store.base import Alert

DINGTALK_HOST = "oapi.dingtalk.com"
RETRYABLE = frozenset({-1, 130101, 90030})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value (already URL-encoded, as the documentation shows)."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


class DingTalkChannel(SignedHttpChannel):
    name = "dingtalk"

    async def send(self, text: NotificationText, alert: Alert) -> None:
        ts = int(self._clock() * 1000)
        joiner = "&" if "?" in self._url else "?"
        url = f"{self._url}{joiner}timestamp={ts}&sign={dingtalk_sign(self._secret, ts)}"
        body = {
            "msgtype": "markdown",
            "markdown": {
                "title": text.title[:64],
                "text": f"### {text.title}\n\n" + text.body.replace("\n", "\n\n"),
            },
        }
        try:
            async with self._session.post(url, json=body, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise ChannelError(f"http_{resp.status}", retryable=resp.status >= 500)
                try:
                    answer = await resp.json(content_type=None)
                except ValueError:
                    raise ChannelError("bad_response") from None
        except aiohttp.ClientError:
            raise ChannelError("unreachable", retryable=True) from None
        code = answer.get("errcode") if isinstance(answer, dict) else None
        if code != 0:
            raise ChannelError(f"errcode_{code}", retryable=code in RETRYABLE)
