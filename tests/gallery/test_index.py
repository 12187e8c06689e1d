"""GalleryIndex: exact nearest-person search against brute force, thresholds, changes,
concurrency and files. Embeddings are seeded random vectors; no images."""

from __future__ import annotations

import linecache
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from oneeye.errors import GalleryError
from oneeye.gallery import GalleryIndex, kernels
from oneeye.gallery.lock import ReadWriteLock
from oneeye.types import EMBEDDING_SIZE, UNKNOWN, Match, Template
from tests.gallery.helpers import assert_consistent_matches, guarded

Vectors = npt.NDArray[np.float32]


def unit_vectors(rng: np.random.Generator, count: int) -> Vectors:
    vectors = rng.standard_normal((count, EMBEDDING_SIZE)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def basis(axis: int) -> Vectors:
    vector = np.zeros(EMBEDDING_SIZE, dtype=np.float32)
    vector[axis] = 1.0
    return vector


@dataclass
class Enrolled:
    """A gallery and the same data as plain columns, for the brute-force reference."""

    index: GalleryIndex
    ids: list[str]
    persons: list[str]
    watchlists: list[str]
    embeddings: Vectors


def enrol(
    rng: np.random.Generator, persons: int, watchlists: tuple[str, ...] = ("customers",)
) -> Enrolled:
    """1 to 4 templates per person; each person on one watchlist, chosen at random."""
    ids: list[str] = []
    owners: list[str] = []
    lists: list[str] = []
    for p in range(persons):
        watchlist = watchlists[int(rng.integers(len(watchlists)))]
        for t in range(int(rng.integers(1, 5))):
            ids.append(f"p{p}-t{t}")
            owners.append(f"p{p}")
            lists.append(watchlist)
    embeddings = unit_vectors(rng, len(ids))
    index = GalleryIndex(capacity=1)
    index.add_arrays(ids, owners, lists, embeddings)
    return Enrolled(index, ids, owners, lists, embeddings)


def brute_force(
    data: Enrolled, query: Vectors, k: int, watchlists: set[str] | None = None
) -> list[tuple[str, str, str, float]]:
    """The reference: every distance in float64, best template per (person, watchlist)."""
    distances = np.linalg.norm(data.embeddings.astype(np.float64) - query, axis=1)
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for row in np.argsort(distances, kind="stable"):
        key = (data.persons[row], data.watchlists[row])
        if watchlists is not None and key[1] not in watchlists:
            continue
        best.setdefault(key, (float(distances[row]), data.ids[row]))
    ranked = sorted(best.items(), key=lambda item: item[1][0])[:k]
    return [(person, watchlist, tid, dist) for (person, watchlist), (dist, tid) in ranked]


def as_rows(matches: list[Match]) -> list[tuple[str, str, str, float]]:
    return [(m.person, m.watchlist, m.template, m.distance) for m in matches]


def assert_same(got: list[Match], expected: list[tuple[str, str, str, float]]) -> None:
    rows = as_rows(got)
    assert [r[:3] for r in rows] == [e[:3] for e in expected]
    np.testing.assert_allclose([r[3] for r in rows], [e[3] for e in expected], atol=1e-6)


def near(rng: np.random.Generator, vector: Vectors, noise: float) -> Vectors:
    moved: Vectors = vector + noise * rng.standard_normal(EMBEDDING_SIZE).astype(np.float32)
    moved /= np.float32(np.linalg.norm(moved))
    return moved


# ------------------------------------------------------------------------------ search


def test_search_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    data = enrol(rng, persons=800, watchlists=("customers", "amber-alert"))
    queries = [near(rng, data.embeddings[i], 0.05) for i in range(0, 400, 40)]
    queries += list(unit_vectors(rng, 10))
    for query in queries:
        for k in (1, 5, 12):
            assert_same(data.index.search(query, k=k), brute_force(data, query, k))


def test_search_batch_equals_brute_force_and_single_search() -> None:
    rng = np.random.default_rng(2)
    data = enrol(rng, persons=500)
    queries = np.stack([near(rng, data.embeddings[i], 0.1) for i in range(0, 1000, 50)])
    batch = data.index.search_batch(queries, k=5)
    assert len(batch) == queries.shape[0]
    for query, matches in zip(queries, batch, strict=True):
        assert_same(matches, brute_force(data, query, 5))
        assert as_rows(matches) == as_rows(data.index.search(query, k=5))


@pytest.fixture(params=["one product", "streamed blocks"])
def batch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Batches on big galleries stream blocks of columns; shrink the blocks to test that path.

    Returns counts of streamed passes and of faces rescanned alone (the candidates were not
    enough), to prove which path ran.
    """
    counts: Counter[str] = Counter()
    if request.param == "streamed blocks":
        monkeypatch.setattr(kernels, "_BLOCK_COLUMNS", 512)
        monkeypatch.setattr(kernels, "_SAMPLE_RUNS", 4)
        monkeypatch.setattr(kernels, "_SAMPLE_RUN", 128)
        candidates = kernels.candidates
        nearest = kernels.nearest_groups

        def counted_candidates(*args: Any) -> Any:
            counts["streamed"] += 1
            return candidates(*args)

        def counted_nearest(*args: Any) -> Any:
            found = nearest(*args)
            counts["rescanned"] += found is None
            return found

        monkeypatch.setattr(kernels, "candidates", counted_candidates)
        monkeypatch.setattr(kernels, "nearest_groups", counted_nearest)
    return counts


def check_streamed(request: pytest.FixtureRequest, counts: Counter[str]) -> None:
    expected = "streamed" in request.node.callspec.params["batch_mode"]
    assert (counts["streamed"] > 0) == expected


def test_batch_on_a_big_gallery_matches_brute_force(
    batch_mode: Counter[str], request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(12)
    data = enrol(rng, persons=900, watchlists=("customers", "amber-alert"))
    queries = np.concatenate(
        [
            np.stack([near(rng, data.embeddings[i], 0.1) for i in range(0, 900, 90)]),
            unit_vectors(rng, 6),
        ]
    )
    for k in (1, 5, 12):
        for query, matches in zip(queries, data.index.search_batch(queries, k=k), strict=True):
            assert_same(matches, brute_force(data, query, k))
    chosen = {"amber-alert"}
    filtered = data.index.search_batch(queries, k=5, watchlists=chosen)
    for query, matches in zip(queries, filtered, strict=True):
        assert_same(matches, brute_force(data, query, 5, chosen))
    check_streamed(request, batch_mode)


def test_batch_with_a_crowding_person_and_a_rare_watchlist(
    batch_mode: Counter[str], request: pytest.FixtureRequest
) -> None:
    rng = np.random.default_rng(13)
    data = enrol(rng, persons=700)
    query = unit_vectors(rng, 1)[0]
    # 1500 templates of one person nearer than all others: the first candidates of a streamed
    # batch are all theirs, so the face must be rescanned alone.
    extra_ids = [f"crowd-{i}" for i in range(1500)] + [f"vip-{i}" for i in range(3)]
    extra_persons = ["crowd"] * 1500 + [f"vip-{i}" for i in range(3)]
    extra_lists = ["customers"] * 1500 + ["vip"] * 3
    crowd = query + 0.02 * rng.standard_normal((1500, EMBEDDING_SIZE)).astype(np.float32)
    crowd /= np.linalg.norm(crowd, axis=1, keepdims=True)
    extra = np.concatenate([crowd, unit_vectors(rng, 3)])
    data.index.add_arrays(extra_ids, extra_persons, extra_lists, extra)
    data.ids += extra_ids
    data.persons += extra_persons
    data.watchlists += extra_lists
    data.embeddings = np.concatenate([data.embeddings, extra])
    queries = np.stack([query, near(rng, query, 0.3), unit_vectors(rng, 1)[0]])
    for q, matches in zip(queries, data.index.search_batch(queries, k=5), strict=True):
        assert_same(matches, brute_force(data, q, 5))
    assert [m.person for m in data.index.search_batch(queries, k=5)[0]].count("crowd") == 1
    rare = data.index.search_batch(queries, k=5, watchlists=["vip"])
    for q, matches in zip(queries, rare, strict=True):
        assert len(matches) == 3
        assert_same(matches, brute_force(data, q, 5, {"vip"}))
    check_streamed(request, batch_mode)
    assert (batch_mode["rescanned"] > 0) == ("streamed" in request.node.callspec.id)


def test_distances_are_true_euclidean_for_non_unit_vectors() -> None:
    rng = np.random.default_rng(3)
    data = enrol(rng, persons=300)
    scales = rng.uniform(0.2, 3.0, size=(len(data.ids), 1)).astype(np.float32)
    scaled = (data.embeddings * scales).astype(np.float32)
    index = GalleryIndex(capacity=1)
    index.add_arrays(data.ids, data.persons, data.watchlists, scaled)
    reference = Enrolled(index, data.ids, data.persons, data.watchlists, scaled)
    for query in unit_vectors(rng, 5) * 2.0:
        assert_same(index.search(query, k=5), brute_force(reference, query, 5))


def test_best_template_per_person_even_when_one_person_crowds_the_top() -> None:
    rng = np.random.default_rng(4)
    data = enrol(rng, persons=300)
    query = unit_vectors(rng, 1)[0]
    # 200 templates of one person all nearer than anything else: the pool must widen.
    crowd = np.stack([near(rng, query, 0.02) for _ in range(200)])
    data.index.add_arrays(
        [f"crowd-{i}" for i in range(200)], ["crowd"] * 200, ["customers"] * 200, crowd
    )
    data.ids += [f"crowd-{i}" for i in range(200)]
    data.persons += ["crowd"] * 200
    data.watchlists += ["customers"] * 200
    data.embeddings = np.concatenate([data.embeddings, crowd])
    found = data.index.search(query, k=5)
    assert [m.person for m in found].count("crowd") == 1
    assert len({m.person for m in found}) == 5
    assert_same(found, brute_force(data, query, 5))


def test_person_on_two_watchlists_appears_once_per_watchlist() -> None:
    index = GalleryIndex()
    index.add(Template("a1", "ann", "customers", basis(0)))
    index.add(Template("a2", "ann", "amber-alert", basis(0) * 0.9))
    index.add(Template("b1", "bob", "customers", basis(1)))
    found = index.search(basis(0), k=5)
    assert [(m.person, m.watchlist) for m in found] == [
        ("ann", "customers"),
        ("ann", "amber-alert"),
        ("bob", "customers"),
    ]


def test_watchlist_filter_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    data = enrol(rng, persons=600, watchlists=("customers", "amber-alert", "staff"))
    for query in unit_vectors(rng, 6):
        for chosen in ({"amber-alert"}, {"customers", "staff"}):
            found = data.index.search(query, k=5, watchlists=chosen)
            assert {m.watchlist for m in found} <= chosen
            assert_same(found, brute_force(data, query, 5, chosen))
    assert data.index.search(unit_vectors(rng, 1)[0], watchlists=["no-such-list"]) == []


def test_fewer_persons_than_k_returns_them_all() -> None:
    index = GalleryIndex()
    index.add_many(
        [Template("t1", "ann", "customers", basis(0)), Template("t2", "ann", "customers", basis(1))]
    )
    found = index.search(basis(0), k=5)
    assert [(m.person, m.template) for m in found] == [("ann", "t1")]
    assert found[0].distance == pytest.approx(0.0, abs=1e-7)


# -------------------------------------------------------------------- identification


def two_watchlists() -> GalleryIndex:
    """ann at distance 0.55 on customers (threshold 0.5), bob at 0.65 on amber-alert (0.7)."""
    index = GalleryIndex(
        default_threshold=0.6, thresholds={"customers": 0.5, "amber-alert": 0.7}, margin=0.0
    )
    index.add(Template("ann-1", "ann", "customers", basis(0) + 0.55 * basis(1)))
    index.add(Template("bob-1", "bob", "amber-alert", basis(0) + 0.65 * basis(2)))
    return index


def test_identify_accepts_nearest_candidate_within_its_own_watchlist_threshold() -> None:
    index = two_watchlists()
    answer = index.identify(basis(0))
    assert [m.person for m in answer.candidates] == ["ann", "bob"]
    # ann is nearer but beyond customers' 0.5; bob is within amber-alert's 0.7.
    assert answer.match is not None
    assert answer.person == "bob"
    assert answer.match.distance == pytest.approx(0.65, abs=1e-6)


def test_threshold_changes_decide_identity() -> None:
    index = two_watchlists()
    index.set_threshold("customers", 0.56)
    assert index.identify(basis(0)).person == "ann"
    index.set_threshold("customers", 0.5)
    index.set_threshold("amber-alert", 0.6)
    answer = index.identify(basis(0))
    assert answer.person == UNKNOWN
    assert not answer.is_known
    assert len(answer.candidates) == 2


def test_default_threshold_applies_to_watchlists_without_their_own() -> None:
    index = GalleryIndex(default_threshold=0.6, thresholds={"customers": 0.3})
    assert index.threshold("customers") == 0.3
    assert index.threshold("staff") == 0.6
    index.add(Template("s1", "sam", "staff", basis(0) + 0.59 * basis(1)))
    assert index.identify(basis(0)).person == "sam"
    index.add(Template("c1", "cat", "customers", basis(0) + 0.2 * basis(1)))
    assert index.identify(basis(0)).person == "cat"


def test_unknown_face_is_an_answer_with_candidates() -> None:
    rng = np.random.default_rng(6)
    data = enrol(rng, persons=200)
    # Random unit vectors in 128-D are ~1.4 apart: nobody is within 0.6.
    answer = data.index.identify(unit_vectors(rng, 1)[0], k=3)
    assert answer.person == UNKNOWN
    assert answer.match is None
    assert len(answer.candidates) == 3
    assert all(m.distance > 0.6 for m in answer.candidates)


def test_identify_batch_knows_enrolled_faces_and_not_strangers() -> None:
    rng = np.random.default_rng(7)
    data = enrol(rng, persons=300)
    known = np.stack([near(rng, data.embeddings[i], 0.02) for i in (0, 10, 20)])
    queries = np.concatenate([known, unit_vectors(rng, 2)])
    answers = data.index.identify_batch(queries)
    expected = [data.persons[0], data.persons[10], data.persons[20], UNKNOWN, UNKNOWN]
    assert [a.person for a in answers] == expected


def test_empty_gallery_answers_unknown() -> None:
    index = GalleryIndex()
    query = basis(0)
    assert index.search(query) == []
    assert index.search_batch(np.stack([query, query])) == [[], []]
    answer = index.identify(query)
    assert answer.person == UNKNOWN
    assert answer.candidates == ()
    assert [a.person for a in index.identify_batch(np.stack([query]))] == [UNKNOWN]
    assert index.search_batch(np.empty((0, EMBEDDING_SIZE), dtype=np.float32)) == []


# --------------------------------------------------------------------------- changes


def test_every_change_bumps_the_version_once() -> None:
    index = GalleryIndex()
    assert index.version == 0
    steps: list[Callable[[], int]] = [
        lambda: index.add(Template("a", "ann", "customers", basis(0))),
        lambda: index.add_many(
            [Template(f"b{i}", "bob", "customers", basis(i + 1)) for i in range(3)]
        ),
        lambda: index.replace(Template("a", "ann", "customers", basis(10))),
        lambda: index.remove("b0"),
        lambda: index.remove_person("bob"),
        lambda: index.set_threshold("customers", 0.4),
        lambda: index.add_arrays(["c"], ["cat"], ["staff"], basis(5)[np.newaxis, :]),
        index.clear,
    ]
    for expected, step in enumerate(steps, start=1):
        assert step() == expected
        assert index.version == expected
    assert index.add_many([]) == len(steps)
    assert index.version == len(steps)


def test_remove_swaps_rows_without_losing_anyone() -> None:
    rng = np.random.default_rng(8)
    data = enrol(rng, persons=150)
    keep = dict(zip(data.ids, data.embeddings, strict=True))
    for template_id in rng.permutation(data.ids)[: len(data.ids) // 2].tolist():
        data.index.remove(template_id)
        del keep[template_id]
    assert len(data.index) == len(keep)
    for template_id, vector in keep.items():
        np.testing.assert_array_equal(data.index.template(template_id).embedding, vector)
        assert data.index.search(vector, k=1)[0].template == template_id


def test_replace_moves_a_template_to_a_new_embedding_and_person() -> None:
    index = GalleryIndex()
    index.add(Template("t1", "ann", "customers", basis(0), quality=0.5))
    index.add(Template("t2", "bob", "customers", basis(1)))
    index.replace(Template("t1", "cat", "staff", basis(2), quality=0.9))
    assert index.persons() == ["bob", "cat"]
    assert index.watchlists() == ["customers", "staff"]
    moved = index.template("t1")
    assert (moved.person, moved.watchlist) == ("cat", "staff")
    assert moved.quality == pytest.approx(0.9)
    found = index.search(basis(2), k=1)[0]
    assert (found.template, found.person) == ("t1", "cat")
    assert found.distance == pytest.approx(0.0, abs=1e-7)


def test_remove_person_on_one_watchlist_or_all() -> None:
    index = GalleryIndex()
    index.add_many(
        [
            Template("a1", "ann", "customers", basis(0)),
            Template("a2", "ann", "customers", basis(1)),
            Template("a3", "ann", "amber-alert", basis(2)),
            Template("b1", "bob", "customers", basis(3)),
        ]
    )
    index.remove_person("ann", "customers")
    assert sorted(t.id for t in index.templates()) == ["a3", "b1"]
    assert index.persons("customers") == ["bob"]
    assert index.persons("amber-alert") == ["ann"]
    index.remove_person("ann")
    assert index.persons() == ["bob"]
    assert index.watchlists() == ["customers"]
    assert [m.person for m in index.search(basis(2), k=5)] == ["bob"]


def test_introspection() -> None:
    index = GalleryIndex(thresholds={"amber-alert": 0.5})
    index.add_many(
        [
            Template("a1", "ann", "customers", basis(0), quality=0.25),
            Template("a2", "ann", "customers", basis(1)),
            Template("b1", "bob", "amber-alert", basis(2)),
        ]
    )
    assert len(index) == 3
    assert "a1" in index
    assert "zz" not in index
    assert index.persons() == ["ann", "bob"]
    assert index.watchlists() == ["amber-alert", "customers"]
    assert index.thresholds() == {"amber-alert": 0.5}
    assert [t.id for t in index.templates("ann")] == ["a1", "a2"]
    assert index.templates("nobody") == []
    first = index.template("a1")
    assert (first.person, first.watchlist, first.quality) == ("ann", "customers", 0.25)
    np.testing.assert_array_equal(first.embedding, basis(0))
    assert index.nbytes >= 3 * (EMBEDDING_SIZE + 1) * 4


def test_growth_by_doubling_keeps_every_template() -> None:
    rng = np.random.default_rng(9)
    vectors = unit_vectors(rng, 2500)
    index = GalleryIndex(capacity=1)
    for i, vector in enumerate(vectors):
        index.add(Template(f"t{i}", f"p{i}", "customers", vector))
    assert len(index) == 2500
    for i in (0, 1, 1024, 2499):
        assert index.search(vectors[i], k=1)[0].template == f"t{i}"


# ---------------------------------------------------------------------------- errors


def small_gallery() -> GalleryIndex:
    index = GalleryIndex()
    index.add(Template("a1", "ann", "customers", basis(0)))
    index.add(Template("b1", "bob", "amber-alert", basis(1)))
    return index


ERROR_CASES: list[tuple[str, Callable[[GalleryIndex], object], type[Exception], str]] = [
    (
        "duplicate id",
        lambda g: g.add(Template("a1", "zed", "customers", basis(5))),
        GalleryError,
        "already enrolled: ['a1']",
    ),
    (
        "repeated id in one batch",
        lambda g: g.add_many(
            [Template("n1", "x", "customers", basis(5)), Template("n1", "y", "customers", basis(6))]
        ),
        GalleryError,
        "expected distinct template ids, got repeats: ['n1']",
    ),
    ("remove unknown id", lambda g: g.remove("nope"), GalleryError, "unknown id 'nope'"),
    (
        "replace unknown id",
        lambda g: g.replace(Template("nope", "ann", "customers", basis(3))),
        GalleryError,
        "unknown id 'nope'",
    ),
    ("template unknown id", lambda g: g.template("nope"), GalleryError, "unknown id 'nope'"),
    (
        "remove unknown person",
        lambda g: g.remove_person("zed"),
        GalleryError,
        "got 'zed' with no templates",
    ),
    (
        "remove person from a watchlist they are not on",
        lambda g: g.remove_person("ann", "amber-alert"),
        GalleryError,
        "on watchlist 'amber-alert'",
    ),
    ("threshold zero", lambda g: g.set_threshold("customers", 0.0), ValueError, "(0, 2]"),
    ("threshold above 2", lambda g: g.set_threshold("customers", 2.5), ValueError, "got 2.5"),
    ("threshold NaN", lambda g: g.set_threshold("customers", float("nan")), ValueError, "nan"),
    ("empty watchlist name", lambda g: g.set_threshold("", 0.5), ValueError, "non-empty"),
    (
        "query of the wrong size",
        lambda g: g.search(np.zeros(64, dtype=np.float32)),
        ValueError,
        "shape (128,), got (64,)",
    ),
    (
        "query with NaN",
        lambda g: g.search(np.full(EMBEDDING_SIZE, np.nan)),
        ValueError,
        "NaN",
    ),
    ("k of zero", lambda g: g.search(basis(0), k=0), ValueError, "k must be an integer >= 1"),
    (
        "batch of one vector",
        lambda g: g.search_batch(basis(0)),
        ValueError,
        "shape (n, 128), got (128,)",
    ),
    (
        "columns of different lengths",
        lambda g: g.add_arrays(["x1", "x2"], ["x"], ["customers"], np.ones((2, 128))),
        ValueError,
        "expected 2 of each",
    ),
    (
        "empty person in columns",
        lambda g: g.add_arrays(["x1"], [""], ["customers"], np.ones((1, 128))),
        ValueError,
        "template person must be a non-empty string",
    ),
    (
        "not a template",
        lambda g: g.add_many([basis(0)]),  # type: ignore[list-item]
        TypeError,
        "expects Template objects, got ndarray",
    ),
]


@pytest.mark.parametrize(
    ("action", "expected_error", "message"),
    [pytest.param(a, e, m, id=name) for name, a, e, m in ERROR_CASES],
)
def test_bad_requests_raise_and_change_nothing(
    action: Callable[[GalleryIndex], object], expected_error: type[Exception], message: str
) -> None:
    index = small_gallery()
    before = (index.version, len(index), index.thresholds(), index.persons())
    with pytest.raises(expected_error) as caught:
        action(index)
    assert message in str(caught.value)
    assert (index.version, len(index), index.thresholds(), index.persons()) == before
    assert [m.template for m in index.search(basis(0), k=5)] == ["a1", "b1"]


@pytest.mark.parametrize(
    ("default", "thresholds", "message"),
    [
        (-1.0, None, "default_threshold must be a distance in (0, 2], got -1.0"),
        (0.6, {"customers": 3.0}, "threshold of 'customers' must be a distance in (0, 2]"),
        (0.6, {"": 0.5}, "watchlist must be a non-empty string"),
    ],
)
def test_bad_thresholds_are_refused_at_construction(
    default: float, thresholds: dict[str, float] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        GalleryIndex(default_threshold=default, thresholds=thresholds)
    assert message in str(caught.value)


# ----------------------------------------------------------------------- concurrency


def test_concurrent_adds_removes_and_searches_keep_invariants() -> None:
    rng = np.random.default_rng(10)
    index = GalleryIndex(capacity=1)
    seed = unit_vectors(rng, 3000)
    index.add_arrays(
        [f"seed-{i}" for i in range(3000)],
        [f"seed-person-{i // 3}" for i in range(3000)],
        ["customers"] * 3000,
        seed,
    )
    owner: dict[str, str] = {f"seed-{i}": f"seed-person-{i // 3}" for i in range(3000)}
    owner_lock = threading.Lock()
    versions: list[int] = []
    errors: list[BaseException] = []
    counts = {"added": 0, "removed": 0, "searches": 0}
    stop = threading.Event()

    def record(version: int, what: str) -> None:
        with owner_lock:
            versions.append(version)
            counts[what] += 1

    def adder(worker: int) -> None:
        local = np.random.default_rng(100 + worker)
        mine: list[str] = []
        step = 0
        while not stop.is_set():
            step += 1
            batch = [
                Template(f"w{worker}-{step}-{j}", f"w{worker}-person-{step}", "customers", v)
                for j, v in enumerate(unit_vectors(local, 3))
            ]
            with owner_lock:
                owner.update({t.id: t.person for t in batch})
            version = index.add_many(batch)
            with owner_lock:
                versions.append(version)
                counts["added"] += 3
            mine += [t.id for t in batch]
            if len(mine) > 30:
                record(index.remove(mine.pop(int(local.integers(len(mine))))), "removed")

    def searcher(worker: int) -> None:
        local = np.random.default_rng(200 + worker)
        while not stop.is_set():
            queries = unit_vectors(local, 4)
            assert_consistent_matches(index, queries, owner, owner_lock)
            with owner_lock:
                counts["searches"] += 1

    threads = [threading.Thread(target=guarded(adder, w, errors, stop)) for w in range(3)]
    threads += [threading.Thread(target=guarded(searcher, w, errors, stop)) for w in range(3)]
    for thread in threads:
        thread.start()
    # Until enough of each happened, however slow the machine (not for a fixed time).
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline and not errors:
        with owner_lock:
            if counts["searches"] >= 20 and counts["removed"] >= 20:
                break
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    # Every change got its own version, and nothing else bumped it.
    assert sorted(versions) == list(range(2, 2 + len(versions)))
    assert index.version == 1 + len(versions)
    assert len(index) == 3000 + counts["added"] - counts["removed"]
    assert counts["searches"] >= 20
    assert counts["removed"] >= 20
    # The row bookkeeping survived all the swaps: every template is found where it should be.
    for template in index.templates()[::97]:
        assert index.search(template.embedding, k=1)[0].template == template.id


def _blocked_on_a_lock(thread: threading.Thread) -> bool:
    """Whether ``thread`` stands at the turnstile in ``ReadWriteLock.read`` (waiting to enter),
    read from its current stack frame rather than inferred from a sleep."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "read" and frame.f_code.co_filename.endswith("lock.py"):
            return "_turnstile" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return False


def test_a_waiting_writer_goes_before_readers_that_come_after_it() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_reader_in = threading.Event()
    release_first_reader = threading.Event()

    def first_reader() -> None:
        with lock.read():
            first_reader_in.set()
            release_first_reader.wait(5)
            order.append("reader-1")

    def writer() -> None:
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("reader-2")

    threads = [threading.Thread(target=first_reader)]
    threads[0].start()
    assert first_reader_in.wait(5)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    deadline = time.monotonic() + 5
    while not lock._turnstile.locked() and time.monotonic() < deadline:
        time.sleep(0.001)  # until the writer holds the turnstile, waiting for reader-1
    assert lock._turnstile.locked()
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    # reader-2 queues behind the waiting writer: it is blocked on the turnstile, not done.
    deadline = time.monotonic() + 5
    while not _blocked_on_a_lock(threads[2]) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _blocked_on_a_lock(threads[2])
    assert order == []
    release_first_reader.set()
    for thread in threads:
        thread.join(5)
    assert order == ["reader-1", "writer", "reader-2"]


# ----------------------------------------------------------------------------- files


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    data = enrol(rng, persons=200, watchlists=("customers", "amber-alert"))
    index = data.index
    index.set_threshold("amber-alert", 0.45)
    index.replace(Template(data.ids[0], data.persons[0], data.watchlists[0], basis(0), 0.3))
    path = tmp_path / "gallery.npz"
    index.save(path)
    loaded = GalleryIndex.load(path)
    assert loaded.version == index.version
    assert loaded.default_threshold == index.default_threshold
    assert loaded.thresholds() == {"amber-alert": 0.45}
    assert len(loaded) == len(index)
    for before, after in zip(index.templates(), loaded.templates(), strict=True):
        assert (after.id, after.person, after.watchlist) == (
            before.id,
            before.person,
            before.watchlist,
        )
        assert after.quality == before.quality
        np.testing.assert_array_equal(after.embedding, before.embedding)
    query = data.embeddings[7]
    assert as_rows(loaded.search(query, k=5)) == as_rows(index.search(query, k=5))
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.npz"]  # no temp file left


def test_save_replaces_an_existing_file_and_an_empty_gallery_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "gallery.npz"
    small_gallery().save(path)
    empty = GalleryIndex(default_threshold=0.7)
    empty.clear()
    empty.save(path)
    loaded = GalleryIndex.load(path)
    assert (len(loaded), loaded.version, loaded.default_threshold) == (0, 1, 0.7)
    assert loaded.identify(basis(0)).person == UNKNOWN


def test_save_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "gallery.npz"
    with pytest.raises(GalleryError, match="could not write gallery file"):
        small_gallery().save(target)
    assert not target.parent.exists()


def write_npz(path: Path, **arrays: npt.NDArray[np.generic]) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def valid_bytes(tmp_path: Path) -> bytes:
    source = tmp_path / "source.npz"
    small_gallery().save(source)
    data = source.read_bytes()
    source.unlink()
    return data


def metadata_bytes(text: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(text.encode(), dtype=np.uint8)


CORRUPT_FILES: list[tuple[str, Callable[[Path, bytes], object], str]] = [
    ("missing file", lambda p, ok: None, "No such file"),
    ("not a zip", lambda p, ok: p.write_bytes(b"definitely not a gallery"), ""),
    ("truncated", lambda p, ok: p.write_bytes(ok[: len(ok) // 2]), ""),
    (
        "no metadata",
        lambda p, ok: write_npz(p, embeddings=np.zeros((1, 128), np.float32)),
        "missing ['metadata', 'qualities']",
    ),
    (
        "pickled object array",
        lambda p, ok: write_npz(
            p,
            embeddings=np.zeros((1, 128), np.float32),
            qualities=np.ones(1, np.float32),
            metadata=np.array([{"evil": 1}], dtype=object),
        ),
        "pickle",
    ),
    (
        "wrong format",
        lambda p, ok: write_npz(
            p,
            embeddings=np.zeros((0, 128), np.float32),
            qualities=np.zeros(0, np.float32),
            metadata=metadata_bytes('{"format": "something-else"}'),
        ),
        "expected format 'oneeye-gallery'",
    ),
    (
        "lengths disagree",
        lambda p, ok: write_npz(
            p,
            embeddings=np.zeros((2, 128), np.float32),
            qualities=np.ones(2, np.float32),
            metadata=metadata_bytes(
                '{"format": "oneeye-gallery", "format_version": 1, "version": 3,'
                ' "default_threshold": 0.6, "thresholds": {},'
                ' "ids": ["a"], "persons": ["ann"], "watchlists": ["customers"]}'
            ),
        ),
        "expected 2 of each",
    ),
]


@pytest.mark.parametrize(
    ("make_file", "message"),
    [pytest.param(make, message, id=name) for name, make, message in CORRUPT_FILES],
)
def test_corrupt_or_missing_file_raises_gallery_error_naming_it(
    tmp_path: Path, make_file: Callable[[Path, bytes], object], message: str
) -> None:
    path = tmp_path / "bad.npz"
    make_file(path, valid_bytes(tmp_path))
    with pytest.raises(GalleryError) as caught:
        GalleryIndex.load(path)
    assert f"could not load gallery file {path}" in str(caught.value)
    assert message in str(caught.value)


def test_a_zip_member_flipped_on_disk_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gallery.npz"
    small_gallery().save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert sorted(names) == ["embeddings.npy", "metadata.npy", "qualities.npy"]
    raw = bytearray(path.read_bytes())
    start = raw.find(b'{"format"')
    raw[start : start + 9] = b"#########"
    path.write_bytes(bytes(raw))
    with pytest.raises(GalleryError, match="could not load gallery file"):
        GalleryIndex.load(path)


@pytest.mark.parametrize(
    ("bob_distance", "margin", "expected"),
    [
        (0.40, 0.05, "ann"),  # bob 0.10 farther than ann: clear
        (0.33, 0.05, UNKNOWN),  # bob only 0.03 farther: not sure
        (0.33, 0.0, "ann"),  # no margin: the nearest wins
        (0.30, 0.05, UNKNOWN),  # ann within the threshold and still nearest by less than 0.05
    ],
)
def test_margin_answers_unknown_when_another_person_is_almost_as_near(
    bob_distance: float, margin: float, expected: str
) -> None:
    index = GalleryIndex(default_threshold=0.35, margin=margin)
    index.add(Template("ann-1", "ann", "customers", basis(0) + 0.30 * basis(1)))
    index.add(Template("ann-2", "ann", "customers", basis(0) + 0.31 * basis(3)))
    index.add(Template("bob-1", "bob", "customers", basis(0) + bob_distance * basis(2)))
    answer = index.identify(basis(0), k=1)
    assert answer.person == expected
    assert len(answer.candidates) == 1  # k is honoured even though two persons were compared


def test_margin_survives_save_and_load(tmp_path: Path) -> None:
    index = GalleryIndex(margin=0.07)
    index.add(Template("ann-1", "ann", "customers", basis(0)))
    index.save(tmp_path / "g.npz")
    assert GalleryIndex.load(tmp_path / "g.npz").margin == pytest.approx(0.07)


@pytest.mark.parametrize("bad", [-0.1, 2.0])
def test_margin_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"margin must be in \[0, 2\)"):
        GalleryIndex(margin=bad)
    with pytest.raises(ValueError, match=r"margin must be in \[0, 2\)"):
        GalleryIndex().set_margin(bad)


# ------------------------------------------- each watchlist decides on its own (issue 12, 1)


def test_the_same_face_on_two_watchlists_is_accepted_on_both() -> None:
    # The bug: a customer enrolled from a photo and an Amber Alert case filed with the same
    # photo were each other's rival under the margin, and the face was unknown to both.
    index = GalleryIndex(default_threshold=0.4, margin=0.05)
    index.add(Template("c-1", "customer-1", "customers", basis(0) + 0.31 * basis(1)))
    index.add(Template("a-1", "case-1", "amber-alert", basis(0) + 0.31 * basis(1)))
    answer = index.identify(basis(0))
    assert answer.is_known
    assert {(x.person, x.watchlist) for x in answer.matches} == {
        ("customer-1", "customers"),
        ("case-1", "amber-alert"),
    }
    assert answer.match == answer.matches[0]


def test_a_watchlist_beyond_the_first_k_is_searched_on_its_own() -> None:
    # Five customers nearer than the case's person fill k=2; the case is still within its
    # watchlist's threshold and must be found, and the nearest customer accepted too.
    index = GalleryIndex(default_threshold=0.6, margin=0.05)
    for i in range(5):
        vector = basis(0) + (0.2 + 0.1 * i) * basis(1 + i)
        index.add(Template(f"c-{i}", f"cust-{i}", "customers", vector))
    index.add(Template("a-1", "case-1", "amber-alert", basis(0) + 0.55 * basis(20)))
    answer = index.identify(basis(0), k=2)
    assert [(x.person, x.watchlist) for x in answer.matches] == [
        ("cust-0", "customers"),
        ("case-1", "amber-alert"),
    ]
    assert len(answer.candidates) == 2


def test_a_rival_beyond_the_first_k_still_cancels_its_watchlist() -> None:
    # The case's nearest person and their rival on amber-alert (0.01 apart) are both beyond
    # the two nearest customers: the rival must be found, so amber-alert is "not sure".
    index = GalleryIndex(default_threshold=0.6, margin=0.05)
    index.add(Template("c-0", "cust-0", "customers", basis(0) + 0.20 * basis(1)))
    index.add(Template("c-1", "cust-1", "customers", basis(0) + 0.30 * basis(2)))
    index.add(Template("a-1", "case-1", "amber-alert", basis(0) + 0.40 * basis(3)))
    index.add(Template("a-2", "case-2", "amber-alert", basis(0) + 0.41 * basis(4)))
    answer = index.identify(basis(0), k=1)
    assert [(x.person, x.watchlist) for x in answer.matches] == [("cust-0", "customers")]
    index.remove_person("case-2")
    answer = index.identify(basis(0), k=1)
    assert [(x.person, x.watchlist) for x in answer.matches] == [
        ("cust-0", "customers"),
        ("case-1", "amber-alert"),
    ]


def reference_matches(index: GalleryIndex, query: Vectors) -> list[tuple[str, str]]:
    """Per watchlist, its nearest person if within threshold and clear of its next person by
    the margin: brute force over every template."""
    accepted: list[tuple[float, str, str]] = []
    for watchlist in index.watchlists():
        best: dict[str, float] = {}
        for t in index.templates():
            if t.watchlist == watchlist:
                d = float(np.linalg.norm(t.embedding.astype(np.float64) - query))
                best[t.person] = min(best.get(t.person, np.inf), d)
        ranked = sorted((d, p) for p, d in best.items())
        d0, p0 = ranked[0]
        if d0 > index.threshold(watchlist):
            continue
        if len(ranked) > 1 and ranked[1][0] - d0 < index.margin:
            continue
        accepted.append((d0, p0, watchlist))
    return [(p, w) for _, p, w in sorted(accepted)]


@pytest.mark.parametrize("seed", range(4))
def test_identify_batch_agrees_with_a_per_watchlist_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = GalleryIndex(
        default_threshold=0.9, thresholds={"amber-alert": 1.0, "staff": 0.8}, margin=0.04
    )
    # 40 people in 10 look-alike families, so that watchlists overlap and rivals are near.
    centres = np.repeat(unit_vectors(rng, 10), 4, axis=0)
    centres += rng.normal(size=centres.shape).astype(np.float32) * 0.04
    watchlists = ["customers", "amber-alert", "staff"]
    for i, centre in enumerate(centres):
        for j in range(2):
            noise = rng.normal(size=EMBEDDING_SIZE).astype(np.float32) * 0.03
            watchlist = watchlists[0] if i % 4 < 2 else watchlists[1 + i % 2]
            index.add(Template(f"t{i}-{j}", f"p{i % 34}", watchlist, centre + noise))
    queries = centres + rng.normal(size=centres.shape).astype(np.float32) * 0.05
    queries = np.concatenate([queries, unit_vectors(rng, 8)])  # strangers
    answers = index.identify_batch(queries, k=2)
    accepted = Counter(len(answer.matches) for answer in answers)
    for query, answer in zip(queries, answers, strict=True):
        expected = reference_matches(index, query.astype(np.float64))
        assert [(x.person, x.watchlist) for x in answer.matches] == expected
    # Every case was exercised: strangers, and faces matched on one, two and three watchlists.
    assert all(accepted[n] for n in range(4)), accepted
