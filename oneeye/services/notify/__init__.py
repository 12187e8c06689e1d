"""Alert notifications: the outbox worker and its channels (email, SMS, webhook), and signed
snapshot links.

``NotifyService`` (``outbox``) sends the ``notifications`` rows the alert service writes; each
channel is a ``Sender`` (``base``). Receivers of webhooks check them with
``webhook.verify_signature``.
"""

from oneeye.services.notify.base import DeliveryError, Outgoing, Sender
from oneeye.services.notify.links import LinkError, LinkSigner, load_secret_key
from oneeye.services.notify.outbox import NotificationFailure, NotifyService, OutboxStats
from oneeye.services.notify.webhook import verify_signature

__all__ = [
    "DeliveryError",
    "LinkError",
    "LinkSigner",
    "NotificationFailure",
    "NotifyService",
    "OutboxStats",
    "Outgoing",
    "Sender",
    "load_secret_key",
    "verify_signature",
]
