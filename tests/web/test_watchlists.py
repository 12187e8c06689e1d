"""``/api/v1/watchlists``: the default watchlists, new ones, and threshold changes that reach
the live gallery at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from oneeye.app import OneEyeApp
from oneeye.config import DEFAULT_THRESHOLD
from oneeye.services.gallery import GalleryEntry
from tests.gallery.test_calibration import faces
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
        ("PATCH", f"{WATCHLISTS}/customers", {"threshold_mode": "smart"}, 422, "threshold_mode"),
        ("PATCH", f"{WATCHLISTS}/customers", {"target_fpir": 0.5}, 422, "target_fpir"),
        ("POST", WATCHLISTS, {"name": "x", "target_fpir": 0}, 422, "target_fpir"),
        ("GET", f"{WATCHLISTS}/customers/calibration", None, 404, "no calibration"),
    ],
)
def test_bad_watchlist_changes_are_refused(
    client_for: ClientFor,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    status: int,
    message: str,
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


def enrol_spread_people(server: OneEyeApp, watchlist: str, count: int) -> None:
    """``count`` people with one synthetic face each, straight into the live gallery."""
    vectors = faces(count, np.random.default_rng(7), dim=8)
    server.services.gallery_service.add_templates(
        [watchlist],
        [GalleryEntry(f"t{i}", f"p{i}", vectors[i], 0.9) for i in range(count)],
    )


def test_an_automatic_watchlist_shows_its_calibration(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin, viewer = client_for("admin"), client_for("viewer")
    created = admin.post(WATCHLISTS, json={"name": "vip", "threshold_mode": "auto"})
    assert created.status_code == 201, created.text
    assert (created.json()["threshold_mode"], created.json()["target_fpir"]) == ("auto", 0.01)
    enrol_spread_people(server, "vip", 60)
    assert server.services.gallery_service.calibrator.wait_idle()

    shown = viewer.get(f"{WATCHLISTS}/vip").json()
    calibration = shown["calibration"]
    assert calibration["method"] == "model"
    assert calibration["persons"] == 60
    assert shown["effective_threshold"] == calibration["threshold"] != DEFAULT_THRESHOLD
    assert server.services.gallery.threshold("vip") == calibration["threshold"]
    curve = viewer.get(f"{WATCHLISTS}/vip/calibration").json()
    assert len(curve["thresholds"]) == len(curve["expected_fpir"]) > 50
    assert curve["expected_fpir"] == sorted(curve["expected_fpir"])  # looser names more

    stricter = admin.patch(f"{WATCHLISTS}/vip", json={"target_fpir": 0.002})
    assert stricter.status_code == 200, stricter.text
    assert server.services.gallery_service.calibrator.wait_idle()
    now = viewer.get(f"{WATCHLISTS}/vip").json()
    assert now["target_fpir"] == 0.002
    assert now["effective_threshold"] < calibration["threshold"]

    fixed = admin.patch(f"{WATCHLISTS}/vip", json={"threshold_mode": "fixed"})
    assert fixed.json()["threshold_mode"] == "fixed"
    assert fixed.json()["calibration"] is None
    assert fixed.json()["effective_threshold"] == DEFAULT_THRESHOLD
