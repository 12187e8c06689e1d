"""Approximate gallery search (inverted file, exact re-ranking) against exact search on the same
templates: enrolled faces seen again, strangers, changes, retraining, concurrency, settings."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from oneeye.config import GallerySettings, Settings
from oneeye.gallery import GalleryIndex
from oneeye.gallery.ivf import InvertedFile, IvfParameters, nearest_cells, train_centroids
from oneeye.types import EMBEDDING_SIZE, Identification, Template
from tests.gallery.helpers import assert_consistent_matches, guarded

Vectors = npt.NDArray[np.float32]


def unit(vectors: npt.NDArray[Any]) -> Vectors:
    out = np.asarray(vectors, dtype=np.float32)
    normed: Vectors = out / np.linalg.norm(out, axis=1, keepdims=True)
    return normed


def clustered_gallery(
    rng: np.random.Generator, persons: int, templates: int = 2, groups: int = 40
) -> tuple[list[str], list[str], Vectors]:
    """Persons in loose groups (as real faces are), ``templates`` photos each ~0.2 apart."""
    group_centres = unit(rng.standard_normal((groups, EMBEDDING_SIZE)))
    centres = unit(
        group_centres[rng.integers(groups, size=persons)]
        + 0.09 * rng.standard_normal((persons, EMBEDDING_SIZE))
    )
    embeddings = unit(
        np.repeat(centres, templates, axis=0)
        + 0.012 * rng.standard_normal((persons * templates, EMBEDDING_SIZE))
    )
    ids = [f"t{i}" for i in range(persons * templates)]
    owners = [f"p{i // templates}" for i in range(persons * templates)]
    return ids, owners, embeddings


def seen_again(rng: np.random.Generator, embeddings: Vectors, count: int) -> Vectors:
    """Enrolled templates moved to a euclidean distance of 0.2-0.35 on the unit sphere."""
    source = embeddings[rng.integers(len(embeddings), size=count)].astype(np.float64)
    away = rng.standard_normal(source.shape)
    away -= np.einsum("ij,ij->i", away, source)[:, np.newaxis] * source
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    cosine = 1.0 - rng.uniform(0.2, 0.35, size=count) ** 2 / 2.0
    moved = cosine[:, np.newaxis] * source + np.sqrt(1.0 - cosine**2)[:, np.newaxis] * away
    return moved.astype(np.float32)


def pair(
    ids: list[str],
    owners: list[str],
    embeddings: Vectors,
    parameters: IvfParameters,
    watchlists: list[str] | None = None,
) -> tuple[GalleryIndex, GalleryIndex]:
    """The same templates in an exact and an approximate index."""
    lists = watchlists or ["customers"] * len(ids)
    exact = GalleryIndex()
    exact.add_arrays(ids, owners, lists, embeddings)
    approximate = GalleryIndex(ivf=parameters)
    approximate.add_arrays(ids, owners, lists, embeddings)
    return exact, approximate


def decisions(answers: list[Identification]) -> list[str | None]:
    return [a.match.person if a.match is not None else None for a in answers]


SMALL = IvfParameters(lists=64, probes=8, min_templates=1000)


# -------------------------------------------------------------------------- accuracy


def test_enrolled_faces_seen_again_get_the_exact_answer() -> None:
    rng = np.random.default_rng(1)
    ids, owners, embeddings = clustered_gallery(rng, persons=6000)
    exact, approximate = pair(ids, owners, embeddings, SMALL)
    assert approximate.approximate
    assert approximate.ivf_lists == 64
    probes = seen_again(rng, embeddings, 400)
    want = exact.identify_batch(probes, k=3)
    got = approximate.identify_batch(probes, k=3)
    assert decisions(got) == decisions(want)
    assert [g.candidates[0] for g in got] == [w.candidates[0] for w in want]
    assert sum(d is not None for d in decisions(want)) > 100  # the test means something
    # One face at a time goes the same way as a batch.
    for probe, expected in zip(probes[:20], want[:20], strict=True):
        assert approximate.search(probe, k=1)[0] == expected.candidates[0]


def test_strangers_stay_unknown() -> None:
    rng = np.random.default_rng(2)
    ids, owners, embeddings = clustered_gallery(rng, persons=3000)
    exact, approximate = pair(ids, owners, embeddings, SMALL)
    strangers = unit(rng.standard_normal((200, EMBEDDING_SIZE)))
    assert decisions(approximate.identify_batch(strangers)) == [None] * 200
    assert decisions(exact.identify_batch(strangers)) == [None] * 200


def test_candidates_are_true_distances_of_real_templates() -> None:
    rng = np.random.default_rng(3)
    ids, owners, embeddings = clustered_gallery(rng, persons=2000)
    _, approximate = pair(ids, owners, embeddings, SMALL)
    for probe in seen_again(rng, embeddings, 10):
        matches = approximate.search(probe, k=5)
        assert len(matches) == 5
        assert len({m.person for m in matches}) == 5
        distances = [m.distance for m in matches]
        assert distances == sorted(distances)
        for match in matches:
            row = ids.index(match.template)
            assert owners[row] == match.person
            expected = float(np.linalg.norm(embeddings[row].astype(np.float64) - probe))
            assert match.distance == pytest.approx(expected, abs=1e-6)


def test_a_rare_watchlist_still_gets_k_persons() -> None:
    """A small watchlist may have nobody in a face's nearest cells: that face goes exact."""
    rng = np.random.default_rng(4)
    ids, owners, embeddings = clustered_gallery(rng, persons=3000)
    lists = ["amber-alert" if i < 6 else "customers" for i in range(len(ids))]
    exact, approximate = pair(ids, owners, embeddings, SMALL, lists)
    probe = unit(rng.standard_normal((1, EMBEDDING_SIZE)))[0]
    want = exact.search(probe, k=3, watchlists=["amber-alert"])
    assert len(want) == 3
    assert approximate.search(probe, k=3, watchlists=["amber-alert"]) == want


