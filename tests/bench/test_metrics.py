"""The benchmark's protocol arithmetic: thresholds, 10-fold accuracy, TAR@FAR, open-set rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.lib.lfw_data import read_pairs
from bench.lib.metrics import (
    OpenSetScores,
    best_threshold,
    open_set_rates,
    tar_at_far,
    threshold_for_fpir,
    verify_10_fold,
)
from oneeye.gallery import GalleryIndex


def test_best_threshold_separates_and_sits_between_the_nearest_pairs() -> None:
    distances = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([True, True, True, False, False])
    threshold, accuracy = best_threshold(distances, same)
    assert accuracy == 1.0
    assert threshold == pytest.approx(0.5)


def test_best_threshold_counts_errors_it_cannot_avoid() -> None:
    distances = np.array([0.1, 0.4, 0.3, 0.7])
    same = np.array([True, False, True, True])
    _, accuracy = best_threshold(distances, same)
    assert accuracy == 0.75


def test_missing_face_is_called_different() -> None:
    distances = np.array([0.1, np.inf, 0.9])
    same = np.array([True, True, False])
    threshold, accuracy = best_threshold(distances, same)
    assert np.isfinite(threshold)
    assert accuracy == pytest.approx(2 / 3)


def test_ten_fold_tests_each_fold_with_a_threshold_from_the_others() -> None:
    rng = np.random.default_rng(0)
    fold = np.repeat(np.arange(10), 60)
    same = np.tile(np.repeat([True, False], 30), 10)
    distances = np.where(same, rng.uniform(0.0, 0.5, 600), rng.uniform(0.4, 1.0, 600))
    # Fold 3's pairs are shifted so its own best threshold would differ: it must not be used.
    distances[fold == 3] += 0.3
    result = verify_10_fold(distances, same, fold)
    assert len(result.fold_accuracy) == 10
    assert result.fold_accuracy[3] < min(a for k, a in enumerate(result.fold_accuracy) if k != 3)
    assert result.errors == round(sum((1 - a) * 60 for a in result.fold_accuracy))


def test_per_fold_distances_use_their_own_row() -> None:
    fold = np.repeat(np.arange(2), 4)
    same = np.array([True, True, False, False] * 2)
    good = np.array([0.1, 0.2, 0.8, 0.9] * 2)
    shifted = np.where(fold == 1, good + 0.5, good)  # row 1 moves fold 1's pairs only
    result = verify_10_fold(np.stack([good, shifted]), same, fold)
    assert result.fold_accuracy[0] == 1.0
    assert result.fold_accuracy[1] == 0.5  # with row 0 it would have been 1.0


def test_tar_at_far() -> None:
    negatives = np.linspace(0.5, 1.5, 1000)
    positives = np.linspace(0.0, 1.0, 100)
    distances = np.concatenate([positives, negatives])
    same = np.concatenate([np.ones(100, bool), np.zeros(1000, bool)])
    tar, threshold = tar_at_far(distances, same, 1e-3)
    assert threshold == pytest.approx(negatives[0])  # exactly one false accept allowed
    assert tar == pytest.approx(np.mean(positives <= negatives[0]))


def test_open_set_rates_and_threshold_for_fpir() -> None:
    scores = OpenSetScores(
        nearest_distance=np.array([0.2, 0.3, 0.5, 0.25, 0.6, 0.7, 0.8]),
        correct=np.array([True, False, True, False, False, False, False]),
        mated=np.array([True, True, True, False, False, False, False]),
        accepted=np.ones(7, dtype=bool),
    )
    dir_, fpir = open_set_rates(scores, 0.4)
    assert dir_ == pytest.approx(1 / 3)  # the 0.3 one is named, but wrongly
    assert fpir == pytest.approx(1 / 4)
    threshold = threshold_for_fpir(scores, 0.0)
    assert threshold < 0.25
    assert open_set_rates(scores, threshold)[1] == 0.0


def test_a_stranger_at_distance_zero_still_gets_a_threshold_a_gallery_takes() -> None:
    # The same photo enrolled under one name and probed under another (the smoke set does so).
    scores = OpenSetScores(
        nearest_distance=np.array([0.2, 0.0, 0.5]),
        correct=np.array([True, False, False]),
        mated=np.array([True, False, False]),
        accepted=np.ones(3, dtype=bool),
    )
    threshold = threshold_for_fpir(scores, 0.01)
    assert 0.0 < threshold < 1e-5
    GalleryIndex(default_threshold=threshold)  # refuses a threshold <= 0


def test_read_pairs(tmp_path: Path) -> None:
    lines = ["2\t1"]
    lines += ["Ann\t1\t2", "Ann\t1\tBob\t1", "Cy\t1\t3", "Bob\t1\tCy\t2"]
    file = tmp_path / "pairs.txt"
    file.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(file)
    assert len(pairs) == 4
    assert pairs.same.tolist() == [True, False, True, False]
    assert pairs.fold.tolist() == [0, 0, 1, 1]
    assert pairs.images[pairs.first[0]] == "Ann/Ann_0001.jpg"
    assert pairs.images[pairs.second[1]] == "Bob/Bob_0001.jpg"


def test_read_pairs_refuses_a_short_file(tmp_path: Path) -> None:
    file = tmp_path / "pairs.txt"
    file.write_text("10\t300\nAnn\t1\t2\n")
    with pytest.raises(ValueError, match="expected 6000 pairs, got 1"):
        read_pairs(file)
