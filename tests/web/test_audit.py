"""Face search, people listings and the audit log, against a real server on loopback
(uvicorn on 127.0.0.1, clients over HTTP): a face search needs ``teller``; listings hide
``account_id`` and notes below ``teller``; every face search, gallery export, photo fetch and
case view writes an audit row (who, role, what, which id, when, client address) before the
answer leaves; the row survives ``kill -9`` of a real ``oneeye serve``; admins read the log,
filtered and paged, through the API and ``/admin/audit``."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from oneeye.app import OneEyeApp
from oneeye.services.auth import AuthService
from oneeye.services.enrolment import encode_jpeg
from oneeye.store.db import Database
from oneeye.vision.engine import FaceEngine
from tests.test_cli_serve import serve as serve_process
from tests.web.browser import serve
from tests.web.conftest import PASSWORD, ROLES, make_server

API = "/api/v1"
LOOPBACK = "127.0.0.1"


@dataclass
class Site:
    """A server on loopback with a user of each role logged in, an edge key, and Barack Obama
    enrolled as the holder of account ACC-1001 (with a note)."""

    app: OneEyeApp
    url: str
    clients: dict[str, httpx.Client]
    edge_key: str
    person_id: str
    template_photo: str
    _open: list[httpx.Client] = field(default_factory=list)

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit entries matching ``filters`` (read through the admin's API)."""
        response = self.clients["admin"].get(f"{API}/audit", params=filters)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries

    def newest_id(self) -> int:
        """The id of the newest audit entry (entries after it are this test's)."""
        return int(self.audit(limit=1)[0]["id"])

    def since(self, first: int, **filters: Any) -> list[dict[str, Any]]:
        """Entries newer than id ``first`` matching ``filters``, newest first."""
        return [e for e in self.audit(limit=1000, **filters) if e["id"] > first]


def logged_in(url: str, username: str) -> httpx.Client:
    """An HTTP client logged in as ``username`` (session cookie and CSRF header)."""
    client = httpx.Client(base_url=url, timeout=30)
    response = client.post(f"{API}/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, face_photos: Path
) -> Iterator[Site]:
    """One server for the module (enrolling a face is the slow part; each test reads only the
    audit rows newer than where it started)."""
    tmp = tmp_path_factory.mktemp("audit")
    app = make_server(tmp, f"sqlite:///{tmp / 'oneeye.db'}", face_engine)
    try:
        for role in ROLES:
            app.services.auth.create_user(f"{role}1", PASSWORD, role)
        _, edge_key = app.services.auth.create_api_key("branch-7 edge", "edge", edge_id="branch-7")
        with serve(app.web) as url:
            clients = {role: logged_in(url, f"{role}1") for role in ROLES}
            admin = clients["admin"]
            person = admin.post(
                f"{API}/people",
                json={"name": "Barack Obama", "account_id": "ACC-1001", "notes": "prefers Tina"},
            ).json()
            photo = (face_photos / "obama.jpg").read_bytes()
            template = admin.post(
                f"{API}/people/{person['id']}/photos",
                files={"file": ("obama.jpg", photo, "image/jpeg")},
            )
            assert template.status_code == 201, template.text
            yield Site(
                app,
                url,
                clients,
                edge_key,
                person["id"],
                template.json()["photo_url"].removeprefix(f"{API}/photos/"),
            )
            for client in clients.values():
                client.close()
    finally:
        app.stop()


def blank_jpeg() -> bytes:
    """A photo without a face (detection finds nothing, quickly)."""
    return encode_jpeg(np.full((120, 160, 3), 90, dtype=np.uint8))


def check_row(entry: dict[str, Any], actor: str, role: str, action: str, subject: str) -> None:
    """``entry`` names who (and their role), what, which id, when (just now) and from where
    (loopback)."""
    assert (entry["actor"], entry["role"], entry["action"], entry["subject"]) == (
        actor,
        role,
        action,
        subject,
    )
    assert entry["address"] == LOOPBACK
    at = datetime.fromisoformat(entry["at"])
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=2)


# face search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_a_face_search_below_teller_is_refused_and_names_nobody(site: Site, role: str) -> None:
    first = site.newest_id()
    photo = {"file": ("probe.jpg", blank_jpeg(), "image/jpeg")}
    response = site.clients[role].post(f"{API}/identify", files=photo)
    assert response.status_code == 403, response.text
    assert "teller" in response.json()["error"]["message"]
    assert site.since(first, action="face.search") == []


