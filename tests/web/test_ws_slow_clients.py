"""WebSocket clients that never read are dropped (SECURITY.md section 12).

A real server (uvicorn on loopback) and a real WebSocket client that completes the handshake
and then never reads (a raw socket with a small receive buffer), while the hub publishes many
large events: the server must count the client as dropped, stop pushing to it, and close the
connection, both when its queue overflows and when one send waits too long.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.app import OneEyeApp
from oneeye.config import LimitSettings, ServeSettings
from oneeye.vision.engine import FaceEngine
from tests.web.browser import serve

pytestmark = pytest.mark.timeout(120)

BLOB = "x" * 50_000
"""A large event payload: a few dozen fill every buffer between the server and the client."""


def open_silent_socket(port: int, key: str) -> socket.socket:
    """A WebSocket connection to ``/ws`` whose client never reads after the handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    nonce = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n"
        ).encode()
    )
    head = b""
    sock.settimeout(10)
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing after the handshake is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def wait_until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.05)
    return False


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Read what is buffered until the server's close (EOF or reset) shows, or ``timeout``."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            continue
    return False


def live_server(tmp_path: Path, engine: FaceEngine, limits: LimitSettings) -> OneEyeApp:
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
        limits=limits,
    )
    app = OneEyeApp(settings, engine=engine)
    app.start()
    return app


@pytest.fixture
def overflow_site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[tuple[OneEyeApp, int]]:
    """A server whose clients may fall 32 events behind (sends never time out in the test)."""
    app = live_server(tmp_path, face_engine, LimitSettings(ws_queue=32, ws_send_seconds=600))
    try:
        with serve(app.web) as url:
            yield app, int(url.rsplit(":", 1)[1])
    finally:
        app.stop()


@pytest.fixture
def stuck_site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[tuple[OneEyeApp, int]]:
    """A server whose clients may fall far behind, but whose sends wait at most 1 s."""
    app = live_server(tmp_path, face_engine, LimitSettings(ws_queue=10_000, ws_send_seconds=1))
    try:
        with serve(app.web) as url:
            yield app, int(url.rsplit(":", 1)[1])
    finally:
        app.stop()


def test_a_client_that_never_reads_is_dropped_when_its_queue_overflows(
    overflow_site: tuple[OneEyeApp, int],
) -> None:
    app, port = overflow_site
    hub = app.services.events
    _, key = app.services.auth.create_api_key("wall", "viewer")
    silent = open_silent_socket(port, key)
    try:
        assert wait_until(lambda: hub.subscribers == 1, 10)
        for n in range(300):
            hub.publish("sighting", {"n": n, "blob": BLOB})
            if hub.subscribers == 0:
                break
        assert wait_until(lambda: hub.subscribers == 0, 10), "the silent client is still fed"
        assert hub.dropped_clients == 1
        assert closed_by_server(silent, 10), "the server kept the connection open"
    finally:
        silent.close()


def test_a_client_whose_send_waits_too_long_is_dropped(
    stuck_site: tuple[OneEyeApp, int],
) -> None:
    app, port = stuck_site
    hub = app.services.events
    _, key = app.services.auth.create_api_key("wall", "viewer")
    silent = open_silent_socket(port, key)
    try:
        assert wait_until(lambda: hub.subscribers == 1, 10)
        started = time.monotonic()
        for n in range(400):
            hub.publish("sighting", {"n": n, "blob": BLOB})
            if hub.subscribers == 0:
                break
        assert wait_until(lambda: hub.subscribers == 0, 15), "the silent client is still fed"
        assert hub.dropped_clients == 1
        assert closed_by_server(silent, 10), "the server kept the connection open"
        assert time.monotonic() - started < 30
    finally:
        silent.close()
