"""Fixtures for the notification tests: real SMTP and HTTP receivers, a self-signed
certificate, a migrated database and a photo folder with a real snapshot."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from tests.conftest import free_port
from tests.services.notify.receivers import Certificate, HttpReceiver, MailServer


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A fresh self-signed certificate (``openssl req -x509``)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return Certificate(cert, key)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A plain SMTP server (no TLS, no auth), already listening."""
    server = MailServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A running HTTP receiver."""
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database (for the tests that need not run on both)."""
    database = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def photos(tmp_path: Path) -> LocalPhotoStore:
    """A photo folder."""
    return LocalPhotoStore(tmp_path / "photos")


@pytest.fixture
def snapshot(photos: LocalPhotoStore, face_photos: Path) -> tuple[str, bytes]:
    """A real face photo stored as a camera snapshot: its key and bytes."""
    data = (face_photos / "obama.jpg").read_bytes()
    return photos.add("snapshots", data), data
