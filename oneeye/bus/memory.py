"""The in-process bus of the all-in-one server: one delivery thread, messages in order.

Payloads go through the same JSON encoding as on MQTT, so a payload that would not survive the
wire fails here too, and handlers get their own copy.
"""

from __future__ import annotations

import json
import logging
import queue
import threading

from pydantic import BaseModel

from oneeye.bus.base import Bus, Handler, Message, encode_payload, topic_matches

logger = logging.getLogger(__name__)

_Item = tuple[str, bytes, Handler | None]
"""topic, payload bytes, and the one handler it is for (a retained message replayed to a new
subscriber) or ``None`` for every matching subscriber."""

_Mark = threading.Event
"""Set by the delivery thread when it reaches it: everything queued before has been handled."""


class MemoryBus(Bus):
    """Delivers messages to handlers in this process, on one thread, in publish order."""

    def __init__(self, max_queue: int = 10_000) -> None:
        self._subscriptions: list[tuple[str, Handler]] = []
        self._retained: dict[str, bytes] = {}
        self._queue: queue.Queue[_Item | _Mark | None] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def publish(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        data = encode_payload(payload)
        if retain:
            with self._lock:
                self._retained[topic] = data
        self._queue.put((topic, data, None))

    def subscribe(self, pattern: str, handler: Handler) -> None:
        with self._lock:
            self._subscriptions.append((pattern, handler))
            retained = [(t, d) for t, d in self._retained.items() if topic_matches(pattern, t)]
        for topic, data in retained:
            self._queue.put((topic, data, handler))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bus-memory", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def drain(self, timeout: float = 10.0) -> bool:
        if self._thread is None:
            return self._queue.empty()
        mark = threading.Event()
        self._queue.put(mark)
        return mark.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            topic, data, only = item
            if only is not None:
                handlers = [only]
            else:
                with self._lock:
                    handlers = [h for p, h in self._subscriptions if topic_matches(p, topic)]
            for handler in handlers:
                message = Message(topic, json.loads(data), retained=only is not None)
                try:
                    handler(message)
                except Exception:
                    logger.exception("bus handler failed on %s", topic)
