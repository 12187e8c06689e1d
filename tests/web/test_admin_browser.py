"""The admin's cameras and users pages in a real browser (Debian chromium through Playwright):
a camera id against the rule is refused with the rule in words, a file camera that played to
its end is restarted with its button, a user's password is reset to a one-time password shown
once (which then works only to choose a new one), and an edge key is made from the key form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from oneeye.app import OneEyeApp
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import make_clip
from tests.web.browser import csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ID_RULE = "1-64 lower-case letters (a-z), digits (0-9), hyphens (-) or underscores (_)"


@dataclass(frozen=True)
class Site:
    """A served OneEye with an admin ``ada`` and a viewer ``victor``."""

    app: OneEyeApp
    url: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        app.services.auth.create_user("ada", PASSWORD, "admin")
        app.services.auth.create_user("victor", PASSWORD, "viewer")
        with serve(app.web) as url:
            yield Site(app, url)
    finally:
        app.stop()


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def test_admin_restarts_an_ended_camera_and_resets_a_password(
    site: Site, browser: Browser, tmp_path: Path, face_engine: FaceEngine, load_photo: PhotoLoader
) -> None:
    clip = make_clip(tmp_path / "clip", face_engine, load_photo)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(page)
    log_in(page, site.url, "ada")
    expect(page).to_have_url(f"{site.url}/")

    # A camera id against the rule: the browser says the rule in words, and nothing is added.
    page.goto(f"{site.url}/admin/cameras")
    form = page.get_by_test_id("add-camera-form")
    expect(form.get_by_test_id("camera-id-rule")).to_contain_text(ID_RULE)
    form.get_by_test_id("camera-id").fill("Front Door")
    form.get_by_test_id("camera-name-input").fill("Front door")
    form.get_by_test_id("camera-source").fill(str(clip.path))
    form.get_by_test_id("add-camera").click()
    message = form.get_by_test_id("camera-id").evaluate("input => input.validationMessage")
    assert ID_RULE in message
    assert site.app.services.cameras.configs() == []

    # The id put right, the file played without pacing, scanned every 6th frame, with the
    # auto detector (HOG, plus CNN time where HOG misses).
    form.get_by_test_id("camera-id").fill("front-door")
    form.locator('input[name="pace"]').uncheck()
    form.get_by_test_id("camera-scan-every").fill("6")
    form.get_by_test_id("camera-detector").select_option("auto")
    form.get_by_test_id("add-camera").click()
    row = page.locator('[data-testid="camera-row"][data-camera-id="front-door"]')
    expect(row).to_be_visible(timeout=30_000)  # the page reloads with the new camera's row
    config = site.app.services.cameras.config("front-door")
    assert (config.scan_every, config.detect_threads, config.pace) == (6, None, False)
    assert config.detector == "auto"
    first = site.app.services.cameras.worker("front-door")
    assert first is not None
    wait_for(lambda: not first.alive, "the clip to play to its end", timeout=60)
    page.reload()
    expect(row.get_by_test_id("camera-status")).to_have_text("ended")
    expect(row.get_by_test_id("camera-scan-every")).to_have_value("6")
    expect(row.get_by_test_id("camera-detector")).to_have_value("auto")
    page.screenshot(path=str(tmp_path / "admin-camera-ended.png"), full_page=True)

    row.get_by_test_id("camera-restart").click()
    expect(row.locator(".result")).to_contain_text("restarted", timeout=30_000)
    second = site.app.services.cameras.worker("front-door")
    assert second is not None
    assert second is not first
    wait_for(lambda: not second.alive, "the clip to play again", timeout=60)
    assert second.status().frames == first.status().frames
    restarts = site.app.services.auth.audit_entries(10, "camera.restart")
    assert [(e.actor, e.subject) for e in restarts] == [("user:ada", "front-door")]

    # A user's password reset: the one-time password is shown once, in the user's row.
    page.goto(f"{site.url}/admin/users")
    name = page.get_by_test_id("user-row-name")
    ada = page.get_by_test_id("user-row").filter(has=name.get_by_text("ada", exact=True))
    expect(ada.get_by_test_id("user-reset-password")).to_have_count(0)  # her own: not here
    victor = page.get_by_test_id("user-row").filter(has_text="victor")
    page.once("dialog", lambda dialog: dialog.accept())
    victor.get_by_test_id("user-reset-password").click()
    shown = victor.get_by_test_id("one-time-password-value")
    expect(shown).to_have_text(re.compile(r"^\S{16,}$"))
    one_time = shown.text_content() or ""
    page.screenshot(path=str(tmp_path / "admin-password-reset.png"), full_page=True)
    page.reload()
    expect(page.get_by_test_id("one-time-password-value").filter(has_text=one_time)).to_have_count(
        0
    )

    # An edge key from the key form: the edge id field comes with the role.
    keys = page.get_by_test_id("add-key-form")
    expect(keys.get_by_test_id("key-edge-id")).to_be_hidden()
    keys.get_by_test_id("key-name").fill("branch 9 edge")
    keys.get_by_test_id("key-role").select_option("edge")
    edge_id = keys.get_by_test_id("key-edge-id")
    edge_id.fill("Branch 9")
    assert edge_id.evaluate("input => input.validity.patternMismatch")  # the pattern is live
    edge_id.fill("branch-9")
    keys.get_by_test_id("add-key").click()
    expect(keys.get_by_test_id("new-key-value")).to_have_text(re.compile(r"^oek_"))
    edge_keys = [(k.role, k.edge_id) for k in site.app.services.auth.api_keys()]
    assert edge_keys == [("edge", "branch-9")]
    assert blocked == []

    # Victor's one-time password only lets him choose his own.
    other = browser.new_page()
    log_in(other, site.url, "victor", PASSWORD)
    expect(other.get_by_test_id("login-error")).to_be_visible()
    log_in(other, site.url, "victor", one_time)
    expect(other).to_have_url(re.compile(r"/account/password"))
    expect(other.get_by_test_id("password-forced")).to_be_visible()
    other.get_by_test_id("password-current").fill(one_time)
    other.get_by_test_id("password-new").fill("victor's very own password")
    other.get_by_test_id("password-confirm").fill("victor's very own password")
    other.get_by_test_id("password-submit").click()
    expect(other).to_have_url(f"{site.url}/")
