"""Keep credentials out of log lines: query strings are cut from every URL that a web server
or HTTP client logs.

A query string may carry an API key (an old client's ``/ws?api_key=oek_...``) or a signed
link's signature (``/api/v1/links/snapshot?key=&exp=&sig=``); both are credentials, and a log
file is read by more people than the server's database. OneEye's own clients send keys in
headers, but a log cannot rely on every client doing so: the access log and uvicorn's
WebSocket lines show the path and ``?[redacted]`` instead of the query.
"""

from __future__ import annotations

import logging
import re

REDACTED = "?[redacted]"
WEB_LOGGERS = ("uvicorn.access", "uvicorn.error", "httpx")
"""The loggers that write request URLs: uvicorn's access log, its WebSocket accept/reject
lines, and httpx's request lines (the edge's calls to the server)."""

_QUERY = re.compile(r"\?[^\s\"'<>]+")
"""A ``?`` and everything after it up to the end of the URL (space, quote or bracket)."""


def redact_query(text: str) -> str:
    """``text`` with the query string of every URL in it replaced by ``?[redacted]``."""
    if "?" not in text:
        return text
    return _QUERY.sub(REDACTED, text)


class QueryStringRedactor(logging.Filter):
    """A logging filter that redacts query strings in a record's message and arguments.

    The arguments are redacted one by one, not merged into the message, because uvicorn's
    access formatter unpacks them (client, method, path, version, status).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_query(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_query_redaction(names: tuple[str, ...] = WEB_LOGGERS) -> None:
    """Put a ``QueryStringRedactor`` on each logger in ``names`` (once; calling again adds
    none). A filter on the logger itself runs before any handler, wherever the record then
    propagates; call this after the logging configuration (uvicorn's ``Config`` applies its
    own when it is built)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryStringRedactor) for f in logger.filters):
            logger.addFilter(QueryStringRedactor())
