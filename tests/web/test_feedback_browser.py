"""Feedback in a real browser (Debian chromium through Playwright): a teller clicks "Not them"
on a customer's arrival card; the card leaves their dashboard and another teller's (over the
WebSocket), and stays gone after a reload. "It is them" then (after a reload, rendered
by the server) "Add this face" enrols the camera's face."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from oneeye.app import OneEyeApp
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from tests.web.browser import csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.helpers import publish, sighting, wait_for

pytestmark = pytest.mark.browser

CAMERA = "front-door"


@dataclass(frozen=True)
class Site:
    """A served OneEye with two tellers and Barack Obama enrolled as customer ACC-1001."""

    app: OneEyeApp
    url: str
    person_id: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine, face_photos: Path) -> Iterator[Site]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        s = app.services
        for teller in ("tina", "tom"):
            s.auth.create_user(teller, PASSWORD, "teller")
        s.directory.save(
            "ACC-1001",
            name="Barack Obama",
            account_type="Premier Checking",
            address="1600 Pennsylvania Ave NW, Washington",
            balance="1520.40",
            currency="USD",
        )
        person = s.enrolment.create_person(
            "Barack Obama", ["customers"], actor="system", account_id="ACC-1001"
        )
        photo = (face_photos / "obama.jpg").read_bytes()
        s.enrolment.enrol_photo(person.id, photo, "obama.jpg", actor="system")
        with serve(app.web) as url:
            yield Site(app, url, person.id)
    finally:
        app.stop()


def log_in(page: Page, url: str, username: str) -> None:
    """Log in on the login page and land on the live dashboard."""
    page.goto(f"{url}/login?next=%2F")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")


def arrive(site: Site, face_photos: Path, photo: str) -> str:
    """A stored sighting of the customer on the front door's camera, snapshot ``photo``."""
    app = site.app
    key = app.services.photos.add(snapshot_kind(CAMERA), (face_photos / photo).read_bytes())
    message = sighting(
        CAMERA, site.person_id, datetime.now(UTC), snapshot_key=key, watchlist="customers"
    )
    publish(app, message)
    wait_for(lambda: app.services.sighting_queries.get(message["id"]) is not None, "the sighting")
    return str(message["id"])


def test_teller_rejects_an_arrival_card(
    site: Site, browser: Browser, face_photos: Path, tmp_path: Path
) -> None:
    tina, tom = browser.new_page(), browser.new_page()
    blocked = csp_violations(tina)
    log_in(tina, site.url, "tina")
    log_in(tom, site.url, "tom")

    wrong = arrive(site, face_photos, "biden.jpg")  # Biden's face, matched to Obama
    for page in (tina, tom):
        card = page.locator(f'[data-testid="arrival-card"][data-sighting-id="{wrong}"]')
        expect(card.get_by_test_id("card-name")).to_have_text("Barack Obama")
    card = tina.locator(f'[data-sighting-id="{wrong}"]')
    tina.screenshot(path=str(tmp_path / "before-reject.png"), full_page=True)
    card.get_by_test_id("card-reject").click()
    expect(card).to_have_count(0)
    # Every other dashboard withdraws it too, and a reload does not bring it back.
    expect(tom.locator(f'[data-sighting-id="{wrong}"]')).to_have_count(0)
    tom.reload()
    expect(tom.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    expect(tom.locator(f'[data-sighting-id="{wrong}"]')).to_have_count(0)
    assert [(v.verdict, v.actor) for v in site.app.services.feedback.verdicts(wrong)] == [
        ("reject", "user:tina")
    ]

    # The right face: confirmed, then added to the customer's photos in one click.
    right = arrive(site, face_photos, "obama2.jpg")
    card = tina.locator(f'[data-sighting-id="{right}"]')
    card.get_by_test_id("card-confirm").click()
    expect(card.get_by_test_id("card-confirmed")).to_have_text("Confirmed")
    tina.reload()  # the server renders it confirmed, with the enrol button
    expect(tina.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    expect(card.get_by_test_id("card-confirmed")).to_have_text("Confirmed")
    card.get_by_test_id("card-enrol").click()
    expect(card.get_by_test_id("card-result")).to_have_text("Face added to their photos")
    templates = site.app.services.enrolment.templates(site.person_id)
    assert [t.source_sighting_id for t in templates] == [None, right]
    tina.screenshot(path=str(tmp_path / "after-enrol.png"), full_page=True)
    assert blocked == []
