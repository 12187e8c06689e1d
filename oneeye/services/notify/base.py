"""What every notification channel shares: the message to send, the sender interface, the
error a sender raises (saying whether trying again could help), and addresses masked for logs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from oneeye.errors import OneEyeError

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""Client-error statuses that mean "later", not "never"."""


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


def mask_address(channel: str, address: str) -> str:
    """``address`` as logs may show it: ``a***@example.org``, ``+44*****789``, a webhook's
    host only. The full address stays in the database (the case page shows it to those who
    may manage subscriptions)."""
    if channel == "email":
        local, at, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}" if at else "***"
    if channel == "sms":
        digits = len(address)
        return address[:3] + "*" * max(0, digits - 6) + address[-3:] if digits > 6 else "***"
    if channel == "webhook":
        try:
            host = urlsplit(address).hostname
        except ValueError:
            host = None
        return host or "***"
    return "***"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One outbox row as a sender sees it."""

    id: int
    case_id: str
    sighting_id: str
    channel: str
    address: str
    payload: dict[str, Any]
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
            "kind": self.kind,
            "case_url": self.case_url,
        }


def _text(payload: dict[str, Any], name: str, default: str) -> str:
    value = payload.get(name)
    return default if value is None or value == "" else str(value)


def _when(value: object) -> str:
    if not isinstance(value, str):
        return "an unknown time"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(payload: dict[str, Any]) -> AlertText:
    """The alert's fields as text, with a readable default for each missing one."""
    distance = payload.get("distance")
    return AlertText(
        person=_text(payload, "case_name", "the missing person"),
        description=_text(payload, "description", ""),
        camera=_text(payload, "camera_name", _text(payload, "camera_id", "a camera")),
        location=_text(payload, "location", "location not given"),
        time=_when(payload.get("seen_at")),
        distance=f"{distance:.3f}" if isinstance(distance, int | float) else "n/a",
        kind=_text(payload, "kind", "live"),
        case_url=_text(payload, "case_url", ""),
    )


class Sender(ABC):
    """Delivers notifications of one channel (``email``, ``sms``, ``webhook``)."""

    channel: str

    @abstractmethod
    def send(self, message: Outgoing) -> None:
        """Deliver ``message``; return only once the provider has accepted it.

        Raises:
            DeliveryError: it was not accepted (``permanent`` when a retry cannot help).
        """
