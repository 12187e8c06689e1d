"""The notification channels by name: each name is one ``Sender`` class, which checks and
masks that channel's addresses and is built from the settings.

Nothing else names a channel. A subscription's channel must be one of ``CHANNELS``; the
outbox builds one sender per channel with ``make_senders``. Adding a channel is one module
(its ``Sender``) and one line in ``SENDERS``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator

from oneeye.config import NotifySettings
from oneeye.services.notify.base import AddressError, Sender, SenderContext
from oneeye.services.notify.email import EmailSender
from oneeye.services.notify.slack import SlackSender
from oneeye.services.notify.sms import SmsSender
from oneeye.services.notify.webhook import WebhookSender

SENDERS: Mapping[str, type[Sender]] = {
    sender.channel: sender for sender in (EmailSender, SmsSender, WebhookSender, SlackSender)
}
"""Every channel a subscription may use, by name."""
CHANNELS: tuple[str, ...] = tuple(SENDERS)


def sender_class(channel: str) -> type[Sender]:
    """The ``Sender`` class of ``channel``.

    Raises:
        AddressError: there is no such channel (the message lists those there are).
    """
    sender = SENDERS.get(channel)
    if sender is None:
        raise AddressError(
            f"a subscription's channel is one of {', '.join(CHANNELS)}; got {channel!r}"
        )
    return sender


def _known_channel(channel: str) -> str:
    if channel not in SENDERS:
        raise ValueError(f"expected one of {', '.join(CHANNELS)}, got {channel!r}")
    return channel


ChannelName = Annotated[str, AfterValidator(_known_channel)]
"""A request field naming a channel: refused unless it is one of ``CHANNELS``."""


def check_address(channel: str, address: str) -> str:
    """``address`` cleaned if it fits ``channel`` (each channel's own rule), else an
    ``AddressError`` saying what was expected."""
    address = address.strip()
    if any(unicodedata.category(ch) == "Cc" for ch in address):
        # A CR or LF in an address would end up in an email header or an HTTP request line.
        raise AddressError("a subscription's address cannot contain control characters")
    return sender_class(channel).check_address(address)


def check_configured(channel: str, settings: NotifySettings) -> None:
    """Refuse ``channel`` while ``settings`` leave it unable to send (email without an SMTP
    server, SMS without a gateway).

    Raises:
        AddressError: an unknown channel, or one that cannot send; the message says which
            setting is missing.
    """
    why = sender_class(channel).unconfigured(settings)
    if why is not None:
        raise AddressError(why)


def configured_channels(settings: NotifySettings) -> tuple[str, ...]:
    """The channels ``settings`` let send, in ``CHANNELS`` order (what a form offers)."""
    return tuple(name for name, cls in SENDERS.items() if cls.unconfigured(settings) is None)


def mask_address(channel: str, address: str) -> str:
    """``address`` as logs may show it (``a***@example.org``, ``+44*****789``, a URL's host);
    ``***`` for a channel this server does not know."""
    sender = SENDERS.get(channel)
    return "***" if sender is None else sender.mask(address)


def provider_of(channel: str, address: str) -> str:
    """What an outage is shared by: the channel's one server, or (a webhook) the address."""
    sender = SENDERS.get(channel)
    return f"{channel} {address}" if sender is not None and sender.per_address else channel


def make_senders(
    context: SenderContext, overrides: Mapping[str, Sender] | None = None
) -> dict[str, Sender]:
    """One sender per channel, built from ``context``; ``overrides`` replace some (an
    ``EmailSender`` that trusts a private CA, say)."""
    given = dict(overrides or {})
    built = {name: cls.from_context(context) for name, cls in SENDERS.items() if name not in given}
    return {**built, **given}
