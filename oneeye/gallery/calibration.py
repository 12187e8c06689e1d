"""Site calibration: the threshold that names about ``target`` strangers in a hundred wrongly
on one watchlist, from that watchlist's own enrolled faces.

A stranger is named wrongly when one enrolled template is within the threshold of their face
(and, with the margin rule, no other person is within the margin of that one). How often that
happens depends on how many templates there are and on how far apart faces of different people
lie, and the watchlist itself shows the second: the distances between its own people's
templates are a sample of the distances a stranger's face will have to them.

The model, in three steps:

1. **The lower tail of the non-mate distances.** Every pair of templates of different people
   gives a distance. The smallest ``TAIL_SHARE`` of them are fitted with a normal law (a line
   through their normal scores), so the share of pairs nearer than ``t`` can be read where the
   sample itself is too small to have any (50 people give 1,225 pairs; 1% FPIR there needs a
   pair rate near 2 in 10,000).
2. **Many templates.** A stranger's face meets each of the ``n`` templates; assuming the
   distances are independent, the chance that the nearest one is within ``t`` and the next
   other person is not within the margin of it is
   ``integral from 0 to t of n f(x) (1 - F(x + margin))^(n - 1) dx``.
3. **One correction,** ``SCALE * (n / 300) ** SIZE_POWER``, for what independence misses (a
   stranger near one person tends to be near others too). Its constants, and ``TAIL_SHARE``,
   were chosen once on LFW's "choosing half" of the people (``bench/lfw_calibration.py``) and
   are measured on the other half (BENCHMARKS.md, "Site calibration").

The threshold is the largest one whose expected FPIR is at most the target, kept within
[``FLOOR``, ``CEILING``]. With fewer than ``MIN_PERSONS`` people the distances between them say
too little: the watchlist keeps the fixed default threshold (chosen for 1,680 people, so for a
smaller watchlist it is stricter than needed, never looser).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

MIN_PERSONS = 10
"""Fewer people than this: too few distances to calibrate on; the default threshold stays."""
TAIL_SHARE = 0.05
"""The share of the smallest non-mate distances the normal law is fitted to."""
SCALE = 0.7
"""Expected FPIR multiplier for what the independence assumption misses, at
``REFERENCE_TEMPLATES`` templates (chosen on LFW's choosing half; see the module docstring)."""
SIZE_POWER = -0.4
"""How that multiplier changes with the number of templates: ``SCALE * (n / 300) ** SIZE_POWER``
(chosen with it)."""
REFERENCE_TEMPLATES = 300
FLOOR = 0.20
"""The automatic threshold never goes below this (a watchlist of look-alikes would otherwise
name nobody; at 0.20 OneEye still names most clear faces)."""
CEILING = 0.45
"""Nor above this, however small or spread the watchlist (a safety rail, not a fitted value)."""
MAX_TEMPLATES = 3000
"""Above this many templates, a fixed-seed sample of them is used for the distances (4.5 M
pairs); ``n`` in the model stays the true count."""
TARGET_RANGE = (0.001, 0.1)
"""The FPIR targets accepted (inclusive)."""
CURVE = np.round(np.arange(0.15, 0.6001, 0.005), 4)
"""Thresholds at which the expected FPIR is reported (the curve on the watchlist's page)."""

_NORMAL = NormalDist()
_FIT_POINTS = 200


def correction(templates: int, scale: float = SCALE, power: float = SIZE_POWER) -> float:
    """The multiplier of step 3 for a watchlist of ``templates`` templates.

    Args:
        templates: how many templates a stranger's face meets.
        scale: the multiplier at ``REFERENCE_TEMPLATES``.
        power: its change with size.

    Returns:
        ``scale * (templates / REFERENCE_TEMPLATES) ** power``.
    """
    return float(scale * (max(templates, 1) / REFERENCE_TEMPLATES) ** power)


def check_target(value: float) -> float:
    """``value`` as a float if it is an FPIR target in ``TARGET_RANGE``.

    Args:
        value: the target share of strangers named wrongly.

    Returns:
        The target.

    Raises:
        ValueError: it is not finite or outside ``TARGET_RANGE``.
    """
    number = float(value)
    low, high = TARGET_RANGE
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"target FPIR must be in [{low}, {high}], got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class TailFit:
    """The normal law fitted to the lower tail of the non-mate distances.

    Attributes:
        mean: its mean (a distance).
        spread: its standard deviation (> 0).
        pairs: how many non-mate template pairs the fit saw.
    """

    mean: float
    spread: float
    pairs: int

    def share_below(self, distances: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The modelled share of non-mate pairs nearer than each of ``distances``.

        Args:
            distances: distances.

        Returns:
            Shares in [0, 1], same shape.
        """
        z = (np.asarray(distances, dtype=np.float64) - self.mean) / (self.spread * math.sqrt(2))
        return np.asarray(0.5 * _erfc(-z), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Calibration:
    """A watchlist's automatic threshold and the curve it was read from.

    Attributes:
        threshold: the threshold to use.
        target_fpir: the FPIR asked for.
        method: ``model`` (read from the curve), ``floor`` / ``ceiling`` (the curve's answer
            was outside [FLOOR, CEILING] and was clipped) or ``fallback`` (too few people: the
            default threshold).
        persons: people on the watchlist.
        templates: their templates.
        margin: the margin the curve includes.
        thresholds: the curve's thresholds (empty for ``fallback``).
        expected_fpir: the expected FPIR at each of them.
        expected_at_threshold: the expected FPIR at ``threshold`` (``None`` for ``fallback``).
        note: one sentence for people on what was done.
    """

    threshold: float
    target_fpir: float
    method: str
    persons: int
    templates: int
    margin: float
    thresholds: tuple[float, ...]
    expected_fpir: tuple[float, ...]
    expected_at_threshold: float | None
    note: str


def _erfc(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(z), dtype=np.float64)


def non_mate_distances(
    embeddings: npt.NDArray[np.float32], persons: Sequence[str]
) -> npt.NDArray[np.float64]:
    """Distances of every pair of templates of different people.

    Args:
        embeddings: (n, 128) embeddings.
        persons: each template's person.

    Returns:
        The distances (each pair once), unsorted.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    labels = np.unique(np.asarray(list(persons)), return_inverse=True)[1]
    found: list[npt.NDArray[np.float64]] = []
    squared = (vectors.astype(np.float64) ** 2).sum(axis=1)
    for start in range(0, len(vectors), 512):
        block = vectors[start : start + 512]
        d2 = squared[start : start + 512, None] + squared[None, :] - 2.0 * (block @ vectors.T)
        rows = np.arange(start, start + len(block))[:, None]
        keep = (np.arange(len(vectors))[None, :] > rows) & (
            labels[None, :] != labels[start : start + 512, None]
        )
        found.append(np.sqrt(np.maximum(d2[keep], 0.0)))
    return np.concatenate(found) if found else np.empty(0)


def fit_tail(distances: npt.NDArray[np.float64], share: float = TAIL_SHARE) -> TailFit:
    """Fit a normal law to the smallest ``share`` of ``distances`` by their normal scores.

    Args:
        distances: non-mate distances (at least 2).
        share: the lower share fitted.

    Returns:
        The fit.

    Raises:
        ValueError: fewer than 2 distances, or they do not spread.
    """
    total = len(distances)
    if total < 2:
        raise ValueError(f"expected at least 2 non-mate distances, got {total}")
    kept = max(2, min(total, math.ceil(share * total)))
    lowest = np.sort(np.partition(distances, kept - 1)[:kept])
    ranks = np.unique(np.linspace(0, kept - 1, min(kept, _FIT_POINTS)).astype(int))
    scores = np.array([_NORMAL.inv_cdf((r + 0.5) / total) for r in ranks])
    values = lowest[ranks]
    slope, intercept = np.polyfit(scores, values, 1)
    if not slope > 0.0:
        raise ValueError("expected non-mate distances that spread, got all equal")
    return TailFit(mean=float(intercept), spread=float(slope), pairs=total)


def expected_fpir(
    fit: TailFit,
    templates: int,
    thresholds: npt.NDArray[np.float64],
    margin: float,
    scale: float = SCALE,
) -> npt.NDArray[np.float64]:
    """The expected share of strangers named wrongly at each threshold (step 2 and 3 of the
    module docstring).

    Args:
        fit: the lower tail of the non-mate distances.
        templates: how many templates a stranger's face meets.
        thresholds: ascending thresholds.
        margin: the margin rule's margin (0: off).
        scale: the correction for dependence.

    Returns:
        Expected FPIR at each threshold, in [0, 1].
    """
    top = float(np.max(thresholds)) if len(thresholds) else 0.0
    grid = np.linspace(0.0, top, max(2, int(top / 0.0005) + 1))
    below = fit.share_below(grid)
    beyond = fit.share_below(grid + margin)
    # n f(x) (1 - F(x + margin))^(n - 1) dx: the nearest template at x, every other beyond
    # x + margin (with no margin, beyond x: the integral is then 1 - (1 - F(t))^n).
    mass = np.diff(below)
    others = np.clip(1.0 - 0.5 * (beyond[1:] + beyond[:-1]), 0.0, 1.0)
    density = templates * mass * np.power(others, max(templates - 1, 0))
    cumulative = np.concatenate([[0.0], np.cumsum(density)])
    return np.asarray(np.clip(scale * np.interp(thresholds, grid, cumulative), 0.0, 1.0))


def threshold_for(
    fit: TailFit, templates: int, target: float, margin: float, scale: float = SCALE
) -> tuple[float, str]:
    """The largest threshold (to 0.001) whose expected FPIR is at most ``target``.

    Args:
        fit: the lower tail of the non-mate distances.
        templates: how many templates a stranger's face meets.
        target: the FPIR allowed.
        margin: the margin rule's margin.
        scale: the correction for dependence.

    Returns:
        ``(threshold, how)``: ``how`` is ``model``, or ``floor`` / ``ceiling`` when the answer
        was clipped to [FLOOR, CEILING].
    """
    fine = np.round(np.arange(FLOOR, CEILING + 1e-9, 0.001), 3)
    within = np.flatnonzero(expected_fpir(fit, templates, fine, margin, scale) <= target)
    if not len(within):
        return FLOOR, "floor"
    if within[-1] == len(fine) - 1:
        return CEILING, "ceiling"
    return float(fine[within[-1]]), "model"


def calibrate(
    embeddings: npt.NDArray[np.float32],
    persons: Sequence[str],
    target_fpir: float,
    margin: float,
    default_threshold: float,
    *,
    scale: float | None = None,
) -> Calibration:
    """A watchlist's automatic threshold for ``target_fpir``.

    Args:
        embeddings: (n, 128) embeddings of every template on the watchlist.
        persons: each template's person.
        target_fpir: the share of strangers that may be named wrongly (``TARGET_RANGE``).
        margin: the gallery's margin.
        default_threshold: the threshold kept when there are too few people.
        scale: the correction for dependence; ``None``: :func:`correction` of the size.

    Returns:
        The calibration.

    Raises:
        ValueError: a target outside ``TARGET_RANGE``, or lengths that disagree.
    """
    target = check_target(target_fpir)
    vectors = np.asarray(embeddings, dtype=np.float32).reshape(-1, 128)
    labels = list(persons)
    if len(labels) != len(vectors):
        raise ValueError(f"expected one person per template, got {len(labels)} for {len(vectors)}")
    people = len(set(labels))
    count = len(labels)
    if people < MIN_PERSONS:
        return Calibration(
            threshold=default_threshold,
            target_fpir=target,
            method="fallback",
            persons=people,
            templates=count,
            margin=margin,
            thresholds=(),
            expected_fpir=(),
            expected_at_threshold=None,
            note=(
                f"{people} people are too few to measure how far apart faces lie (at least "
                f"{MIN_PERSONS} are needed): the default threshold {default_threshold:.3f} is "
                "kept, which was chosen for 1,680 people and so is stricter here, not looser."
            ),
        )
    if count > MAX_TEMPLATES:
        pick = np.sort(np.random.default_rng(0).choice(count, MAX_TEMPLATES, replace=False))
        sample, sample_labels = vectors[pick], [labels[i] for i in pick]
    else:
        sample, sample_labels = vectors, labels
    fit = fit_tail(non_mate_distances(sample, sample_labels))
    if scale is None:
        scale = correction(count)
    curve = expected_fpir(fit, count, CURVE.astype(np.float64), margin, scale)
    threshold, method = threshold_for(fit, count, target, margin, scale)
    if method == "floor":
        note = (
            f"even at {FLOOR:.2f} more than {target:.1%} of strangers would be named: the "
            "watchlist's people look much alike; the threshold stays at that floor."
        )
    elif method == "ceiling":
        note = f"the curve allows a threshold above {CEILING:.2f}; it is held at that ceiling."
    else:
        note = (
            f"the largest threshold whose expected FPIR is at most {target:.1%} for "
            f"{people} people ({count} templates), margin {margin:.2f} included."
        )
    at = float(expected_fpir(fit, count, np.array([threshold]), margin, scale)[0])
    return Calibration(
        threshold=threshold,
        target_fpir=target,
        method=method,
        persons=people,
        templates=count,
        margin=margin,
        thresholds=tuple(float(t) for t in CURVE),
        expected_fpir=tuple(float(v) for v in curve),
        expected_at_threshold=at,
        note=note,
    )
