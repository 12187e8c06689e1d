"""The Amber Alert pages in a real browser (Debian chromium through Playwright): a reporter on a
phone files a case from /report (a faceless photo is refused with the reason, a real one is
accepted) and lands on the case's page; with the dashboard open, a camera playing a labelled
clip of the person raises the alert banner (and the case's page gets the sighting live)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from bench.lib.synth import Actor, Movement, write_clip
from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.services.alerts import AlertService
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, free_port
from tests.services.notify.receivers import MailServer, settings_for
from tests.web.browser import add_camera, csp_violations, serve
from tests.web.conftest import PASSWORD, make_server
from tests.web.helpers import alerts_of, publish, sighting, wait_for

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
ALERT_TIMEOUT_MS = 30_000
WIDTH, HEIGHT, FPS = 640, 480, 10.0


@dataclass(frozen=True)
class Site:
    """A served OneEye with a reporter ``rita``, a teller ``tina``, a viewer ``vera``, a
    coordinator ``cora`` and an admin API key."""

    app: OneEyeApp
    alerts: AlertService
    url: str
    admin_key: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        alerts = alerts_of(app)
        users = (
            ("rita", "reporter"),
            ("tina", "teller"),
            ("vera", "viewer"),
            ("cora", "coordinator"),
        )
        for name, role in users:
            app.services.auth.create_user(name, PASSWORD, role)
        _, admin_key = app.services.auth.create_api_key("browser-test", "admin")
        with serve(app.web) as url:
            yield Site(app, alerts, url, admin_key)
    finally:
        app.stop()


def log_in(page: Page, url: str, username: str, path: str = "/") -> None:
    """Open ``path``, log in on the page it sends us to, and come back to ``path``."""
    page.goto(f"{url}{path}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{url}{path}")


def page_width(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def walking_in(path: Path, engine: FaceEngine, load_photo: PhotoLoader) -> Path:
    """A labelled clip: Obama (obama2.jpg, not a photo of the case) walks across the frame."""
    image = load_photo("obama2.jpg")
    actor = Actor("obama", image, engine.enrolment_face(image).box)
    mid = HEIGHT / 2
    movement = Movement(0, 0, 40, (WIDTH * 0.25, mid), (WIDTH * 0.75, mid), 120)
    write_clip(path, [actor], [movement], width=WIDTH, height=HEIGHT, frames=46, fps=FPS)
    return path


def test_a_reporter_files_a_case_from_a_phone(
    site: Site, browser: Browser, face_photos: Path, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    blocked = csp_violations(page)
    log_in(page, site.url, "rita", "/report")
    photo = page.get_by_test_id("report-photo")
    expect(photo).to_have_attribute("capture", "environment")
    expect(photo).to_have_attribute("accept", "image/*")
    submit = page.get_by_test_id("report-submit")
    check = page.get_by_test_id("photo-check")
    expect(submit).to_be_disabled()

    # A photo of a wall: refused at once, with the API's reason; still no sending.
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((480, 360, 3), 190, np.uint8))
    photo.set_input_files(str(wall))
    expect(check).to_have_attribute("data-state", "bad", timeout=15_000)
    expect(check).to_contain_text("We could not find a face in this photo")
    expect(page.get_by_test_id("report-preview")).to_be_visible()
    expect(submit).to_be_disabled()
    assert page_width(page) <= PHONE["width"], "the report page scrolls sideways on a phone"
    page.screenshot(path=str(tmp_path / "report-phone-refused.png"), full_page=True)

    # A real photo: usable, and the report can be sent.
    photo.set_input_files(str(face_photos / "obama.jpg"))
    expect(check).to_have_attribute("data-state", "ok", timeout=15_000)
    expect(check).to_contain_text("Usable: one clear face")
    expect(submit).to_be_enabled()
    page.get_by_test_id("report-name").fill("Barack Obama")
    page.get_by_test_id("report-description").fill("Grey suit, blue tie; last seen at the bank")
    page.get_by_test_id("report-contact").fill("Rita, +1 555 123 4567")
    page.get_by_test_id("report-extra").set_input_files(str(face_photos / "obama3.jpg"))
    page.get_by_test_id("report-expiry").fill("12")
    assert page_width(page) <= PHONE["width"], "the report page scrolls sideways on a phone"
    page.screenshot(path=str(tmp_path / "report-phone-usable.png"), full_page=True)
    submit.click()

    # The case's page, for the case just filed.
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/cases/[0-9a-f]{{32}}$"))
    [case] = site.alerts.cases()
    assert page.url.endswith(f"/cases/{case.id}")
    assert case.name == "Barack Obama"
    assert case.reporter == "user:rita"
    assert len(case.photo_keys) == 2
    expect(page.get_by_test_id("case-name")).to_have_text("Barack Obama")
    expect(page.get_by_test_id("case-status")).to_have_text("active")
    expect(page.get_by_test_id("case-description")).to_contain_text("Grey suit")
    expect(page.get_by_test_id("case-photo")).to_have_count(2)
    expect(page.get_by_test_id("case-photo").first).to_have_attribute(
        "src", f"/api/v1/photos/{case.photo_keys[0]}"
    )
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0",
        arg=page.get_by_test_id("case-photo").first.element_handle(),
        timeout=10_000,
    )
    expect(page.get_by_test_id("no-sightings")).to_be_visible()
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    assert page_width(page) <= PHONE["width"], "the case page scrolls sideways on a phone"
    page.screenshot(path=str(tmp_path / "case-phone.png"), full_page=True)

    # A webhook subscription: its secret is shown once.
    form = page.get_by_test_id("subscribe-form")
    form.get_by_test_id("subscribe-channel").select_option("webhook")
    form.get_by_test_id("subscribe-address").fill("https://hooks.example.org/oneeye")
    form.get_by_test_id("subscribe-submit").click()
    expect(form.get_by_test_id("webhook-secret-value")).to_have_text(re.compile(r"^\S{16,}$"))
    expect(page.get_by_test_id("subscription-address")).to_have_text("hooks.example.org")
    # A bad address gets the API's sentence.
    form.get_by_test_id("subscribe-channel").select_option("sms")
    form.get_by_test_id("subscribe-address").fill("call me")
    form.get_by_test_id("subscribe-submit").click()
    expect(form.get_by_test_id("subscribe-result")).to_contain_text("E.164")
    assert [s.channel for s in site.alerts.subscriptions(case.id)] == ["webhook"]
    assert blocked == []
    context.close()


def test_the_dashboard_raises_the_alert_when_a_camera_sees_the_person(
    site: Site,
    browser: Browser,
    face_engine: FaceEngine,
    face_photos: Path,
    load_photo: PhotoLoader,
    tmp_path: Path,
) -> None:
    photos = [(face_photos / name).read_bytes() for name in ("obama.jpg", "obama3.jpg")]
    case = site.alerts.create_case(
        "Barack Obama",
        "grey suit",
        "+15551234567",
        [(data, f"photo{i}.jpg") for i, data in enumerate(photos)],
        actor="user:rita",
        filed_by=f"user:{site.app.services.auth.user_named('rita').id}",
        approved=True,  # so that its filer, a reporter, sees the sightings as they happen
    )
    dashboard = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(dashboard)
    log_in(dashboard, site.url, "vera")
    expect(dashboard.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    banners = dashboard.get_by_test_id("alert-banner")
    expect(banners).to_have_count(0)
    # Sound on (a click is the gesture browsers want before a page plays sound); one beep to
    # hear what it sounds like; the choice is kept in this browser.
    sound = dashboard.get_by_test_id("alert-sound")
    expect(sound).not_to_be_checked()
    sound.check()
    assert dashboard.evaluate("window.OneEyeAlerts.beeps()") == 1
    assert dashboard.evaluate("localStorage.getItem('oneeye.alertSound')") == "1"

    # The reporter watches the case's page meanwhile.
    reporter = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(reporter, site.url, "rita", f"/cases/{case.id}")
    expect(reporter.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    expect(reporter.get_by_test_id("timeline-entry")).to_have_count(0)

    clip = walking_in(tmp_path / "door.mp4", face_engine, load_photo)
    camera = {
        "id": "front-door",
        "name": "Front door",
        "location": "Main entrance",
        "source": str(clip),
        "pace": True,
        "min_face_px": 60,
        "detect_every": 2,
    }
    add_camera(site.url, site.admin_key, camera)

    banner = banners.first
    expect(banner).to_be_visible(timeout=ALERT_TIMEOUT_MS)
    expect(banners).to_have_count(1)  # one banner per case, however many frames match
    expect(banner).to_have_attribute("data-case-id", case.id)
    expect(banner.get_by_test_id("alert-name")).to_have_text("Barack Obama")
    expect(banner.get_by_test_id("alert-camera")).to_have_text("Front door")
    expect(banner.get_by_test_id("alert-label")).to_have_text("seen at Front door")
    expect(banner.get_by_test_id("alert-case-link")).to_have_attribute("href", f"/cases/{case.id}")
    expect(banner.get_by_test_id("alert-case-photo")).to_have_attribute(
        "src", f"/api/v1/photos/{case.photo_keys[0]}"
    )
    for photo in ("alert-case-photo", "alert-snapshot"):  # a viewer may see both
        dashboard.wait_for_function(
            "img => img.complete && img.naturalWidth > 0",
            arg=banner.get_by_test_id(photo).element_handle(),
            timeout=10_000,
        )
    assert dashboard.evaluate("window.OneEyeAlerts.beeps()") >= 2
    dashboard.screenshot(path=str(tmp_path / "dashboard-alert.png"), full_page=False)

    # The case's page got the sighting without a reload.
    entry = reporter.get_by_test_id("timeline-entry").first
    expect(entry).to_be_visible(timeout=10_000)
    expect(entry.get_by_test_id("timeline-camera")).to_have_text("Front door")
    expect(entry.get_by_test_id("timeline-kind")).to_have_text("live")
    expect(entry.get_by_test_id("timeline-likeness")).to_have_text(re.compile(r"likeness$"))
    expect(entry.get_by_test_id("timeline-likeness")).to_have_attribute(
        "data-distance", re.compile(r"^0\.\d{3}$")
    )
    expect(reporter.get_by_test_id("no-sightings")).to_be_hidden()
    reporter.screenshot(path=str(tmp_path / "case-live.png"), full_page=True)

    # Dismissed, it stays dismissed after a reload (the server renders it; this browser hides
    # it), and the sound choice is remembered.
    banner.get_by_test_id("alert-dismiss").click()
    expect(banners).to_have_count(0)
    dashboard.reload()
    expect(dashboard.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    expect(banners).to_have_count(0)
    expect(dashboard.get_by_test_id("alert-sound")).to_be_checked()

    # The reporter resolves the case from its page.
    reporter.once("dialog", lambda dialog: dialog.accept())
    reporter.get_by_test_id("case-resolve").click()
    expect(reporter.get_by_test_id("case-status")).to_have_text("resolved")
    expect(reporter.get_by_test_id("case-resolve")).to_have_count(0)
    assert site.alerts.case(case.id).status == "resolved"

    # A notification that gave up is named on the dashboard (as the notifier announces it).
    failed = dashboard.get_by_test_id("delivery-failed")
    expect(failed).to_be_hidden()
    site.app.services.events.publish(
        "notify.failed",
        {
            "notification_id": 7,
            "case_id": case.id,
            "case_name": "Barack Obama",
            "sighting_id": "0" * 32,
            "channel": "email",
            "attempts": 8,
            "error": "SMTP 550: mailbox unavailable",
        },
        audience="viewer",
    )
    expect(failed).to_contain_text("email")
    expect(failed).to_contain_text("Barack Obama")
    expect(failed).to_contain_text("SMTP 550: mailbox unavailable")
    assert blocked == []


def test_a_coordinator_approves_a_case_on_its_page(
    site: Site, browser: Browser, face_photos: Path
) -> None:
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = site.alerts.create_case(
        "Barack Obama",
        "grey suit",
        "+15551234567",
        [(photo, "obama2.jpg")],
        actor="user:rita",
        filed_by=f"user:{site.app.services.auth.user_named('rita').id}",
    )
    # The filer sees that the case waits for approval, and no button to approve it.
    filer = browser.new_page()
    log_in(filer, site.url, "rita", f"/cases/{case.id}")
    expect(filer.get_by_test_id("case-approval")).to_have_attribute("data-approved", "no")
    expect(filer.get_by_test_id("case-approve")).to_have_count(0)
    expect(filer.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")

    page = browser.new_page()
    blocked = csp_violations(page)
    log_in(page, site.url, "cora", f"/cases/{case.id}")
    approval = page.get_by_test_id("case-approval")
    expect(approval).to_have_attribute("data-approved", "no")
    expect(approval).to_contain_text("waiting for a coordinator's approval")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("case-approve").click()
    expect(approval).to_have_attribute("data-approved", "yes")
    expect(page.get_by_test_id("case-result")).to_contain_text("The case is approved")
    expect(page.get_by_test_id("case-approve")).to_have_count(0)
    approved = site.alerts.case(case.id)
    assert approved.approved_by == "user:cora"
    [audit] = site.app.services.auth.audit_entries(action="case.approve")
    assert (audit.actor, audit.subject) == ("user:cora", case.id)
    # The filer's open page hears of it over the WebSocket; a reload says who approved.
    expect(filer.get_by_test_id("case-approval")).to_have_attribute("data-approved", "yes")
    page.reload()
    expect(approval).to_contain_text("by cora")
    expect(page.get_by_test_id("case-approve")).to_have_count(0)
    assert blocked == []


@pytest.mark.parametrize("path", ["/", "/cases"])
def test_alert_pages_fit_a_phone(
    site: Site, browser: Browser, face_photos: Path, tmp_path: Path, path: str
) -> None:
    # A case seen a moment ago (a sighting from the camera consumer), so the dashboard opens
    # with its banner.
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = site.alerts.create_case(
        "Barack Obama", "grey suit", "", [(photo, "obama2.jpg")], actor="user:rita"
    )
    assert case.person_id is not None
    snapshot = site.app.services.photos.add(snapshot_kind("lobby"), photo, "jpg")
    message = sighting("lobby", case.person_id, datetime.now(UTC), snapshot_key=snapshot)
    publish(site.app, message)
    wait_for(lambda: site.alerts.case(case.id).matches == 1, "the live match")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, site.url, "vera", path)
    if path == "/":
        expect(page.get_by_test_id("alert-banner")).to_have_count(1)
        expect(page.get_by_test_id("alert-camera")).to_have_text("lobby")
    else:
        expect(page.get_by_test_id("case-row")).to_have_count(1)
    width = page_width(page)
    assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
    name = "dashboard-alert-phone" if path == "/" else "cases-phone"
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def mail_site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[tuple[Site, MailServer]]:
    """A served OneEye (as ``site``) whose email goes to a real SMTP server (aiosmtpd); SMS
    is not set up."""
    mail = MailServer(free_port())
    mail.start()
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
        notify=settings_for(smtp_port=mail.port),
    )
    app = OneEyeApp(settings, engine=face_engine)
    app.start()
    try:
        for name, role in (("rita", "reporter"), ("cora", "coordinator"), ("ada", "admin")):
            app.services.auth.create_user(name, PASSWORD, role)
        _, admin_key = app.services.auth.create_api_key("browser-test", "admin")
        with serve(app.web) as url:
            yield Site(app, alerts_of(app), url, admin_key), mail
    finally:
        app.stop()
        mail.stop()


def test_a_parent_files_with_an_email_and_the_case_page_says_who_was_told(
    mail_site: tuple[Site, MailServer], browser: Browser, face_photos: Path, tmp_path: Path
) -> None:
    """Issue 12, bug 2 as a parent lives it: the report takes an email (SMS is not set up on
    this server, so no phone field); the case page says who is told and, once a coordinator
    approved the case and a camera saw the person, that the email went out."""
    site, mail = mail_site
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    blocked = csp_violations(page)
    log_in(page, site.url, "rita", "/report")
    expect(page.get_by_test_id("report-email")).to_be_visible()
    expect(page.get_by_test_id("report-phone")).to_have_count(0)
    page.get_by_test_id("report-photo").set_input_files(str(face_photos / "obama.jpg"))
    expect(page.get_by_test_id("photo-check")).to_have_attribute("data-state", "ok", timeout=15_000)
    page.get_by_test_id("report-name").fill("Barack Obama")
    # A mistyped address: refused in plain words, nothing filed.
    page.get_by_test_id("report-email").fill("parent.example.org")
    page.get_by_test_id("report-submit").click()
    error = page.get_by_test_id("report-error")
    expect(error).to_contain_text("Please check your email address", timeout=15_000)
    assert site.alerts.cases() == []
    page.get_by_test_id("report-email").fill("parent@example.org")
    assert page_width(page) <= PHONE["width"], "the report page scrolls sideways on a phone"
    page.screenshot(path=str(tmp_path / "report-with-email.png"), full_page=True)
    page.get_by_test_id("report-submit").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/cases/[0-9a-f]{{32}}$"))
    [case] = site.alerts.cases()
    told = page.get_by_test_id("subscription")
    expect(told).to_have_count(1)
    expect(told.get_by_test_id("subscription-address")).to_have_text("p***@example.org")
    expect(told.get_by_test_id("subscription-told")).to_have_text("not told of any sighting yet")
    expect(page.get_by_test_id("no-subscriptions")).to_be_hidden()
    expect(page.get_by_test_id("no-failures")).to_have_text("Nothing was sent yet.")
    expect(page.get_by_test_id("subscribe-channel").locator("option")).to_have_text(
        ["Email", "Webhook"]
    )
    page.screenshot(path=str(tmp_path / "case-who-is-told.png"), full_page=True)

    # A coordinator approves; the person is seen; the email arrives, and the page says so.
    site.alerts.approve(case.id, actor="user:cora")
    publish(site.app, sighting("lobby", case.person_id, datetime.now(UTC)))
    wait_for(lambda: len(mail.handler.messages) == 1, "the parent's email")
    assert mail.handler.messages[0]["To"] == "parent@example.org"
    wait_for(lambda: site.app.services.notifier.stats().sent == 1, "the row marked sent")
    page.reload()
    expect(told).to_have_attribute("data-sent", "1")
    expect(told.get_by_test_id("subscription-told")).to_have_text("told of 1 sighting")
    expect(page.get_by_test_id("no-failures")).to_have_text(
        "Every notification for this case went out."
    )
    expect(page.get_by_test_id("timeline-likeness")).to_have_text(re.compile(r"likeness$"))
    page.screenshot(path=str(tmp_path / "case-told.png"), full_page=True)
    assert blocked == []
    context.close()


def test_an_admin_manages_who_is_told_about_every_case(
    mail_site: tuple[Site, MailServer], browser: Browser, tmp_path: Path
) -> None:
    """Subscriptions to every case in the UI (the cases list, admins only): the channels set
    up are offered (not SMS here), an address is added and shown masked, and removed."""
    site, _ = mail_site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(page)
    log_in(page, site.url, "ada", "/cases")
    panel = page.get_by_test_id("every-case")
    expect(panel.get_by_test_id("no-every-case")).to_be_visible()
    expect(panel.get_by_test_id("subscribe-channel").locator("option")).to_have_text(
        ["Email", "Webhook", "Slack"]
    )
    expect(panel.get_by_test_id("subscribe-unset")).to_contain_text("SMS is not set up")
    panel.get_by_test_id("subscribe-address").fill("desk@example.org")
    panel.get_by_test_id("subscribe-submit").click()
    row = panel.get_by_test_id("subscription")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("subscription-address")).to_have_text("d***@example.org")
    expect(panel.get_by_test_id("no-every-case")).to_be_hidden()
    [stored] = site.alerts.subscriptions()
    assert (stored.channel, stored.address, stored.case_id) == ("email", "desk@example.org", None)
    page.reload()
    expect(row).to_have_count(1)
    page.screenshot(path=str(tmp_path / "cases-every-case.png"), full_page=True)
    row.get_by_test_id("subscription-remove").click()
    expect(row).to_have_count(0)
    expect(panel.get_by_test_id("no-every-case")).to_be_visible()
    assert site.alerts.subscriptions() == []
    assert blocked == []
