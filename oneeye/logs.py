"""How OneEye's log lines are written: plain text for people, or one JSON object per line for
log shippers (``ONEEYE_LOG__FORMAT=json``).

Log lines name people, sightings and cases by id, and notification addresses masked
(``a***@example.org``); URLs lose their query strings (``oneeye.redact``). The JSON lines carry
the same message, with the time, level and logger as fields of their own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

__all__ = ["TEXT_FORMAT", "JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO-8601 UTC), ``level``, ``logger``,
    ``message``, ``thread``, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, not to the stream it was at
    set-up: a command run in-process (a test's CLI runner) swaps stderr and closes its own."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value  # always the current sys.stderr


def configure_logging(level: int, log_format: LogFormat = "text") -> logging.Handler:
    """Send every log record at ``level`` or above to stderr, as text or JSON lines.

    Replaces the root logger's handlers (so calling it again does not double the lines). The
    query-string redactor (``oneeye.redact``) is put on the web loggers by the commands that
    serve or call URLs.

    Args:
        level: the root logger's level (``logging.INFO``...).
        log_format: ``text`` (``LEVEL logger: message``) or ``json``.

    Returns:
        The handler installed.
    """
    handler = _StderrHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
