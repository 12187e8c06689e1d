"""Logins and sessions against a real server on loopback (issue 11, finding 11): the
throttle slows an attacker's address, never the account; logins and cookie-authenticated
changes from another site's page are refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from oneeye.app import OneEyeApp
from oneeye.config import ServerSettings, ServeSettings
from oneeye.vision.engine import FaceEngine
from tests.web.browser import serve
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.timeout(120)

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
EVIL = "https://evil.example"


@dataclass
class Live:
    """A started server and the URL uvicorn serves it at."""

    app: OneEyeApp
    url: str

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for this server (``local_address`` picks the loopback address it
        comes from)."""
        local = options.pop("local_address", None)
        transport = httpx.HTTPTransport(local_address=local) if local else None
        return httpx.Client(base_url=self.url, timeout=30, transport=transport, **options)

    def log_in(self, client: httpx.Client, username: str, password: str = PASSWORD) -> None:
        """Log ``client`` in; it then sends the session cookie and the CSRF header."""
        response = client.post(LOGIN, json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


LiveFactory = Callable[..., AbstractContextManager[Live]]


@pytest.fixture
def live_server(tmp_path: Path, face_engine: FaceEngine) -> LiveFactory:
    """``with live_server(idle_minutes=...) as live``: a server on SQLite with those server
    settings, served by uvicorn on 127.0.0.1."""

    @contextmanager
    def start(**server: Any) -> Iterator[Live]:
        settings = ServeSettings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
            server=ServerSettings(**server),
        )
        app = OneEyeApp(settings, engine=face_engine)
        app.start()
        try:
            with serve(app.web) as url:
                yield Live(app, url)
        finally:
            app.stop()

    return start


@pytest.fixture
def live(live_server: LiveFactory) -> Iterator[Live]:
    """A server with the default settings."""
    with live_server() as server:
        yield server


def test_the_right_password_works_during_a_flood_from_another_address(live: Live) -> None:
    live.app.services.auth.create_user("alice", PASSWORD, "teller")
    with live.client(local_address="127.0.0.2") as attacker:
        codes = [
            attacker.post(LOGIN, json={"username": "alice", "password": f"guess {n}"}).status_code
            for n in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3
        # The flooding address stays paused, even with the right password.
        paused = attacker.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        assert paused.status_code == 429
    with live.client() as alice:  # from 127.0.0.1
        live.log_in(alice, "alice")
        assert alice.get(ME).json()["username"] == "alice"


def test_a_login_posted_from_another_site_is_refused(live: Live) -> None:
    live.app.services.auth.create_user("alice", PASSWORD, "teller")
    body = {"username": "alice", "password": PASSWORD}
    with live.client() as browser:
        for header in ({"Origin": EVIL}, {"Origin": "null"}, {"Referer": f"{EVIL}/trap"}):
            refused = browser.post(LOGIN, json=body, headers=header)
            assert refused.status_code == 403, header
            assert "another site" in refused.json()["error"]["message"]
            assert "set-cookie" not in refused.headers
        form = browser.post(LOGIN, data=body, headers={"Origin": EVIL}, follow_redirects=False)
        assert form.status_code == 403
        assert "set-cookie" not in form.headers
        assert browser.get(ME).status_code == 401
        own = browser.post(LOGIN, json=body, headers={"Origin": live.url})
        assert own.status_code == 200


def test_a_cookie_authenticated_change_from_another_site_is_refused(live: Live) -> None:
    live.app.services.auth.create_user("root", PASSWORD, "admin")
    with live.client() as admin:
        live.log_in(admin, "root")
        new_user = {"username": "mallory", "password": PASSWORD, "role": "admin"}
        # Even with the CSRF token (say, leaked), another site's page may not change anything.
        forged = admin.post("/api/v1/users", json=new_user, headers={"Origin": EVIL})
        assert forged.status_code == 403
        assert "mallory" not in {u.username for u in live.app.services.auth.users()}
        own = admin.post("/api/v1/users", json=new_user, headers={"Origin": live.url})
        assert own.status_code == 201, own.text
