"""RetentionService on SQLite and PostgreSQL with a real photo folder: each kind of stored data
goes when its period has passed, with its snapshots, in batches, and what is recent (or held
by a case) stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from oneeye.config import RetentionSettings, ServeSettings
from oneeye.services.auth import AuthService
from oneeye.services.retention import RetentionService
from oneeye.store.db import Database
from oneeye.store.models import (
    AlertCase,
    AuditEntry,
    CaseMatch,
    DashboardEvent,
    Notification,
    Sighting,
    new_id,
)
from oneeye.store.photos import LocalPhotoStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Rig:
    """A database, a photo folder and the retention service over them."""

    def __init__(self, db: Database, root: Path, batch_size: int = 2) -> None:
        self.db = db
        self.photos = LocalPhotoStore(root)
        self.auth = AuthService(db)
        self.settings = RetentionSettings(batch_size=batch_size)
        self.before: list[datetime] = []
        self.retention = RetentionService(
            db, self.photos, self.auth, self.settings, before=self.before.append
        )

    def sighting(self, age: timedelta, person: str | None = None, snapshot: bool = True) -> str:
        """A stored sighting last seen ``age`` before ``NOW``, with a snapshot file."""
        ident = new_id()
        key = self.photos.add("snapshots", b"\xff\xd8\xff face") if snapshot else None
        seen = NOW - age
        with self.db.session() as session:
            session.add(
                Sighting(
                    id=ident,
                    camera_id="door",
                    track=1,
                    person_id=person,
                    watchlist="customers" if person else None,
                    frame=1,
                    t=0.0,
                    top=1,
                    right=2,
                    bottom=3,
                    left=0,
                    first_seen=seen,
                    last_seen=seen,
                    snapshot_key=key,
                )
            )
        return ident

    def sightings(self) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(Sighting.id)))

    def snapshot_of(self, ident: str) -> str:
        with self.db.session() as session:
            key = session.scalar(select(Sighting.snapshot_key).where(Sighting.id == ident))
        assert key is not None
        return key

    def count(self, model: type[object]) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def rig(db: Database, tmp_path: Path) -> Rig:
    return Rig(db, tmp_path / "photos")


def test_unknown_faces_go_after_their_hours_with_their_snapshots_recent_ones_stay(
    rig: Rig,
) -> None:
    old = [rig.sighting(timedelta(hours=49)) for _ in range(5)]  # 5 rows, batches of 2
    recent = rig.sighting(timedelta(hours=23))
    within = rig.sighting(timedelta(hours=47))
    old_keys = {rig.snapshot_of(i) for i in old}
    kept_keys = {rig.snapshot_of(recent), rig.snapshot_of(within)}

    report = rig.retention.sweep(NOW)

    assert rig.sightings() == {recent, within}
    assert report.unknown_sightings == 5
    assert report.snapshots == 5
    assert not any(rig.photos.exists(k) for k in old_keys)
    assert all(rig.photos.exists(k) for k in kept_keys)
    assert rig.before == [NOW], "the Amber Alert purge runs in the same sweep"
    rows = rig.auth.audit_entries(action="retention.sweep")
    assert len(rows) == 1
    assert rows[0].detail["unknown_sightings"] == 5
    # A second sweep finds nothing and writes no audit row.
    assert rig.retention.sweep(NOW).total == 0
    assert len(rig.auth.audit_entries(action="retention.sweep")) == 1


def test_known_faces_keep_their_sightings_for_days_not_hours(rig: Rig) -> None:
    person = new_id()
    recent = rig.sighting(timedelta(days=3), person=person)
    old = rig.sighting(timedelta(days=31), person=person)
    old_key = rig.snapshot_of(old)
    report = rig.retention.sweep(NOW)
    assert rig.sightings() == {recent}
    assert (report.known_sightings, report.unknown_sightings) == (1, 0)
    assert not rig.photos.exists(old_key)


def test_a_sighting_held_by_an_open_case_stays_until_the_case_is_purged(rig: Rig) -> None:
    held = rig.sighting(timedelta(hours=100))
    case_id = new_id()
    with rig.db.session() as session:
        session.add(
            AlertCase(
                id=case_id,
                name="Missing child",
                reporter="user:reporter",
                expires_at=NOW + timedelta(days=1),
            )
        )
        session.flush()
        session.add(
            CaseMatch(
                case_id=case_id,
                sighting_id=held,
                camera_id="door",
                distance=0.2,
                kind="retro",
                seen_at=NOW - timedelta(hours=100),
            )
        )
    rig.retention.sweep(NOW)
    assert rig.sightings() == {held}
    with rig.db.session() as session:
        case = session.get(AlertCase, case_id)
        assert case is not None
        case.purged_at = NOW
    rig.retention.sweep(NOW)
    assert rig.sightings() == set()


def test_a_row_naming_another_kind_of_photo_never_deletes_it(rig: Rig) -> None:
    enrolment_photo = rig.photos.add("templates", b"\xff\xd8\xff someone's enrolment")
    ident = rig.sighting(timedelta(hours=60), snapshot=False)
    with rig.db.session() as session:
        row = session.get(Sighting, ident)
        assert row is not None
        row.snapshot_key = enrolment_photo  # what a forged sighting could name
    rig.retention.sweep(NOW)
    assert rig.sightings() == set()
    assert rig.photos.exists(enrolment_photo)


def test_events_notifications_and_audit_rows_go_after_their_periods(rig: Rig) -> None:
    with rig.db.session() as session:
        for hours in (25, 30, 1):
            session.add(
                DashboardEvent(
                    at=NOW - timedelta(hours=hours),
                    type="customer.arrived",
                    audience="teller",
                    payload={"account": {"name": "Jane Doe", "balance": "10.00"}},
                )
            )
        for days, status in ((31, "sent"), (40, "failed"), (31, "pending"), (2, "sent")):
            session.add(
                Notification(
                    case_id=new_id(),
                    sighting_id=new_id(),
                    channel="email",
                    address="a@example.org",
                    payload={},
                    status=status,
                    created_at=NOW - timedelta(days=days),
                )
            )
        for days in (731, 800, 10):
            session.add(
                AuditEntry(at=NOW - timedelta(days=days), actor="user:x", action="account.view")
            )
    report = rig.retention.sweep(NOW)
    assert (report.events, report.notifications, report.audit) == (2, 2, 2)
    assert rig.count(DashboardEvent) == 1
    with rig.db.session() as session:
        statuses = sorted(session.scalars(select(Notification.status)))
    assert statuses == ["pending", "sent"], "pending rows are never deleted"
    # the 10-day-old row and the sweep's own row
    assert rig.count(AuditEntry) == 2


def test_a_sweep_runs_on_its_own_thread_on_schedule(db: Database, tmp_path: Path) -> None:
    rig = Rig(db, tmp_path / "photos")
    rig.settings = RetentionSettings(sweep_seconds=1.0)
    service = RetentionService(db, rig.photos, rig.auth, rig.settings)
    old = rig.sighting(NOW - datetime.now(UTC) + timedelta(hours=72))  # 72 h ago, really
    assert old in rig.sightings()
    service.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while old in rig.sightings() and datetime.now(UTC) < deadline:
            service._stop.wait(0.1)
    finally:
        service.stop()
    assert old not in rig.sightings()


def test_unknown_faces_cannot_be_kept_shorter_than_the_retro_search_looks_back() -> None:
    with pytest.raises(ValidationError, match=r"at least alerts\.retro_hours"):
        ServeSettings(
            retention=RetentionSettings(unknown_sightings_hours=12),
            alerts={"retro_hours": 24},  # type: ignore[arg-type]
        )
    assert RetentionSettings().unknown_sightings_hours >= 24
