"""Where the MQTT broker is and who we are to it: the ``mqtt://`` URL and this host's client id.

Kept apart from the bus itself (``bus.mqtt``) so that settings checks and the edge's set-up can
read a broker URL without loading paho.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from oneeye.errors import OneEyeError


class MqttError(OneEyeError):
    """The MQTT bus cannot be set up or used: bad URL, refused login, full outgoing queue."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """What an ``mqtt://`` or ``mqtts://`` URL says."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def redacted(self) -> str:
        """The URL without its password, for logs and errors."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


def stored_client_id(path: Path, stem: str) -> str:
    """This host's MQTT client id: ``<stem>-<24 random hex>``, made at the first start and
    kept owner-only in ``path``, so it stays the same across restarts (the broker keeps its
    persistent session) but cannot be guessed. A broker lets a new connection with a client
    id take over the session of the one using it; with a guessable id (``stem`` alone) any
    credential could keep throwing a server off the broker.

    Raises:
        MqttError: ``path`` holds something that is not a client id.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: that one is kept
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{stem}-{secrets.token_hex(12)}\n")
                handle.flush()
                os.fsync(handle.fileno())
    client_id = path.read_text().strip()
    if not _CLIENT_ID.match(client_id):
        raise MqttError(
            f"{path} must hold one MQTT client id (1-200 of A-Z a-z 0-9 . _ : -); delete it to "
            "make a new one"
        )
    return client_id


def parse_broker_url(url: str) -> BrokerAddress:
    """The broker address in ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...`` (TLS).

    The port defaults to 1883 (8883 for ``mqtts``). User and password may be percent-encoded.
    Raises ``MqttError`` naming what is wrong (never echoing the password).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MqttError(f"not an MQTT URL ({exc}); expected mqtt://[user:pass@]host:port") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttError(
            f"an MQTT URL starts with mqtt:// or mqtts://, got {parts.scheme or 'no'} scheme"
        )
    if not parts.hostname:
        raise MqttError("an MQTT URL needs a host: mqtt://[user:pass@]host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttError("an MQTT URL has no path or query: mqtt://[user:pass@]host:port")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
