"""The bus over an MQTT broker (Mosquitto, EMQX, any MQTT 3.1.1 or 5 broker), for edge + central.

Messages are published with QoS 1 and received with QoS 1 into a persistent session: a consumer
that comes back with the same client id gets what was published while it was away. A message is
acknowledged to the broker only after its handlers ran, so one queued in this process when it
dies is delivered again (at least once; consumers recognise repeats by the payload's id).
Handlers run on one delivery thread, in arrival order, never on paho's network thread. A
malformed message (larger than its topic's byte limit, checked before parsing; not UTF-8 JSON,
not an object, no or unknown ``v``) is dropped and counted in ``messages.REJECTIONS``, logged
once per topic (never its content); nothing else stops. Handlers read the payload into its
model (``messages.PayloadReader``), which checks the rest. A publish the broker acknowledged
but gave to nobody (no subscription matched) is counted by topic (``take_unrouted``), so that a
publisher that must not lose it can send it again.

The broker URL and the client id live in ``bus.broker``. What is left (about 740 lines) is one
concern, the ``MqttBus`` class: its connect, subscribe, delivery and acknowledgement paths share
one lock and one generation counter and are read together.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel

from oneeye.bus.base import (
    ALL_EDGE_SIGHTINGS,
    ALL_SIGHTINGS,
    SCHEMA_VERSION,
    Bus,
    Handler,
    Message,
    encode_payload,
    topic_matches,
)

# Announcement moved to base (every bus takes one); still importable from here.
from oneeye.bus.base import Announcement as Announcement  # noqa: PLC0414
from oneeye.bus.broker import MqttError, parse_broker_url
from oneeye.bus.messages import REJECTIONS, Rejections, max_bytes
from oneeye.config import MqttSettings

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})
"""Payload schema versions this build understands; others are dropped as malformed."""

DEFAULT_SESSION_EXPIRY = 7 * 24 * 3600
"""Seconds the broker keeps a persistent session (and queues its QoS 1 messages) while the
client is away. Long enough for a weekend outage; the broker's own limits also apply."""

NO_MATCHING_SUBSCRIBERS = 0x10
"""The MQTT 5 PUBACK reason code of a message the broker took but gave to nobody: no
subscription matched (e.g. a server's shared subscription, which Mosquitto 2.0 does not restore
from its persistence file after a restart, before the server subscribed again)."""