def test_a_face_search_by_a_teller_is_audited_with_the_people_it_showed(
    site: Site, face_photos: Path
) -> None:
    first = site.newest_id()
    probe = (face_photos / "obama2.jpg").read_bytes()
    found = site.clients["teller"].post(
        f"{API}/identify", files={"file": ("probe.jpg", probe, "image/jpeg")}
    )
    assert found.status_code == 200, found.text
    assert found.json()["faces"][0]["person_id"] == site.person_id
    nobody = site.clients["admin"].post(
        f"{API}/identify", files={"file": ("b.jpg", blank_jpeg(), "image/jpeg")}
    )
    assert nobody.json() == {"faces": []}

    teller_row, admin_row = sorted(site.since(first, action="face.search"), key=lambda e: e["id"])
    check_row(teller_row, "user:teller1", "teller", "face.search", teller_row["subject"])
    assert teller_row["subject"].startswith("sha256:")
    assert teller_row["detail"]["matched"] == [site.person_id]
    assert site.person_id in teller_row["detail"]["shown"]
    assert admin_row["detail"] == {"faces": 0, "matched": [], "shown": [], "k": 3}
    # "Who searched for this person?" is one filter: the target id.
    by_target = site.since(first, target=site.person_id)
    assert [e["id"] for e in by_target] == [teller_row["id"]]
    # No name anywhere in the rows, only ids.
    assert "Obama" not in str(teller_row)


# listings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_below_teller_people_come_without_account_or_notes(site: Site, role: str) -> None:
    client = site.clients[role]
    first = site.newest_id()
    listed = client.get(f"{API}/people", params={"watchlist": "customers"})
    assert listed.status_code == 200, listed.text
    [person] = listed.json()
    assert person["name"] == "Barack Obama"
    assert "account_id" not in person
    assert "notes" not in person
    one = client.get(f"{API}/people/{site.person_id}").json()
    assert "account_id" not in one
    assert "notes" not in one
    [row] = site.since(first, action="person.list")
    check_row(row, f"user:{role}1", role, "person.list", "customers")
    assert row["detail"] == {"people": [site.person_id], "accounts": False}
    # An account number cannot be probed through the name search either.
    assert client.get(f"{API}/people", params={"q": "ACC-1001"}).json() == []
    assert client.get(f"{API}/customers").status_code == 403


@pytest.mark.parametrize("role", ["teller", "admin"])
def test_tellers_and_admins_see_account_and_notes(site: Site, role: str) -> None:
    client = site.clients[role]
    first = site.newest_id()
    [person] = client.get(f"{API}/people", params={"q": "acc-1001"}).json()
    assert (person["account_id"], person["notes"]) == ("ACC-1001", "prefers Tina")
    one = client.get(f"{API}/people/{site.person_id}").json()
    assert (one["account_id"], one["notes"]) == ("ACC-1001", "prefers Tina")
    [row] = site.since(first, action="person.list")
    check_row(row, f"user:{role}1", role, "person.list", "")
    assert row["detail"] == {"people": [site.person_id], "accounts": True}
    assert "ACC-1001" not in str(row)  # the search text is not kept


# gallery export, photos, cases ---------------------------------------------------------------


def test_each_gallery_export_is_one_audit_row(site: Site) -> None:
    first = site.newest_id()
    edge = {"Authorization": f"Bearer {site.edge_key}"}
    for _ in range(2):
        response = httpx.get(f"{site.url}{API}/gallery", headers=edge, timeout=30)
        assert response.status_code == 200, response.text
    version = response.json()["version"]
    rows = site.since(first, action="gallery.export")
    assert len(rows) == 2
    for row in rows:
        check_row(row, "key:branch-7 edge", "edge", "gallery.export", f"version:{version}")
        assert row["detail"] == {"entries": len(response.json()["entries"])}


def test_every_photo_fetch_is_audited_and_a_refused_one_is_not(site: Site) -> None:
    snapshot = site.app.services.photos.add("snapshots", blank_jpeg(), "jpg")
    first = site.newest_id()
    teller, viewer = site.clients["teller"], site.clients["viewer"]
    assert teller.get(f"{API}/photos/{site.template_photo}").status_code == 200
    assert viewer.get(f"{API}/photos/{snapshot}").status_code == 200
    assert viewer.get(f"{API}/photos/{site.template_photo}").status_code == 403
    assert viewer.get(f"{API}/photos/snapshots/no/such.jpg").status_code == 404
    link = site.app.services.notifier.links.sign(snapshot, 600)
    linked = httpx.get(
        f"{site.url}{API}/links/snapshot",
        params={"key": link.key, "exp": link.exp, "sig": link.sig},
        timeout=30,
    )
    assert linked.status_code == 200
    rows = sorted(site.since(first, action="photo.view"), key=lambda e: e["id"])
    assert len(rows) == 3
    check_row(rows[0], "user:teller1", "teller", "photo.view", site.template_photo)
    check_row(rows[1], "user:viewer1", "viewer", "photo.view", snapshot)
    check_row(rows[2], "link", "", "photo.view", snapshot)
    assert rows[2]["detail"] == {"via": "signed-link"}


