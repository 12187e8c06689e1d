"""Issue 12, bug 5: the same-face check of enrolment. A photo of someone else enrolled into a
person's account was accepted silently; now it is refused with 409 and the distances unless
``force=true``, and a forced enrolment is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.store.models import AuditEntry
from tests.web.helpers import PEOPLE, enrol, key_client, upload


def _audit(app: OneEyeApp, action: str) -> list[AuditEntry]:
    with app.services.db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.slow
def test_a_photo_of_someone_else_is_refused_unless_forced(
    server: OneEyeApp, face_photos: Path
) -> None:
    admin = key_client(server, "admin")
    obama = admin.post(PEOPLE, json={"name": "Barack Obama", "account_id": "ACC-1"}).json()
    first = enrol(admin, obama["id"], face_photos, "obama.jpg")

    # Biden's photo into Obama's account: refused, nothing stored, the distances said.
    biden = (face_photos / "biden.jpg").read_bytes()
    refused = admin.post(f"{PEOPLE}/{obama['id']}/photos", files=upload("biden.jpg", biden))
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "may not show the same person" in error["message"]
    assert "force=true" in error["message"]
    assert error["same_face"]["far"] is True
    assert error["same_face"]["own_distance"] > error["same_face"]["limit"]
    assert admin.get(f"{PEOPLE}/{obama['id']}").json()["templates"] == 1
    assert _audit(server, "template.enrol.forced") == []

    assert first["same_face"]["own_templates"] == 0  # the first photo: nothing to compare
    assert first["same_face"]["own_distance"] is None

    # Another photo of the same man passes, with its distances in the answer.
    second = enrol(admin, obama["id"], face_photos, "obama2.jpg")
    check = second["same_face"]
    assert check["own_templates"] == 1
    assert 0.0 < check["own_distance"] < check["limit"]
    assert check["limit"] == pytest.approx(0.32 + 0.10, abs=1e-4)  # threshold + slack
    assert check["suspicious"] is False

    # Forced: enrolled, and the audit row says it was forced, with the distances.
    forced = admin.post(
        f"{PEOPLE}/{obama['id']}/photos", params={"force": "true"}, files=upload("biden.jpg", biden)
    )
    assert forced.status_code == 201, forced.text
    assert forced.json()["same_face"]["suspicious"] is True
    assert admin.get(f"{PEOPLE}/{obama['id']}").json()["templates"] == 3
    [row] = _audit(server, "template.enrol.forced")
    assert row.subject == obama["id"]
    assert row.detail["forced"] is True
    assert row.detail["template"] == forced.json()["id"]
    assert row.detail["same_face"]["far"] is True


@pytest.mark.slow
def test_a_photo_nearer_to_another_person_is_refused(server: OneEyeApp, face_photos: Path) -> None:
    admin = key_client(server, "admin")
    first = admin.post(PEOPLE, json={"name": "First"}).json()
    second = admin.post(PEOPLE, json={"name": "Second"}).json()
    enrol(admin, first["id"], face_photos, "obama.jpg")
    enrol(admin, second["id"], face_photos, "obama_partial_face.jpg")
    # obama3 is 0.24 from Second's photo (within the limit) but 0.22 from First's.
    photo = (face_photos / "obama3.jpg").read_bytes()
    refused = admin.post(f"{PEOPLE}/{second['id']}/photos", files=upload("obama3.jpg", photo))
    assert refused.status_code == 409, refused.text
    check = refused.json()["error"]["same_face"]
    assert check["far"] is False
    assert check["nearer_other"] is True
    assert check["other_person"] == first["id"]
    assert check["other_distance"] < check["own_distance"]
    assert "nearer to another person" in refused.json()["error"]["message"]
