"""Alerts into a chat room: a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat,
Microsoft Teams' incoming webhooks) gets ``{"text": ...}`` POSTed as JSON.

The subscriber's address is the hook's URL; it is the credential (the chat service made it
secret), so nothing is signed. The text names the person, camera, place and time, links the
case page and a signed, expiring link to the snapshot; ``&``, ``<`` and ``>`` are escaped so a
name cannot turn into a link or a mention. Requests go through the outbound guard like every
webhook: an internal address is refused for good, redirects are not followed, the reply body is
never read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading

import httpx

from oneeye.services.notify.base import (
    DeliveryError,
    Outgoing,
    Sender,
    SenderContext,
    check_reachable_url,
    check_url,
    describe,
    post_status,
    url_host,
)
from oneeye.services.notify.links import LinkError, LinkSigner
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError

logger = logging.getLogger(__name__)


def escape(text: str) -> str:
    """``text`` as Slack's message format wants it: ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender(Sender):
    """POSTs alerts as ``{"text": ...}`` to each subscriber's incoming-webhook URL."""

    channel = "slack"
    per_address = True

    def __init__(
        self,
        links: LinkSigner,
        *,
        timeout: float = 10.0,
        link_lifetime: float = 86400.0,
        outbound: OutboundGuard | None = None,
    ) -> None:
        """Sign snapshot links with ``links`` (valid ``link_lifetime`` seconds); wait
        ``timeout`` seconds for an answer; ``outbound`` checks every URL and connection
        (default: no internal host allowed)."""
        self.links = links
        self.timeout = timeout
        self.link_lifetime = link_lifetime
        self.outbound = outbound if outbound is not None else OutboundGuard()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @classmethod
    def from_context(cls, context: SenderContext) -> SlackSender:
        """The sender, with the webhook timeout of ``context.settings``."""
        return cls(
            context.links,
            timeout=context.settings.webhook_timeout,
            link_lifetime=context.link_lifetime,
            outbound=context.outbound,
        )

    @classmethod
    def check_address(cls, address: str) -> str:
        """The incoming webhook's http:// or https:// URL."""
        return check_url(cls.channel, address)

    @classmethod
    def check_reachable(cls, address: str, outbound: OutboundGuard) -> None:
        """Refuse a URL that reaches an internal address (unless allowed)."""
        check_reachable_url(cls.channel, address, outbound)

    @classmethod
    def mask(cls, address: str) -> str:
        """The URL's host only (the path is the hook's secret)."""
        return url_host(address)

    def text(self, message: Outgoing) -> str:
        """The message's text: who, where, when, and the links."""
        alert = describe(message.payload)
        verb = "was seen earlier" if alert.kind == "retro" else "seen"
        lines = [
            f"*OneEye alert: {escape(alert.person)} {verb} at {escape(alert.camera)}*",
            f"{escape(alert.location)}, {escape(alert.time)}",
        ]
        if alert.description:
            lines.append(f"Description: {escape(alert.description)}")
        lines.append(f"Match distance: {alert.distance} (lower is closer)")
        if alert.case_url:
            lines.append(f"Case: {escape(alert.case_url)}")
        key = message.payload.snapshot_key
        if key is not None:
            with contextlib.suppress(LinkError):  # not a snapshot: no link
                lines.append(f"Snapshot: {escape(self.links.url(key, self.link_lifetime))}")
        return "\n".join(lines)

    def send(self, message: Outgoing) -> None:
        """POST the text; return once the hook answered 2xx."""
        try:
            target = self.outbound.check_url(message.address, resolve=False)
        except OutboundRefusedError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        where = f"chat hook {target.host}"
        body = json.dumps({"text": self.text(message)}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-OneEye-Notification": str(message.id),
            "User-Agent": "OneEye-Webhook/1",
        }
        status = post_status(
            self.client, message.address, body, headers, where=where, timeout=self.timeout
        )
        logger.info("notification %d: %s answered %d", message.id, where, status)

    @property
    def client(self) -> httpx.Client:
        """The guarded HTTP client (made on first use, and again after ``close``)."""
        with self._client_lock:
            if self._client is None:
                self._client = self.outbound.client(timeout=self.timeout)
            return self._client

    def close(self) -> None:
        """Close the HTTP client (a later send opens a new one)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
