"""``POST /api/v1/identify``: every face in an uploaded photo with its nearest people; bad
uploads get the reason; nothing is stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.enrolment import encode_jpeg
from tests.conftest import PhotoLoader, side_by_side
from tests.web.conftest import ClientFor
from tests.web.helpers import PEOPLE, enrol, stored, upload

IDENTIFY = "/api/v1/identify"


@pytest.mark.slow
def test_identify_names_each_face_in_a_group_photo(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, load_photo: PhotoLoader
) -> None:
    admin = client_for("admin")
    teller = client_for("teller")
    obama = admin.post(PEOPLE, json={"name": "Barack Obama"}).json()
    enrol(admin, obama["id"], face_photos, "obama.jpg")
    before = stored(server)

    group = encode_jpeg(side_by_side(load_photo("obama2.jpg"), load_photo("biden.jpg")))
    response = teller.post(IDENTIFY, files=upload("group.jpg", group))
    assert response.status_code == 200, response.text
    faces = response.json()["faces"]
    assert len(faces) == 2
    by_side = sorted(faces, key=lambda f: f["box"]["left"])
    left, right = by_side
    assert left["person_id"] == obama["id"]
    assert left["name"] == "Barack Obama"
    assert left["watchlist"] == "customers"
    assert left["distance"] < 0.32
    assert left["matches"][0] == {
        "person_id": obama["id"],
        "name": "Barack Obama",
        "watchlist": "customers",
        "distance": left["distance"],
        "matched": True,
    }
    assert 0.0 < left["quality"]["score"] <= 1.0
    assert right["person_id"] is None  # Biden is not enrolled: unknown, nearest shown unmatched
    assert [m["matched"] for m in right["matches"]] == [False]
    assert stored(server) == before

    biden = admin.post(PEOPLE, json={"name": "Joe Biden"}).json()
    enrol(admin, biden["id"], face_photos, "biden.jpg")
    one = teller.post(IDENTIFY, params={"k": 1}, files=upload("group.jpg", group)).json()
    assert sorted(f["name"] for f in one["faces"]) == ["Barack Obama", "Joe Biden"]
    assert [len(f["matches"]) for f in one["faces"]] == [1, 1]


@pytest.mark.slow
def test_a_photo_without_faces_answers_an_empty_list(client_for: ClientFor) -> None:
    blank = encode_jpeg(np.full((200, 300, 3), 90, dtype=np.uint8))
    response = client_for("teller").post(IDENTIFY, files=upload("blank.jpg", blank))
    assert response.status_code == 200
    assert response.json() == {"faces": []}


def test_bad_uploads_get_the_reason(server: OneEyeApp, client_for: ClientFor) -> None:
    teller = client_for("teller")
    response = teller.post(IDENTIFY, files=upload("a.txt", b"hello"))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("a.txt: not an image")
    server.services.enrolment.max_upload_bytes = 1000
    big = teller.post(IDENTIFY, files=upload("big.jpg", b"\xff\xd8" + bytes(5000)))
    assert big.status_code == 413
    assert "the limit is 1,000 bytes" in big.json()["error"]["message"]
    missing = teller.post(IDENTIFY)
    assert missing.status_code == 422
    assert "file" in missing.json()["error"]["message"]


def test_identify_needs_a_login(anonymous: TestClient) -> None:
    response = anonymous.post(IDENTIFY, files=upload("a.jpg", b"x"))
    assert response.status_code == 401


@pytest.mark.slow
def test_boxes_of_a_photo_shrunk_for_the_search_are_in_the_uploaded_photos_pixels(
    server: OneEyeApp, client_for: ClientFor, load_photo: PhotoLoader
) -> None:
    teller = client_for("teller")
    photo = load_photo("obama.jpg")
    small = teller.post(IDENTIFY, files=upload("small.jpg", encode_jpeg(photo))).json()["faces"]
    # Three times as large: well over the 1280-pixel side the search shrinks photos to.
    large = np.repeat(np.repeat(photo, 3, axis=0), 3, axis=1)
    assert max(large.shape[:2]) > server.services.enrolment.photo_max_side
    found = teller.post(IDENTIFY, files=upload("large.jpg", encode_jpeg(large))).json()["faces"]
    assert len(small) == len(found) == 1
    for side in ("top", "right", "bottom", "left"):
        assert found[0]["box"][side] == pytest.approx(3 * small[0]["box"][side], abs=30)


@pytest.mark.slow
def test_a_customer_who_is_also_a_case_is_matched_on_both_watchlists(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    # Issue 12, bug 1: the customer and the case's person, enrolled from the same photo, were
    # each other's rival under the margin: "unknown" at the same distance.
    admin = client_for("admin")
    obama = admin.post(PEOPLE, json={"name": "Barack Obama"}).json()
    enrol(admin, obama["id"], face_photos, "obama2.jpg")
    photo = (face_photos / "obama2.jpg").read_bytes()
    filed = admin.post(
        "/api/v1/cases",
        data={"name": "Barack Obama"},
        files=[("photo", ("obama2.jpg", photo, "image/jpeg"))],
    )
    assert filed.status_code == 201, filed.text
    case = filed.json()

    response = client_for("teller").post(
        IDENTIFY, files=upload("obama.jpg", (face_photos / "obama.jpg").read_bytes())
    )
    assert response.status_code == 200, response.text
    [face] = response.json()["faces"]
    assert face["person_id"] in {obama["id"], case["person_id"]}
    matched = {(m["person_id"], m["watchlist"]) for m in face["matches"] if m["matched"]}
    assert matched == {(obama["id"], "customers"), (case["person_id"], "amber-alert")}
