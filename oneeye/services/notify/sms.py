"""Alert text messages through an HTTP SMS gateway.

The default shape is Twilio's: a form post of ``To``, ``From`` and ``Body`` with HTTP basic
auth. ``format = "json"`` posts ``{"to", "from", "body"}`` instead, for gateways that want JSON.
The body comes from a template (``{person}``, ``{camera}``, ``{location}``, ``{time}``,
``{distance}``, ``{description}``, ``{case_url}``, ``{link}``); ``{link}`` is a signed,
expiring link to the snapshot.
"""

from __future__ import annotations

import logging
import string
from typing import Any

import httpx

from oneeye.config import SmsSettings
from oneeye.services.notify.base import DeliveryError, Outgoing, Sender, describe
from oneeye.services.notify.links import LinkError, LinkSigner

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""Client-error statuses that mean "later", not "never"."""


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


def status_error(service: str, response: httpx.Response) -> DeliveryError:
    """The error for a gateway's non-2xx answer; 4xx (but 408/425/429) is permanent."""
    code = response.status_code
    permanent = 400 <= code < 500 and code not in RETRYABLE_STATUS
    return DeliveryError(
        f"{service} answered HTTP {code}: {response.text[:300]}",
        permanent=permanent,
        provider_down=code >= 500 or code == 429,
    )


class SmsSender(Sender):
    """Posts alert text messages to the configured gateway."""

    channel = "sms"

    def __init__(
        self,
        settings: SmsSettings,
        links: LinkSigner,
        *,
        link_lifetime: float = 86400.0,
        client: httpx.Client | None = None,
    ) -> None:
        """Post to ``settings.url``; snapshot links signed by ``links`` last ``link_lifetime``
        seconds. ``client``: an HTTP client to reuse (one is made otherwise)."""
        self.settings = settings
        self.links = links
        self.link_lifetime = link_lifetime
        self._client = client
        self._timeout = settings.timeout

    def body(self, message: Outgoing) -> str:
        """The text of the message for ``message``."""
        fields = describe(message.payload).as_dict()
        key = message.payload.get("snapshot_key")
        link = ""
        if isinstance(key, str):
            try:
                link = self.links.url(key, self.link_lifetime)
            except LinkError:
                link = ""
        fields["link"] = link or fields["case_url"]
        return render(self.settings.body_template, fields).strip()

    def send(self, message: Outgoing) -> None:
        """Post the text message; return once the gateway answered 2xx."""
        s = self.settings
        if s.url is None:
            raise DeliveryError("SMS is not configured (set ONEEYE_NOTIFY__SMS__URL)")
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
        try:
            response = self.client.post(s.url, headers=headers, timeout=s.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"SMS gateway {s.url} unreachable: {type(exc).__name__}: {exc}",
                provider_down=True,
            ) from exc
        if not response.is_success:
            raise status_error(f"SMS gateway {s.url}", response)
        logger.info("notification %d: SMS to %s accepted by %s", message.id, message.address, s.url)

    @property
    def client(self) -> httpx.Client:
        """The HTTP client (made on first use, and again after ``close``)."""
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        return self._client

    def close(self) -> None:
        """Close the HTTP client (a later send opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
