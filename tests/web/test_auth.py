"""``/api/v1/auth``: login (JSON and form), the session cookie's flags, logout, ``/auth/me``,
the CSRF rule for cookie-authenticated changes, API keys, and login throttling."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.auth import AuthError
from tests.web.conftest import PASSWORD, ClientFor

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
NEW_USER = {"username": "carol", "password": "a long enough password", "role": "viewer"}


def session_cookie(set_cookie: str) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(set_cookie)
    assert "oneeye_session" in cookie, set_cookie
    return cookie


def usernames(server: OneEyeApp) -> set[str]:
    return {u.username for u in server.services.auth.users()}


@pytest.fixture
def alice(server: OneEyeApp) -> str:
    server.services.auth.create_user("alice", PASSWORD, "teller")
    return "alice"


def test_login_sets_an_httponly_lax_cookie_and_returns_the_csrf_token(
    server: OneEyeApp, anonymous: TestClient, alice: str
) -> None:
    response = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"username", "role", "csrf_token", "expires_at", "must_change_password"}
    assert body["must_change_password"] is False
    assert (body["username"], body["role"]) == ("alice", "teller")
    assert len(body["csrf_token"]) >= 24
    raw = response.headers["set-cookie"]
    morsel = session_cookie(raw)["oneeye_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert not morsel["secure"]
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    me = anonymous.get(ME)
    assert me.status_code == 200
    assert me.json() == {
        "kind": "user",
        "username": "alice",
        "role": "teller",
        "csrf_token": body["csrf_token"],
        "must_change_password": False,
    }


def test_secure_cookies_setting_marks_the_cookie_secure(
    server: OneEyeApp, anonymous: TestClient, alice: str
) -> None:
    server.services.settings.server.secure_cookies = True
    response = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD})
    assert response.status_code == 200
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    assert cookie["__Host-oneeye_session"]["secure"] is True


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "alice", "password": "wrong password"}, 401, "wrong username or password"),
        ({"username": "mallory", "password": PASSWORD}, 401, "wrong username or password"),
        ({"username": "alice"}, 422, "password"),
        ({"username": "", "password": PASSWORD}, 422, "username"),
    ],
)
def test_a_failed_login_answers_in_the_error_shape_without_a_cookie(
    anonymous: TestClient, alice: str, body: dict[str, str], status: int, message: str
) -> None:
    response = anonymous.post(LOGIN, json=body)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status
    assert message in response.json()["error"]["message"]
    assert "set-cookie" not in response.headers
    assert anonymous.get(ME).status_code == 401


def test_a_login_that_is_not_json_or_a_form_is_a_clear_400(anonymous: TestClient) -> None:
    response = anonymous.post(LOGIN, content=b"{not json", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert "JSON body" in response.json()["error"]["message"]


def test_a_login_form_redirects_to_next_or_back_to_the_login_page(
    anonymous: TestClient, alice: str
) -> None:
    wrong = anonymous.post(
        LOGIN,
        data={"username": alice, "password": "wrong password", "next": "/people"},
        follow_redirects=False,
    )
    assert wrong.status_code == 303
    assert wrong.headers["location"].startswith("/login?error=1")
    assert "set-cookie" not in wrong.headers
    right = anonymous.post(
        LOGIN,
        data={"username": alice, "password": PASSWORD, "next": "/people"},
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/people"
    assert session_cookie(right.headers["set-cookie"])["oneeye_session"]["httponly"] is True
    assert anonymous.get(ME).json()["username"] == "alice"


@pytest.mark.parametrize("next_page", ["//evil.example/", "https://evil.example/", "people", ""])
def test_a_login_form_never_redirects_off_the_server(
    anonymous: TestClient, alice: str, next_page: str
) -> None:
    response = anonymous.post(
        LOGIN,
        data={"username": alice, "password": PASSWORD, "next": next_page},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_login_form_with_missing_fields_goes_back_to_the_login_page(
    anonymous: TestClient,
) -> None:
    response = anonymous.post(LOGIN, data={"username": "alice"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?error=1"


def test_login_works_with_an_old_cookie_and_ends_the_old_session(
    server: OneEyeApp, anonymous: TestClient, alice: str
) -> None:
    first = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD})
    old_token = first.cookies["oneeye_session"]
    # No X-CSRF-Token: logging in needs none, even with a live session cookie.
    second = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD})
    assert second.status_code == 200, second.text
    assert second.cookies["oneeye_session"] != old_token
    stale = TestClient(server.web, cookies={"oneeye_session": old_token})
    assert stale.get(ME).status_code == 401
    # A stale cookie does not get in the way of logging in either.
    again = stale.post(LOGIN, json={"username": alice, "password": PASSWORD})
    assert again.status_code == 200, again.text
    garbage = TestClient(server.web, cookies={"oneeye_session": "garbage"})
    assert garbage.post(LOGIN, json={"username": alice, "password": PASSWORD}).status_code == 200


def test_logout_needs_the_csrf_token_then_ends_the_session(
    anonymous: TestClient, alice: str
) -> None:
    csrf = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD}).json()[
        "csrf_token"
    ]
    refused = anonymous.post(LOGOUT)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert anonymous.get(ME).status_code == 200
    done = anonymous.post(LOGOUT, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 204
    assert (
        'oneeye_session=""' in done.headers["set-cookie"]
        or "Max-Age=0" in (done.headers["set-cookie"])
    )
    assert anonymous.get(ME).status_code == 401


def test_logout_by_form_sends_the_browser_to_the_login_page(
    server: OneEyeApp, anonymous: TestClient, alice: str
) -> None:
    csrf = anonymous.post(LOGIN, json={"username": alice, "password": PASSWORD}).json()[
        "csrf_token"
    ]
    token = anonymous.cookies["oneeye_session"]
    response = anonymous.post(LOGOUT, data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    with pytest.raises(AuthError, match="session has ended"):
        server.services.auth.session_principal(token)


def test_logout_without_a_session(server: OneEyeApp, anonymous: TestClient) -> None:
    assert anonymous.post(LOGOUT).status_code == 401
    stale = TestClient(server.web, cookies={"oneeye_session": "ended-long-ago"})
    assert stale.post(LOGOUT).status_code == 204


def test_a_cookie_post_without_the_csrf_token_is_refused_and_changes_nothing(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    token = admin.headers.pop("X-CSRF-Token")
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
        response = admin.post("/api/v1/users", json=NEW_USER, headers=headers)
        assert response.status_code == 403, response.text
        assert "CSRF" in response.json()["error"]["message"]
    assert "carol" not in usernames(server)
    ok = admin.post("/api/v1/users", json=NEW_USER, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text
    assert "carol" in usernames(server)


def test_a_get_needs_no_csrf_token(client_for: ClientFor) -> None:
    admin = client_for("admin")
    del admin.headers["X-CSRF-Token"]
    assert admin.get("/api/v1/users").status_code == 200


def test_an_api_key_needs_no_csrf_token_and_stops_working_when_revoked(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    created = admin.post("/api/v1/api-keys", json={"name": "script", "role": "admin"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    machine = TestClient(server.web)
    for header in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        me = machine.get(ME, headers=header)
        assert me.json()["kind"] == "key"
        assert me.json()["csrf_token"] is None
    made = machine.post("/api/v1/users", json=NEW_USER, headers={"Authorization": f"Bearer {key}"})
    assert made.status_code == 201, made.text
    assert server.services.auth.audit_entries(action="user.create")[0].actor == "key:script"
    assert admin.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 204
    refused = machine.get(ME, headers={"X-API-Key": key})
    assert refused.status_code == 401
    assert "not valid" in refused.json()["error"]["message"]


def test_a_bad_session_cookie_is_401(server: OneEyeApp) -> None:
    client = TestClient(server.web, cookies={"oneeye_session": "forged"})
    response = client.get(ME)
    assert response.status_code == 401
    assert "log in again" in response.json()["error"]["message"]


def test_five_failed_logins_pause_that_address_not_the_account(
    server: OneEyeApp, anonymous: TestClient, alice: str
) -> None:
    server.services.auth.create_user("bob", PASSWORD, "viewer")
    for _ in range(5):
        wrong = anonymous.post(LOGIN, json={"username": alice, "password": "guess guess"})
        assert wrong.status_code == 401
    for name, password in ((alice, "guess guess"), (alice, PASSWORD), ("bob", PASSWORD)):
        paused = anonymous.post(LOGIN, json={"username": name, "password": password})
        assert paused.status_code == 429
        assert "too many failed logins" in paused.json()["error"]["message"]
        assert 0 < int(paused.headers["retry-after"]) <= 300
    form = anonymous.post(
        LOGIN, data={"username": alice, "password": PASSWORD}, follow_redirects=False
    )
    assert form.status_code == 303
    assert form.headers["location"].startswith("/login?error=")
    with TestClient(server.web, client=("192.0.2.44", 50000)) as elsewhere:
        real = elsewhere.post(LOGIN, json={"username": alice, "password": PASSWORD})
        assert real.status_code == 200


def test_a_flood_of_throttled_logins_logs_a_line_not_one_per_login(
    server: OneEyeApp, anonymous: TestClient, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11, #33: every 429 wrote a WARNING line (4,320 in a 15 s flood), with the
    username typed next to it in the failed-login lines."""
    typed = "mallory-typed-this"
    for _ in range(5):
        assert anonymous.post(LOGIN, json={"username": typed, "password": "x"}).status_code == 401
    caplog.clear()
    caplog.set_level("INFO", logger="oneeye")
    for _ in range(200):
        flood = anonymous.post(LOGIN, json={"username": typed, "password": "guess guess"})
        assert flood.status_code == 429
    lines = [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert len(lines) == 1, lines
    assert "testclient" in lines[0]
    assert not any(typed in r.getMessage() for r in caplog.records)


def test_an_inactive_users_session_stops_working_at_once(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    viewer = client_for("viewer")
    assert viewer.get(ME).status_code == 200
    user = server.services.auth.user_named(viewer.get(ME).json()["username"])
    server.services.auth.update_user(user.id, active=False)
    assert viewer.get(ME).status_code == 401


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_docs_describe_the_login_body_and_every_reference_resolves(
    anonymous: TestClient,
) -> None:
    assert anonymous.get("/docs").status_code == 200
    spec = anonymous.get("/openapi.json").json()
    body = spec["paths"][LOGIN]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-www-form-urlencoded"}
    assert body["application/json"]["schema"]["required"] == ["username", "password"]
    schemas = spec["components"]["schemas"]
    dangling = {
        ref for ref in _refs(spec) if ref.removeprefix("#/components/schemas/") not in schemas
    }
    assert not dangling
