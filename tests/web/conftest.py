"""A running OneEye server per test (on SQLite, or on PostgreSQL for ``server_pg``), with
logged-in clients for each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright

from oneeye.app import OneEyeApp
from oneeye.config import NotifySettings, ServeSettings, SmsSettings, SmtpSettings
from oneeye.vision.engine import FaceEngine
from tests.conftest import free_port
from tests.web.browser import launch_chromium

PASSWORD = "correct horse battery"
ROLES = ("viewer", "reporter", "teller", "admin")

ClientFor = Callable[[str], TestClient]


def unreachable_channels() -> NotifySettings:
    """Email and SMS set up (so they may be subscribed to) towards loopback ports nobody
    listens on: what is sent fails and is retried, as with a server that is down."""
    return NotifySettings(
        smtp=SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout=2.0),
        sms=SmsSettings(url=f"http://127.0.0.1:{free_port()}/sms", timeout=2.0),
    )


def make_server(tmp_path: Path, database_url: str, engine: FaceEngine) -> OneEyeApp:
    """A started server whose data lives under ``tmp_path``; email and SMS are set up but
    reach nobody (``unreachable_channels``)."""
    settings = ServeSettings(
        data_dir=tmp_path / "data", database_url=database_url, notify=unreachable_channels()
    )
    app = OneEyeApp(settings, engine=engine)
    app.start()
    return app


@pytest.fixture
def server(tmp_path: Path, face_engine: FaceEngine) -> Iterator[OneEyeApp]:
    """A started all-in-one server on SQLite."""
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def server_any_db(
    tmp_path: Path, face_engine: FaceEngine, database_url: str
) -> Iterator[OneEyeApp]:
    """A started server, once on SQLite and once on PostgreSQL."""
    app = make_server(tmp_path, database_url, face_engine)
    try:
        yield app
    finally:
        app.stop()


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Log ``client`` in through the API; it then sends the session cookie and CSRF header."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@pytest.fixture
def client_for(server: OneEyeApp) -> Iterator[ClientFor]:
    """``client_for("teller")``: a client logged in as a fresh user with that role."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        name = f"{role}-{len(clients)}"
        server.services.auth.create_user(name, PASSWORD, role)
        client = TestClient(server.web)
        clients.append(client)
        return login(client, name)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anonymous(server: OneEyeApp) -> Iterator[TestClient]:
    """A client that is not logged in."""
    with TestClient(server.web) as client:
        yield client


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
