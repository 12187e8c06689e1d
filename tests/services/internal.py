"""A real HTTP listener on loopback standing in for a service inside the network (an admin API
that answers with a secret), for the outbound-request tests: it must receive nothing. With
``redirect_to`` it plays an outside server that answers every request with a redirect."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_REPLY = b"db_password=hunter2-internal"
"""What the internal service answers; it must never show up in a row, a log or a page."""


class InternalService:
    """A real HTTP server on ``host`` that records every request it gets."""

    def __init__(
        self, host: str = "127.0.0.1", *, redirect_to: str | None = None, status: int = 200
    ) -> None:
        """Listen on ``host`` (any free port); answer ``status`` with ``SECRET_REPLY``, or a
        302 to ``redirect_to``."""
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """``(method, path, headers)`` of every request received."""
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                if length:
                    self.rfile.read(length)
                with service.lock:
                    service.requests.append(
                        (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(SECRET_REPLY)))
                self.end_headers()
                self.wfile.write(SECRET_REPLY)

            do_GET = _answer  # noqa: N815 (http.server's method names)
            do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def received(self) -> list[tuple[str, str, dict[str, str]]]:
        """The requests so far."""
        with self.lock:
            return list(self.requests)

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
