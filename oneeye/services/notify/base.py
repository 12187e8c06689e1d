"""What every notification channel shares: the alert payload (one typed model for the alert
service that writes it and the senders that read it), the message to send, the sender
interface (send, check and mask addresses, build from settings), and the errors: an address
that does not fit, a delivery that failed (saying whether trying again could help)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from oneeye.config import NotifySettings
from oneeye.errors import Invalid, OneEyeError
from oneeye.services.notify.links import LinkError, LinkSigner
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError
from oneeye.store.photos import PhotoStore

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""Client-error statuses that mean "later", not "never"."""


class AddressError(Invalid):
    """A subscription's address does not fit its channel, or may not be used."""


class DeliveryError(OneEyeError):
    """A notification could not be delivered.

    ``permanent``: trying again cannot help (the recipient was refused, the gateway rejected
    the request as malformed), so the outbox gives up at once instead of retrying.
    ``provider_down``: the server itself failed (unreachable, timed out, 5xx), not this one
    message, so the outbox holds the provider's other rows back for the same backoff instead
    of spending a timeout on each.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, provider_down: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.provider_down = provider_down and not permanent


def status_error(service: str, status: int) -> DeliveryError:
    """The error for a non-2xx answer, by status code alone (the reply body is never read,
    stored or shown: it is the remote side's text). 4xx (but 408/425/429) and 3xx (redirects
    are not followed) are permanent; 5xx and 429 mean the service itself is failing."""
    permanent = 300 <= status < 500 and status not in RETRYABLE_STATUS
    reason = f"{service} answered HTTP {status}"
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    return DeliveryError(reason, permanent=permanent, provider_down=status >= 500 or status == 429)


@dataclass(frozen=True, slots=True)
class SenderContext:
    """What a sender may be built from: the settings, the photo store (email attaches
    snapshots), the link signer (SMS and webhooks link them) and the outbound guard (every
    request to an address outside the server goes through it)."""

    settings: NotifySettings
    photos: PhotoStore
    links: LinkSigner
    outbound: OutboundGuard

    @property
    def link_lifetime(self) -> float:
        """Seconds a signed snapshot link stays valid."""
        return self.settings.link_hours * 3600.0


class AlertPayload(BaseModel):
    """What one notification is about: a sighting of a case's person.

    The alert service builds it and the outbox keeps it (``notifications.payload``, as
    ``to_json``); every sender reads it back through ``from_json``, the one place the stored
    JSON is parsed. Fields a sender cannot find (a row from an older version) read as
    ``None`` and are shown with a readable default (``describe``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: str = Field(default="", max_length=64)
    case_name: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=20_000)
    person_id: str | None = Field(default=None, max_length=64)
    camera_id: str | None = Field(default=None, max_length=200)
    camera_name: str | None = Field(default=None, max_length=1000)
    location: str | None = Field(default=None, max_length=1000)
    seen_at: datetime | None = None
    distance: float | None = None
    likeness: str | None = Field(default=None, max_length=64)
    """The distance in words for a parent ("a close likeness")."""
    sighting_id: str = Field(default="", max_length=64)
    snapshot_key: str | None = Field(default=None, max_length=1000)
    kind: str | None = Field(default=None, max_length=16)
    """``live`` or ``retro``."""
    case_url: str | None = Field(default=None, max_length=4000)

    def to_json(self) -> dict[str, Any]:
        """The payload as stored and as a webhook receives it (``seen_at`` in ISO 8601)."""
        data = self.model_dump()
        data["seen_at"] = None if self.seen_at is None else self.seen_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: object) -> AlertPayload:
        """A stored payload, parsed.

        Raises:
            pydantic.ValidationError: it is not a payload (not an object, a wrong type).
        """
        return cls.model_validate(data)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One outbox row as a sender sees it."""

    id: int
    case_id: str
    sighting_id: str
    channel: str
    address: str
    payload: AlertPayload
    secret: str | None = None
    """The subscription's webhook signing secret."""


