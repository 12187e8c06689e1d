"""Site calibration on synthetic distance distributions whose answer is known in closed form,
and on synthetic faces whose strangers can be counted."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest

from oneeye.gallery import calibration
from oneeye.gallery.calibration import TailFit, calibrate, expected_fpir, fit_tail, threshold_for


def faces(n: int, rng: np.random.Generator, dim: int = 10) -> npt.NDArray[np.float32]:
    """Unit vectors spread evenly over a ``dim``-dimensional sphere (zero-padded to 128): the
    distances between them are independent and reach down to 0.2-0.4, as faces' do."""
    vectors = np.zeros((n, 128), dtype=np.float32)
    vectors[:, :dim] = rng.normal(size=(n, dim))
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def closed_form_threshold(mean: float, spread: float, templates: int, target: float) -> float:
    """With a normal law and no margin, FPIR(t) = 1 - (1 - Phi((t - mean) / spread))^n."""
    per_pair = 1.0 - (1.0 - target) ** (1.0 / templates)
    return mean + spread * NormalDist().inv_cdf(per_pair)


def test_the_tail_fit_recovers_a_normal_law() -> None:
    sample = np.random.default_rng(0).normal(0.9, 0.07, 200_000)
    fit = fit_tail(sample)
    assert fit.mean == pytest.approx(0.9, abs=0.01)
    assert fit.spread == pytest.approx(0.07, abs=0.005)
    assert fit.pairs == 200_000


def test_without_a_margin_the_expected_fpir_is_the_closed_form() -> None:
    fit = TailFit(mean=0.8, spread=0.1, pairs=10_000)
    thresholds = np.array([0.3, 0.35, 0.4, 0.45])
    per_pair = np.array([NormalDist(0.8, 0.1).cdf(t) for t in thresholds])
    for templates in (50, 300, 1680):
        exact = 1.0 - (1.0 - per_pair) ** templates
        got = expected_fpir(fit, templates, thresholds, margin=0.0, scale=1.0)
        assert got == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize("templates", [50, 300, 1680])
def test_the_threshold_is_the_closed_form_answer(templates: int) -> None:
    fit = TailFit(mean=0.8, spread=0.1, pairs=10_000)
    expected = closed_form_threshold(0.8, 0.1, templates, 0.01)
    got, how = threshold_for(fit, templates, 0.01, margin=0.0, scale=1.0)
    assert how == "model"
    assert got == pytest.approx(expected, abs=0.0015)


def test_more_people_or_no_margin_mean_a_stricter_threshold() -> None:
    fit = TailFit(mean=0.8, spread=0.1, pairs=10_000)
    by_size = [threshold_for(fit, n, 0.01, margin=0.05)[0] for n in (50, 300, 1680)]
    assert by_size[0] > by_size[1] > by_size[2]
    with_margin = threshold_for(fit, 300, 0.01, margin=0.05)[0]
    without = threshold_for(fit, 300, 0.01, margin=0.0)[0]
    assert with_margin >= without
    looser_target = threshold_for(fit, 300, 0.05, margin=0.05)[0]
    assert looser_target > with_margin


def test_the_threshold_is_clipped_to_the_safe_range() -> None:
    far_apart = TailFit(mean=1.3, spread=0.05, pairs=10_000)
    look_alikes = TailFit(mean=0.3, spread=0.05, pairs=10_000)
    assert threshold_for(far_apart, 50, 0.01, 0.05) == (calibration.CEILING, "ceiling")
    assert threshold_for(look_alikes, 50, 0.01, 0.05) == (calibration.FLOOR, "floor")


def test_too_few_people_keep_the_default_threshold() -> None:
    vectors = faces(9, np.random.default_rng(1))
    result = calibrate(vectors, [f"p{i}" for i in range(9)], 0.01, 0.05, 0.32)
    assert (result.method, result.threshold) == ("fallback", 0.32)
    assert result.thresholds == ()
    assert result.expected_at_threshold is None
    assert "too few" in result.note


def test_a_person_s_own_templates_are_not_non_mates() -> None:
    vectors = faces(4, np.random.default_rng(2))
    twice = np.concatenate([vectors, vectors])
    distances = calibration.non_mate_distances(twice, ["a", "b", "c", "d"] * 2)
    assert len(distances) == 4 * 6  # 6 pairs of people, 2 x 2 templates each
    assert np.all(distances > 0.01)


@pytest.mark.parametrize(("people", "dim"), [(100, 8), (400, 10)])
def test_strangers_are_named_about_as_often_as_asked(people: int, dim: int) -> None:
    rng = np.random.default_rng(people)
    enrolled = faces(people, rng, dim)
    result = calibrate(enrolled, [f"p{i}" for i in range(people)], 0.01, 0.05, 0.32)
    assert result.method == "model"
    assert result.expected_at_threshold == pytest.approx(0.01, rel=0.3)
    strangers = faces(20_000, rng, dim)
    d = np.sqrt(np.maximum(2.0 - 2.0 * strangers @ enrolled.T, 0.0))
    nearest = np.sort(d, axis=1)[:, :2]
    named = (nearest[:, 0] <= result.threshold) & (nearest[:, 1] - nearest[:, 0] >= 0.05)
    # The normal tail is a little heavier than these spheres': the answer errs on the safe side.
    assert 0.001 <= named.mean() <= 0.015


@pytest.mark.parametrize(
    ("target", "error"),
    [(0.0, "target FPIR"), (0.5, "target FPIR"), (float("nan"), "target FPIR")],
)
def test_bad_targets_are_refused(target: float, error: str) -> None:
    vectors = faces(20, np.random.default_rng(0))
    with pytest.raises(ValueError, match=error):
        calibrate(vectors, [str(i) for i in range(20)], target, 0.05, 0.32)
