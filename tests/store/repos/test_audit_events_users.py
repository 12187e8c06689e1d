"""The audit, events and users repositories, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oneeye.store.db import Database
from oneeye.store.repos import audit, events, users


def test_audit_lines_are_searched_redacted_and_swept(db: Database) -> None:
    with db.session() as session:
        audit.add(session, "user:ann", "person.create", "p1", {"name": "Ann", "role": "x"})
        audit.add(session, "key:bot", "face.search", "", {"people": ["p1"]}, address="10.0.0.1")
        audit.add(session, "x" * 300, "login", "y" * 300)
    with db.session() as session:
        assert [r.action for r in audit.search(session, subject="p1")] == [
            "face.search",
            "person.create",
        ]
        assert [r.actor for r in audit.search(session, actors=["key:bot"])] == ["key:bot"]
        longest = audit.search(session, action="login")[0]
        assert len(longest.actor) == 100
        assert len(longest.subject) == 200
        assert audit.redact(session, "p1", {"name"}) == 1
    with db.session() as session:
        (line,) = audit.about(session, ["p1"])
        assert line.detail == {"role": "x", "redacted": True}
        assert audit.delete_older(session, datetime.now(UTC) + timedelta(seconds=1), 2) == 2
        assert audit.delete_older(session, datetime.now(UTC) + timedelta(seconds=1), 2) == 1


def test_events_are_numbered_replayed_and_pruned(db: Database) -> None:
    with db.session() as session:
        first = events.add(session, "sighting", {"person_id": "p1"}, audience="viewer")
        second = events.add(session, "customer.arrived", {"account": {}}, audience="teller")
    assert second.id > first.id
    with db.session() as session:
        assert [e.id for e in events.after(session, 0, ["viewer"], 10)] == [first.id]
        assert events.latest_id(session) == second.id
        assert events.payloads(session, first.id) == [(second.id, {"account": {}})]
        assert [e.type for e in events.with_ids(session, [second.id, first.id])] == [
            "sighting",
            "customer.arrived",
        ]
        assert events.delete_through(session, first.id) == 1
    with db.session() as session:
        assert events.delete_older(session, datetime.now(UTC) + timedelta(seconds=1), 10) == 1


def test_users_sessions_and_keys_come_back_as_records(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        ann = users.add(session, "ann", "hash-1", "admin", must_change_password=True)
        users.add_session(
            session,
            token_hash="t1",
            user_id=ann.id,
            csrf_token="c1",
            expires_at=now + timedelta(hours=1),
            last_seen_at=now,
        )
        users.add_session(
            session,
            token_hash="t2",
            user_id=ann.id,
            csrf_token="c2",
            expires_at=now - timedelta(seconds=1),
            last_seen_at=now,
        )
        key = users.add_key(
            session, name="edge", prefix="abcd", key_hash="k1", role="edge", edge_id="e1"
        )
    assert "hash-1" not in repr(ann)
    assert "k1" not in repr(key)
    with db.session() as session:
        assert users.admins(session, active_only=True) == 1
        changed = users.update(session, ann.id, password_hash="hash-2", must_change_password=False)
        assert changed is not None
        assert changed.password_hash == "hash-2"
        users.sweep_sessions(session, now, timedelta(minutes=30))
        assert users.login_session(session, "t2") is None
        assert users.login_session(session, "t1") is not None
        revoked = users.revoke_key(session, key.id)
        assert revoked is not None
        assert revoked[1] is True
        assert users.key_by_hash(session, "k1") == users.keys(session)[0]
    with db.session() as session:
        users.delete_user(session, ann.id)
        assert users.every(session) == []
        assert users.login_session(session, "t1") is None
