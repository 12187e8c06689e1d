"""Alert text messages through an HTTP SMS gateway.

The default shape is Twilio's: a form post of ``To``, ``From`` and ``Body`` with HTTP basic
auth. ``format = "json"`` posts ``{"to", "from", "body"}`` instead, for gateways that want JSON.
The body comes from a template (``{person}``, ``{camera}``, ``{location}``, ``{time}``,
``{distance}``, ``{likeness}`` ("a close likeness"), ``{description}``, ``{case_url}``,
``{link}``); ``{link}`` is a signed, expiring link to the snapshot.
"""

from __future__ import annotations

import logging
import re
import string
from typing import Any

import httpx

from oneeye.config import NotifySettings, SmsSettings
from oneeye.services.notify.base import (
    AddressError,
    DeliveryError,
    HttpSender,
    Outgoing,
    SenderContext,
    describe,
    post_status,
    snapshot_link,
)
from oneeye.services.notify.links import LinkSigner
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError

logger = logging.getLogger(__name__)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ALLOW_HINT = " (a gateway inside the network must be named in ONEEYE_OUTBOUND__ALLOW_INTERNAL)"


class _Fields(dict[str, str]):
    """Template fields; an unknown placeholder stays as written instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, fields: dict[str, str]) -> str:
    """``template`` with its ``{name}`` placeholders filled from ``fields``.

    An unknown placeholder is kept as written; a malformed template (an unpaired brace) is
    sent as it is, so a typo in the settings never stops an alert.
    """
    try:
        return string.Formatter().vformat(template, (), _Fields(fields))
    except (ValueError, IndexError, AttributeError, KeyError):
        logger.warning("the SMS body template %r is malformed; sending it unfilled", template)
        return template


class SmsSender(HttpSender):
    """Posts alert text messages to the configured gateway, through the outbound guard (a
    gateway inside the network must be named in ``ONEEYE_OUTBOUND__ALLOW_INTERNAL``)."""

    channel = "sms"

    def __init__(
        self,
        settings: SmsSettings,
        links: LinkSigner,
        *,
        link_lifetime: float = 86400.0,
        outbound: OutboundGuard | None = None,
    ) -> None:
        """Post to ``settings.url``; snapshot links signed by ``links`` last ``link_lifetime``
        seconds; ``outbound`` checks the gateway's address on every connection (default: no
        internal host allowed)."""
        super().__init__(links, link_lifetime=link_lifetime, outbound=outbound)
        self.settings = settings

    @classmethod
    def from_context(cls, context: SenderContext) -> SmsSender:
        """The sender for ``context.settings.sms``."""
        return cls(
            context.settings.sms,
            context.links,
            link_lifetime=context.link_lifetime,
            outbound=context.outbound,
        )

    @classmethod
    def unconfigured(cls, settings: NotifySettings) -> str | None:
        """SMS needs a gateway (``ONEEYE_NOTIFY__SMS__URL``)."""
        if settings.sms.url is None:
            return (
                "text messages (SMS) are not set up on this server, so nobody can be told by "
                "SMS yet (an administrator sets ONEEYE_NOTIFY__SMS__URL)"
            )
        return None

    @classmethod
    def check_address(cls, address: str) -> str:
        """A phone number in international (E.164) form; spaces, dots, dashes and brackets
        are dropped."""
        compact = re.sub(r"[\s().-]", "", address)
        if not _E164.match(compact):
            raise AddressError(
                "an SMS subscription needs a phone number in international (E.164) form, "
                f"like +15551234567; got {address!r}"
            )
        return compact

    @classmethod
    def mask(cls, address: str) -> str:
        """``+44*****789``."""
        digits = len(address)
        return address[:3] + "*" * max(0, digits - 6) + address[-3:] if digits > 6 else "***"

    def body(self, message: Outgoing) -> str:
        """The text of the message for ``message``."""
        fields = describe(message.payload).as_dict()
        link = snapshot_link(self.links, message.payload, self.link_lifetime)
        fields["link"] = link or fields["case_url"]
        return render(self.settings.body_template, fields).strip()

    def send(self, message: Outgoing) -> None:
        """Post the text message; return once the gateway answered 2xx."""
        s = self.settings
        if s.url is None:
            raise DeliveryError("SMS is not configured (set ONEEYE_NOTIFY__SMS__URL)")
        try:
            gateway = self.outbound.check_url(s.url, resolve=False)
        except OutboundRefusedError as exc:
            raise DeliveryError(f"SMS gateway {exc}{ALLOW_HINT}", permanent=True) from None
        where = f"SMS gateway {gateway.host}"
        body = self.body(message)
        kwargs: dict[str, Any] = {}
        if s.username:
            password = s.password.get_secret_value() if s.password else ""
            kwargs["auth"] = httpx.BasicAuth(s.username, password)
        if s.format == "json":
            kwargs["json"] = {"to": message.address, "from": s.sender, "body": body}
        else:
            kwargs["data"] = {"To": message.address, "From": s.sender, "Body": body}
        headers = {"X-OneEye-Notification": str(message.id)}
        post_status(
            self.client,
            s.url,
            None,
            headers,
            where=where,
            timeout=s.timeout,
            refused="SMS gateway {}" + ALLOW_HINT,
            **kwargs,
        )
        logger.info(
            "notification %d: SMS to %s accepted by %s",
            message.id,
            self.mask(message.address),
            where,
        )

    def client_timeout(self) -> float:
        """The gateway's timeout from the settings."""
        return self.settings.timeout