def test_every_case_view_is_audited(site: Site, face_photos: Path) -> None:
    photo = (face_photos / "biden.jpg").read_bytes()
    case = site.app.services.alerts.create_case(
        "Joe Biden", "blue tie", "+15551234567", [(photo, "biden.jpg")], actor="user:reporter1"
    )
    first = site.newest_id()
    viewer = site.clients["viewer"]
    assert viewer.get(f"{API}/cases/{case.id}").status_code == 200
    assert viewer.get(f"/cases/{case.id}").status_code == 200
    assert viewer.get(f"{API}/cases/no-such-case").status_code == 404
    rows = sorted(site.since(first, action="case.view"), key=lambda e: e["id"])
    assert [r["detail"] for r in rows] == [{"via": "api"}, {"via": "page"}]
    for row in rows:
        check_row(row, "user:viewer1", "viewer", "case.view", case.id)
    assert "Biden" not in str(rows)
    [filed] = site.audit(action="case.create", target=case.id)
    assert "Biden" not in str(filed)


def test_logins_and_approvals_are_audited_with_role_and_address(
    site: Site, face_photos: Path
) -> None:
    """Issue 11, #46: ``login``, ``login.failed`` and ``case.approve`` rows had an empty role
    and client address."""
    first = site.newest_id()
    with httpx.Client(base_url=site.url, timeout=30) as browser:
        wrong = {"username": "teller1", "password": "not the password"}
        assert browser.post(f"{API}/auth/login", json=wrong).status_code == 401
    logged_in(site.url, "teller1").close()
    [failed] = site.since(first, action="login.failed")
    check_row(failed, "user:teller1", "teller", "login.failed", "teller1")
    [login] = site.since(first, action="login")
    check_row(login, "user:teller1", "teller", "login", "teller1")

    photo = (face_photos / "biden.jpg").read_bytes()
    case = site.app.services.alerts.create_case(
        "Joe Biden", "", "", [(photo, "biden.jpg")], actor="user:reporter1"
    )
    approved = site.clients["admin"].post(f"{API}/cases/{case.id}/approve")
    assert approved.status_code == 200, approved.text
    filed = site.clients["admin"].post(
        f"{API}/cases",
        data={"name": "Joe Biden"},
        files={"photo": ("biden.jpg", photo, "image/jpeg")},
    )
    assert filed.status_code == 201, filed.text
    rows = sorted(site.since(first, action="case.approve"), key=lambda e: e["id"])
    assert [r["subject"] for r in rows] == [case.id, filed.json()["id"]]
    for row in rows:
        check_row(row, "user:admin1", "admin", "case.approve", row["subject"])
    [created] = site.since(first, action="case.create", target=filed.json()["id"])
    check_row(created, "user:admin1", "admin", "case.create", filed.json()["id"])


# reading the log --------------------------------------------------------------------------------


