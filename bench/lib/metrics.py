"""Verification and open-set identification metrics (pure numpy).

Distances: smaller means more alike; a pair is called "same person" when its distance is at
most the threshold. A pair with a missing face has distance +inf: it is always called
"different", right for a different-person pair and an error for a same-person pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def best_threshold(distances: Floats, same: Bools) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, and that accuracy.

    Ties are broken by taking the middle of the widest best interval's neighbours, so the
    threshold sits between the two nearest pairs it separates.

    Args:
        distances: (n,) pair distances (may hold +inf).
        same: (n,) True for same-person pairs.

    Returns:
        ``(threshold, accuracy)``.
    """
    order = np.argsort(distances, kind="stable")
    d = distances[order]
    s = same[order]
    # Threshold just below d[0] accepts nothing; just at d[i] accepts pairs 0..i.
    accepted_same = np.concatenate([[0], np.cumsum(s)])
    accepted_diff = np.concatenate([[0], np.cumsum(~s)])
    correct = accepted_same + (np.count_nonzero(~s) - accepted_diff)
    # Only cut between distinct distances.
    valid = np.concatenate([[True], d[1:] != d[:-1], [True]])
    correct = np.where(valid, correct, -1)
    best = int(np.argmax(correct))
    finite = d[np.isfinite(d)]
    if best == 0:
        threshold = float(finite[0]) - 1e-6 if finite.size else 0.0
    elif best >= len(d) or not np.isfinite(d[best]):
        threshold = float(d[best - 1]) if np.isfinite(d[best - 1]) else 2.0
    else:
        threshold = float((d[best - 1] + d[best]) / 2.0)
    return threshold, float(correct[best]) / len(d)


@dataclass(frozen=True, slots=True)
class Verification:
    """The 10-fold result: threshold chosen on 9 folds, accuracy measured on the 10th."""

    fold_accuracy: tuple[float, ...]
    fold_threshold: tuple[float, ...]
    errors: int
    """Pairs misjudged, summed over the test folds (every pair is in exactly one test fold)."""

    @property
    def mean(self) -> float:
        """Mean accuracy over folds."""
        return float(np.mean(self.fold_accuracy))

    @property
    def std(self) -> float:
        """Standard deviation of the fold accuracies (population, as LFW results quote it)."""
        return float(np.std(self.fold_accuracy))


def verify_10_fold(distances: Floats, same: Bools, fold: npt.NDArray[np.int64]) -> Verification:
    """LFW's protocol: for each fold, choose the threshold on the other folds, test on it.

    Args:
        distances: (n,) pair distances, or (folds, n) when the distances themselves depend on
            the fold (a normalisation fitted on the training folds): row k is used for fold k.
        same: (n,) truth.
        fold: (n,) fold index of each pair, 0..folds-1.

    Returns:
        Per-fold accuracies and thresholds.
    """
    folds = int(fold.max()) + 1
    rows = np.broadcast_to(distances, (folds, len(same))) if distances.ndim == 1 else distances
    accuracies: list[float] = []
    thresholds: list[float] = []
    errors = 0
    for k in range(folds):
        train, test = fold != k, fold == k
        threshold, _ = best_threshold(rows[k][train], same[train])
        predicted = rows[k][test] <= threshold
        correct = int(np.count_nonzero(predicted == same[test]))
        errors += int(np.count_nonzero(test)) - correct
        accuracies.append(correct / int(np.count_nonzero(test)))
        thresholds.append(threshold)
    return Verification(tuple(accuracies), tuple(thresholds), errors)


def roc(distances: Floats, same: Bools) -> tuple[Floats, Floats, Floats]:
    """The ROC curve over all pairs.

    Returns:
        ``(far, tar, thresholds)``: at each threshold, the fraction of different-person pairs
        accepted and of same-person pairs accepted.
    """
    finite = np.unique(distances[np.isfinite(distances)])
    thresholds = np.concatenate([[finite[0] - 1e-6], finite]) if finite.size else np.zeros(1)
    positives = np.sort(distances[same])
    negatives = np.sort(distances[~same])
    tar = np.searchsorted(positives, thresholds, side="right") / max(1, len(positives))
    far = np.searchsorted(negatives, thresholds, side="right") / max(1, len(negatives))
    return far.astype(np.float64), tar.astype(np.float64), thresholds.astype(np.float64)


def tar_at_far(distances: Floats, same: Bools, far_target: float) -> tuple[float, float]:
    """True accept rate at the loosest threshold whose false accept rate is <= ``far_target``.

    Returns:
        ``(tar, threshold)``.
    """
    far, tar, thresholds = roc(distances, same)
    ok = np.flatnonzero(far <= far_target)
    best = int(ok[-1])
    return float(tar[best]), float(thresholds[best])


@dataclass(frozen=True, slots=True)
class OpenSetScores:
    """For every probe, its nearest gallery person and distance, and the truth."""

    nearest_distance: Floats
    """(n,) distance to the nearest gallery person (+inf when the probe has no face)."""
    correct: Bools
    """(n,) the nearest gallery person is the probe's own (always False for non-mated)."""
    mated: Bools
    """(n,) the probe's person is in the gallery."""
    accepted: Bools
    """(n,) extra acceptance rule beyond the threshold (e.g. a margin or a quality gate);
    all True when there is none."""


def open_set_rates(scores: OpenSetScores, threshold: float) -> tuple[float, float]:
    """Rank-1 detection-and-identification rate and false-positive identification rate.

    Args:
        scores: per-probe results.
        threshold: accept the nearest person when its distance is at most this.

    Returns:
        ``(dir, fpir)``: fraction of mated probes named correctly; fraction of non-mated probes
        named as someone.
    """
    named = (scores.nearest_distance <= threshold) & scores.accepted
    dir_ = float(np.mean(named[scores.mated] & scores.correct[scores.mated]))
    fpir = float(np.mean(named[~scores.mated]))
    return dir_, fpir


SMALLEST_THRESHOLD = 1e-6
"""The smallest threshold :func:`threshold_for_fpir` answers (a gallery takes none <= 0)."""


def threshold_for_fpir(scores: OpenSetScores, fpir_target: float) -> float:
    """The loosest threshold at which at most ``fpir_target`` of non-mated probes are named."""
    strangers = np.sort(scores.nearest_distance[~scores.mated & scores.accepted])
    allowed = int(np.floor(fpir_target * np.count_nonzero(~scores.mated)))
    if allowed >= len(strangers):
        return float(np.max(scores.nearest_distance[np.isfinite(scores.nearest_distance)]))
    below = float(np.nextafter(strangers[allowed], -np.inf))
    # A stranger at distance 0 (the same photo under two names, as in the smoke set) leaves
    # no threshold that holds the target: the smallest one a gallery takes names only such.
    return max(below, SMALLEST_THRESHOLD)
