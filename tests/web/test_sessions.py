"""Logins and sessions against a real server on loopback (issue 11, finding 11): the
throttle slows an attacker's address, never the account; logins and cookie-authenticated
changes from another site's page are refused; the printed one-time password must be changed
before anything else; users change their own password; the ``__Host-`` cookie over HTTPS; the
idle timeout; the OpenAPI schema's security schemes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

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
    def start(announce: Callable[[str], None] | None = None, **server: Any) -> Iterator[Live]:
        settings = ServeSettings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
            server=ServerSettings(**server),
        )
        app = OneEyeApp(settings, engine=face_engine, announce=announce)
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


def test_the_printed_one_time_password_must_be_changed_before_anything_else(
    live_server: LiveFactory,
) -> None:
    printed: list[str] = []
    with live_server(announce=printed.append) as live, live.client() as admin:
        name, one_time = printed[0].split(":", 1)
        response = admin.post(LOGIN, json={"username": name, "password": one_time})
        assert response.status_code == 200
        assert response.json()["must_change_password"] is True
        admin.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        # Nothing but changing it: not the API, not the pages, not the live socket.
        refused = admin.get("/api/v1/users")
        assert refused.status_code == 403
        assert "one-time password" in refused.json()["error"]["message"]
        made = admin.post("/api/v1/users", json={"username": "x1", "password": PASSWORD})
        assert made.status_code == 403
        page = admin.get("/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/account/password?next=")
        assert admin.get("/account/password").status_code == 200
        assert admin.get(ME).json()["must_change_password"] is True
        change = "/api/v1/auth/password"
        same = admin.post(change, json={"current_password": one_time, "new_password": one_time})
        assert same.status_code == 400
        wrong = admin.post(change, json={"current_password": "nope", "new_password": PASSWORD})
        assert wrong.status_code == 403
        good = admin.post(change, json={"current_password": one_time, "new_password": PASSWORD})
        assert good.status_code == 204, good.text
        assert admin.get("/api/v1/users").status_code == 200
        assert admin.get(ME).json()["must_change_password"] is False
        with live.client() as again:
            old = again.post(LOGIN, json={"username": name, "password": one_time})
            assert old.status_code == 401
            live.log_in(again, name)
        assert live.app.services.auth.audit_entries(action="user.password_change")


def test_a_user_changes_their_own_password_and_their_other_sessions_end(live: Live) -> None:
    auth = live.app.services.auth
    auth.create_user("alice", PASSWORD, "teller")
    new_password = "a brand new passphrase"
    with live.client() as laptop, live.client() as phone:
        live.log_in(laptop, "alice")
        live.log_in(phone, "alice")
        # The page's form: current password, the new one twice, the CSRF token.
        page = laptop.get("/account/password")
        assert page.status_code == 200
        assert 'name="current_password"' in page.text
        mismatch = laptop.post(
            "/api/v1/auth/password",
            data={
                "csrf_token": laptop.headers["X-CSRF-Token"],
                "current_password": PASSWORD,
                "new_password": new_password,
                "confirm_password": "something else entirely",
                "next": "/cases",
            },
            follow_redirects=False,
        )
        assert mismatch.status_code == 303
        assert mismatch.headers["location"].startswith("/account/password?error=mismatch")
        done = laptop.post(
            "/api/v1/auth/password",
            data={
                "csrf_token": laptop.headers["X-CSRF-Token"],
                "current_password": PASSWORD,
                "new_password": new_password,
                "confirm_password": new_password,
                "next": "/cases",
            },
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/cases"
        assert laptop.get(ME).status_code == 200  # this browser stays logged in
        assert phone.get(ME).status_code == 401  # every other session ended
        # Without the CSRF token (say, another site's form), nothing changes.
        del laptop.headers["X-CSRF-Token"]
        forged = laptop.post(
            "/api/v1/auth/password",
            json={"current_password": new_password, "new_password": "mallory's password"},
        )
        assert forged.status_code == 403
    with live.client() as fresh:
        assert (
            fresh.post(LOGIN, json={"username": "alice", "password": PASSWORD}).status_code == 401
        )
        live.log_in(fresh, "alice", new_password)
    _, key = auth.create_api_key("script", "admin")
    with live.client(headers={"Authorization": f"Bearer {key}"}) as script:
        keyed = script.post(
            "/api/v1/auth/password", json={"current_password": "x", "new_password": PASSWORD}
        )
        assert keyed.status_code == 400


def test_over_https_the_session_cookie_is_host_prefixed_and_secure(
    live_server: LiveFactory,
) -> None:
    with live_server(secure_cookies=True) as live, live.client() as browser:
        live.app.services.auth.create_user("alice", PASSWORD, "teller")
        response = browser.post(LOGIN, json={"username": "alice", "password": PASSWORD})
        assert response.status_code == 200
        set_cookie = response.headers["set-cookie"]
        assert set_cookie.startswith("__Host-oneeye_session=")
        attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
        assert {"secure", "httponly", "path", "samesite"} <= attributes
        assert "domain" not in attributes
        assert "path=/;" in set_cookie.lower().replace(" ", "") + ";"
        assert "samesite=lax" in set_cookie.lower()
        token = set_cookie.split(";")[0].split("=", 1)[1]
        with live.client() as https_browser:
            https_browser.cookies.set("__Host-oneeye_session", token)
            assert https_browser.get(ME).status_code == 200
        with live.client() as plain:  # the unprefixed name is not read over HTTPS
            plain.cookies.set("oneeye_session", token)
            assert plain.get(ME).status_code == 401


def test_a_session_ends_after_the_idle_timeout_but_not_while_used(
    live_server: LiveFactory,
) -> None:
    with live_server(session_idle_minutes=0.05) as live, live.client() as browser:  # 3 s
        live.app.services.auth.create_user("alice", PASSWORD, "teller")
        live.log_in(browser, "alice")
        for _ in range(4):  # used every second for 4 s: more than the idle time in all
            time.sleep(1.0)
            assert browser.get(ME).status_code == 200
        time.sleep(3.5)
        ended = browser.get(ME)
        assert ended.status_code == 401
        assert "without use" in ended.json()["error"]["message"]
        assert browser.get(ME).status_code == 401  # the session row is gone


def test_the_openapi_schema_declares_how_to_send_an_api_key(live: Live) -> None:
    spec = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "oek_...",
        "description": "An API key: `Authorization: Bearer oek_...`",
    }
    assert schemes["apiKeyHeader"]["type"] == "apiKey"
    assert (schemes["apiKeyHeader"]["in"], schemes["apiKeyHeader"]["name"]) == (
        "header",
        "X-API-Key",
    )
    assert schemes["sessionCookie"]["in"] == "cookie"
    listed = spec["paths"]["/api/v1/users"]["get"]["security"]
    assert {name for entry in listed for name in entry} == {
        "bearerAuth",
        "apiKeyHeader",
        "sessionCookie",
    }


@pytest.mark.browser
def test_docs_render_swagger_ui_with_no_request_leaving_the_server(
    live: Live, browser: Browser
) -> None:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{live.url}/docs")
        # Swagger UI rendered the schema: the API's title and an operation are on the page.
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "OneEye" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector("#operations-auth-login_api_v1_auth_login_post", timeout=20_000)
        page.wait_for_selector(".swagger-ui .btn.authorize", timeout=5_000)
    finally:
        page.close()
    assert requested
    outside = [url for url in requested if not url.startswith(live.url + "/")]
    assert outside == [], outside
    assert any(url.endswith("/swagger-ui-bundle.js") for url in requested)
    assert httpx.get(f"{live.url}/redoc", timeout=10).status_code == 404  # no CDN page left


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": "frame-ancestors 'none'",
}


def test_every_response_forbids_framing_and_sniffing(live: Live) -> None:
    """Issue 11, #67: only rendered pages carried X-Frame-Options and a CSP; redirects, API
    answers and errors, the docs and the schema came without, and no page sent nosniff.
    Every response carries the four headers now."""
    live.app.services.auth.create_user("alice", PASSWORD, "teller")
    with live.client() as browser, live.client() as anonymous:
        live.log_in(browser, "alice")
        responses = {
            "login page": anonymous.get("/login"),
            "dashboard page": browser.get("/"),
            "page redirect": anonymous.get("/"),
            "API answer": browser.get(ME),
            "API error": anonymous.get(ME),
            "docs": anonymous.get("/docs"),
            "schema": anonymous.get("/openapi.json"),
            "body too large": anonymous.post(LOGIN, content=b"x" * 200_000),
        }
        assert responses["dashboard page"].status_code == 200
        assert responses["API answer"].status_code == 200
        assert responses["API error"].status_code == 401
        assert responses["page redirect"].status_code in (302, 303, 307)
        assert responses["body too large"].status_code == 413
        for what, response in responses.items():
            found = {name: response.headers.get(name) for name in SECURITY_HEADERS}
            if what.endswith("page"):
                # A rendered page keeps its own stricter policy (only its own scripts), which
                # forbids framing as well.
                assert "frame-ancestors 'none'" in found["content-security-policy"], what
                assert "script-src 'self'" in found["content-security-policy"], what
                found["content-security-policy"] = SECURITY_HEADERS["content-security-policy"]
            assert found == SECURITY_HEADERS, what
