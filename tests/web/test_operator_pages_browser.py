"""The operator's pages that had no browser test, in a real browser (Debian chromium through
Playwright): an admin sees the unknown faces grouped and names one into a customer
(``/admin/unknowns``), sees the rejections by pair of people after two rejections
(``/admin/feedback``), and opens a person's visits from a history row (``/people/{id}``),
where a rejected match stays, marked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from oneeye.app import OneEyeApp
from oneeye.store.photos import snapshot_kind
from tests.web.browser import csp_violations
from tests.web.conftest import PASSWORD
from tests.web.helpers import key_client, publish, sighting, wait_for
from tests.web.test_browser import Site, log_in, site  # noqa: F401 (the fixture)
from tests.web.test_library import add_unknown, near, unit

pytestmark = pytest.mark.browser

CAMERA = "front-door"
ADMIN = "ada"


def admin_page(site: Site, browser: Browser) -> Page:  # noqa: F811
    """A logged-in admin's page."""
    site.app.services.auth.create_user(ADMIN, PASSWORD, "admin")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, site.url, ADMIN)
    return page


def obama_id(app: OneEyeApp) -> str:
    [obama] = app.services.enrolment.people(q="ACC-1001")
    return obama.id


def arrive(app: OneEyeApp, face_photos: Path, person: str, photo: str) -> str:
    """A stored sighting of ``person`` on the front door's camera, snapshot ``photo``."""
    key = app.services.photos.add(snapshot_kind(CAMERA), (face_photos / photo).read_bytes())
    message = sighting(CAMERA, person, datetime.now(UTC), snapshot_key=key, watchlist="customers")
    publish(app, message)
    wait_for(lambda: app.services.sighting_queries.get(message["id"]) is not None, "the sighting")
    return str(message["id"])


def test_admin_sees_unknown_faces_grouped_and_names_one(
    site: Site,  # noqa: F811
    browser: Browser,
    face_photos: Path,
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(11)
    stranger, other = unit(rng), unit(rng)
    biden = (face_photos / "biden.jpg").read_bytes()
    for i in range(3):
        add_unknown(site.app, f"s-{i}", near(stranger, rng), quality=0.4 + i / 10, snapshot=biden)
    add_unknown(site.app, "o-0", near(other, rng), snapshot=biden)
    page = admin_page(site, browser)
    blocked = csp_violations(page)

    page.goto(f"{site.url}/admin/unknowns")
    expect(page.get_by_test_id("unknowns-summary")).to_contain_text("4 unknown faces")
    groups = page.get_by_test_id("unknown-group")
    expect(groups).to_have_count(2)
    first = page.locator('[data-testid="unknown-group"][data-sighting-id="s-2"]')
    expect(first.get_by_test_id("unknown-group-count")).to_have_text("Seen 3 times")
    expect(groups.nth(1).get_by_test_id("unknown-group-count")).to_have_text("Seen 1 time")
    thumb = first.locator("img.thumb")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(tmp_path / "unknowns.png"), full_page=True)

    form = first.get_by_test_id("name-unknown-form")
    form.get_by_test_id("name-unknown-account").fill("ACC-2002")
    form.get_by_test_id("name-unknown-name").fill("Joe Biden")
    form.get_by_test_id("name-unknown-submit").click()
    expect(form.get_by_test_id("name-unknown-result")).to_contain_text("enrolled into ACC-2002")
    [joe] = site.app.services.enrolment.people(q="ACC-2002")
    assert joe.name == "Joe Biden"
    assert joe.templates == 1
    page.screenshot(path=str(tmp_path / "unknown-named.png"), full_page=True)
    assert blocked == []


def test_admin_sees_rejections_by_pair(
    site: Site,  # noqa: F811
    browser: Browser,
    face_photos: Path,
    tmp_path: Path,
) -> None:
    app = site.app
    admin = key_client(app, "admin")
    joe = admin.post(
        "/api/v1/people", json={"name": "Joe Biden", "watchlists": ["customers"]}
    ).json()["id"]
    obama = obama_id(app)
    page = admin_page(site, browser)
    blocked = csp_violations(page)
    page.goto(f"{site.url}/admin/feedback")
    expect(page.get_by_test_id("feedback-empty")).to_be_visible()

    for photo in ("biden.jpg", "biden.jpg"):  # Biden's face, twice matched to Obama
        wrong = arrive(app, face_photos, obama, photo)
        body = {"verdict": "reject", "actual_person_id": joe}
        done = admin.post(f"/api/v1/sightings/{wrong}/verdict", json=body)
        assert done.status_code == 200, done.text

    page.reload()
    pair = page.get_by_test_id("feedback-pair")
    expect(pair).to_have_count(1)
    expect(pair).to_have_attribute("data-person-id", obama)
    expect(pair).to_have_attribute("data-actual-id", joe)
    expect(pair.get_by_test_id("feedback-person")).to_have_text("Barack Obama")
    expect(pair.get_by_test_id("feedback-actual")).to_have_text("Joe Biden")
    expect(pair.get_by_test_id("feedback-count")).to_have_text("2")
    page.screenshot(path=str(tmp_path / "feedback.png"), full_page=True)
    assert blocked == []


def test_a_history_row_leads_to_the_persons_visits(
    site: Site,  # noqa: F811
    browser: Browser,
    face_photos: Path,
    tmp_path: Path,
) -> None:
    app = site.app
    obama = obama_id(app)
    right = arrive(app, face_photos, obama, "obama2.jpg")
    wrong = arrive(app, face_photos, obama, "biden.jpg")
    rejected = key_client(app, "teller").post(
        f"/api/v1/sightings/{wrong}/verdict", json={"verdict": "reject"}
    )
    assert rejected.status_code == 200, rejected.text
    page = admin_page(site, browser)
    blocked = csp_violations(page)

    page.goto(f"{site.url}/history")
    rows = page.get_by_test_id("history-row")
    expect(rows).to_have_count(2)
    row = page.locator(f'[data-testid="history-row"][data-sighting-id="{right}"]')
    row.get_by_test_id("history-person-link").click()

    expect(page).to_have_url(f"{site.url}/people/{obama}")
    expect(page.get_by_test_id("person-name")).to_have_text("Barack Obama")
    expect(rows).to_have_count(2)  # the history is the record: the rejected match stays
    marked = page.locator(f'[data-testid="history-row"][data-sighting-id="{wrong}"]')
    expect(marked).to_have_attribute("data-verdict", "rejected")
    expect(marked.get_by_test_id("history-rejected")).to_have_text("rejected")
    expect(
        page.locator(f'[data-testid="history-row"][data-sighting-id="{right}"]')
    ).to_have_attribute("data-verdict", "none")
    snapshot = marked.get_by_test_id("history-snapshot")
    expect(snapshot).to_have_js_property("complete", True)
    assert snapshot.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(tmp_path / "person.png"), full_page=True)
    assert blocked == []
