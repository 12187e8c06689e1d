"""``/api/v1/users``, ``/api/v1/api-keys`` and ``/api/v1/audit``: an admin manages users and
keys, every change lands in the audit log, and no password or key is ever shown again."""

from __future__ import annotations

from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from tests.web.conftest import PASSWORD, ClientFor, login

NEW_PASSWORD = "a long enough password"


def test_an_admin_adds_changes_and_removes_a_user(server: OneEyeApp, client_for: ClientFor) -> None:
    admin = client_for("admin")
    created = admin.post(
        "/api/v1/users", json={"username": "carol", "password": NEW_PASSWORD, "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) == {"id", "username", "role", "active", "created_at"}
    assert (user["username"], user["role"], user["active"]) == ("carol", "viewer", True)
    assert NEW_PASSWORD not in created.text
    carol = login(TestClient(server.web), "carol", NEW_PASSWORD)

    listed = admin.get("/api/v1/users")
    assert "carol" in [u["username"] for u in listed.json()]
    assert "password" not in listed.text
    assert "argon2" not in listed.text
    assert admin.get(f"/api/v1/users/{user['id']}").json()["username"] == "carol"

    promoted = admin.patch(f"/api/v1/users/{user['id']}", json={"role": "teller"})
    assert promoted.json()["role"] == "teller"
    assert carol.get("/api/v1/auth/me").json()["role"] == "teller"

    reset = admin.patch(f"/api/v1/users/{user['id']}", json={"password": "brand new password"})
    assert reset.status_code == 200
    assert "brand new password" not in reset.text
    assert carol.get("/api/v1/auth/me").status_code == 401  # a reset ends sessions
    carol = login(TestClient(server.web), "carol", "brand new password")

    off = admin.patch(f"/api/v1/users/{user['id']}", json={"active": False})
    assert off.json()["active"] is False
    assert carol.get("/api/v1/auth/me").status_code == 401

    assert admin.delete(f"/api/v1/users/{user['id']}").status_code == 204
    assert admin.get(f"/api/v1/users/{user['id']}").status_code == 404

    audit = admin.get("/api/v1/audit", params={"action": "user.*"}).json()
    mine = [(e["action"], e["detail"]) for e in audit if e["subject"] == "carol"]
    assert mine == [
        ("user.delete", {"role": "teller"}),
        ("user.update", {"active": [True, False]}),
        ("user.update", {"password": "reset"}),
        ("user.update", {"role": ["viewer", "teller"]}),
        ("user.create", {"role": "viewer"}),
    ]
    actor = admin.get("/api/v1/auth/me").json()["username"]
    assert {e["actor"] for e in audit if e["subject"] == "carol"} == {f"user:{actor}"}


def test_user_input_errors_say_what_is_wrong(server: OneEyeApp, client_for: ClientFor) -> None:
    admin = client_for("admin")
    cases = [
        ({"username": "dave", "password": "short", "role": "viewer"}, 422, "password"),
        ({"username": "dave", "password": NEW_PASSWORD, "role": "king"}, 422, "role"),
        ({"username": "bad name", "password": NEW_PASSWORD, "role": "viewer"}, 400, "username"),
    ]
    for body, status, field in cases:
        response = admin.post("/api/v1/users", json=body)
        assert response.status_code == status, response.text
        assert field in response.json()["error"]["message"]
    server.services.auth.create_user("dave", PASSWORD, "viewer")
    taken = admin.post(
        "/api/v1/users", json={"username": "dave", "password": NEW_PASSWORD, "role": "viewer"}
    )
    assert taken.status_code == 409
    assert "already exists" in taken.json()["error"]["message"]
    assert admin.patch("/api/v1/users/99999", json={"role": "viewer"}).status_code == 404
    assert admin.delete("/api/v1/users/99999").status_code == 404
    assert admin.delete("/api/v1/api-keys/99999").status_code == 404


def test_the_last_active_admin_cannot_lock_everyone_out(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    for user in server.services.auth.users():
        if (
            user.role == "admin"
            and user.username != admin.get("/api/v1/auth/me").json()["username"]
        ):
            server.services.auth.update_user(user.id, active=False)
    me = server.services.auth.user_named(admin.get("/api/v1/auth/me").json()["username"])
    for change in ({"role": "viewer"}, {"active": False}):
        response = admin.patch(f"/api/v1/users/{me.id}", json=change)
        assert response.status_code == 400
        assert "last active admin" in response.json()["error"]["message"]
    assert admin.delete(f"/api/v1/users/{me.id}").status_code == 400
    assert admin.get("/api/v1/auth/me").json()["role"] == "admin"


def test_api_keys_are_shown_once_listed_without_the_key_and_revoked(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    created = admin.post("/api/v1/api-keys", json={"name": "edge-1", "role": "reporter"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("oek_")
    assert created.json()["prefix"] in key
    listed = admin.get("/api/v1/api-keys")
    assert key not in listed.text
    row = next(k for k in listed.json() if k["id"] == created.json()["id"])
    assert (row["name"], row["role"], row["revoked"]) == ("edge-1", "reporter", False)
    assert "key" not in row
    machine = TestClient(server.web, headers={"X-API-Key": key})
    assert machine.get("/api/v1/auth/me").json()["role"] == "reporter"
    assert admin.get("/api/v1/api-keys").json()[-1]["last_used_at"] is not None
    assert admin.delete(f"/api/v1/api-keys/{row['id']}").status_code == 204
    assert machine.get("/api/v1/auth/me").status_code == 401
    assert admin.get("/api/v1/api-keys").json()[-1]["revoked"] is True
    actions = [
        e["action"] for e in admin.get("/api/v1/audit", params={"action": "api_key."}).json()
    ]
    assert actions == ["api_key.revoke", "api_key.create"]


def test_audit_log_filters_and_limits(server: OneEyeApp, client_for: ClientFor) -> None:
    admin = client_for("admin")
    for n in range(3):
        server.services.auth.audit("system", "test.thing", f"s{n}")
    entries = admin.get("/api/v1/audit", params={"action": "test.thing", "limit": 2}).json()
    assert [e["subject"] for e in entries] == ["s2", "s1"]
    assert set(entries[0]) == {
        "id", "at", "actor", "role", "action", "subject", "address", "detail",
    }  # fmt: skip
    everything = admin.get("/api/v1/audit").json()
    assert {"login", "user.create"} <= {e["action"] for e in everything}
    assert admin.get("/api/v1/audit", params={"limit": 0}).status_code == 422


def test_an_admin_creates_an_edge_key_that_only_reaches_the_edge_routes(
    client_for: ClientFor, anonymous: TestClient
) -> None:
    admin = client_for("admin")
    nameless = admin.post("/api/v1/api-keys", json={"name": "branch-12 edge", "role": "edge"})
    assert nameless.status_code == 400  # an edge key names its edge (its broker user)
    assert "needs the edge's id" in nameless.text
    created = admin.post(
        "/api/v1/api-keys", json={"name": "branch-12 edge", "role": "edge", "edge_id": "branch-12"}
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert anonymous.get("/api/v1/gallery", headers=headers).status_code == 200
    assert anonymous.get("/api/v1/people", headers=headers).status_code == 403
    refused = admin.post("/api/v1/api-keys", json={"name": "x", "role": "superuser"})
    assert refused.status_code == 422


def test_an_admin_resets_a_password_to_a_one_time_one(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    server.services.auth.create_user("carol", NEW_PASSWORD, "teller")
    carol_id = server.services.auth.user_named("carol").id
    phone = login(TestClient(server.web), "carol", NEW_PASSWORD)
    laptop = login(TestClient(server.web), "carol", NEW_PASSWORD)
    # Nobody but an admin may reset it, and asking changes nothing.
    for role in ("viewer", "teller", "coordinator"):
        refused = client_for(role).post(f"/api/v1/users/{carol_id}/password-reset")
        assert refused.status_code == 403
    assert phone.get("/api/v1/auth/me").status_code == 200
    assert admin.post("/api/v1/users/999999/password-reset").status_code == 404

    reset = admin.post(f"/api/v1/users/{carol_id}/password-reset")
    assert reset.status_code == 200, reset.text
    one_time = reset.json()["password"]
    assert len(one_time) >= 16
    assert reset.json()["user"]["username"] == "carol"
    # Every session of hers ended; the old password is gone.
    assert phone.get("/api/v1/auth/me").status_code == 401
    assert laptop.get("/api/v1/auth/me").status_code == 401
    old = TestClient(server.web).post(
        "/api/v1/auth/login", json={"username": "carol", "password": NEW_PASSWORD}
    )
    assert old.status_code == 401
    # The one-time password lets her in to change it, and to do nothing else.
    carol = TestClient(server.web)
    logged_in = carol.post("/api/v1/auth/login", json={"username": "carol", "password": one_time})
    assert logged_in.status_code == 200
    assert logged_in.json()["must_change_password"] is True
    carol.headers["X-CSRF-Token"] = logged_in.json()["csrf_token"]
    assert carol.get("/api/v1/sightings").status_code == 403
    changed = carol.post(
        "/api/v1/auth/password",
        json={"current_password": one_time, "new_password": "carol's own new password"},
    )
    assert changed.status_code == 204, changed.text
    assert carol.get("/api/v1/sightings").status_code == 200
    # Audited, without the password.
    audit = admin.get("/api/v1/audit", params={"action": "user.password_reset"})
    entries = audit.json()
    assert [(e["action"], e["subject"]) for e in entries] == [("user.password_reset", "carol")]
    assert one_time not in audit.text
    assert one_time not in admin.get("/api/v1/users").text


def test_an_admin_cannot_reset_their_own_password_here(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    me = admin.get("/api/v1/auth/me").json()
    own_id = server.services.auth.user_named(me["username"]).id
    refused = admin.post(f"/api/v1/users/{own_id}/password-reset")
    assert refused.status_code == 400
    assert "account page" in refused.json()["error"]["message"]
    assert admin.get("/api/v1/auth/me").status_code == 200  # still logged in, nothing changed
    assert admin.get("/api/v1/audit", params={"action": "user.password_reset"}).json() == []
