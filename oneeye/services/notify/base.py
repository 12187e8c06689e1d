"""What every notification channel shares: the message to send, the sender interface, and the
error a sender raises (saying whether trying again could help)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oneeye.errors import OneEyeError


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
