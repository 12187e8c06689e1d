"""Several central servers on one database: gallery versions come from the database, every
server applies every change in one order, and one that falls behind catches up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select, update

from oneeye.bus.base import GALLERY_CHANGES, Message
from oneeye.bus.memory import MemoryBus
from oneeye.gallery import GalleryIndex
from oneeye.services.gallery import GalleryEntry, GalleryService
from oneeye.store.db import Database
from oneeye.store.models import FaceTemplate, GalleryLogEntry, Person, Watchlist
from oneeye.store.repos import gallery_log, templates
from oneeye.store.repos.templates import embedding_to_bytes


def unit(seed: int) -> npt.NDArray[np.float32]:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    made: npt.NDArray[np.float32] = vector / np.linalg.norm(vector)
    return made


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """Two servers (a GalleryService each, with its own gallery) on one database; each
    announces on a bus of its own unless ``shared`` is given."""

    def __init__(self, url: str, shared: MemoryBus | None = None) -> None:
        self.db = Database(url)
        self.db.migrate()
        self.buses = [shared or MemoryBus(), shared or MemoryBus()]
        self.servers = [GalleryService(self.db, GalleryIndex(), bus) for bus in self.buses]
        for bus in {id(b): b for b in self.buses}.values():
            bus.start()
        for server in self.servers:
            server.load()

    def enrol(self, through: GalleryService, seed: int, watchlist: str = "customers") -> str:
        """A person on ``watchlist`` with one template, stored, then added through one server."""
        with self.db.session() as session:
            lists = session.scalars(select(Watchlist).where(Watchlist.name == watchlist)).all()
            person = Person(name=f"person {seed}", watchlists=list(lists))
            session.add(person)
            session.flush()
            template = FaceTemplate(
                person_id=person.id,
                photo_key="templates/aa/a.jpg",
                embedding=embedding_to_bytes(unit(seed)),
                top=0,
                right=10,
                bottom=10,
                left=0,
                quality=0.8,
            )
            session.add(template)
            session.flush()
            person_id, template_id = person.id, template.id
        through.add_templates([watchlist], [GalleryEntry(template_id, person_id, unit(seed), 0.8)])
        return person_id

    def database(self) -> tuple[int, dict[str, str]]:
        """The database's version and its gallery (entry id -> person)."""
        with self.db.session() as session:
            state = gallery_log.state(session)
            rows = templates.on_watchlists(session)
        assert state is not None
        entries = {
            f"{t}@{w}": p
            for t, p, w in zip(rows.template_ids, rows.person_ids, rows.watchlists, strict=True)
        }
        return state.version, entries

    def held(self, server: GalleryService) -> tuple[int, dict[str, str], dict[str, float]]:
        return (
            server.version,
            {t.id: t.person for t in server.gallery.templates()},
            server.gallery.thresholds(),
        )

    def logged_versions(self) -> list[int]:
        with self.db.session() as session:
            return list(session.scalars(select(GalleryLogEntry.version).order_by("version")))

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for bus in {id(b): b for b in self.buses}.values():
            bus.stop()
        self.db.close()


@pytest.fixture
def cluster(database_url: str) -> Iterator[Cluster]:
    made = Cluster(database_url)
    try:
        yield made
    finally:
        made.close()


def test_alternate_changes_through_two_servers_take_one_global_order(cluster: Cluster) -> None:
    a, b = cluster.servers
    people = []
    for n in range(6):
        through = (a, b)[n % 2]
        before = cluster.database()[0]
        people.append(cluster.enrol(through, n))
        assert through.version == before + 1, "the server that made a change holds it at once"
    b.update_watchlist("customers", threshold=0.29)
    with cluster.db.session() as session:  # as EnrolmentService.delete_person does
        session.query(Person).filter_by(id=people[2]).delete()
    a.remove_person(people[2])
    b.catch_up()
    a.catch_up()
    version, entries = cluster.database()
    assert cluster.held(a) == cluster.held(b)
    assert cluster.held(a)[:2] == (version, entries)
    assert a.gallery.threshold("customers") == b.gallery.threshold("customers") == 0.29
    assert people[2] not in a.gallery.persons()
    # Every version logged once, none skipped: two starts, six adds, a threshold, a removal.
    assert cluster.logged_versions() == list(range(1, version + 1))
    assert version == 2 + 6 + 1 + 1
    assert a.epoch == b.epoch


