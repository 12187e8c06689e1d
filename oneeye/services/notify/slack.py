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

import json
import logging

from oneeye.services.notify.base import Outgoing, UrlSender, describe, post_status, snapshot_link

logger = logging.getLogger(__name__)


def escape(text: str) -> str:
    """``text`` as Slack's message format wants it: ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender(UrlSender):
    """POSTs alerts as ``{"text": ...}`` to each subscriber's incoming-webhook URL."""

    channel = "slack"

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
        link = snapshot_link(self.links, message.payload, self.link_lifetime)
        if link is not None:  # none when there is no snapshot, or the key is not one
            lines.append(f"Snapshot: {escape(link)}")
        return "\n".join(lines)

    def send(self, message: Outgoing) -> None:
        """POST the text; return once the hook answered 2xx."""
        where = f"chat hook {self.target_host(message)}"
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