def test_small_galleries_stay_exact() -> None:
    rng = np.random.default_rng(5)
    ids, owners, embeddings = clustered_gallery(rng, persons=400)
    index = GalleryIndex(ivf=IvfParameters(min_templates=1000))
    index.add_arrays(ids, owners, ["customers"] * len(ids), embeddings)
    assert not index.approximate
    assert index.ivf_lists == 0
    assert index.ivf == IvfParameters(min_templates=1000)
    assert GalleryIndex().ivf is None


# --------------------------------------------------------------------------- changes


def assert_every_template_finds_itself(index: GalleryIndex) -> None:
    """A template lies in its own nearest cell, so probing must find it at distance 0."""
    templates = index.templates()
    answers = index.search_batch(np.stack([t.embedding for t in templates]), k=1)
    assert [a[0].template for a in answers] == [t.id for t in templates]


def test_add_remove_replace_in_approximate_mode() -> None:
    rng = np.random.default_rng(6)
    ids, owners, embeddings = clustered_gallery(rng, persons=1500)
    index = GalleryIndex(ivf=SMALL)
    index.add_arrays(ids, owners, ["customers"] * len(ids), embeddings)
    assert index.approximate
    before = index.nbytes

    newcomer = unit(rng.standard_normal((1, EMBEDDING_SIZE)))[0]
    index.add(Template("new", "newcomer", "customers", newcomer))
    found = index.identify(newcomer)
    assert found.match is not None
    assert found.match.person == "newcomer"

    for template_id in ids[:600:3]:  # rows from everywhere move into the holes
        index.remove(template_id)
    index.remove_person("p1000")
    moved = unit(rng.standard_normal((1, EMBEDDING_SIZE)))[0]
    index.replace(Template(ids[1001], "someone-else", "vip", moved))
    assert len(index) == len(ids) + 1 - 200 - 2
    assert index.approximate
    assert_every_template_finds_itself(index)
    answer = index.identify(moved)
    assert answer.match is not None
    assert (answer.match.person, answer.match.template) == ("someone-else", ids[1001])
    assert index.search(embeddings[1001], k=1)[0].template != ids[1001]
    assert index.nbytes >= before > 0


