"""Making a bus from settings: the one place that maps a bus's name to its backend.

``ONEEYE_BUS`` (and an edge's ``--bus``) is ``memory`` or a broker URL, ``mqtt://...`` or
``mqtts://...``; the part before ``://`` (or the whole word) names the backend in
:data:`BUS_BACKENDS`. The server (``oneeye.app``) and the edge (``services.edge``) both call
:func:`make_bus` and see a ``Bus`` only; a new backend is one module plus one
:func:`register_bus` line. Backends are imported when first made, so choosing the in-process
bus never loads a broker client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from oneeye.bus.base import Announcement, Bus
from oneeye.config import MqttSettings
from oneeye.errors import OneEyeError


class UnknownBusError(OneEyeError):
    """The settings name a bus no backend is registered for."""


@dataclass(frozen=True, slots=True)
class BusOptions:
    """What a process tells its bus beyond the URL: its settings and who it is.

    Args:
        mqtt: the broker settings (``ONEEYE_MQTT__*``; credentials, TLS, session, limits).
        identity_file: where the process's broker client id is kept across restarts
            (``None``: ``mqtt.client_id`` must name one).
        identity_stem: the client id's readable part (``oneeye-serve-<host>``,
            ``oneeye-edge-<id>``); a random part is added once and kept in ``identity_file``.
        share_group: consume sightings through this shared subscription (servers only).
        will: what the broker says if this process vanishes.
        birth: what this process says on every connect.
    """

    mqtt: MqttSettings = field(default_factory=MqttSettings)
    identity_file: Path | None = None
    identity_stem: str = "oneeye"
    share_group: str | None = None
    will: Announcement | None = None
    birth: Announcement | None = None


BusFactory = Callable[[str, BusOptions], Bus]
"""Makes a bus from its URL (or name) and the process's options."""


def _memory(url: str, options: BusOptions) -> Bus:
    from oneeye.bus.memory import MemoryBus  # noqa: PLC0415 - loaded only when chosen

    del url, options
    return MemoryBus()


def _mqtt(url: str, options: BusOptions) -> Bus:
    from oneeye.bus.broker import MqttError, stored_client_id  # noqa: PLC0415 - lazy
    from oneeye.bus.mqtt import MqttBus  # noqa: PLC0415 - lazy

    client_id = options.mqtt.client_id
    if client_id is None:
        if options.identity_file is None:
            raise MqttError("an MQTT bus needs a client id or a file to keep one in")
        client_id = stored_client_id(options.identity_file, options.identity_stem)
    return MqttBus.from_settings(
        url,
        options.mqtt,
        client_id=client_id,
        share_group=options.share_group,
        will=options.will,
        birth=options.birth,
    )


BUS_BACKENDS: dict[str, BusFactory] = {"memory": _memory, "mqtt": _mqtt, "mqtts": _mqtt}
"""Each bus name (a URL's scheme) and what makes it."""


def register_bus(name: str, factory: BusFactory) -> None:
    """Make ``name`` (``name://...`` URLs, or the bare word) a bus :func:`make_bus` knows."""
    BUS_BACKENDS[name] = factory


def bus_name(url: str) -> str:
    """The backend a bus URL names: its scheme, or the whole word when it has none."""
    scheme, sep, _ = url.partition("://")
    return scheme if sep else url


def bus_user(url: str) -> str | None:
    """The user a bus URL logs in as (``scheme://user:pass@host``), if it names one."""
    try:
        user = urlsplit(url).username
    except ValueError:
        return None
    return None if user is None else unquote(user)


def make_bus(url: str, options: BusOptions | None = None) -> Bus:
    """The bus ``url`` names (``memory``, ``mqtt://host:port``, ``mqtts://host:port``).

    Args:
        url: the bus setting.
        options: the process's broker settings and identity.

    Returns:
        The bus, not started.

    Raises:
        UnknownBusError: no backend has that name.
    """
    factory = BUS_BACKENDS.get(bus_name(url))
    if factory is None:
        raise UnknownBusError(
            f"unknown bus {url!r}; use memory, mqtt://host:port or mqtts://host:port"
        )
    return factory(url, options or BusOptions())
