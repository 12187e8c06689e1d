"""The dashboard's arrivals in a real browser (Debian chromium through Playwright): a teller opens
a dashboard with visits over three days, reads them newest first under Today / Yesterday / the
date, scrolls to load the older ones, sees a missing person's card stand apart from the
customers', and sees the "no camera is running" warning turn into the running camera's name
when an edge's camera comes online (and back when it goes offline). Screenshots go to the
test's temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from oneeye.app import OneEyeApp
from oneeye.bus.base import EDGE_CAMERA_STATUS
from oneeye.vision.engine import FaceEngine
from oneeye.web.pages.dashboard import MAX_CARDS
from tests.bus.helpers import Note
from tests.web.browser import csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.helpers import alerts_of
from tests.web.test_dashboard import visit

pytestmark = pytest.mark.browser

YESTERDAY_VISITS = MAX_CARDS + 10
"""More than the first render shows: the rest come by scrolling."""
EARLIER_VISITS = 5


@dataclass(frozen=True)
class Site:
    app: OneEyeApp
    url: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    """A served OneEye on SQLite with a teller ``tina`` and no camera."""
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        app.services.auth.create_user("tina", PASSWORD, "teller")
        with serve(app.web) as url:
            yield Site(app, url)
    finally:
        app.stop()


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login?next=%2F")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")


def seen_times(page: Page) -> list[str]:
    """The cards' visit times, in page order."""
    times: list[str] = page.eval_on_selector_all(
        '[data-testid="arrival-card"]', "cards => cards.map(c => c.dataset.seenAt)"
    )
    return times


def edge_camera_status(app: OneEyeApp, state: str) -> None:
    """The edge ``edge-1``'s camera "Back door" reports ``state`` over the bus."""
    status = {"camera": "back-door", "name": "Back door", "state": state, "error": None}
    app.services.bus.publish(
        EDGE_CAMERA_STATUS.format(edge="edge-1", camera="back-door"), Note.model_validate(status)
    )


def test_a_teller_reads_arrivals_by_day_scrolls_to_older_ones_and_sees_cameras_stop(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    app = site.app
    now = datetime.now(UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)  # days never cross
    earlier = noon - timedelta(days=3)
    for i in range(EARLIER_VISITS):
        visit(app, f"Earlier {i}", earlier + timedelta(minutes=i))
    for i in range(YESTERDAY_VISITS):
        visit(app, f"Yesterday {i}", noon - timedelta(days=1, minutes=YESTERDAY_VISITS - i))
    visit(app, "Joe Biden", now - timedelta(seconds=30))
    missing = visit(
        app, "Barack Obama", now - timedelta(seconds=20), watchlist="amber-alert", account=False
    )
    visit(app, "Kamala Harris", now - timedelta(seconds=10))

    page = browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    blocked = csp_violations(page)
    log_in(page, site.url, "tina")

    # No camera runs: the dashboard says so.
    warning = page.get_by_test_id("no-camera-running")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("No camera is running")
    page.screenshot(path=str(tmp_path / "dashboard-by-day.png"), full_page=False)

    # Newest first, under Today, then Yesterday.
    cards = page.get_by_test_id("arrival-card")
    expect(cards).to_have_count(MAX_CARDS)
    first = seen_times(page)
    assert first == sorted(first, reverse=True)
    expect(cards.first.get_by_test_id("card-name")).to_have_text("Kamala Harris")
    expect(page.get_by_test_id("day-heading")).to_have_text(["Today", "Yesterday"])

    # The missing person's card is labelled, and looks different from a customer's.
    card = page.locator(f'[data-testid="arrival-card"][data-sighting-id="{missing}"]')
    expect(card.get_by_test_id("card-kind")).to_have_text("Missing person")
    expect(card.get_by_test_id("card-kind")).to_be_visible()
    style = "c => [getComputedStyle(c).backgroundColor, getComputedStyle(c).borderTopColor]"
    customer = cards.filter(has_text="Joe Biden")
    assert card.evaluate(style) != customer.evaluate(style)

    # Scrolling to the end brings the older ones, still in order, under their own day.
    page.get_by_test_id("load-older").scroll_into_view_if_needed()
    expect(cards).to_have_count(3 + YESTERDAY_VISITS + EARLIER_VISITS, timeout=15_000)
    expect(page.get_by_test_id("no-older")).to_be_visible()
    every = seen_times(page)
    assert every == sorted(every, reverse=True)
    headings = page.get_by_test_id("day-heading")
    expect(headings).to_have_count(3)
    third = headings.nth(2).text_content() or ""
    assert earlier.strftime("%B") in third, third
    assert str(earlier.year) in third, third
    expect(cards.last.get_by_test_id("card-name")).to_have_text("Earlier 0")
    # The older cards of yesterday joined yesterday's heading: one heading a day.
    names = page.eval_on_selector_all(
        '[data-testid="cards"] > *, #cards > *',
        "nodes => nodes.map(n => n.dataset.testid === 'day-heading' ? '#' + n.textContent"
        " : n.querySelector('[data-testid=card-name]').textContent)",
    )
    assert names.index("#Yesterday") < names.index("Yesterday 0") < names.index("#" + third)
    page.screenshot(path=str(tmp_path / "dashboard-older.png"), full_page=True)

    # An edge's camera comes online: the warning gives way to its name; offline: it is back.
    page.evaluate("window.scrollTo(0, 0)")
    app.services.registry.register("edge-1", [("back-door", "Back door")])
    edge_camera_status(app, "online")
    running = page.get_by_test_id("cameras-running")
    expect(running).to_contain_text("1 camera is looking", timeout=15_000)
    expect(running).to_contain_text("Back door")
    expect(page.get_by_test_id("no-camera-running")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "dashboard-camera-running.png"), full_page=False)
    edge_camera_status(app, "offline")
    expect(page.get_by_test_id("no-camera-running")).to_contain_text(
        "Back door: offline", timeout=15_000
    )
    page.screenshot(path=str(tmp_path / "dashboard-camera-stopped.png"), full_page=False)
    assert blocked == []


def test_a_case_page_follows_the_cameras_live(
    site: Site, browser: Browser, face_photos: Path, tmp_path: Path
) -> None:
    app = site.app
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts_of(app).create_case(
        "Barack Obama", "grey suit", "+15551234567", [(photo, "obama2.jpg")], actor="user:rita"
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, site.url, "tina")
    page.goto(f"{site.url}/cases/{case.id}")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("no-sightings")).to_have_text("Not seen yet.")
    expect(page.get_by_test_id("no-camera-running")).to_contain_text("No camera is running")
    page.screenshot(path=str(tmp_path / "case-no-camera.png"), full_page=True)
    app.services.registry.register("edge-1", [("back-door", "Back door")])
    edge_camera_status(app, "online")
    expect(page.get_by_test_id("cameras-running")).to_contain_text(
        "1 camera is looking: Back door", timeout=15_000
    )
    page.screenshot(path=str(tmp_path / "case-camera-running.png"), full_page=True)