def test_cells_are_trained_at_the_minimum_retrained_on_doubling_and_dropped() -> None:
    rng = np.random.default_rng(7)
    ids, owners, embeddings = clustered_gallery(rng, persons=2500)
    index = GalleryIndex(ivf=IvfParameters(probes=4, min_templates=1000))
    lists = ["customers"] * len(ids)
    index.add_arrays(ids[:900], owners[:900], lists[:900], embeddings[:900])
    assert not index.approximate
    index.add_arrays(ids[900:1200], owners[900:1200], lists[900:1200], embeddings[900:1200])
    assert index.approximate
    assert index.ivf_lists == round(1200**0.5)
    index.add_arrays(ids[1200:2300], owners[1200:2300], lists[1200:2300], embeddings[1200:2300])
    assert index.ivf_lists == round(1200**0.5)  # not yet doubled: new templates filed
    index.add_arrays(ids[2300:], owners[2300:], lists[2300:], embeddings[2300:])
    assert index.ivf_lists == round(5000**0.5)  # doubled since training: retrained
    assert_every_template_finds_itself(index)
    for template_id in ids[:4200]:
        index.remove(template_id)
    assert len(index) == 800
    assert not index.approximate  # below the minimum: exact, cells kept for a while
    assert index.ivf_lists > 0
    for template_id in ids[4200:4700]:
        index.remove(template_id)
    assert index.ivf_lists == 0  # below half the minimum: cells dropped
    index.add_arrays(ids[:1000], owners[:1000], lists[:1000], embeddings[:1000])
    assert index.approximate
    index.clear()
    assert index.ivf_lists == 0
    assert len(index) == 0


def test_load_rebuilds_the_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    ids, owners, embeddings = clustered_gallery(rng, persons=1500)
    _, approximate = pair(ids, owners, embeddings, SMALL)
    approximate.save(tmp_path / "gallery.npz")
    loaded = GalleryIndex.load(tmp_path / "gallery.npz", ivf=SMALL)
    assert loaded.approximate
    assert loaded.version == approximate.version
    probes = seen_again(rng, embeddings, 50)
    assert loaded.identify_batch(probes) == approximate.identify_batch(probes)
    assert not GalleryIndex.load(tmp_path / "gallery.npz").approximate


