"""GalleryService: the live gallery rebuilt from the database, kept in step with changes, and
every change announced on the bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import insert

from oneeye.bus.base import GALLERY_CHANGES, GALLERY_VERSION, Message
from oneeye.bus.memory import MemoryBus
from oneeye.config import DEFAULT_THRESHOLD
from oneeye.gallery import GalleryIndex
from oneeye.services.gallery import (
    GalleryEntry,
    GalleryService,
    WatchlistError,
    WatchlistExistsError,
    WatchlistNotFoundError,
)
from oneeye.services.gallery_log import gallery_id
from oneeye.store.db import Database
from oneeye.store.models import (
    FaceTemplate,
    Person,
    Watchlist,
    new_id,
    person_watchlists,
)
from oneeye.store.repos.templates import embedding_to_bytes


def unit_vectors(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 128)).astype(np.float32)
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


class Setup:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.db.migrate()
        self.gallery = GalleryIndex(DEFAULT_THRESHOLD, {"amber-alert": 0.4})
        self.bus = MemoryBus()
        self.messages: list[Message] = []
        self.bus.subscribe("oneeye/v1/gallery/#", self.messages.append)
        self.bus.start()
        self.service = GalleryService(self.db, self.gallery, self.bus)

    def delivered(self) -> list[Message]:
        """Every message published so far (the bus is drained and started again)."""
        self.bus.stop()
        self.bus.start()
        return self.messages

    def person(self, name: str, watchlists: list[str], embeddings: npt.NDArray[np.float32]) -> str:
        with self.db.session() as session:
            rows = [w for w in session.query(Watchlist).all() if w.name in watchlists]
            person = Person(name=name, watchlists=rows)
            session.add(person)
            session.flush()
            for vector in embeddings:
                session.add(
                    FaceTemplate(
                        person_id=person.id,
                        photo_key="templates/aa/a.jpg",
                        embedding=embedding_to_bytes(vector),
                        top=0,
                        right=10,
                        bottom=10,
                        left=0,
                        quality=0.8,
                    )
                )
            return person.id


@pytest.fixture
def setup(database_url: str) -> Iterator[Setup]:
    made = Setup(database_url)
    try:
        yield made
    finally:
        made.service.close()
        made.bus.stop()
        made.db.close()


def test_load_creates_the_default_watchlists_once(setup: Setup) -> None:
    assert setup.service.load() == 0
    assert setup.service.ensure_defaults() == []
    lists = {w.name: w for w in setup.service.watchlists()}
    assert set(lists) == {"customers", "amber-alert"}
    assert lists["customers"].action == "customers"
    assert lists["amber-alert"].action == "amber-alert"
    assert lists["amber-alert"].effective_threshold == 0.4  # from the settings
    assert lists["customers"].effective_threshold == DEFAULT_THRESHOLD


def test_load_rebuilds_the_gallery_once_per_watchlist_with_stored_thresholds(
    setup: Setup,
) -> None:
    setup.service.ensure_defaults()
    vectors = unit_vectors(5)
    alice = setup.person("Alice", ["customers"], vectors[:2])
    bob = setup.person("Bob", ["customers", "amber-alert"], vectors[2:3])
    setup.person("Nobody's list", [], vectors[3:4])
    with setup.db.session() as session:
        row = session.query(Watchlist).filter_by(name="customers").one()
        row.threshold = 0.25

    assert setup.service.load() == 4
    assert sorted(setup.gallery.persons()) == sorted([alice, bob])
    assert sorted(t.watchlist for t in setup.gallery.templates(bob)) == ["amber-alert", "customers"]
    assert setup.gallery.threshold("customers") == 0.25
    answer = setup.gallery.identify(vectors[0])
    assert answer.person == alice
    assert answer.match is not None
    assert answer.match.template.endswith("@customers")
    assert not setup.gallery.identify(vectors[3]).is_known

    # Loading again gives the same gallery, not twice the templates.
    assert setup.service.load() == 4
    assert len(setup.gallery) == 4
    changes = [m.payload for m in setup.delivered() if m.topic == GALLERY_CHANGES]
    assert [c["op"] for c in changes] == ["reload", "reload"]
    assert changes[-1]["version"] == setup.service.version


def test_load_is_fast_for_a_large_gallery(tmp_path: Path) -> None:
    made = Setup(f"sqlite:///{tmp_path / 'big.db'}")
    try:
        made.service.ensure_defaults()
        n = 20_000
        vectors = unit_vectors(n, seed=1)
        people = [{"id": new_id(), "name": f"p{i}", "notes": ""} for i in range(n // 2)]
        with made.db.session() as session:
            customers = session.query(Watchlist).filter_by(name="customers").one().id
            session.execute(insert(Person), people)
            session.execute(
                insert(person_watchlists),
                [{"person_id": p["id"], "watchlist_id": customers} for p in people],
            )
            session.execute(
                insert(FaceTemplate),
                [
                    {
                        "id": new_id(),
                        "person_id": people[i // 2]["id"],
                        "photo_key": "templates/aa/a.jpg",
                        "embedding": embedding_to_bytes(vectors[i]),
                        "top": 0,
                        "right": 10,
                        "bottom": 10,
                        "left": 0,
                        "quality": 0.9,
                    }
                    for i in range(n)
                ],
            )
        started = time.perf_counter()
        assert made.service.load() == n
        elapsed = time.perf_counter() - started
        assert elapsed < 3.0, f"loading {n} templates took {elapsed:.2f} s"
        assert made.gallery.identify(vectors[1234]).person == people[617]["id"]
    finally:
        made.bus.stop()
        made.db.close()


def test_changes_update_the_index_and_are_published_in_version_order(setup: Setup) -> None:
    setup.service.load()
    vectors = unit_vectors(3, seed=2)
    person = setup.person("Carol", ["customers"], vectors[:1])
    with setup.db.session() as session:
        template = session.query(FaceTemplate).filter_by(person_id=person).one().id

    setup.service.add_templates(
        ["customers", "amber-alert"], [GalleryEntry(template, person, vectors[0], 0.8)]
    )
    assert gallery_id(template, "customers") in setup.gallery
    assert gallery_id(template, "amber-alert") in setup.gallery

    # The database says Carol is only a customer: sync drops her amber-alert entry.
    setup.service.sync_person(person)
    assert [t.id for t in setup.gallery.templates(person)] == [gallery_id(template, "customers")]

    setup.service.remove_template(template)
    assert person not in setup.gallery.persons()
    setup.service.sync_person(person)
    setup.service.remove_person(person)
    assert len(setup.gallery) == 0
    setup.service.remove_person(person)  # nothing to remove: no change, no message

    messages = setup.delivered()
    changes = [m.payload for m in messages if m.topic == GALLERY_CHANGES]
    assert [c["op"] for c in changes] == [
        "reload", "add", "remove_person", "add", "remove", "add", "remove_person",
    ]  # fmt: skip
    versions = [c["version"] for c in changes]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    added = changes[1]["templates"]
    assert {t["watchlist"] for t in added} == {"customers", "amber-alert"}
    assert np.allclose(added[0]["embedding"], vectors[0], atol=1e-6)
    assert changes[4]["templates"] == [gallery_id(template, "customers")]
    retained = [m.payload for m in messages if m.topic == GALLERY_VERSION]
    assert retained[-1]["version"] == setup.service.version


def spread_faces(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Unit vectors on an 8-dimensional sphere: distances between people reach down to 0.3,
    as faces' do, so a watchlist of them calibrates to a threshold of its own."""
    vectors = np.zeros((n, 128), dtype=np.float32)
    vectors[:, :8] = np.random.default_rng(seed).normal(size=(n, 8))
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def test_an_automatic_watchlist_is_recalibrated_after_every_change(setup: Setup) -> None:
    setup.service.load()
    info = setup.service.update_watchlist("customers", threshold_mode="auto", target_fpir=0.01)
    assert (info.threshold_mode, info.target_fpir) == ("auto", 0.01)
    assert setup.service.calibrator.wait_idle()
    empty = setup.service.calibration("customers")
    assert empty is not None
    assert empty.method == "fallback"  # nobody on it yet
    assert setup.gallery.threshold("customers") == DEFAULT_THRESHOLD

    vectors = spread_faces(60)
    setup.service.add_templates(
        ["customers"],
        [GalleryEntry(f"t{i}", f"p{i}", vectors[i], 0.9) for i in range(60)],
    )
    assert setup.service.calibrator.wait_idle()
    calibrated = setup.service.calibration("customers")
    assert calibrated is not None
    assert calibrated.method == "model"
    assert calibrated.persons == 60
    assert setup.gallery.threshold("customers") == calibrated.threshold != DEFAULT_THRESHOLD
    shown = setup.service.watchlist("customers")
    assert shown.effective_threshold == calibrated.threshold
    assert shown.calibration == calibrated
    announced = [
        m.payload
        for m in setup.delivered()
        if m.topic == GALLERY_CHANGES and m.payload["op"] == "threshold"
    ]
    assert announced[-1]["threshold"] == calibrated.threshold  # the edges follow

    for i in range(55):  # erasures: too few people left, back to the default threshold
        setup.service.remove_person(f"p{i}")
    assert setup.service.calibrator.wait_idle()
    few = setup.service.calibration("customers")
    assert few is not None
    assert (few.method, few.persons) == ("fallback", 5)
    assert setup.gallery.threshold("customers") == DEFAULT_THRESHOLD

    # A restart keeps the mode; going back to fixed drops the calibration.
    fresh = GalleryService(setup.db, GalleryIndex(DEFAULT_THRESHOLD), setup.bus)
    try:
        fresh.load()
        assert fresh.calibrator.wait_idle()
        assert fresh.watchlist("customers").threshold_mode == "auto"
        assert fresh.calibration("customers") is not None
    finally:
        fresh.close()
    fixed = setup.service.update_watchlist("customers", threshold_mode="fixed", threshold=0.3)
    assert (fixed.threshold_mode, fixed.calibration) == ("fixed", None)
    assert setup.gallery.threshold("customers") == 0.3


