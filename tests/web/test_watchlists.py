"""``/api/v1/watchlists``: the default watchlists, new ones, and threshold changes that reach
the live gallery at once."""

from __future__ import annotations

from typing import Any

import pytest

from oneeye.app import OneEyeApp
from oneeye.config import DEFAULT_THRESHOLD
from tests.web.conftest import ClientFor

WATCHLISTS = "/api/v1/watchlists"


def test_defaults_exist_and_thresholds_reach_the_live_gallery(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    viewer = client_for("viewer")
    listed = {w["name"]: w for w in viewer.get(WATCHLISTS).json()}
    assert set(listed) == {"customers", "amber-alert"}
    assert listed["customers"]["action"] == "customers"
    assert listed["customers"]["threshold"] is None
    assert listed["customers"]["effective_threshold"] == DEFAULT_THRESHOLD

    changed = admin.patch(f"{WATCHLISTS}/customers", json={"threshold": 0.28})
    assert changed.status_code == 200, changed.text
    assert changed.json()["threshold"] == 0.28
    assert server.services.gallery.threshold("customers") == 0.28
    described = admin.patch(f"{WATCHLISTS}/customers", json={"description": "Our customers"})
    assert described.json()["threshold"] == 0.28
    assert described.json()["description"] == "Our customers"
    reset = admin.patch(f"{WATCHLISTS}/customers", json={"threshold": None})
    assert reset.json()["threshold"] is None
    assert server.services.gallery.threshold("customers") == DEFAULT_THRESHOLD

    created = admin.post(WATCHLISTS, json={"name": "vip", "threshold": 0.3})
    assert created.status_code == 201, created.text
    assert created.json()["action"] == "none"
    assert server.services.gallery.threshold("vip") == 0.3
    assert viewer.get(f"{WATCHLISTS}/vip").json()["persons"] == 0
    assert viewer.get(f"{WATCHLISTS}/nope").status_code == 404


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "message"),
    [
        ("POST", WATCHLISTS, {"name": "customers"}, 409, "already exists"),
        ("POST", WATCHLISTS, {"name": "Not A Slug"}, 400, "lower-case letters"),
        ("POST", WATCHLISTS, {"name": "x", "action": "launch"}, 422, "action"),
        ("PATCH", f"{WATCHLISTS}/customers", {"threshold": 5}, 422, "threshold"),
        ("PATCH", f"{WATCHLISTS}/nope", {"threshold": 0.3}, 404, "no watchlist named 'nope'"),
    ],
)
def test_bad_watchlist_changes_are_refused(
    client_for: ClientFor, method: str, url: str, body: dict[str, Any], status: int, message: str
) -> None:
    response = client_for("admin").request(method, url, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize("role", ["viewer", "reporter", "teller"])
def test_only_admins_change_watchlists(client_for: ClientFor, role: str) -> None:
    client = client_for(role)
    assert client.get(WATCHLISTS).status_code == 200
    assert client.post(WATCHLISTS, json={"name": "vip"}).status_code == 403
    assert client.patch(f"{WATCHLISTS}/customers", json={"threshold": 0.2}).status_code == 403
