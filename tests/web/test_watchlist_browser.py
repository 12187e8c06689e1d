"""The watchlist pages in a real browser (Debian chromium through Playwright): an automatic
watchlist's page draws its calibration curve with the chosen threshold marked, and a fixed
one says how to switch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from oneeye.app import OneEyeApp
from oneeye.vision.engine import FaceEngine
from tests.web.browser import csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.test_watchlists import enrol_spread_people

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@dataclass(frozen=True)
class Site:
    """A served OneEye with an admin ``ada`` and an automatic watchlist ``vip`` of 60 people."""

    app: OneEyeApp
    url: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        app.services.auth.create_user("ada", PASSWORD, "admin")
        app.services.gallery_service.create_watchlist("vip", threshold_mode="auto")
        enrol_spread_people(app, "vip", 60)
        assert app.services.gallery_service.calibrator.wait_idle()
        with serve(app.web) as url:
            yield Site(app, url)
    finally:
        app.stop()


def test_the_watchlist_page_draws_its_calibration_curve(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    calibration = site.app.services.gallery_service.calibration("vip")
    assert calibration is not None
    assert calibration.method == "model"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    complaints = csp_violations(page)
    page.goto(f"{site.url}/login?next=%2Fadmin%2Fwatchlists")
    page.get_by_test_id("login-username").fill("ada")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{site.url}/admin/watchlists")

    row = page.locator('[data-testid="watchlist-row"][data-name="vip"]')
    expect(row.get_by_test_id("watchlist-mode")).to_have_text("automatic, FPIR 1.0%")
    expect(row.get_by_test_id("watchlist-threshold")).to_have_text(f"{calibration.threshold:.3f}")
    row.get_by_test_id("watchlist-link").click()
    expect(page).to_have_url(f"{site.url}/admin/watchlists/vip")

    curve = page.get_by_test_id("calibration-curve")
    expect(curve).to_be_visible()
    points = page.get_by_test_id("calibration-line").get_attribute("points") or ""
    assert len(points.split()) == len(calibration.thresholds)
    expect(page.get_by_test_id("calibration-point")).to_be_visible()
    expect(page.get_by_test_id("calibration-note")).to_contain_text("60 people")
    expect(page.get_by_test_id("calibration-expected")).to_have_text(
        f"{100 * (calibration.expected_at_threshold or 0):.2f}%"
    )
    # The point sits on the curve where the target line is crossed or below it.
    point_y = float(page.get_by_test_id("calibration-point").get_attribute("cy") or "0")
    target_y = float(page.get_by_test_id("calibration-target").get_attribute("y1") or "0")
    assert point_y >= target_y - 0.5  # SVG y grows downwards: at or below the target
    page.screenshot(path=str(tmp_path / "watchlist.png"), full_page=True)

    page.goto(f"{site.url}/admin/watchlists/customers")
    expect(page.get_by_test_id("calibration-none")).to_contain_text("server's default")
    expect(page.get_by_test_id("calibration-curve")).to_have_count(0)
    assert complaints == []
