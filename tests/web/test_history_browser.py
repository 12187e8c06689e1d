"""The history in a real browser (Debian chromium through Playwright): a teller's card whose
decision a camera revises is withdrawn live and stays withdrawn on reload; the teller opens
the history, filters it by person, follows the person's link, and downloads the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from oneeye.app import OneEyeApp
from oneeye.vision.engine import FaceEngine
from tests.web.browser import csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.helpers import publish, sighting, wait_for

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Site:
    """A served OneEye with a teller ``tina`` and the customer Barack Obama (ACC-1001)."""

    app: OneEyeApp
    url: str
    person: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        s = app.services
        s.auth.create_user("tina", PASSWORD, "teller")
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
        with serve(app.web) as url:
            yield Site(app, url, person.id)
    finally:
        app.stop()


def log_in(page: Page, url: str, username: str, then: str = "/") -> None:
    page.goto(f"{url}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{url}/")
    if then != "/":
        page.goto(f"{url}{then}")


def test_a_revised_card_is_withdrawn_live_and_on_reload(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page()
    violations = csp_violations(page)
    log_in(page, site.url, "tina")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    now = datetime.now(UTC)
    first = sighting("door", site.person, now, watchlist="customers", distance=0.309)
    publish(site.app, first)
    card = page.locator(f'[data-sighting-id="{first["id"]}"]')
    expect(card.get_by_test_id("card-balance")).to_have_text("1,520.40 USD")
    expect(card).not_to_have_class("revised")
    update = {
        **first,
        "event": "sighting_update",
        "person": None,
        "watchlist": None,
        "distance": 0.346,
        "seen_at": (now + timedelta(seconds=3)).isoformat(),
    }
    publish(site.app, update)
    expect(card.get_by_test_id("card-revised")).to_have_text(
        "Withdrawn: first shown as Barack Obama"
    )
    expect(card.get_by_test_id("card-name")).to_have_text("Unknown face")
    expect(card.get_by_test_id("card-account")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "dashboard-withdrawn.png"))
    page.reload()
    card = page.locator(f'[data-sighting-id="{first["id"]}"]')
    expect(card.get_by_test_id("card-revised")).to_have_text(
        "Withdrawn: first shown as Barack Obama"
    )
    expect(card.get_by_test_id("card-account")).to_have_count(0)
    assert page.get_by_test_id("arrival-card").count() == 1
    assert violations == []


def test_teller_filters_the_history_by_person_and_downloads_the_csv(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=10)
    visit = sighting("door", site.person, now, watchlist="customers", distance=0.3)
    stranger = sighting("back", None, now + timedelta(minutes=1), track=2)
    for message in (visit, stranger):
        publish(site.app, message)
    wait_for(lambda: len(site.app.services.sighting_queries.query()) == 2, "the sightings")

    page = browser.new_page(accept_downloads=True)
    violations = csp_violations(page)
    log_in(page, site.url, "tina")
    page.get_by_test_id("nav-history").click()
    expect(page).to_have_url(f"{site.url}/history")
    rows = page.get_by_test_id("history-row")
    expect(rows).to_have_count(2)
    page.get_by_test_id("history-person").select_option(label="Barack Obama")
    page.get_by_test_id("history-apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-sighting-id", str(visit["id"]))
    expect(rows.first.get_by_test_id("history-row-person")).to_contain_text("Barack Obama")
    page.screenshot(path=str(tmp_path / "history-filtered.png"))

    with page.expect_download() as download_info:
        page.get_by_test_id("history-csv").click()
    download = download_info.value
    assert download.suggested_filename == "oneeye-sightings.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    found = list(csv.DictReader(io.StringIO(text)))
    assert [row["sighting_id"] for row in found] == [visit["id"]]
    assert found[0]["person_name"] == "Barack Obama"

    rows.first.get_by_test_id("history-person-link").click()
    expect(page).to_have_url(f"{site.url}/people/{site.person}")
    expect(page.get_by_test_id("person-name")).to_have_text("Barack Obama")
    expect(page.get_by_test_id("history-row")).to_have_count(1)
    assert violations == []
    exported = site.app.services.auth.audit_entries(10, "sighting.export")
    assert [e.subject for e in exported] == [site.person]
