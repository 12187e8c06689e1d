"""The event bus: topics and payloads shared by every OneEye process.

``make_bus`` is the one way to make a bus from settings (``factory``); everything else sees
``Bus`` only.
"""

from oneeye.bus.base import Announcement, Bus, Handler, Message, topic_matches
from oneeye.bus.factory import BusOptions, UnknownBusError, make_bus, register_bus

__all__ = [
    "Announcement",
    "Bus",
    "BusOptions",
    "Handler",
    "Message",
    "UnknownBusError",
    "make_bus",
    "register_bus",
    "topic_matches",
]
