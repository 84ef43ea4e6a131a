"""Activation links by e-mail for agents the identity provider created (issue 20.3).

A provisioned account has a password nobody knows; its person gets a one-time link on
which they choose one and enrol a second factor. When the installation operator has set
an SMTP relay, the link goes straight to the address the identity provider gave -- the
admin never handles it; otherwise the admin hands it on from the agent list. The mail is
in Chinese and English, carries nothing but the link and its expiry, and every attempt is
audited (``invite.mailed`` or ``invite.mail_failed`` with the reason, never the link).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.audit import Auditor
from gateway.i18n import translate
from gateway.invites import ACTIVATE, InviteService
from gateway.notify.base import ChannelError
from gateway.notify.mailer import Mailer
from gateway.store.base import Agent

__all__ = ["ActivationMail"]

LANGUAGES = ("zh-CN", "en")


class ActivationMail:
    """Mails a provisioned agent its activation link, when there is a relay to mail by."""

    def __init__(
        self,
        invites: InviteService,
        mailer: Mailer,
        auditor: Auditor,
        base_url: str,
        clock: Callable[[], float],
    ) -> None:
        self._invites = invites
        self._mailer = mailer
        self._auditor = auditor
        self._base_url = base_url.rstrip("/")
        self._clock = clock

    async def offer(self, agent: Agent, *, actor: str, ip: str) -> bool:
        """Issue a link and mail it; False when no relay is set or the mail failed (the
        admin can still make one from the agent list)."""
        if not self._mailer.configured:
            return False
        issued = await self._invites.create_agent_link(agent, ACTIVATE, actor=actor, ip=ip)
        link = f"{self._base_url}/invite#{issued.token}"
        hours = str(max(1, round((issued.invite.expires_at - self._clock()) / 3600)))
        name = agent.display_name or agent.email
        subject = " / ".join(
            translate(lang, "server.mail.activation_subject") for lang in LANGUAGES
        )
        body = "\n\n".join(
            translate(lang, "server.mail.activation_body", name=name, link=link, hours=hours)
            for lang in LANGUAGES
        )
        try:
            await self._mailer.send(
                [agent.email], subject, body, {"X-Cipherdesk-Invite": issued.invite.id}
            )
        except ChannelError as exc:
            await self._auditor.record(
                "invite.mail_failed",
                tenant_id=agent.tenant_id,
                actor=actor,
                target=issued.invite.id,
                ip=ip,
                reason=exc.code,
            )
            return False
        await self._auditor.record(
            "invite.mailed", tenant_id=agent.tenant_id, actor=actor, target=issued.invite.id, ip=ip
        )
        return True
