"""The event bus: topics and payloads shared by every OneEye process."""

from oneeye.bus.base import Bus, Handler, Message, topic_matches

__all__ = ["Bus", "Handler", "Message", "topic_matches"]