def test_concurrent_changes_and_searches_while_cells_retrain() -> None:
    rng = np.random.default_rng(9)
    ids, owners, embeddings = clustered_gallery(rng, persons=600)
    # Starts at 1,200 templates: the adders cross 2,400 and 4,800, retraining under load.
    index = GalleryIndex(ivf=IvfParameters(probes=4, min_templates=1000))
    index.add_arrays(ids, owners, ["customers"] * len(ids), embeddings)
    owner: dict[str, str] = dict(zip(ids, owners, strict=True))
    owner_lock = threading.Lock()
    errors: list[BaseException] = []
    counts = {"added": 0, "removed": 0, "searches": 0}
    stop = threading.Event()

    def adder(worker: int) -> None:
        local = np.random.default_rng(100 + worker)
        mine: list[str] = []
        step = 0
        while not stop.is_set() and step < 400:
            step += 1
            batch = [
                Template(f"w{worker}-{step}-{j}", f"w{worker}-person-{step}", "customers", v)
                for j, v in enumerate(unit(local.standard_normal((6, EMBEDDING_SIZE))))
            ]
            with owner_lock:
                owner.update({t.id: t.person for t in batch})
                counts["added"] += len(batch)
            index.add_many(batch)
            mine += [t.id for t in batch]
            if len(mine) > 30:
                index.remove(mine.pop(int(local.integers(len(mine)))))
                with owner_lock:
                    counts["removed"] += 1

    def searcher(worker: int) -> None:
        local = np.random.default_rng(200 + worker)
        while not stop.is_set():
            queries = unit(local.standard_normal((4, EMBEDDING_SIZE)))
            assert_consistent_matches(index, queries, owner, owner_lock)
            with owner_lock:
                counts["searches"] += 1

    threads = [threading.Thread(target=guarded(adder, w, errors, stop)) for w in range(3)]
    threads += [threading.Thread(target=guarded(searcher, w, errors, stop)) for w in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120.0  # the adders end by themselves; this only bounds a hang
    while time.monotonic() < deadline and any(t.is_alive() for t in threads[:3]):
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert len(index) == len(ids) + counts["added"] - counts["removed"]
    assert len(index) >= 2400  # at least one retraining happened during the run
    assert counts["searches"] > 3
    assert index.approximate
    assert_every_template_finds_itself(index)


# ------------------------------------------------------------------ inverted file


def test_inverted_file_files_each_row_once_and_follows_moves() -> None:
    rng = np.random.default_rng(10)
    vectors = unit(rng.standard_normal((500, EMBEDDING_SIZE)))
    columns = np.vstack([vectors.T, 0.5 * np.ones((1, 500), dtype=np.float32)])
    centroids = train_centroids(vectors, 10, rng)
    inverted = InvertedFile(centroids, trained_size=500)
    inverted.add(np.arange(500, dtype=np.intp), columns)
    assert len(inverted) == 500
    assert inverted.cell_sizes().sum() == 500
    np.testing.assert_array_equal(
        np.bincount(nearest_cells(vectors, centroids), minlength=10), inverted.cell_sizes()
    )
    inverted.remove(3)
    inverted.move(499, 3)  # what the gallery does when it removes row 3
    with pytest.raises(KeyError, match="row 499"):
        inverted.remove(499)
    augmented = np.hstack([vectors[499], [-1.0]]).astype(np.float32)[np.newaxis]
    rows, keys = inverted.candidates(augmented, probes=1)[0]
    assert 3 in rows.tolist()
    assert keys.shape == rows.shape
    assert len(inverted) == 499
    with pytest.raises(ValueError, match="at least 10 vectors"):
        train_centroids(vectors[:5], 10, rng)
    with pytest.raises(ValueError, match="centroids must have shape"):
        InvertedFile(np.zeros((0, EMBEDDING_SIZE), dtype=np.float32), trained_size=0)


# -------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, None),
        ({"index": "ivf"}, None),
        ({"index": "ivf", "ivf_lists": 1024, "ivf_probes": 32}, None),
        ({"index": "hnsw"}, "index"),
        ({"index": "ivf", "ivf_lists": 16, "ivf_probes": 32}, "ivf_probes must be at most"),
        ({"ivf_probes": 0}, "ivf_probes"),
        ({"ivf_lists": -1}, "ivf_lists"),
        ({"ivf_min_templates": 0}, "ivf_min_templates"),
    ],
)
def test_gallery_settings_validation(fields: dict[str, Any], error: str | None) -> None:
    if error is None:
        settings = GallerySettings(**fields)
        index = GalleryIndex.from_settings(settings)
        assert (index.ivf is None) == (settings.index == "exact")
        assert index.default_threshold == settings.default_threshold
        assert index.margin == settings.margin
    else:
        with pytest.raises(ValidationError, match=error):
            GallerySettings(**fields)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEEYE_GALLERY__INDEX", "ivf")
    monkeypatch.setenv("ONEEYE_GALLERY__IVF_PROBES", "48")
    parameters = IvfParameters.from_settings(Settings().gallery)
    assert parameters == IvfParameters(lists=0, probes=48, min_templates=50_000)
    assert IvfParameters.from_settings(GallerySettings()) is None


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"probes": 0}, "probes must be >= 1"),
        ({"lists": -1}, "lists must be >= 0"),
        ({"lists": 8, "probes": 9}, "probes must be at most lists"),
        ({"min_templates": 0}, "min_templates must be >= 1"),
        ({"probes": 2.5}, "probes must be an integer"),
        ({"lists": True}, "lists must be an integer"),
    ],
)
def test_bad_ivf_parameters_are_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        IvfParameters(**fields)


def test_ivf_argument_must_be_parameters() -> None:
    with pytest.raises(TypeError, match="ivf must be IvfParameters"):
        GalleryIndex(ivf="ivf")  # type: ignore[arg-type]


def test_automatic_cell_count_follows_the_gallery() -> None:
    automatic = IvfParameters()
    assert automatic.lists_for(1_000_000) == 1000
    assert automatic.lists_for(100) == 16
    assert automatic.lists_for(5) == 5
    assert IvfParameters(lists=64).lists_for(10_000) == 64
    assert IvfParameters(lists=64).lists_for(10) == 10