def test_the_change_announced_carries_the_database_version(database_url: str) -> None:
    bus = MemoryBus()
    seen: list[Message] = []
    bus.subscribe(GALLERY_CHANGES, seen.append)
    cluster = Cluster(database_url, shared=bus)
    try:
        a, b = cluster.servers
        cluster.enrol(a, 1)
        cluster.enrol(b, 2)
        bus.stop()
        bus.start()
        ops = [(m.payload["op"], m.payload["version"], m.payload["epoch"]) for m in seen]
        assert ops == [
            ("reload", 1, a.epoch),
            ("reload", 2, a.epoch),
            ("add", 3, a.epoch),
            ("add", 4, a.epoch),
        ]
    finally:
        cluster.close()


def test_concurrent_enrolments_through_both_servers_end_in_step(cluster: Cluster) -> None:
    a, b = cluster.servers
    errors: list[BaseException] = []

    def enrol_many(server: GalleryService, first: int) -> None:
        try:
            for n in range(first, first + 15):
                cluster.enrol(server, n)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=enrol_many, args=(a, 0)),
        threading.Thread(target=enrol_many, args=(b, 100)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    a.catch_up()
    b.catch_up()
    version, entries = cluster.database()
    assert len(entries) == 30
    assert cluster.held(a)[:2] == cluster.held(b)[:2] == (version, entries)
    assert cluster.logged_versions() == list(range(1, version + 1))


def test_a_following_server_applies_another_s_change_without_being_asked(
    database_url: str,
) -> None:
    bus = MemoryBus()
    cluster = Cluster(database_url, shared=bus)
    try:
        a, b = cluster.servers
        b.start_following()
        cluster.enrol(a, 7)
        wait_for(lambda: cluster.held(b) == cluster.held(a), "server b to follow a's enrolment")
    finally:
        cluster.close()


def test_a_server_that_missed_the_announcement_finds_the_change_by_polling(
    cluster: Cluster,
) -> None:
    a, b = cluster.servers  # separate buses: b never hears a's announcements
    b.follower.poll_seconds = 0.1
    b.start_following()
    cluster.enrol(a, 8)
    wait_for(lambda: cluster.held(b) == cluster.held(a), "server b to poll a's enrolment")


def test_a_server_behind_a_pruned_log_rebuilds_from_the_tables(cluster: Cluster) -> None:
    a, b = cluster.servers
    for n in range(3):
        cluster.enrol(a, 20 + n)
    with cluster.db.session() as session:
        gone = gallery_log.prune(session, before=datetime.now(UTC) + timedelta(days=1), keep=1)
    assert gone == cluster.database()[0] - 1
    b.catch_up()
    assert cluster.held(b) == cluster.held(a)
    assert len(b.gallery) == 3


def test_a_damaged_logged_change_rebuilds_from_the_tables(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = cluster.servers
    cluster.enrol(a, 30)
    version = cluster.database()[0]
    with cluster.db.session() as session:
        session.execute(
            update(GalleryLogEntry)
            .where(GalleryLogEntry.version == version)
            .values(change={"op": "add", "entries": [{"id": "x" * 500}]})
        )
    with caplog.at_level(logging.ERROR, logger="oneeye.services.gallery"):
        b.catch_up()
    assert cluster.held(b)[:2] == cluster.held(a)[:2]
    assert f"logged change {version} is damaged" in caplog.text


def test_an_add_of_a_template_deleted_since_is_skipped(cluster: Cluster) -> None:
    a, b = cluster.servers
    person = cluster.enrol(a, 40)
    with cluster.db.session() as session:
        session.query(Person).filter_by(id=person).delete()
    b.catch_up()  # the add names a template that is gone: nothing to add
    assert person not in b.gallery.persons()
    a.remove_person(person)
    b.catch_up()
    assert cluster.held(a) == cluster.held(b)


class Watched(GalleryIndex):
    """A gallery that records its size after every removal or clearing."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def remove(self, template_id: str) -> int:
        version = super().remove(template_id)
        self.sizes.append(len(self))
        return version

    def clear(self) -> int:
        version = super().clear()
        self.sizes.append(len(self))
        return version


def test_another_server_starting_never_empties_this_one_s_gallery(database_url: str) -> None:
    cluster = Cluster(database_url)
    watched = Watched()
    try:
        a = GalleryService(cluster.db, watched, MemoryBus())
        a.load()
        people = [cluster.enrol(a, 50 + n) for n in range(3)]
        # A deletion whose logged change never came (its server died in between): the next
        # start's reload repairs it, removing that entry only.
        with cluster.db.session() as session:
            session.query(Person).filter_by(id=people[0]).delete()
        cluster.servers[1].load()
        watched.sizes.clear()
        a.catch_up()
        assert sorted(watched.persons()) == sorted(people[1:])
        assert watched.sizes == [2], "one entry removed, the gallery never emptied"
        a.close()
    finally:
        cluster.close()
