"""The dashboard in a real browser (Debian chromium through Playwright): a teller logs in on
the login page, a labelled video of a customer plays into a camera added through the API, and
the customer's card (name, account type, balance) arrives on the dashboard over the WebSocket.
The dashboard also fits a phone's screen."""

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
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import new_id
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.web.browser import add_camera, csp_violations, serve
from tests.web.conftest import PASSWORD, make_server

pytestmark = pytest.mark.browser

ARRIVAL_TIMEOUT_MS = 30_000
PHONE: ViewportSize = {"width": 390, "height": 844}
WIDTH, HEIGHT, FPS = 640, 480, 10.0


@dataclass(frozen=True)
class Site:
    """A served OneEye with a teller, an admin API key, and a customer enrolled."""

    app: OneEyeApp
    url: str
    admin_key: str


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine, face_photos: Path) -> Iterator[Site]:
    """A started server on SQLite, served by uvicorn, with Barack Obama enrolled as the
    customer of account ACC-1001 (from obama.jpg) and a teller ``tina``."""
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        s = app.services
        s.auth.create_user("tina", PASSWORD, "teller")
        _, admin_key = s.auth.create_api_key("browser-test", "admin")
        s.directory.save(
            "ACC-1001",
            name="Barack Obama",
            account_type="Premier Checking",
            address="1600 Pennsylvania Ave NW, Washington",
            balance="1520.40",
            currency="USD",
        )
        profile = s.photos.add("customers", (face_photos / "obama3.jpg").read_bytes(), "jpg")
        s.directory.set_profile_photo("ACC-1001", profile)
        person = s.enrolment.create_person(
            "Barack Obama", ["customers"], actor="system", account_id="ACC-1001"
        )
        photo = (face_photos / "obama.jpg").read_bytes()
        s.enrolment.enrol_photo(person.id, photo, "obama.jpg", actor="system")
        with serve(app.web) as url:
            yield Site(app, url, admin_key)
    finally:
        app.stop()


def customer_clip(path: Path, engine: FaceEngine, load_photo: PhotoLoader) -> Path:
    """A labelled clip: Obama (another photo than the enrolled one) walks across the frame,
    then Biden (not enrolled) does."""
    actors = []
    for person, photo in (("obama", "obama2.jpg"), ("biden", "biden.jpg")):
        image = load_photo(photo)
        actors.append(Actor(person, image, engine.enrolment_face(image).box))
    mid, face = HEIGHT / 2, 120
    movements = [
        Movement(0, 0, 30, (WIDTH * 0.25, mid), (WIDTH * 0.75, mid), face),
        Movement(1, 36, 60, (WIDTH * 0.75, mid), (WIDTH * 0.25, mid), face),
    ]
    write_clip(path, actors, movements, width=WIDTH, height=HEIGHT, frames=66, fps=FPS)
    return path


def log_in(page: Page, url: str, username: str) -> None:
    """Open the dashboard, get sent to the login page, log in, and land on the dashboard."""
    page.goto(f"{url}/")
    expect(page).to_have_url(f"{url}/login?next=%2F")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")