@dataclass(frozen=True, slots=True)
class AlertText:
    """The human-readable fields of an alert, for subjects, bodies and SMS templates."""

    person: str
    description: str
    camera: str
    location: str
    time: str
    distance: str
    kind: str
    case_url: str
    likeness: str = ""
    """``"a close likeness"``; ``""`` for a row from an older version."""

    def as_dict(self) -> dict[str, str]:
        """The fields by name (the placeholders an SMS body template may use)."""
        return {
            "person": self.person,
            "case": self.person,
            "description": self.description,
            "camera": self.camera,
            "location": self.location,
            "time": self.time,
            "distance": self.distance,
            "likeness": self.likeness,
            "kind": self.kind,
            "case_url": self.case_url,
        }


def _text(value: str | None, default: str) -> str:
    return default if value is None or value == "" else value


def snapshot_link(links: LinkSigner, payload: AlertPayload, lifetime: float) -> str | None:
    """A signed link (valid ``lifetime`` seconds) to the alert's snapshot, or ``None`` when
    it has none or its key is not a snapshot's."""
    if payload.snapshot_key is None:
        return None
    try:
        return links.url(payload.snapshot_key, lifetime)
    except LinkError:
        return None


def describe(payload: AlertPayload) -> AlertText:
    """The alert's fields as text, with a readable default for each missing one."""
    seen = payload.seen_at
    return AlertText(
        person=_text(payload.case_name, "the missing person"),
        description=_text(payload.description, ""),
        camera=_text(payload.camera_name, _text(payload.camera_id, "a camera")),
        location=_text(payload.location, "location not given"),
        time="an unknown time" if seen is None else seen.strftime("%Y-%m-%d %H:%M:%S UTC"),
        distance="n/a" if payload.distance is None else f"{payload.distance:.3f}",
        kind=_text(payload.kind, "live"),
        case_url=_text(payload.case_url, ""),
        likeness=_text(payload.likeness, ""),
    )


class Sender(ABC):
    """Delivers the notifications of one channel, and knows that channel's addresses.

    A channel is one subclass, registered by name in ``oneeye.services.notify.senders``; the
    class checks and masks its addresses, and ``from_context`` builds it from the settings.
    """

    channel: ClassVar[str]
    """The channel's name, as subscriptions and outbox rows store it."""
    per_address: ClassVar[bool] = False
    """Whether each address is a server of its own (a webhook URL) rather than every
    message going through one server (SMTP, the SMS gateway): what an outage is shared by."""
    signed: ClassVar[bool] = False
    """Whether a subscription carries a secret its messages are signed with."""

    @classmethod
    @abstractmethod
    def check_address(cls, address: str) -> str:
        """``address`` (stripped of surrounding space, without control characters) cleaned
        if it fits the channel.

        Raises:
            AddressError: it does not; the message says what was expected.
        """

    @classmethod
    def unconfigured(cls, settings: NotifySettings) -> str | None:
        """Why ``settings`` leave this channel unable to send (a sentence naming the setting
        to set), or ``None`` when it can send; the default: it needs no settings of its own.
        A subscription to a channel that cannot send is refused."""
        return None

    @classmethod
    def check_reachable(cls, address: str, outbound: OutboundGuard) -> None:
        """Refuse, when subscribing, an address the server may not send to (an internal
        URL); the default: every checked address may be used.

        Raises:
            AddressError: it may not be used.
        """
        return

    @classmethod
    def mask(cls, address: str) -> str:
        """``address`` as logs may show it (the full one stays in the database)."""
        return "***"

    @classmethod
    @abstractmethod
    def from_context(cls, context: SenderContext) -> Sender:
        """The sender as the settings in ``context`` configure it."""

    @abstractmethod
    def send(self, message: Outgoing) -> None:
        """Deliver ``message``; return only once the provider has accepted it.

        Raises:
            DeliveryError: it was not accepted (``permanent`` when a retry cannot help).
        """

    def close(self) -> None:
        """Release what the sender holds open (an HTTP client); a later send reopens it."""
        return


def url_host(address: str) -> str:
    """A URL's host name only, as logs may show it (a path or query often holds a token)."""
    try:
        host = urlsplit(address).hostname
    except ValueError:
        host = None
    return host or "***"


