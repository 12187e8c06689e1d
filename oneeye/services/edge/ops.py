"""The edge's small HTTP server for operators' tools: ``/healthz``, ``/readyz`` and
``/metrics``, on an address of its own (``oneeye edge --ops-address 127.0.0.1:9108``).

An edge runs no web application, so this is the standard library's threading HTTP server
answering three GET paths and nothing else. It has no credentials: bind it to loopback or a
management network (see SECURITY.md), as Prometheus' node exporter is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oneeye.errors import OneEyeError
from oneeye.services.metrics import Check

logger = logging.getLogger(__name__)

__all__ = ["OpsServer", "parse_address"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9108"`` for IPv6) as ``(host, port)``; port 0 picks a free
    one. Raises ``OneEyeError`` for anything else."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise OneEyeError(f"an ops address is host:port, like 127.0.0.1:9108; got {address!r}")
    return host, int(port)


class OpsServer:
    """Serves ``/healthz`` (always 200), ``/readyz`` (200 when every check passes, else 503;
    JSON) and ``/metrics`` (Prometheus text) on its own thread."""

    def __init__(
        self,
        address: str,
        metrics: Callable[[], bytes],
        checks: Callable[[], list[Check]],
    ) -> None:
        """Bind ``address`` now (so a port in use fails at start); :meth:`start` serves.

        Args:
            address: ``host:port``.
            metrics: the exposition text, made when asked.
            checks: the readiness checks, run when asked.

        Raises:
            OneEyeError: the address is malformed or cannot be bound.
        """
        host, port = parse_address(address)
        handler = _handler(metrics, checks)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise OneEyeError(f"cannot listen on {address}: {exc}") from exc
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve on a thread of its own."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="edge-ops", daemon=True
        )
        self._thread.start()
        logger.info("ops endpoints on port %d: /healthz /readyz /metrics", self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def _handler(
    metrics: Callable[[], bytes], checks: Callable[[], list[Check]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """GET /healthz, /readyz, /metrics; 404 for anything else."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/healthz":
                    self._send(200, "application/json", b'{"status":"ok"}')
                elif path == "/readyz":
                    done = checks()
                    ready = all(c.ok for c in done)
                    body = {
                        "ready": ready,
                        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in done],
                    }
                    self._send(200 if ready else 503, "application/json", json.dumps(body).encode())
                elif path == "/metrics":
                    self._send(200, PROMETHEUS_TEXT, metrics())
                else:
                    self._send(404, "application/json", b'{"detail":"not found"}')
            except Exception:
                logger.exception("ops endpoint %s failed", path)
                self._send(500, "application/json", b'{"detail":"internal error"}')

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Requests are not logged (a scrape every few seconds would flood the log)."""

    return Handler