def test_teller_sees_the_customer_arrive(
    site: Site,
    browser: Browser,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(page)
    log_in(page, site.url, "tina")
    cards = page.get_by_test_id("arrival-card")
    expect(cards).to_have_count(0)

    clip = customer_clip(tmp_path / "door.mp4", face_engine, load_photo)
    camera = {
        "id": "front-door",
        "name": "Front door",
        "source": str(clip),
        "pace": True,
        "min_face_px": 60,
        "detect_every": 2,
    }
    add_camera(site.url, site.admin_key, camera)

    card = cards.filter(has_text="Barack Obama").first
    expect(card).to_be_visible(timeout=ARRIVAL_TIMEOUT_MS)
    expect(card.get_by_test_id("card-name")).to_have_text("Barack Obama")
    expect(card.get_by_test_id("card-account-type")).to_have_text("Premier Checking")
    expect(card.get_by_test_id("card-balance")).to_have_text("1,520.40 USD")
    expect(card.get_by_test_id("card-address")).to_contain_text("1600 Pennsylvania Ave")
    expect(card.get_by_test_id("card-camera")).to_have_text("Front door")
    # The profile photo and the camera's snapshot load (the teller may see both).
    for photo in ("card-profile-photo", "card-snapshot"):
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0",
            arg=card.get_by_test_id(photo).element_handle(),
            timeout=10_000,
        )
    # The camera's tile appeared with it, from its status events.
    tile = page.locator('[data-testid="camera-tile"][data-camera-id="front-door"]')
    expect(tile).to_be_visible()
    # Its live view (MJPEG with boxes and names) started by itself and shows frames.
    live = tile.get_by_test_id("camera-live")
    expect(live).to_have_attribute("src", re.compile(r"/api/v1/cameras/front-door/stream"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=live.element_handle(), timeout=10_000
    )
    page.screenshot(path=str(tmp_path / "dashboard-teller.png"), full_page=True)

    # One card per visit: the card is not repeated by later updates of the same visit.
    sighting = card.get_attribute("data-sighting-id")
    assert page.locator(f'[data-sighting-id="{sighting}"]').count() == 1

    # A reload renders the same card from the server, with the account for the teller.
    page.reload()
    served = page.locator(f'[data-testid="arrival-card"][data-sighting-id="{sighting}"]')
    expect(served.get_by_test_id("card-balance")).to_have_text("1,520.40 USD")
    assert blocked == []


def test_dashboard_fits_a_phone(site: Site, browser: Browser, tmp_path: Path) -> None:
    s = site.app.services
    s.cameras.add(CameraConfig(id="lobby", name="Lobby", source=str(tmp_path / "missing.mp4")))
    visit = {
        "sighting_id": new_id(),
        "camera_id": "lobby",
        "camera_name": "Lobby",
        "person_id": new_id(),
        "person_name": "Barack Obama",
        "watchlist": "customers",
        "distance": 0.3,
        "seen_at": "2026-11-26T09:14:03+00:00",
        "snapshot_url": None,
    }
    s.events.publish("sighting", visit, "viewer")
    account = {
        "account_id": "ACC-1001",
        "name": "Barack Obama",
        "account_type": "Premier Checking",
        "address": "1600 Pennsylvania Avenue Northwest, Washington, District of Columbia 20500",
        "balance": "123456789.99",
        "currency": "USD",
        "profile_photo_url": None,
    }
    s.events.publish("customer.arrived", {**visit, "account": account}, "teller")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, site.url, "tina")
    expect(page.get_by_test_id("card-balance")).to_have_text("123,456,789.99 USD")
    expect(page.get_by_test_id("camera-tile")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the dashboard is {width}px wide on a {PHONE['width']}px phone"
    page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    context.close()


def test_admin_enrols_a_customer_and_manages_cameras_and_users(
    site: Site, browser: Browser, face_photos: Path, tmp_path: Path
) -> None:
    site.app.services.auth.create_user("ada", PASSWORD, "admin")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(page)
    log_in(page, site.url, "ada")

    # A new customer with a profile photo, then a face photo enrolled with its quality shown.
    page.goto(f"{site.url}/admin/customers")
    form = page.get_by_test_id("create-customer-form")
    form.get_by_test_id("customer-account-id").fill("ACC-2002")
    form.get_by_test_id("customer-name").fill("Joe Biden")
    form.get_by_test_id("customer-account-type").fill("Savings")
    form.get_by_test_id("customer-balance").fill("250.5")
    form.get_by_test_id("customer-photo").set_input_files(str(face_photos / "biden.jpg"))
    form.get_by_test_id("create-customer").click()
    row = page.locator('[data-testid="customer-row"][data-account-id="ACC-2002"]')
    expect(row.get_by_test_id("customer-row-balance")).to_have_text("250.50 USD")
    row.get_by_test_id("enrol-file").set_input_files(str(face_photos / "biden.jpg"))
    row.get_by_test_id("enrol-submit").click()
    expect(row.get_by_test_id("enrol-result")).to_contain_text("quality", timeout=15_000)
    expect(row.get_by_test_id("template")).to_have_count(1)
    caption = re.compile(r"^quality \d\.\d\d · sharpness \d+ · frontalness \d\.\d\d · \d+ px$")
    expect(row.get_by_test_id("template-quality")).to_have_text(caption)
    # A photo without a face gets the API's sentence, and no template.
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 200, np.uint8))
    row.get_by_test_id("enrol-file").set_input_files(str(blank))
    row.get_by_test_id("enrol-submit").click()
    expect(row.get_by_test_id("enrol-result")).to_contain_text("face", timeout=15_000)
    expect(row.get_by_test_id("enrol-result")).to_have_class(re.compile(r"\bbad\b"))
    expect(row.get_by_test_id("template")).to_have_count(1)
    page.reload()  # the server renders the same template, with the same caption
    expect(row.get_by_test_id("template-quality")).to_have_text(caption)
    page.screenshot(path=str(tmp_path / "admin-customers.png"), full_page=True)

    # A camera added, disabled, then removed.
    page.goto(f"{site.url}/admin/cameras")
    form = page.get_by_test_id("add-camera-form")
    form.get_by_test_id("camera-id").fill("lobby")
    form.get_by_test_id("camera-name-input").fill("Lobby")
    form.get_by_test_id("camera-source").fill(str(tmp_path / "missing.mp4"))
    form.get_by_test_id("add-camera").click()
    row = page.locator('[data-testid="camera-row"][data-camera-id="lobby"]')
    expect(row).to_be_visible()
    row.get_by_test_id("camera-toggle").click()
    expect(row.get_by_test_id("camera-toggle")).to_have_text("Enable")
    assert not site.app.services.cameras.config("lobby").enabled
    page.screenshot(path=str(tmp_path / "admin-cameras.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("camera-remove").click()
    expect(row).to_have_count(0)
    assert [c.id for c in site.app.services.cameras.configs()] == []

    # A user added; an API key shown once.
    page.goto(f"{site.url}/admin/users")
    form = page.get_by_test_id("add-user-form")
    form.get_by_test_id("user-name").fill("victor")
    form.get_by_test_id("user-password").fill(PASSWORD)
    form.get_by_test_id("user-role").select_option("viewer")
    form.get_by_test_id("add-user").click()
    expect(page.get_by_test_id("user-row-name").filter(has_text="victor")).to_be_visible()
    keys = page.get_by_test_id("add-key-form")
    keys.get_by_test_id("key-name").fill("edge-7")
    keys.get_by_test_id("add-key").click()
    expect(keys.get_by_test_id("new-key-value")).to_have_text(re.compile(r"^oek_"))
    assert blocked == []
    page.screenshot(path=str(tmp_path / "admin-users.png"), full_page=True)


def visit_events(site: Site, name: str, camera: str = "lobby") -> tuple[str, int]:
    """Publish a customer's visit as the sightings service does (a ``sighting`` for everyone,
    a ``customer.arrived`` for tellers); returns the sighting id and the last event id."""
    events = site.app.services.events
    sighting_id = new_id()
    visit = {
        "sighting_id": sighting_id,
        "camera_id": camera,
        "camera_name": camera.title(),
        "person_id": new_id(),
        "person_name": name,
        "watchlist": "customers",
        "distance": 0.3,
        "seen_at": datetime.now(UTC).isoformat(),
        "snapshot_url": None,
    }
    events.publish("sighting", visit, "viewer")
    account = {
        "account_id": "ACC-1001",
        "name": name,
        "account_type": "Premier Checking",
        "address": "1600 Pennsylvania Ave NW",
        "balance": "1520.40",
        "currency": "USD",
        "profile_photo_url": None,
    }
    last = events.publish("customer.arrived", {**visit, "account": account}, "teller")
    return sighting_id, last.id


def test_dashboard_reconnects_and_gets_what_it_missed_once(site: Site, browser: Browser) -> None:
    page = browser.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    log_in(page, site.url, "tina")
    first, first_last = visit_events(site, "Barack Obama")
    cards = page.get_by_test_id("arrival-card")
    expect(cards).to_have_count(1)
    assert page.evaluate("window.OneEyeDashboard.lastId()") == first_last

    page.evaluate("window.OneEyeDashboard.socket().close()")
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "reconnecting")
    second, _ = visit_events(site, "Michelle Obama")  # published while the page is away
    expect(cards).to_have_count(2, timeout=10_000)
    expect(page.get_by_test_id("ws-status")).to_have_attribute("data-state", "live")
    assert sockets[-1].endswith(f"/ws?since={first_last}")
    order = [cards.nth(i).get_attribute("data-sighting-id") for i in range(2)]
    assert order == [second, first]  # newest first, each visit once
    expect(cards.first.get_by_test_id("card-balance")).to_have_text("1,520.40 USD")


def test_viewer_gets_live_cards_without_account_details(site: Site, browser: Browser) -> None:
    site.app.services.auth.create_user("vera", PASSWORD, "viewer")
    page = browser.new_page()
    log_in(page, site.url, "vera")
    visit_events(site, "Barack Obama")
    # A later viewer event: once it shows, any teller-only frame before it would have too.
    later, _ = visit_events(site, "Joe Biden")
    expect(page.locator(f'[data-sighting-id="{later}"]')).to_be_visible()
    cards = page.get_by_test_id("arrival-card")
    expect(cards).to_have_count(2)
    expect(cards.get_by_test_id("card-name")).to_have_text(["Joe Biden", "Barack Obama"])
    assert page.get_by_test_id("card-account").count() == 0
    assert "1,520.40" not in page.content()


@pytest.mark.parametrize("path", ["/admin/customers", "/admin/cameras", "/admin/users"])
def test_admin_pages_fit_a_phone(site: Site, browser: Browser, tmp_path: Path, path: str) -> None:
    site.app.services.auth.create_user("ada", PASSWORD, "admin")
    site.app.services.cameras.add(
        CameraConfig(id="lobby", name="Lobby", source="rtsp://user:secret@cam.invalid/stream/1")
    )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, site.url, "ada")
    page.goto(f"{site.url}{path}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
    page.screenshot(path=str(tmp_path / f"phone-{path.rsplit('/', 1)[-1]}.png"), full_page=True)
    context.close()


def test_teller_can_hide_unknown_faces(site: Site, browser: Browser) -> None:
    page = browser.new_page()
    log_in(page, site.url, "tina")
    unknown = {
        "sighting_id": new_id(),
        "camera_id": "lobby",
        "camera_name": "Lobby",
        "person_id": None,
        "person_name": None,
        "watchlist": None,
        "distance": None,
        "seen_at": datetime.now(UTC).isoformat(),
        "snapshot_url": None,
    }
    site.app.services.events.publish("sighting", unknown, "viewer")
    known, _ = visit_events(site, "Barack Obama")
    stranger = page.locator(f'[data-sighting-id="{unknown["sighting_id"]}"]')
    expect(stranger.get_by_test_id("card-name")).to_have_text("Unknown face")
    page.get_by_test_id("show-unknown").uncheck()
    expect(stranger).to_be_hidden()
    expect(page.locator(f'[data-sighting-id="{known}"]')).to_be_visible()
    page.reload()  # the choice stays in this browser
    expect(page.get_by_test_id("show-unknown")).not_to_be_checked()
    expect(stranger).to_be_hidden()
    page.get_by_test_id("show-unknown").check()
    expect(stranger).to_be_visible()
