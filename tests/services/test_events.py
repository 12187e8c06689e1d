"""EventHub on SQLite and PostgreSQL: stored then pushed, replay by role, pruning, slow
clients cut off, publishing from other threads, and batched audit of account details."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from oneeye.services.events import EventHub
from oneeye.store.db import Database
from oneeye.store.models import AuditEntry, DashboardEvent


@pytest.fixture
def db(database_url: str) -> Database:
    database = Database(database_url)
    database.migrate()
    return database


def test_an_event_is_stored_then_replayed_by_role(db: Database) -> None:
    hub = EventHub(db, history=100)
    first = hub.publish("sighting", {"n": 1})
    card = hub.publish("customer.arrived", {"n": 2}, audience="teller")
    third = hub.publish("camera.status", {"n": 3})
    assert first.id < card.id < third.id
    with db.session() as session:
        assert session.scalar(select(DashboardEvent.type).where(DashboardEvent.id == card.id)) == (
            "customer.arrived"
        )
    assert [e.id for e in hub.since(0, "teller")] == [first.id, card.id, third.id]
    assert [e.id for e in hub.since(0, "admin")] == [first.id, card.id, third.id]
    assert [e.id for e in hub.since(0, "viewer")] == [first.id, third.id]
    assert [e.id for e in hub.since(0, "reporter")] == [first.id, third.id]
    assert [e.id for e in hub.since(first.id, "teller")] == [card.id, third.id]
    frame = hub.since(card.id - 1, "teller")[0].as_json()
    assert frame["type"] == "customer.arrived"
    assert frame["data"] == {"n": 2}
    assert frame["id"] == card.id
    assert "T" in frame["at"]


def test_unknown_audience_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="unknown audience 'cashier'"):
        EventHub(db).publish("sighting", {}, audience="cashier")


def test_old_events_are_pruned_beyond_history(db: Database) -> None:
    hub = EventHub(db, history=5)
    ids = [hub.publish("sighting", {"n": n}).id for n in range(12)]
    hub.prune()
    assert [e.id for e in hub.since(0, "admin")] == ids[-5:]


def test_subscribers_get_what_their_role_may_see_from_any_thread(db: Database) -> None:
    hub = EventHub(db)

    async def scenario() -> tuple[list[str], list[str]]:
        viewer = hub.subscribe("viewer")
        teller = hub.subscribe("teller")

        def publish() -> None:
            hub.publish("sighting", {})
            hub.publish("customer.arrived", {}, audience="teller")

        thread = threading.Thread(target=publish)
        thread.start()
        await asyncio.to_thread(thread.join)
        got_teller = [(await asyncio.wait_for(teller.queue.get(), 5)) for _ in range(2)]
        got_viewer = [await asyncio.wait_for(viewer.queue.get(), 5)]
        await asyncio.sleep(0.05)
        assert viewer.queue.empty()
        hub.unsubscribe(viewer)
        hub.unsubscribe(teller)
        assert hub.subscribers == 0
        return [e.type for e in got_viewer if e], [e.type for e in got_teller if e]

    viewer_types, teller_types = asyncio.run(scenario())
    assert viewer_types == ["sighting"]
    assert teller_types == ["sighting", "customer.arrived"]


def test_a_client_that_falls_behind_is_cut_off_and_catches_up_by_since(db: Database) -> None:
    hub = EventHub(db, queue_size=3)

    async def scenario() -> None:
        slow = hub.subscribe("viewer")
        ids = [hub.publish("sighting", {"n": n}).id for n in range(5)]
        await asyncio.sleep(0.05)  # let the loop run the hand-overs
        assert slow.overflowed
        assert await slow.queue.get() is None  # the handler closes the socket on this
        assert [e.id for e in hub.since(ids[0] - 1, "viewer")] == ids

    asyncio.run(scenario())


def test_account_details_sent_to_a_user_are_audited_before_delivered_returns(
    db: Database,
) -> None:
    hub = EventHub(db)
    card = hub.publish(
        "customer.arrived",
        {"sighting_id": "s1", "account": {"account_id": "ACC-1"}},
        audience="teller",
    )
    plain = hub.publish("sighting", {"sighting_id": "s1"})
    hub.delivered(card, "user:alice", role="teller", address="10.0.0.7")
    # Committed already: a second connection (another process, after a kill) sees the row.
    other = Database(db.url.render_as_string(hide_password=False))
    try:
        with other.session() as session:
            [row] = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "account.view")
            ).all()
    finally:
        other.close()
    assert (row.actor, row.role, row.address, row.subject) == (
        "user:alice",
        "teller",
        "10.0.0.7",
        "ACC-1",
    )
    assert row.detail == {"event_id": card.id, "sighting_id": "s1", "via": "websocket"}
    hub.delivered(card, "user:bob")
    hub.delivered(plain, "user:carol")  # no account details: not audited
    with db.session() as session:
        actors = session.scalars(
            select(AuditEntry.actor)
            .where(AuditEntry.action == "account.view")
            .order_by(AuditEntry.actor)
        ).all()
    assert list(actors) == ["user:alice", "user:bob"]
