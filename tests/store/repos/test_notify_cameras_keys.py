"""The subscriptions, notifications, cameras, keys and watchlists repositories, on SQLite and
PostgreSQL: values out, leases honoured, sweeps bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from oneeye.store.db import Database
from oneeye.store.models import Person
from oneeye.store.repos import cameras, cases, keys, notifications, subscriptions, watchlists
from oneeye.store.repos.cameras import StoredCamera


def _queue(db: Database, count: int, *, sighting: str = "s") -> int:
    """An all-cases webhook subscription with ``count`` pending rows; returns its id."""
    now = datetime.now(UTC)
    with db.session() as session:
        sub = subscriptions.add(
            session,
            case_id=None,
            channel="webhook",
            address="https://example.org/hook",
            secret="s" * 20,
            created_by="user:ann",
            now=now,
        )
        for n in range(count):
            notifications.add_pending(
                session,
                case_id="c1",
                sighting_id=f"{sighting}{n}",
                subscription_id=sub.id,
                channel="webhook",
                address="https://example.org/hook",
                payload={"case_id": "c1"},
                now=now - timedelta(seconds=count - n),
            )
    return sub.id


def test_subscriptions_are_values_and_deleting_one_returns_it(db: Database) -> None:
    sub_id = _queue(db, 0)
    with db.session() as session:
        info = subscriptions.get(session, sub_id)
        assert info is not None
        assert info.secret is None
        assert info.active
        assert [t.id for t in subscriptions.targets(session, "any-case")] == [sub_id]
        assert [s.id for s in subscriptions.of_case(session, None)] == [sub_id]
        assert subscriptions.of_case(session, "c1") == []
    with db.session() as session:
        gone = subscriptions.delete(session, sub_id)
        assert gone is not None
        assert gone.channel == "webhook"
    with db.session() as session:
        assert subscriptions.delete(session, sub_id) is None


def test_rows_are_leased_once_and_outcomes_need_the_lease(db: Database) -> None:
    sub_id = _queue(db, 3)
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=30)
    with db.session() as session:
        assert notifications.subscriptions_notified(session, "s0") == {sub_id}
        assert notifications.next_due(session, now) is not None
        first = notifications.lease_due(session, now, lease, limit=2)
    assert [row.sighting_id for row in first] == ["s0", "s1"]
    assert first[0].secret == "s" * 20
    assert not first[0].cancelled
    assert not first[0].had_error
    with db.session() as session:
        # Leased rows are nobody else's; the one left is.
        assert [r.sighting_id for r in notifications.lease_due(session, now, lease, limit=5)] == [
            "s2"
        ]
        assert notifications.lease_due(session, now, lease, limit=5) == []
    a, b = first
    with db.session() as session:
        assert not notifications.mark_sent(session, a.id, lease + timedelta(seconds=1), now)
        assert notifications.mark_sent(session, a.id, lease, now)
        assert notifications.attempts_under_lease(session, b.id, lease) == 0
        notifications.record_failure(session, b.id, "refused", retry_at=now + timedelta(hours=1))
    with db.session() as session:
        assert notifications.attempts_under_lease(session, b.id, lease) is None  # lease given back
        counts, retrying = notifications.status_counts(session)
        assert counts == {"pending": 2, "sent": 1}
        assert retrying == 1
        (failure,) = notifications.failures(session, 10)
        assert failure.id == b.id
        assert failure.attempts == 1
        assert failure.next_attempt_at
        assert notifications.retry_now(session, "webhook", None, now) == 1


def test_finished_rows_are_swept_in_batches_and_erased_by_case_or_sighting(db: Database) -> None:
    _queue(db, 3)
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=30)
    with db.session() as session:
        for row in notifications.lease_due(session, now, lease, limit=3):
            notifications.give_up(session, row.id, lease, "cannot be sent")
    later = now + timedelta(seconds=1)
    with db.session() as session:
        assert notifications.delete_finished(session, later, 2) == 2
        assert notifications.delete_finished(session, later, 2) == 1
    _queue(db, 2, sighting="t")
    with db.session() as session:
        assert notifications.delete_about(session, [], ["t0"]) == 1
        assert notifications.delete_about(session, ["c1"], []) == 1


def _camera(camera_id: str) -> StoredCamera:
    return StoredCamera(camera_id, "Door", "0", True, "hall", 40, 3, True, False)


def test_server_and_edge_cameras(db: Database) -> None:
    with db.session() as session:
        cameras.add(session, _camera("door"))
        assert cameras.register(session, "edge-1", "gate", "Gate")
    with db.session() as session:
        assert not cameras.register(session, "edge-1", "gate", "Main gate")
        assert cameras.update(session, "door", {"enabled": False})
        assert not cameras.update(session, "nope", {"enabled": False})
        with pytest.raises(ValueError, match="not a camera setting"):
            cameras.update(session, "door", {"id": "x"})
    with db.session() as session:
        assert cameras.get(session, "door") == StoredCamera(
            "door", "Door", "0", False, "hall", 40, 3, True, False
        )
        assert cameras.server_ids(session) == {"door"}
        assert cameras.edges_of(session, ["gate", "door"]) == {"gate": "edge-1"}
        assert cameras.edge_owners(session) == ({"gate": "edge-1"}, {"gate": "Main gate"})
        assert [c.camera_id for c in cameras.edge_cameras(session, "edge-1")] == ["gate"]
        assert not cameras.unregister(session, "edge-2", "gate")
        assert cameras.unregister(session, "edge-1", "gate")
        assert cameras.delete(session, "door") == "Door"
    with db.session() as session:
        assert cameras.delete(session, "door") is None
        assert cameras.every(session) == []


def test_server_keys_keep_the_first_stored(db: Database) -> None:
    with db.session() as session:
        assert keys.get(session, "k") is None
        keys.add(session, "k", b"first")
    with pytest.raises(IntegrityError), db.session() as session:
        keys.add(session, "k", b"second")
    with db.session() as session:
        assert keys.get(session, "k") == b"first"


def test_watchlists_are_values_with_counts(db: Database) -> None:
    with db.session() as session:
        watchlists.add(session, "vip", action="none", description="d", threshold=0.4)
    with db.session() as session:
        assert watchlists.exists(session, "vip")
        assert not watchlists.exists(session, "x")
        assert watchlists.names(session) == {"vip"}
        changed = watchlists.update(session, "vip", change_threshold=True, description="e")
        assert changed is not None
        assert changed.threshold is None
        assert changed.description == "e"
        assert watchlists.update(session, "x") is None
    with db.session() as session:
        (vip,) = watchlists.with_counts(session)
        assert (vip.name, vip.persons, vip.threshold) == ("vip", 0, None)


def test_cooling_and_tallies_count_each_subscriber_on_its_own(db: Database) -> None:
    """A subscriber's cooldown on a camera comes from its own rows about matches near in time
    (a given-up row told nobody); a case's tallies count each subscriber's rows by status."""
    now = datetime.now(UTC)
    with db.session() as session:
        session.add(Person(id="p1", name="Ana"))
        session.flush()
        cases.add(
            session,
            case_id="c1",
            person_id="p1",
            name="Ana",
            description="",
            contact="",
            reporter="user:ann",
            filed_by=None,
            approved=True,
            now=now,
            expires_at=now + timedelta(hours=1),
        )
        subs = [
            subscriptions.add(
                session,
                case_id="c1" if n else None,
                channel="email",
                address=f"{n}@example.org",
                secret=None,
                created_by="user:ann",
                now=now,
            ).id
            for n in range(3)
        ]
        for sighting, camera, ago in (("s1", "door", 100), ("s2", "door", 30), ("s3", "lobby", 10)):
            cases.add_match(
                session,
                case_id="c1",
                sighting_id=sighting,
                camera_id=camera,
                distance=0.2,
                kind="live",
                seen_at=now - timedelta(seconds=ago),
                found_at=now,
                notified=True,
                held=False,
            )
        for sighting, sub in (("s1", subs[0]), ("s2", subs[1]), ("s2", subs[2]), ("s3", subs[0])):
            notifications.add_pending(
                session,
                case_id="c1",
                sighting_id=sighting,
                subscription_id=sub,
                channel="email",
                address=f"{sub}@example.org",
                payload={},
                now=now,
            )
    with db.session() as session:
        leased = notifications.lease_due(session, now, now + timedelta(seconds=30), limit=9)
        [failed] = [
            r.id for r in leased if (r.sighting_id, r.address) == ("s2", f"{subs[1]}@example.org")
        ]
        notifications.record_failure(session, failed, "550", retry_at=None)
    window = timedelta(seconds=60)
    with db.session() as session:
        # At the door: s1 is 100 s ago; of s2's rows, subs[1]'s gave up (told nobody).
        assert notifications.cooling(session, "c1", "door", now, window) == {subs[2]}
        wide = notifications.cooling(session, "c1", "door", now, timedelta(seconds=200))
        assert wide == {subs[0], subs[2]}
        assert notifications.cooling(session, "c1", "lobby", now, window) == {subs[0]}
        assert notifications.cooling(session, "c2", "door", now, window) == set()
        tallies = notifications.tallies(session, "c1")
    assert tallies[subs[0]].pending == 2
    assert (tallies[subs[1]].failed, tallies[subs[1]].pending) == (1, 0)
    assert tallies[subs[1]].last_error == "550"
    assert (tallies[subs[2]].failed, tallies[subs[2]].pending) == (0, 1)
