"""Request bodies are limited before they are read (SECURITY.md section 6).

A real server (uvicorn on loopback) and a raw socket client that streams a huge body while
watching for the answer: the server must answer (and stop reading) after a few megabytes at
most, never spool the upload to disk, and say why in the 413's sentence.
"""

from __future__ import annotations

import json
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oneeye.app import OneEyeApp
from oneeye.vision.engine import FaceEngine
from tests.web.browser import serve
from tests.web.conftest import make_server

pytestmark = pytest.mark.timeout(120)

CAP = 64 * 1024 * 1024
"""The most a test sends: on a server that reads everything, no answer comes before this."""
EARLY = 16 * 1024 * 1024
"""An answer must come before the client got this far (socket buffers on loopback hold a few
megabytes the server never read)."""
CHUNK = 64 * 1024


@dataclass
class Answer:
    """What a streaming client saw: bytes it managed to send, and the server's reply."""

    sent: int
    reply: bytes
    seconds: float

    @property
    def status(self) -> int:
        return int(self.reply.split(b" ", 2)[1]) if self.reply.startswith(b"HTTP/") else 0

    @property
    def body(self) -> dict[str, object]:
        head, _, rest = self.reply.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            rest = rest.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
        parsed: dict[str, object] = json.loads(rest)
        return parsed

    @property
    def headers(self) -> str:
        return self.reply.partition(b"\r\n\r\n")[0].decode("latin-1").lower()


def stream(port: int, head: str, *, chunked: bool = False, timeout: float = 30.0) -> Answer:
    """Send ``head`` then up to ``CAP`` bytes of body, reading the reply as soon as one comes;
    stop when the reply is complete, the server closes, or ``CAP`` is sent."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head.encode("latin-1"))
    sock.setblocking(False)
    piece = b"0" * CHUNK
    if chunked:
        piece = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n"
    sent, reply, pending = 0, b"", b""
    try:
        while time.monotonic() - started < timeout:
            readable, writable, _ = select.select([sock], [sock] if sent < CAP else [], [], 0.5)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                reply += data
                if _complete(reply):
                    break
                continue
            if writable:
                pending = pending or piece  # a partial send goes on where it stopped
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    continue
                pending = pending[count:]
                sent += count
            elif sent >= CAP and time.monotonic() - started > timeout / 2:
                # Everything the test will send is sent and no answer came: the server had
                # its moment to answer (it would, after reading the whole body); stop.
                break
    finally:
        sock.close()
    return Answer(sent, reply, time.monotonic() - started)


def _complete(reply: bytes) -> bool:
    head, sep, rest = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":")[1])
    return rest.endswith(b"0\r\n\r\n")


def multipart_head(path: str, length: int, extra: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {length}\r\n\r\n"
        '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )


@dataclass
class Live:
    app: OneEyeApp
    port: int
    viewer_key: str
    admin_key: str
    spool: Path


@pytest.fixture
def live(
    tmp_path: Path, face_engine: FaceEngine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Live]:
    """A server on loopback, API keys for a viewer and an admin, and the folder where uploads
    would be spooled to disk (the process's temporary folder, pointed at ``spool``)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        _, viewer = app.services.auth.create_api_key("viewer", "viewer")
        _, admin = app.services.auth.create_api_key("admin", "admin")
        with serve(app.web) as url:
            yield Live(app, int(url.rsplit(":", 1)[1]), viewer, admin, spool)
    finally:
        app.stop()


def spooled(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("credentials", ["", "Authorization: Bearer oek_deadbeef_made-up\r\n"])
def test_an_upload_without_working_credentials_is_refused_before_it_is_read(
    live: Live, credentials: str
) -> None:
    answer = stream(live.port, multipart_head("/api/v1/identify", 300_000_000, credentials))
    assert answer.status == 401, answer.reply[:300]
    assert answer.sent < EARLY, f"the server read {answer.sent:,} bytes before answering"
    assert "nothing was read" in str(answer.body["error"])
    assert "connection: close" in answer.headers
    assert spooled(live.spool) == 0


def test_a_huge_login_body_is_refused_unread(live: Live) -> None:
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        '{"username": "admin", "password": "'
    )
    answer = stream(live.port, head)
    assert answer.status == 413, answer.reply[:300]
    assert answer.sent < EARLY
    message = str(answer.body["error"])
    assert "larger than the 16 KB (16,384 bytes) this address accepts" in message


def test_a_logged_in_upload_over_the_limit_is_refused_unread(live: Live) -> None:
    credentials = f"Authorization: Bearer {live.viewer_key}\r\n"
    answer = stream(live.port, multipart_head("/api/v1/identify", 300_000_000, credentials))
    assert answer.status == 413, answer.reply[:300]
    assert answer.sent < EARLY
    assert "16 MB" in str(answer.body["error"])
    assert spooled(live.spool) == 0


@pytest.mark.parametrize("path", ["/api/v1/people", "/api/v1/auth/login"])
def test_a_body_without_a_length_is_cut_off_at_the_limit(live: Live, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {live.admin_key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = stream(live.port, head, chunked=True)
    assert answer.status == 413, answer.reply[:300]
    assert answer.sent < EARLY
    assert "connection: close" in answer.headers
    assert "this address accepts" in str(answer.body["error"])


def test_a_body_within_its_limit_is_read(live: Live) -> None:
    body = json.dumps({"name": "Ada", "notes": "x" * 1500}).encode()
    head = (
        "POST /api/v1/people HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {live.admin_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    sock.sendall(head.encode() + body)
    reply = b""
    while not _complete(reply):
        reply += sock.recv(65536)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:300]
