"""Alert notifications: the outbox worker, its channels, subscriptions, and signed snapshot
links.

``NotifyService`` (``outbox``) sends the ``notifications`` rows that ``subscriptions.enqueue``
writes for the alert service; each row's ``AlertPayload`` (``base``) is the one typed model both
sides share. Each channel is a ``Sender`` registered by name in ``senders`` (email, SMS,
webhook, ...). Receivers of webhooks check them with ``webhook.verify_signature``.
"""

from oneeye.services.notify.base import AddressError, AlertPayload, DeliveryError, Outgoing, Sender
from oneeye.services.notify.links import LinkError, LinkSigner, load_secret_key
from oneeye.services.notify.outbox import NotificationFailure, NotifyService, OutboxStats
from oneeye.services.notify.senders import CHANNELS, SENDERS, make_senders
from oneeye.services.notify.webhook import verify_signature

__all__ = [
    "CHANNELS",
    "SENDERS",
    "AddressError",
    "AlertPayload",
    "DeliveryError",
    "LinkError",
    "LinkSigner",
    "NotificationFailure",
    "NotifyService",
    "OutboxStats",
    "Outgoing",
    "Sender",
    "load_secret_key",
    "make_senders",
    "verify_signature",
]