def test_the_audit_api_filters_pages_and_is_for_admins_only(site: Site) -> None:
    auth = site.app.services.auth
    first = site.newest_id()
    for n in range(5):
        auth.audit("user:zed", "test.page", f"thing-{n}", role="teller", address="10.0.0.9")
    auth.audit("key:zed", "test.other", "thing-9", role="viewer")
    for role in ("viewer", "reporter", "teller"):
        assert site.clients[role].get(f"{API}/audit").status_code == 403

    assert len(site.since(first, actor="zed")) == 6
    assert len(site.since(first, actor="key:zed")) == 1
    assert [e["subject"] for e in site.since(first, action="test.")] == [
        "thing-9", "thing-4", "thing-3", "thing-2", "thing-1", "thing-0",
    ]  # fmt: skip
    assert [e["subject"] for e in site.since(first, target="thing-3")] == ["thing-3"]
    page1 = site.audit(action="test.page", limit=2)
    page2 = site.audit(action="test.page", limit=2, before=page1[-1]["id"])
    page3 = site.audit(action="test.page", limit=2, before=page2[-1]["id"])
    assert [e["subject"] for e in page1 + page2 + page3] == [f"thing-{n}" for n in (4, 3, 2, 1, 0)]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert site.audit(action="test.page", since=soon) == []
    assert len(site.audit(action="test.page", until=soon)) >= 5
    assert site.audit(action="test.page", until="2000-01-01T00:00:00") == []
    bad = site.clients["admin"].get(f"{API}/audit", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert "since" in bad.json()["error"]["message"]
    assert site.clients["admin"].get(f"{API}/audit", params={"who": "x"}).status_code == 422


def test_the_audit_page_filters_and_pages_for_admins_only(site: Site) -> None:
    auth = site.app.services.auth
    for n in range(60):
        auth.audit("user:pager", "test.pager", f"p-{n}", role="viewer", address="10.1.1.1")
    assert site.clients["teller"].get("/admin/audit").status_code == 403
    anonymous = httpx.get(f"{site.url}/admin/audit", timeout=30, follow_redirects=False)
    assert anonymous.status_code == 303
    admin = site.clients["admin"]
    page = admin.get("/admin/audit", params={"actor": "pager", "action": "", "since": ""})
    assert page.status_code == 200
    assert page.text.count('data-testid="audit-entry"') == 50
    assert "p-59" in page.text
    assert "p-9<" not in page.text
    assert 'data-testid="audit-older"' in page.text
    older = admin.get("/admin/audit", params={"actor": "pager", "before": _older(page.text)})
    assert older.text.count('data-testid="audit-entry"') == 10
    assert "p-9<" in older.text
    assert 'data-testid="audit-newest"' in older.text
    bad = admin.get("/admin/audit", params={"since": "not a time"})
    assert bad.status_code == 400
    assert 'data-testid="audit-error"' in bad.text


def _older(html: str) -> str:
    """The ``before`` value in a page's "Older entries" link."""
    start = html.index('data-testid="audit-older"')
    link = html[html.rindex('href="', 0, start) : start]
    return link.split("before=", 1)[1].split('"', 1)[0].split("&", 1)[0]


@pytest.mark.browser
def test_an_admin_filters_the_audit_log_in_a_browser(site: Site, browser: Browser) -> None:
    auth = site.app.services.auth
    auth.audit("user:bea", "test.browser", "case-77", role="reporter", address="10.2.2.2")
    auth.audit("user:bea", "test.elsewhere", "case-78", role="reporter", address="10.2.2.2")
    page = browser.new_page()
    try:
        page.goto(f"{site.url}/admin/audit")
        page.fill("input[name=username]", "admin1")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.get_by_test_id("audit-filters")).to_be_visible()
        page.get_by_test_id("audit-actor").fill("user:bea")
        page.get_by_test_id("audit-target").fill("case-77")
        page.get_by_test_id("audit-apply").click()
        rows = page.get_by_test_id("audit-entry")
        expect(rows).to_have_count(1)
        expect(rows.first.get_by_test_id("audit-entry-action")).to_have_text("test.browser")
        expect(rows.first.get_by_test_id("audit-entry-address")).to_have_text("10.2.2.2")
        expect(page.get_by_test_id("audit-target")).to_have_value("case-77")
        page.get_by_test_id("audit-since").fill("2099-01-01T00:00:00")
        page.get_by_test_id("audit-apply").click()
        expect(page.get_by_test_id("audit-empty")).to_be_visible()
    finally:
        page.close()


# durability -------------------------------------------------------------------------------------


def test_audit_rows_survive_kill_9_right_after_the_answer(tmp_path: Path) -> None:
    """A real ``oneeye serve``: each answer's audit row is committed before the answer leaves,
    so a SIGKILL straight after it loses nothing (an in-memory buffer would)."""
    data = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    served = serve_process(data, logs, "audit")
    try:
        auth = AuthService(Database(f"sqlite:///{data / 'oneeye.db'}"))
        _, edge = auth.create_api_key("kill-edge", "edge", edge_id="kill-edge")
        _, viewer = auth.create_api_key("kill-viewer", "viewer")
        with httpx.Client(base_url=served.url, timeout=30) as client:
            exported = client.get(f"{API}/gallery", headers={"X-API-Key": edge})
            assert exported.status_code == 200, exported.text
            listed = client.get(f"{API}/people", headers={"X-API-Key": viewer})
            assert listed.status_code == 200, listed.text
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(timeout=30)
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
    assert served.process.returncode == -signal.SIGKILL
    after = AuthService(Database(f"sqlite:///{data / 'oneeye.db'}"))
    [export] = after.audit_entries(action="gallery.export")
    assert (export.actor, export.role, export.address) == ("key:kill-edge", "edge", LOOPBACK)
    [listing] = after.audit_entries(action="person.list")
    assert (listing.actor, listing.role, listing.address) == ("key:kill-viewer", "viewer", LOOPBACK)