@dataclass(frozen=True, slots=True)
class _Delivery:
    generation: int
    mid: int
    qos: int
    topic: str
    data: bytes
    retain: bool
    subscriptions: tuple[int, ...] = ()
    """MQTT 5: the identifiers of the subscriptions this copy is for."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """A QoS 1 publish not yet settled: its receipt, and what is needed to judge its PUBACK."""

    info: paho.MQTTMessageInfo
    topic: str
    retain: bool


class MqttBus(Bus):
    """The ``Bus`` on an MQTT broker (paho-mqtt 2).

    Args:
        url: ``mqtt://[user:pass@]host:port`` or ``mqtts://...`` for TLS.
        client_id: this process's identity at the broker. Give a stable one (per server, per
            edge) for a persistent session; ``None`` makes a random id with a clean session.
        persistent: keep the session (subscriptions, missed QoS 1 messages) across
            disconnects; defaults to whether ``client_id`` was given.
        session_expiry: seconds the broker keeps a persistent session while away (MQTT 5).
        protocol: ``"5"`` (default) or ``"3.1.1"`` for older brokers.
        username, password: override those in the URL.
        ca_file: CA bundle to verify the broker's certificate (``None``: the system's).
        client_cert, client_key: a client certificate, for brokers that ask for one.
        insecure: TLS without verifying the broker's certificate or name (testing only).
        will: sent by the broker if this client vanishes without ``stop()`` (a dead edge).
        birth: published on every (re)connect, e.g. the retained "online" status that the
            will overwrites.
        share_group: when set, subscriptions to ``shared_patterns`` become shared
            subscriptions (``$share/<group>/...``): each message goes to one member of the
            group, so several servers consume sightings once between them.
        shared_patterns: the patterns that are shared when ``share_group`` is set.
        topic_prefix: put before every topic (publish, subscribe, will); stripped on delivery.
            Separates installations (or tests) on one broker.
        max_payload: larger incoming payloads are dropped; larger outgoing ones refused. A
            topic with a model has its own, smaller limit (``messages.max_bytes``).
        rejections: where dropped messages are counted (the process's by default).
        max_queue: messages waiting for the delivery thread before the network thread waits.
        max_outgoing: QoS 1 publishes kept in memory while the broker does not acknowledge
            them (e.g. while it is down); beyond this ``publish`` raises ``MqttError``.
        keepalive: seconds between pings when idle; a dead link is noticed in ~1.5x this.
        reconnect_min, reconnect_max: seconds of the reconnect backoff (doubling).
        connect_timeout: ``start()`` waits this long for the first connection; a refused
            login raises, an unreachable broker is logged and retried in the background.
    """

    @classmethod
    def from_settings(
        cls,
        url: str,
        settings: MqttSettings,
        *,
        client_id: str,
        share_group: str | None = None,
        will: Announcement | None = None,
        birth: Announcement | None = None,
    ) -> MqttBus:
        """A bus configured by the ``ONEEYE_MQTT__*`` settings (credentials, TLS, session,
        limits); the caller says who it is and what it announces.

        Args:
            url: ``mqtt://[user:pass@]host:port`` or ``mqtts://...``.
            settings: the MQTT settings.
            client_id: this process's identity at the broker (``settings.client_id`` wins).
            share_group: consume sightings through this shared subscription (servers only).
            will: what the broker says if this process vanishes.
            birth: what this process says on every connect.
        """
        m = settings
        return cls(
            url,
            client_id=m.client_id or client_id,
            protocol=m.protocol,
            username=m.username,
            password=m.password.get_secret_value() if m.password else None,
            ca_file=str(m.ca_file) if m.ca_file else None,
            client_cert=str(m.client_cert) if m.client_cert else None,
            client_key=str(m.client_key) if m.client_key else None,
            insecure=m.insecure,
            will=will,
            birth=birth,
            share_group=share_group,
            topic_prefix=m.topic_prefix,
            session_expiry=m.session_expiry,
            max_payload=m.max_payload,
            keepalive=m.keepalive,
            reconnect_max=m.reconnect_max,
            connect_timeout=m.connect_timeout,
        )

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        persistent: bool | None = None,
        session_expiry: int = DEFAULT_SESSION_EXPIRY,
        protocol: Literal["5", "3.1.1"] = "5",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        insecure: bool = False,
        will: Announcement | None = None,
        birth: Announcement | None = None,
        share_group: str | None = None,
        shared_patterns: Collection[str] = (ALL_SIGHTINGS, ALL_EDGE_SIGHTINGS),
        topic_prefix: str = "",
        max_payload: int = 1_000_000,
        max_queue: int = 10_000,
        max_outgoing: int = 100_000,
        keepalive: int = 30,
        reconnect_min: int = 1,
        reconnect_max: int = 30,
        connect_timeout: float = 10.0,
        rejections: Rejections | None = None,
    ) -> None:
        self.address = parse_broker_url(url)
        if share_group is not None and not _valid_level(share_group):
            raise MqttError(f"a share group is one topic level without wildcards: {share_group!r}")
        if topic_prefix and not topic_prefix.endswith("/"):
            topic_prefix += "/"
        if any(c in topic_prefix for c in "+#"):
            raise MqttError(f"a topic prefix has no wildcards: {topic_prefix!r}")
        self.persistent = client_id is not None if persistent is None else persistent
        if self.persistent and not client_id:
            raise MqttError("a persistent MQTT session needs a client id")
        self.client_id = client_id or f"oneeye-{uuid.uuid4().hex[:12]}"
        self.topic_prefix = topic_prefix
        self.share_group = share_group
        self.shared_patterns = frozenset(shared_patterns)
        self.max_payload = max_payload
        self.connect_timeout = connect_timeout
        self.dropped = 0
        """Incoming messages dropped as malformed or oversized (for tests and metrics)."""
        self.rejections = rejections or REJECTIONS
        self._v5 = protocol == "5"
        self._session_expiry = session_expiry if self.persistent else 0
        self._keepalive = keepalive
        self._birth = birth
        self._lock = threading.Lock()
        self._handlers: list[tuple[str, Handler]] = []
        self._filters: dict[str, list[Handler]] = {}  # broker filter -> its handlers
        self._by_id: dict[int, str] = {}  # MQTT 5 subscription identifier -> broker filter
        self._subscribed_once: set[str] = set()
        self._unconfirmed: set[int] = set()  # SUBSCRIBE packet ids without a SUBACK yet
        self._confirmed = threading.Condition(self._lock)
        self._pending: deque[_Sent] = deque()
        self._acks: dict[int, int] = {}  # packet id -> reason code of its PUBACK (network thread)
        self._unrouted: Counter[str] = Counter()  # topic -> publishes nobody was subscribed to
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=max_queue)
        self._generation = 0
        self._connected = threading.Event()
        self._first_result = threading.Event()
        self._refused: str | None = None
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._started = False

        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if self._v5 else not self.persistent,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        self._client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        self._client.max_queued_messages_set(max_outgoing)
        self._client.reconnect_delay_set(reconnect_min, reconnect_max)
        user = username if username is not None else self.address.username
        secret = password if password is not None else self.address.password
        if user is not None:
            self._client.username_pw_set(user, secret)
        if self.address.tls:
            try:
                self._client.tls_set(
                    ca_certs=ca_file,
                    certfile=client_cert,
                    keyfile=client_key,
                    cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise MqttError(f"cannot set up TLS for {self.address.redacted()}: {exc}") from None
            self._client.tls_insecure_set(insecure)
        if will is not None:
            data = self._encode(will.payload)
            self._client.will_set(self._full(will.topic), data, qos=1, retain=will.retain)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish

    # Bus ------------------------------------------------------------------------------------

    def publish(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        """Send ``payload`` with QoS 1. While the broker is unreachable the message waits in
        memory (up to ``max_outgoing``) and goes out on reconnect."""
        self._send(self._full(topic), self._encode(payload), retain)

    def subscribe(self, pattern: str, handler: Handler, *, shared: bool | None = None) -> None:
        """Call ``handler`` for every message on a topic matching ``pattern`` (QoS 1).

        ``shared`` makes it a shared subscription of ``share_group`` (default: whether
        ``pattern`` is one of ``shared_patterns``). Retained messages are given to a new
        subscription; a retained topic carries state, so a handler may see one again.
        """
        if shared is None:
            shared = pattern in self.shared_patterns
        broker_filter = self._full(pattern)
        if shared and self.share_group is not None:
            broker_filter = f"$share/{self.share_group}/{broker_filter}"
        with self._lock:
            self._handlers.append((pattern, handler))
            if broker_filter not in self._filters:
                ident = _subscription_id(broker_filter)
                if ident in self._by_id:
                    raise MqttError(
                        f"subscription id clash of {broker_filter} and {self._by_id[ident]}"
                    )
                self._by_id[ident] = broker_filter
                self._filters[broker_filter] = []
            self._filters[broker_filter].append(handler)
            # A filter subscribed again makes the broker resend its retained messages, so the
            # new handler gets the current state as it would on a new filter.
            self._subscribed_once.discard(broker_filter)
            if self._connected.is_set():
                self._subscribe_locked(broker_filter)

    def start(self) -> None:
        """Connect (in the background, with reconnects) and begin delivering messages."""
        if self._started:
            return
        self._started = True
        self._stopping.clear()
        self._worker = threading.Thread(target=self._deliver, name="bus-mqtt", daemon=True)
        self._worker.start()
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry
        logger.info(
            "bus: connecting to %s as %s (%s session)",
            self.address.redacted(),
            self.client_id,
            "persistent" if self.persistent else "clean",
        )
        self._client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=self._keepalive,
            clean_start=not self.persistent if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        if self.connect_timeout <= 0:
            return
        deadline = time.monotonic() + self.connect_timeout
        self._first_result.wait(self.connect_timeout)
        if self._connected.is_set():
            # Subscriptions made before start() are in force when it returns.
            self.wait_ready(max(0.0, deadline - time.monotonic()))
        if self._refused is not None:
            reason = self._refused
            self._stopping.set()
            self._stop_worker(30.0)
            self._halt()
            raise MqttError(f"the MQTT broker {self.address.redacted()} refused us: {reason}")
        if not self._connected.is_set():
            logger.warning(
                "bus: MQTT broker %s not reachable yet; retrying in the background",
                self.address.redacted(),
            )

    def close_intake(self, timeout: float = 10.0) -> bool:
        """Take no more messages from the broker (those arriving now stay unacknowledged: the
        broker gives them to the next session of this client id, or, shared, to the group)
        and run the handlers on those already taken; publishing goes on until :meth:`stop`.

        Args:
            timeout: seconds to wait at most for the delivery thread.

        Returns:
            Whether the delivery thread finished the messages taken in time.
        """
        self._stopping.set()
        return self._stop_worker(timeout)

    def stop(self) -> None:
        """Deliver what is queued, send what is unacknowledged (up to 10 s), then disconnect
        cleanly: the broker keeps a persistent session and does not send the will."""
        if not self._started:
            return
        self._stopping.set()
        self._stop_worker(30.0)
        if not (self._connected.is_set() and self.flush(timeout=10)):
            with self._lock:
                unsent = sum(1 for sent in self._pending if not sent.info.is_published())
            if unsent:
                logger.warning(
                    "bus: stopping with %d message(s) the MQTT broker %s has not acknowledged",
                    unsent,
                    self.address.redacted(),
                )
        self._halt()

    # Extras ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker link is up now."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the broker link; whether it is up."""
        return self._connected.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the link is up and the broker confirmed every
        subscription; whether it did."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        with self._confirmed:
            return self._confirmed.wait_for(
                lambda: not self._unconfirmed and self._connected.is_set(),
                max(0.0, deadline - time.monotonic()),
            )

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the broker acknowledged every publish so far;
        whether it did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._pending)
        for sent in pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sent.info.wait_for_publish(left)
            if not sent.info.is_published():
                return False
        with self._lock:
            self._settle_locked()
        return True

    def take_unrouted(self) -> Counter[str]:
        """Topics of the messages (not retained) the broker acknowledged since the last call
        without giving them to anyone, and how many of each: no subscription matched (MQTT 5
        reason "No matching subscribers"; an MQTT 3.1.1 broker does not say). Such a message
        is gone; a publisher that must not lose it sends it again once someone subscribed.
        Counted for publishes :meth:`flush` (or a later publish) found acknowledged.

        Returns:
            Topic (without the topic prefix) -> count; the count starts again from zero.
        """
        with self._lock:
            found, self._unrouted = self._unrouted, Counter()
        return found

    def clear_retained(self, topic: str) -> None:
        """Remove the retained message of ``topic`` from the broker."""
        self._send(self._full(topic), b"", retain=True)

    # Internals ------------------------------------------------------------------------------

    def _full(self, topic: str) -> str:
        return self.topic_prefix + topic

    def _encode(self, payload: BaseModel) -> bytes:
        data = encode_payload(payload)
        if len(data) > self.max_payload:
            raise MqttError(
                f"payload of {len(data)} bytes is over the bus limit of {self.max_payload}"
            )
        return data

    def _send(self, topic: str, data: bytes, retain: bool) -> None:
        info = self._client.publish(topic, data, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise MqttError(
                f"MQTT outgoing queue is full ({self._client.max_queued_messages} messages "
                f"waiting for {self.address.redacted()}); {topic} not sent"
            )
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            # paho keeps a QoS 1 message and sends it on reconnect; it is queued, not failed.
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        elif info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"MQTT publish to {topic} failed: {paho.error_string(info.rc)}")
        with self._lock:
            self._settle_locked()
            self._pending.append(_Sent(info, topic, retain))

    def _settle_locked(self) -> None:
        """Forget the oldest acknowledged publishes, counting those that reached nobody."""
        while self._pending and self._pending[0].info.is_published():
            sent = self._pending.popleft()
            # paho records the PUBACK (``_on_publish``) before it marks the receipt published.
            reason = self._acks.pop(sent.info.mid, None)
            if reason == NO_MATCHING_SUBSCRIBERS and not sent.retain:
                # A retained message is kept as the topic's state: someone gets it later.
                topic = sent.topic
                if topic.startswith(self.topic_prefix):
                    topic = topic[len(self.topic_prefix) :]
                self._unrouted[topic] += 1

    def _subscribe_locked(self, broker_filter: str) -> None:
        """Send one SUBSCRIBE. The first in this process asks for retained messages; a
        re-subscribe after a reconnect does not (MQTT 5), so state is not replayed twice."""
        again = broker_filter in self._subscribed_once
        if self._v5:
            options = SubscribeOptions(qos=1, retainHandling=1 if again else 0)
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = _subscription_id(broker_filter)
            rc, mid = self._client.subscribe(broker_filter, options=options, properties=properties)
        else:
            rc, mid = self._client.subscribe(broker_filter, qos=1)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._subscribed_once.add(broker_filter)
            if mid is not None:
                self._unconfirmed.add(mid)
            logger.debug("bus: subscribed to %s", broker_filter)
        else:
            logger.warning("bus: subscribe to %s failed (%s)", broker_filter, rc)

    def _stop_worker(self, timeout: float) -> bool:
        """Let the delivery thread finish what is queued and end; whether it did in time."""
        worker = self._worker
        if worker is None:
            return True
        self._put(None)
        worker.join(timeout=timeout)
        if worker.is_alive():
            logger.warning("bus: the delivery thread is still busy after %.0f s", timeout)
            return False
        self._worker = None
        return True

    def _halt(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._started = False

    def _put(self, item: _Delivery | None) -> bool:
        while True:
            try:
                self._queue.put(item, timeout=0.5)
            except queue.Full:
                if item is not None and self._stopping.is_set():
                    return False
            else:
                return True

    # paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.error("bus: MQTT broker %s refused: %s", self.address.redacted(), reason)
            if not self._first_result.is_set():
                self._refused = str(reason)
                self._first_result.set()
            return
        with self._lock:
            self._generation += 1
            for broker_filter in self._filters:
                # MQTT 3.1.1 cannot skip retained messages on a re-subscribe: a resumed
                # session already has the subscriptions this process made.
                resumed = flags.session_present and broker_filter in self._subscribed_once
                if self._v5 or not resumed:
                    self._subscribe_locked(broker_filter)
        if self._birth is not None:
            birth = self._birth
            self._send(self._full(birth.topic), self._encode(birth.payload), birth.retain)
        self._connected.set()
        self._first_result.set()
        logger.info(
            "bus: connected to %s (session %s)",
            self.address.redacted(),
            "resumed" if flags.session_present else "new",
        )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._confirmed:
            self._unconfirmed.discard(mid)
            self._confirmed.notify_all()
        for reason in reasons:
            if reason.is_failure:
                logger.error("bus: the MQTT broker refused a subscription: %s", reason)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Called with paho's message lock held, and ours is held around calls into paho
        # elsewhere: no lock here, one dict store. A reused packet id overwrites its entry.
        self._acks[mid] = reason.value if isinstance(reason, ReasonCode) else int(reason)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        with self._confirmed:
            self._unconfirmed.clear()
            self._confirmed.notify_all()
        if not self._stopping.is_set():
            logger.warning(
                "bus: lost MQTT broker %s (%s); reconnecting", self.address.redacted(), reason
            )

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker gives it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._drop("<a topic that is not UTF-8>", "topic is not UTF-8", message)
            return
        ids: list[int] = []
        if message.properties is not None and hasattr(message.properties, "SubscriptionIdentifier"):
            ids = list(message.properties.SubscriptionIdentifier)
        delivery = _Delivery(
            self._generation,
            message.mid,
            message.qos,
            topic,
            bytes(message.payload),
            message.retain,
            tuple(ids),
        )
        self._put(delivery)

    # Delivery thread ------------------------------------------------------------------------

    def _deliver(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._handle(item)
            except Exception:  # the delivery thread outlives any one message
                logger.exception("bus: could not deliver a message on %s", item.topic)
            finally:
                self._ack(item)

    def _handle(self, item: _Delivery) -> None:
        if not item.topic.startswith(self.topic_prefix):
            logger.debug("bus: ignoring %s (outside prefix %r)", item.topic, self.topic_prefix)
            return
        topic = item.topic[len(self.topic_prefix) :]
        if not item.data:
            logger.debug("bus: empty message on %s (a retained message cleared)", topic)
            return
        payload = self._decode(topic, item.data)
        if payload is None:
            return
        handlers = self._handlers_for(topic, item.subscriptions)
        for i, handler in enumerate(handlers):
            # Each handler gets its own copy (the first takes the one already parsed).
            body = payload if i == 0 else json.loads(item.data)
            message = Message(topic, body, retained=item.retain)
            try:
                handler(message)
            except Exception:
                logger.exception("bus handler failed on %s", topic)

    def _handlers_for(self, topic: str, subscriptions: tuple[int, ...]) -> list[Handler]:
        """The handlers of one delivered copy. An MQTT 5 broker may send a copy per matching
        subscription, each naming its subscription: those go to that subscription's handlers
        only, so overlapping patterns do not hear a message twice. Without identifiers (MQTT
        3.1.1) every handler whose pattern matches gets it."""
        with self._lock:
            if not subscriptions:
                return [h for p, h in self._handlers if topic_matches(p, topic)]
            found: list[Handler] = []
            for ident in subscriptions:
                broker_filter = self._by_id.get(ident)
                if broker_filter is None:
                    # A subscription left in a resumed session by an earlier process.
                    logger.debug("bus: %s came for an unknown subscription %d", topic, ident)
                    continue
                found.extend(h for h in self._filters[broker_filter] if h not in found)
            return found

    def _decode(self, topic: str, data: bytes) -> dict[str, Any] | None:
        # The size first: a flood of huge payloads costs no parsing.
        limit = max_bytes(topic, self.max_payload)
        if len(data) > limit:
            self._reject(topic, "too_large", f"{len(data)} bytes, over the limit of {limit}")
            return None
        try:
            payload = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd nesting
            # The parser's message names a position, never the content.
            self._reject(topic, "not_json", f"not UTF-8 JSON ({type(exc).__name__})")
            return None
        if not isinstance(payload, dict):
            self._reject(topic, "not_json", f"JSON {type(payload).__name__}, expected an object")
            return None
        version = payload.get("v")
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            known = sorted(SUPPORTED_VERSIONS)
            shown = version if type(version) is int else type(version).__name__
            self._reject(topic, "version", f"schema version v={shown}, this build reads {known}")
            return None
        return payload

    def _reject(self, topic: str, reason: str, why: str) -> None:
        self.dropped += 1
        self.rejections.record(topic, reason, why)

    def _drop(self, topic: str, why: str, message: paho.MQTTMessage) -> None:
        self._reject(topic, "bad_topic", why)
        self._client.ack(message.mid, message.qos)

    def _ack(self, item: _Delivery) -> None:
        # Packet ids belong to one connection: after a reconnect the broker sends unacknowledged
        # messages again, and an old id could now name another message.
        if item.qos > 0 and item.generation == self._generation:
            self._client.ack(item.mid, item.qos)


def _subscription_id(broker_filter: str) -> int:
    """A subscription identifier that is the same for a filter in every process, so messages
    queued in a persistent session for an earlier process still find their handlers."""
    return zlib.crc32(broker_filter.encode()) % 268_435_455 + 1


def _valid_level(name: str) -> bool:
    return bool(name) and not any(c in name for c in "/+#")
