"""Alert webhooks: a signed JSON POST to the subscriber's URL.

Headers: ``X-OneEye-Timestamp`` (Unix seconds), ``X-OneEye-Signature`` (``sha256=`` + hex
HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the subscription's secret) and
``X-OneEye-Notification`` (the outbox row's id, the same on every retry: an idempotency key).
Receivers check a request with ``verify_signature``; rejecting old timestamps stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from oneeye.services.notify.base import (
    DeliveryError,
    Outgoing,
    UrlSender,
    post_status,
    snapshot_link,
)

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-OneEye-Timestamp"
SIGNATURE_HEADER = "X-OneEye-Signature"
NOTIFICATION_HEADER = "X-OneEye-Notification"


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: str | int, body: str | bytes) -> str:
    """The ``X-OneEye-Signature`` value for ``body`` sent at ``timestamp``."""
    message = _bytes(str(timestamp)) + b"." + _bytes(body)
    return "sha256=" + hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | None,
    body: str | bytes,
    header: str | None,
    tolerance: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is genuine and fresh. For receivers.

    Args:
        secret: the subscription's secret (shown once when the subscription was made).
        timestamp: the ``X-OneEye-Timestamp`` header.
        body: the raw request body, exactly as received.
        header: the ``X-OneEye-Signature`` header.
        tolerance: how many seconds old (or ahead) the timestamp may be.
        now: the current Unix time (default: the clock).

    Returns:
        ``True`` when the signature matches and the timestamp is within ``tolerance``.
    """
    if not timestamp or not header:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.encode())


class WebhookSender(UrlSender):
    """POSTs alerts as signed JSON to subscribers' URLs, through the outbound guard: an
    internal address (or a name that resolves to one when it is sent) is refused for good,
    redirects are not followed, and the receiver's reply body is never read."""

    channel = "webhook"
    signed = True

    def body(self, message: Outgoing) -> str:
        """The JSON body: the alert payload, the signed snapshot link and the row's id."""
        data = message.payload.to_json()
        data["snapshot_url"] = snapshot_link(self.links, message.payload, self.link_lifetime)
        data["notification_id"] = message.id
        data["event"] = "alert.sighting"
        return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)

    def send(self, message: Outgoing) -> None:
        """POST the alert; return once the receiver answered 2xx."""
        if not message.secret:
            raise DeliveryError(
                "this webhook subscription has no secret to sign with", permanent=True
            )
        where = f"webhook {self.target_host(message)}"
        body = self.body(message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(message.secret, timestamp, body),
            NOTIFICATION_HEADER: str(message.id),
            "User-Agent": "OneEye-Webhook/1",
        }
        status = post_status(
            self.client, message.address, body.encode(), headers, where=where, timeout=self.timeout
        )
        logger.info("notification %d: %s answered %d", message.id, where, status)