@pytest.mark.parametrize(
    ("mode", "target", "message"),
    [("sometimes", None, "threshold mode"), ("auto", 0.5, "target FPIR"), ("auto", 0.0, "target")],
)
def test_bad_threshold_modes_are_refused(
    setup: Setup, mode: str, target: float | None, message: str
) -> None:
    with pytest.raises(WatchlistError, match=message):
        setup.service.create_watchlist("vip", threshold_mode=mode, target_fpir=target)


def test_watchlist_thresholds_change_the_live_gallery(setup: Setup) -> None:
    setup.service.load()
    created = setup.service.create_watchlist(
        "vip", action="none", threshold=0.3, description="Very important"
    )
    assert created.threshold == 0.3
    assert setup.gallery.threshold("vip") == 0.3

    updated = setup.service.update_watchlist("customers", threshold=0.2, description="Ours")
    assert (updated.threshold, updated.description) == (0.2, "Ours")
    assert setup.gallery.threshold("customers") == 0.2
    cleared = setup.service.update_watchlist("customers", clear_threshold=True)
    assert cleared.threshold is None
    assert setup.gallery.threshold("customers") == DEFAULT_THRESHOLD
    same = setup.service.update_watchlist("amber-alert", description="only text")
    assert same.effective_threshold == 0.4

    # A restart keeps stored thresholds.
    setup.service.update_watchlist("customers", threshold=0.21)
    fresh = GalleryService(setup.db, GalleryIndex(DEFAULT_THRESHOLD), setup.bus)
    fresh.load()
    assert fresh.gallery.threshold("customers") == 0.21
    assert fresh.gallery.threshold("vip") == 0.3