def check_url(channel: str, address: str) -> str:
    """``address`` if it is an http(s) URL of at most 2000 characters with a host, else an
    ``AddressError`` naming the channel."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(address) > 2000:
        raise AddressError(
            f"a {channel} subscription needs an http:// or https:// URL, got {address!r}"
        )
    return address


def check_reachable_url(channel: str, address: str, outbound: OutboundGuard) -> None:
    """Refuse a URL the outbound guard refuses (its name resolved now, in the caller's
    thread; the sender checks again on every send, against DNS rebinding)."""
    try:
        outbound.check_url(address)
    except OutboundRefusedError as exc:
        raise AddressError(f"this {channel} URL cannot be used: {exc}") from None


def post_status(
    client: httpx.Client,
    address: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    where: str,
    timeout: float,
    refused: str = "{}",
    **request: Any,
) -> int:
    """POST ``body`` (or what ``request`` gives ``httpx``: ``data``, ``json``, ``auth``) to
    ``address`` through the guarded ``client``; the status once it answered 2xx. Streamed, so
    the reply body is never read: only the status line counts.

    Raises:
        DeliveryError: refused by the outbound guard (permanent; the message is ``refused``
            with the reason filled in), unreachable or timed out (the provider is down), or a
            non-2xx answer (see ``status_error``); ``where`` names the receiver in the message.
    """
    if body is not None:
        request["content"] = body
    try:
        with client.stream("POST", address, headers=headers, **request) as response:
            status = response.status_code
    except OutboundRefusedError as exc:
        raise DeliveryError(refused.format(exc), permanent=True) from None
    except httpx.TimeoutException:
        raise DeliveryError(
            f"{where} did not answer within {timeout:g} s", provider_down=True
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(
            f"{where} unreachable ({type(exc).__name__})", provider_down=True
        ) from None
    if not 200 <= status < 300:
        raise status_error(where, status)
    return status


class HttpSender(Sender):
    """A sender that posts through one guarded HTTP client, made on first use and again
    after ``close``; ``client_timeout`` says how long the client waits."""

    def __init__(
        self, links: LinkSigner, *, link_lifetime: float, outbound: OutboundGuard | None
    ) -> None:
        """Sign snapshot links with ``links`` (valid ``link_lifetime`` seconds); ``outbound``
        checks every URL and connection (default: no internal host allowed)."""
        self.links = links
        self.link_lifetime = link_lifetime
        self.outbound = outbound if outbound is not None else OutboundGuard()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @abstractmethod
    def client_timeout(self) -> float:
        """How many seconds the HTTP client waits for an answer."""

    @property
    def client(self) -> httpx.Client:
        """The guarded HTTP client (made on first use, and again after ``close``)."""
        with self._client_lock:
            if self._client is None:
                self._client = self.outbound.client(timeout=self.client_timeout())
            return self._client

    def close(self) -> None:
        """Close the HTTP client (a later send opens a new one)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class UrlSender(HttpSender):
    """A sender whose addresses are http(s) URLs, each a server of its own (a webhook, a chat
    hook): checked and refused when internal at subscription time, masked to the host."""

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
        super().__init__(links, link_lifetime=link_lifetime, outbound=outbound)
        self.timeout = timeout

    @classmethod
    def from_context(cls, context: SenderContext) -> Self:
        """The sender, with the webhook timeout of ``context.settings``."""
        return cls(
            context.links,
            timeout=context.settings.webhook_timeout,
            link_lifetime=context.link_lifetime,
            outbound=context.outbound,
        )

    @classmethod
    def check_address(cls, address: str) -> str:
        """An http:// or https:// URL."""
        return check_url(cls.channel, address)

    @classmethod
    def check_reachable(cls, address: str, outbound: OutboundGuard) -> None:
        """Refuse a URL that reaches an internal address (unless allowed)."""
        check_reachable_url(cls.channel, address, outbound)

    @classmethod
    def mask(cls, address: str) -> str:
        """The URL's host only (a path or query often holds a token)."""
        return url_host(address)

    def client_timeout(self) -> float:
        """The ``timeout`` given."""
        return self.timeout

    def target_host(self, message: Outgoing) -> str:
        """The host ``message`` goes to, once the outbound guard allowed the URL's form and
        any literal address (the name's addresses are checked when connecting).

        Raises:
            DeliveryError: the guard refused it (permanent).
        """
        try:
            return self.outbound.check_url(message.address, resolve=False).host
        except OutboundRefusedError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
