"""The face library in a real browser (Debian chromium through Playwright): an admin searches
the customers, opens one, sees their enrolled faces as thumbnails with quality, deletes one,
and edits the account."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.web.browser import csp_violations
from tests.web.test_browser import Site, log_in, site  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


def test_admin_searches_the_library_opens_a_customer_and_deletes_a_face(
    site: Site,  # noqa: F811
    browser: Browser,
    face_photos: Path,
    tmp_path: Path,
) -> None:
    s = site.app.services
    s.auth.create_user("ada", "correct horse battery", "admin")
    for i in range(30):
        s.directory.save(f"ACC-{i:04d}", name=f"Zed Customer {i:02d}")
    [obama] = s.enrolment.people(q="ACC-1001")
    s.enrolment.enrol_photo(
        obama.id, (face_photos / "obama2.jpg").read_bytes(), "obama2.jpg", actor="test"
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = csp_violations(page)
    log_in(page, site.url, "ada")

    page.goto(f"{site.url}/admin/customers")
    expect(page.get_by_test_id("customer-count")).to_contain_text("of 31 customers")
    expect(page.get_by_test_id("customer-row")).to_have_count(25)
    page.get_by_test_id("customer-search").fill("obama")
    page.get_by_test_id("customer-search-submit").click()
    expect(page).to_have_url(re.compile(r"/admin/customers\?q=obama$"))
    expect(page.get_by_test_id("customer-row")).to_have_count(1)
    page.get_by_test_id("customer-row-name").click()

    expect(page).to_have_url(f"{site.url}/admin/customers/ACC-1001")
    faces = page.get_by_test_id("template")
    expect(faces).to_have_count(2)
    caption = re.compile(r"^quality \d\.\d\d · sharpness \d+ · frontalness \d\.\d\d · \d+ px$")
    expect(faces.first.get_by_test_id("template-quality")).to_have_text(caption)
    # The thumbnails load (an authorised, audited route) and are small.
    thumb = faces.first.get_by_test_id("template-thumbnail")
    expect(thumb).to_have_js_property("complete", True)
    assert 0 < thumb.evaluate("img => img.naturalWidth") <= 160
    page.screenshot(path=str(tmp_path / "library-customer.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    faces.last.get_by_test_id("template-delete").click()
    expect(faces).to_have_count(1)
    expect(page.get_by_test_id("template-result")).to_have_text("face deleted")
    assert len(s.enrolment.templates(obama.id)) == 1
    assert len(s.gallery.templates(obama.id)) == 1

    form = page.get_by_test_id("customer-edit-form")
    form.get_by_test_id("edit-account-type").fill("Private Banking")
    form.get_by_test_id("customer-save").click()
    expect(form.get_by_test_id("customer-edit-result")).to_have_text("saved")
    card = s.directory.lookup("ACC-1001")
    assert card is not None
    assert card.account_type == "Private Banking"
    page.reload()
    expect(page.get_by_test_id("template")).to_have_count(1)
    assert blocked == []
