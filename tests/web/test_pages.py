"""The dashboard pages through a TestClient: login redirects, what each role sees on the
server-rendered page, the admin pages' 403, and the CSRF token every page carries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.auth import ROLES
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import CustomerAccount, new_id
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import make_clip, played_to_the_end, wait_for
from tests.web.conftest import PASSWORD

PageClient = Callable[[str], TestClient]
ADMIN_PAGES = ("/admin/customers", "/admin/cameras", "/admin/users")


@pytest.fixture
def page_client(server: OneEyeApp) -> Iterator[PageClient]:
    """``page_client("teller")``: a browser-like client with a session cookie for a new user
    of that role (logged in through the auth service, as the login page's form would)."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        name = f"page-{role}-{len(clients)}"
        server.services.auth.create_user(name, PASSWORD, role)
        session = server.services.auth.login(name, PASSWORD)
        client = TestClient(server.web, follow_redirects=False)
        client.cookies.set("oneeye_session", session.token)
        client.headers["X-Test-CSRF"] = session.csrf_token
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def publish(server: OneEyeApp, type_: str, payload: dict[str, Any], audience: str) -> int:
    """Put a dashboard event where the dashboard reads it; returns its id."""
    return server.services.events.publish(type_, payload, audience).id


def arrival(
    server: OneEyeApp, name: str = "Barack Obama", seen_at: str = "2026-11-26T09:14:03+00:00"
) -> str:
    """A customer's visit as the sightings service announces it: a ``sighting`` for everyone
    and a ``customer.arrived`` with the account for tellers. Returns the sighting id."""
    sighting_id = new_id()
    sighting = {
        "sighting_id": sighting_id,
        "camera_id": "front-door",
        "camera_name": "Front door",
        "person_id": new_id(),
        "person_name": name,
        "watchlist": "customers",
        "distance": 0.31,
        "seen_at": seen_at,
        "snapshot_url": f"/api/v1/photos/snapshots/{sighting_id}.jpg",
    }
    publish(server, "sighting", sighting, "viewer")
    account = {
        "account_id": "ACC-1001",
        "name": name,
        "account_type": "Premier Checking",
        "address": "1600 Pennsylvania Ave",
        "balance": "1520.40",
        "currency": "USD",
        "profile_photo_url": "/api/v1/photos/customers/acc-1001.jpg",
    }
    publish(server, "customer.arrived", {**sighting, "account": account}, "teller")
    return sighting_id


def cards_in(html: str) -> list[str]:
    """The sighting ids of the arrival cards on a page, in page order."""
    return re.findall(r'data-testid="arrival-card" data-sighting-id="([0-9a-f]+)"', html)


@pytest.mark.parametrize("path", ["/", *ADMIN_PAGES, "/admin"])
def test_anonymous_page_request_goes_to_login_and_comes_back(
    anonymous: TestClient, path: str
) -> None:
    response = anonymous.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_ended_session_goes_to_login(server: OneEyeApp) -> None:
    with TestClient(server.web, follow_redirects=False) as client:
        client.cookies.set("oneeye_session", "not-a-session")
        response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_login_page_has_the_form_the_auth_route_takes(anonymous: TestClient) -> None:
    response = anonymous.get("/login?next=/admin/cameras")
    assert response.status_code == 200
    html = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'action="/api/v1/auth/login"' in html
    assert 'method="post"' in html
    for field in ('name="username"', 'name="password"', 'name="next" value="/admin/cameras"'):
        assert field in html


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/users", "/admin/users"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
def test_login_page_only_returns_to_this_site(
    anonymous: TestClient, target: str, expected: str
) -> None:
    response = anonymous.get("/login", params={"next": target})
    assert f'name="next" value="{expected}"' in response.text


def test_logged_in_user_skips_the_login_page(page_client: PageClient) -> None:
    response = page_client("viewer").get("/login?next=/")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("role", ROLES)
def test_dashboard_renders_for_every_role_with_its_csrf_token(
    page_client: PageClient, role: str
) -> None:
    client = page_client(role)
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    token = client.headers["X-Test-CSRF"]
    assert f'<meta name="csrf-token" content="{token}">' in html
    assert f'name="csrf_token" value="{token}"' in html  # the logout form
    assert 'name="viewport"' in html
    assert 'data-testid="arrivals"' in html
    assert "/static/dashboard.js" in html
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert ("/admin/users" in html) is (role == "admin")


def test_teller_sees_the_account_and_the_view_is_audited(
    server: OneEyeApp, page_client: PageClient
) -> None:
    sighting_id = arrival(server)
    client = page_client("teller")
    html = client.get("/").text
    assert cards_in(html) == [sighting_id]
    assert 'data-testid="card-balance">1,520.40 USD<' in html
    assert 'data-testid="card-account-type">Premier Checking<' in html
    assert "1600 Pennsylvania Ave" in html
    assert "/api/v1/photos/customers/acc-1001.jpg" in html
    assert 'data-testid="card-camera">Front door<' in html
    views = server.services.auth.audit_entries(action="account.view")
    assert [(v.actor.startswith("user:page-teller"), v.subject) for v in views] == [
        (True, "ACC-1001")
    ]


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_viewer_sees_who_and_where_but_no_account(
    server: OneEyeApp, page_client: PageClient, role: str
) -> None:
    sighting_id = arrival(server)
    html = page_client(role).get("/").text
    assert cards_in(html) == [sighting_id]
    assert 'data-testid="card-name">Barack Obama<' in html
    assert f"/api/v1/photos/snapshots/{sighting_id}.jpg" in html
    assert 'data-testid="card-camera">Front door<' in html
    for secret in ("1520.40", "1,520.40", "Pennsylvania", "Premier Checking", "acc-1001.jpg"):
        assert secret not in html
    assert server.services.auth.audit_entries(action="account.view") == []


def test_one_card_per_visit_newest_first(server: OneEyeApp, page_client: PageClient) -> None:
    earlier = arrival(server, "Barack Obama", "2026-11-26T09:00:00+00:00")
    later = arrival(server, "Joe Biden", "2026-11-26T09:05:00+00:00")
    update = {
        "sighting_id": earlier,
        "camera_id": "front-door",
        "camera_name": "Front door",
        "person_id": None,
        "person_name": "Barack Obama",
        "seen_at": "2026-11-26T09:00:02+00:00",
    }
    publish(server, "sighting_update", update, "viewer")
    html = page_client("teller").get("/").text
    assert cards_in(html) == [later, earlier]
    assert html.count('data-testid="card-balance"') == 2


def test_camera_tiles_show_live_status_and_stream(
    server: OneEyeApp, page_client: PageClient, tmp_path: Path
) -> None:
    cameras = server.services.cameras
    cameras.add(CameraConfig(id="lobby", name="Lobby", source=str(tmp_path / "no.mp4")))
    cameras.add(CameraConfig(id="vault", name="Vault", source="/none.mp4", enabled=False))
    html = page_client("viewer").get("/").text
    tiles = re.findall(r'data-testid="camera-tile" data-camera-id="([a-z0-9_-]+)"', html)
    assert tiles == ["lobby", "vault"]
    assert 'data-src="/api/v1/cameras/lobby/stream"' in html
    lobby = cameras.status("lobby").state
    assert f'class="status state-{lobby}" data-testid="camera-status">{lobby}<' in html
    assert 'class="status state-disabled" data-testid="camera-status">disabled<' in html


def test_a_file_camera_that_played_to_its_end_shows_ended_not_online(
    server: OneEyeApp,
    page_client: PageClient,
    tmp_path: Path,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
) -> None:
    clip = make_clip(tmp_path / "clip", face_engine, load_photo)
    cameras = server.services.cameras
    cameras.add(CameraConfig(id="lobby", name="Lobby", source=str(clip.path), pace=False))
    wait_for(lambda: played_to_the_end(cameras, "lobby"), what="the clip to end")
    for path in ("/", "/admin/cameras"):
        html = page_client("admin").get(path).text
        assert 'class="status state-ended" data-testid="camera-status">ended<' in html
        assert 'data-testid="camera-fps"></span>' in html, "no fps for a camera that ended"
        assert 'data-testid="camera-error" >the video ended<' in html


@pytest.mark.parametrize("role", ["viewer", "reporter", "teller"])
@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/admin"])
def test_admin_pages_are_403_for_everyone_else(
    page_client: PageClient, role: str, path: str
) -> None:
    response = page_client(role).get(path)
    assert response.status_code == 403
    assert 'data-testid="forbidden"' in response.text
    assert "needs the <strong>admin</strong> role" in response.text


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render_for_admin_with_csrf(page_client: PageClient, path: str) -> None:
    client = page_client("admin")
    response = client.get(path)
    assert response.status_code == 200
    assert f'<meta name="csrf-token" content="{client.headers["X-Test-CSRF"]}">' in response.text
    assert "/static/admin.js" in response.text


def test_admin_customers_lists_accounts(server: OneEyeApp, page_client: PageClient) -> None:
    with server.services.db.session() as session:
        session.add(
            CustomerAccount(
                account_id="ACC-7",
                name="Ada Lovelace",
                account_type="Savings",
                address="12 St James's Square",
                balance=Decimal("98765.5"),
                currency="GBP",
            )
        )
    html = page_client("admin").get("/admin/customers").text
    assert 'data-account-id="ACC-7"' in html
    assert 'data-testid="customer-row-balance">98,765.50 GBP<' in html
    assert 'data-testid="enrol-form"' in html


def test_admin_users_lists_users_and_keys(server: OneEyeApp, page_client: PageClient) -> None:
    server.services.auth.create_api_key("edge-1", "reporter")
    html = page_client("admin").get("/admin/users").text
    assert 'data-testid="user-row-name">admin<' in html
    assert "edge-1" in html
    assert 'data-testid="key-revoke"' in html


def test_admin_cameras_lists_cameras_with_edit_forms(
    server: OneEyeApp, page_client: PageClient
) -> None:
    server.services.cameras.add(
        CameraConfig(id="vault", name="Vault", source="rtsp://cam.invalid/1", enabled=False)
    )
    html = page_client("admin").get("/admin/cameras").text
    assert 'data-testid="camera-row" data-camera-id="vault"' in html
    assert 'value="rtsp://cam.invalid/1"' in html
    assert 'data-testid="camera-toggle">Enable<' in html


def test_card_says_when_the_directory_gave_no_details(
    server: OneEyeApp, page_client: PageClient
) -> None:
    data = {
        "sighting_id": new_id(),
        "camera_id": "front-door",
        "camera_name": "Front door",
        "person_id": new_id(),
        "person_name": "Joe Biden",
        "seen_at": "2026-11-26T09:14:03+00:00",
        "snapshot_url": None,
        "account": {"account_id": "ACC-9", "name": "Joe Biden", "balance": None},
        "account_error": "the customer directory could not answer: timed out",
    }
    publish(server, "customer.arrived", data, "teller")
    html = page_client("teller").get("/").text
    assert 'data-testid="card-balance">—<' in html
    assert "could not answer: timed out" in html


def test_login_form_logs_in_and_returns_to_next(server: OneEyeApp, anonymous: TestClient) -> None:
    server.services.auth.create_user("tina", PASSWORD, "teller")
    form = {"username": "tina", "password": PASSWORD, "next": "/admin/users"}
    response = anonymous.post("/api/v1/auth/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users"
    assert anonymous.get("/admin/users", follow_redirects=False).status_code == 403
    page = anonymous.get("/", follow_redirects=False)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    out = anonymous.post(
        "/api/v1/auth/logout", data={"csrf_token": token.group(1)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert anonymous.get("/", follow_redirects=False).status_code == 303


def test_failed_login_shows_why(server: OneEyeApp, anonymous: TestClient) -> None:
    form = {"username": "nobody", "password": "wrong password", "next": "/"}
    response = anonymous.post("/api/v1/auth/login", data=form)
    assert response.status_code == 200
    assert response.url.path == "/login"
    assert "Wrong username or password." in response.text
    assert 'data-testid="login-error" hidden' not in response.text


def test_page_text_is_escaped(server: OneEyeApp, page_client: PageClient) -> None:
    arrival(server, "<script>alert(1)</script>")
    html = page_client("teller").get("/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_static_assets_are_served(anonymous: TestClient) -> None:
    for asset in ("oneeye.css", "oneeye.js", "dashboard.js", "admin.js"):
        response = anonymous.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 500