@pytest.mark.parametrize(
    ("name", "fields", "error"),
    [
        ("Bad Name", {}, "lower-case letters"),
        ("", {}, "lower-case letters"),
        ("ok", {"action": "explode"}, "action is one of"),
        ("ok", {"threshold": 3.0}, r"distance in \(0, 2\]"),
        ("customers", {}, "already exists"),
    ],
)
def test_bad_watchlists_are_refused(
    setup: Setup, name: str, fields: dict[str, object], error: str
) -> None:
    setup.service.load()
    with pytest.raises(WatchlistError, match=error):
        setup.service.create_watchlist(name, **fields)  # type: ignore[arg-type]
    assert {w.name for w in setup.service.watchlists()} == {"customers", "amber-alert"}


def test_a_taken_watchlist_name_is_a_conflict(setup: Setup) -> None:
    setup.service.load()
    with pytest.raises(WatchlistExistsError, match="a watchlist named 'customers' already exists"):
        setup.service.create_watchlist("customers")
    with pytest.raises(WatchlistError) as caught:
        setup.service.create_watchlist("Bad Name")
    assert not isinstance(caught.value, WatchlistExistsError)


def test_updating_a_missing_watchlist_is_not_found(setup: Setup) -> None:
    setup.service.load()
    with pytest.raises(WatchlistNotFoundError, match="no watchlist named 'nope'"):
        setup.service.update_watchlist("nope", threshold=0.3)


def test_adding_an_entry_the_gallery_holds_changes_nothing(setup: Setup) -> None:
    # An enrolment racing a sync_person of the same person: whichever adds first wins; the
    # other is logged and announced (another server may not hold the entry yet), and adds
    # nothing here.
    setup.service.load()
    vector = unit_vectors(1, seed=3)[0]
    entry = GalleryEntry("t1", "p1", vector, 0.9)
    first = setup.service.add_templates(["customers"], [entry])
    assert setup.service.add_templates(["customers"], [entry]) == first + 1
    assert len(setup.gallery) == 1
    changes = [m.payload["op"] for m in setup.delivered() if m.topic == GALLERY_CHANGES]
    assert changes == ["reload", "add", "add"]
