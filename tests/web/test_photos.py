"""``GET /api/v1/photos/{key}``: stored bytes with their content type, private caching, and
roles by kind (snapshots and case photos for viewers, enrolment and profile photos for
tellers)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from tests.web.conftest import ClientFor

PHOTOS = "/api/v1/photos/"
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg but bytes are bytes"


@pytest.fixture
def keys(server: OneEyeApp) -> dict[str, str]:
    photos = server.services.photos
    return {
        "snapshots": photos.add("snapshots", JPEG, "jpg"),
        "templates": photos.add("templates", JPEG, "jpg"),
        "customers": photos.add("customers", b"\x89PNG...", "png"),
        "cases": photos.add("cases", JPEG, "jpg"),
    }


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"snapshots", "cases"}),
        # A reporter gets a case photo only of a case it filed (test_case_access.py); this
        # one is of no case at all.
        ("reporter", {"snapshots"}),
        ("teller", {"snapshots", "cases", "templates", "customers"}),
        ("admin", {"snapshots", "cases", "templates", "customers"}),
    ],
)
def test_photos_are_served_to_the_roles_that_may_see_them(
    client_for: ClientFor, keys: dict[str, str], role: str, allowed: set[str]
) -> None:
    client = client_for(role)
    for kind, key in keys.items():
        response = client.get(PHOTOS + key)
        if kind in allowed:
            assert response.status_code == 200, (role, kind)
            assert response.headers["cache-control"].startswith("private")
            assert response.headers["x-content-type-options"] == "nosniff"
            expected = "image/png" if kind == "customers" else "image/jpeg"
            assert response.headers["content-type"] == expected
        elif (role, kind) == ("reporter", "cases"):
            assert response.status_code == 404, (role, kind)
        else:
            assert response.status_code == 403, (role, kind)
            assert f"{kind} photos need the teller role" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "key",
    [
        "snapshots/ab/abcdef.jpg",
        "snapshots/../oneeye.db",
        "snapshots/%2e%2e/x.jpg",
        "nothing-like-a-key",
    ],
)
def test_missing_or_malformed_keys_are_404(client_for: ClientFor, key: str) -> None:
    response = client_for("admin").get(PHOTOS + key)
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("no photo")


def test_photos_need_a_login(anonymous: TestClient, keys: dict[str, str]) -> None:
    assert anonymous.get(PHOTOS + keys["snapshots"]).status_code == 401
