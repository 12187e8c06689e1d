"""What lifts LFW open-set identification from one enrolment photo (issue 13): the pieces of
``bench/lfw_open_set_study.py``, kept apart so that they can be tested on their own.

Every method gives, for each probe, its nearest gallery person, a score (lower is nearer) and
whether an extra rule (a margin, a ratio) accepts it; the threshold on the score is then
chosen on the "choose" half of the people (name's CRC32 even, as ``bench.lib.lfw_protocol``)
and measured on the other half, with the same FPIR choice point.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.lib.lfw_data import person_of
from bench.lib.metrics import OpenSetScores, open_set_rates, threshold_for_fpir

Embeddings = npt.NDArray[np.float32]

FPIR_CHOICE = 0.008
"""As ``bench.lib.lfw_protocol``: chosen for 0.8% on the choose half, for <= 1% elsewhere."""

SUBSET_PEOPLE = 600
"""People of the smaller gallery used for the enrolment jitter study (their enrolment photos
are encoded again with jitter, which costs 18 encodings each)."""


def unit(vectors: npt.NDArray[np.float32]) -> Embeddings:
    """Rows scaled to unit length (NaN rows stay NaN)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def choose_half(person: str) -> bool:
    """Whether ``person`` is in the half of the people the operating point is chosen on."""
    return zlib.crc32(person.encode()) % 2 == 0


@dataclass(frozen=True, slots=True)
class Protocol:
    """Who is in the gallery (one photo each) and who the probes are."""

    gallery: list[int]
    """Image index of each gallery person's enrolment photo (the first photo)."""
    gallery_person: list[str]
    probes: list[int]
    probe_person: list[str]
    mated: npt.NDArray[np.bool_]
    choose: npt.NDArray[np.bool_]
    """Probes whose person is in the choose half."""


def protocol(images: Sequence[str], people_subset: set[str] | None = None) -> Protocol:
    """The open-set protocol of ``bench.lib.lfw_protocol`` (gallery: the first photo of each
    person with 2+ photos; probes: their other photos and every photo of people with one),
    optionally with the gallery cut to ``people_subset`` (their other photos stay the mated
    probes; everybody else's photos are left out, strangers stay all strangers).

    Args:
        images: every LFW image, sorted.
        people_subset: gallery people to keep, or ``None`` for all.

    Returns:
        The protocol.
    """
    people: dict[str, list[int]] = {}
    for index, image in enumerate(images):
        people.setdefault(person_of(image), []).append(index)
    enrolled = [
        p
        for p, rows in people.items()
        if len(rows) >= 2 and (people_subset is None or p in people_subset)
    ]
    strangers = [p for p, rows in people.items() if len(rows) == 1]
    probes = [(row, p) for p in enrolled for row in people[p][1:]]
    probes += [(people[p][0], p) for p in strangers]
    return Protocol(
        gallery=[people[p][0] for p in enrolled],
        gallery_person=enrolled,
        probes=[row for row, _ in probes],
        probe_person=[p for _, p in probes],
        mated=np.array([len(people[p]) >= 2 for _, p in probes]),
        choose=np.array([choose_half(p) for _, p in probes]),
    )


def subset_people(images: Sequence[str], count: int = SUBSET_PEOPLE, seed: int = 13) -> list[str]:
    """``count`` of the people with 2+ photos, drawn at random (seeded), sorted."""
    people: dict[str, int] = {}
    for image in images:
        people[person_of(image)] = people.get(person_of(image), 0) + 1
    several = sorted(p for p, n in people.items() if n >= 2)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(several), min(count, len(several)), replace=False)
    return sorted(several[i] for i in chosen)


def gallery_images(images: Sequence[str], people: Sequence[str]) -> list[str]:
    """The enrolment photo (the first) of each of ``people``, in that order."""
    first: dict[str, str] = {}
    for image in images:
        first.setdefault(person_of(image), image)
    return [first[p] for p in people]


@dataclass(frozen=True, slots=True)
class Method:
    """One way of deciding: a score shift per gallery person and an acceptance rule."""

    name: str
    rule: str
    """``margin``: the second-nearest other person at least ``value`` farther; ``ratio``: the
    nearest at most ``value`` times the second's distance."""
    value: float
    cohort: float = 0.0
    """Score = distance - cohort * (the person's cohort mean - the gallery's): a person whose
    own neighbours in the gallery are near (a crowded part of face space, where strangers
    come near too) needs a nearer face."""


def distances(probes: Embeddings, gallery: Embeddings) -> npt.NDArray[np.float32]:
    """Euclidean distances, (probes, gallery); rows of probes without a face are +inf."""
    d2 = 2.0 - 2.0 * (np.nan_to_num(probes, nan=0.0) @ np.nan_to_num(gallery, nan=0.0).T)
    d: npt.NDArray[np.float32] = np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
    d[np.isnan(probes[:, 0])] = np.inf
    d[:, np.isnan(gallery[:, 0])] = np.inf
    return d


def cohort_means(gallery: Embeddings, k: int = 10) -> npt.NDArray[np.float32]:
    """Each gallery person's mean distance to their ``k`` nearest other gallery persons."""
    d = distances(gallery, gallery)
    np.fill_diagonal(d, np.inf)
    k = max(1, min(k, len(gallery) - 1))
    nearest = np.sort(d, axis=1)[:, :k]
    means = np.where(np.isfinite(nearest), nearest, np.nan)
    out = np.nanmean(means, axis=1) if len(gallery) > 1 else np.zeros(len(gallery))
    return np.asarray(np.nan_to_num(out, nan=float(np.nanmean(out))), dtype=np.float32)


def score(
    d: npt.NDArray[np.float32],
    truth: npt.NDArray[np.intp],
    method: Method,
    cohort: npt.NDArray[np.float32] | None = None,
) -> OpenSetScores:
    """Per-probe nearest person, score and acceptance for one method.

    Args:
        d: (probes, gallery) distances.
        truth: each probe's gallery column, -1 for a stranger.
        method: the method.
        cohort: per gallery person cohort means (needed when ``method.cohort``).

    Returns:
        The scores (``nearest_distance`` holds the method's score).
    """
    s = d
    if method.cohort:
        assert cohort is not None
        s = d - method.cohort * (cohort - float(cohort.mean()))[None, :]
    order = np.argsort(s, axis=1)[:, :2]
    rows = np.arange(len(s))
    first, second = s[rows, order[:, 0]], s[rows, order[:, 1]]
    if method.rule == "margin":
        accepted = (second - first) >= method.value
    else:
        raw_first, raw_second = d[rows, order[:, 0]], d[rows, order[:, 1]]
        accepted = raw_first <= method.value * raw_second
    return OpenSetScores(
        nearest_distance=np.where(np.isfinite(first), first, np.inf).astype(np.float64),
        correct=order[:, 0] == truth,
        mated=truth >= 0,
        accepted=accepted,
    )


def subset(scores: OpenSetScores, mask: npt.NDArray[np.bool_]) -> OpenSetScores:
    """The scores of the probes in ``mask``."""
    return OpenSetScores(
        scores.nearest_distance[mask],
        scores.correct[mask],
        scores.mated[mask],
        scores.accepted[mask],
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """A method at the operating point chosen on the choose half."""

    method: Method
    threshold: float
    choose_dir: float
    dir: float
    fpir: float
    dir_all: float
    fpir_all: float

    def as_dict(self) -> dict[str, object]:
        """For the results JSON."""
        return {
            "name": self.method.name,
            "rule": self.method.rule,
            "value": self.method.value,
            "cohort": self.method.cohort,
            "threshold": self.threshold,
            "dir_choose_half": self.choose_dir,
            "dir": self.dir,
            "fpir": self.fpir,
            "dir_all": self.dir_all,
            "fpir_all": self.fpir_all,
        }


def evaluate(scores: OpenSetScores, choose: npt.NDArray[np.bool_], method: Method) -> Outcome:
    """Choose the threshold on the choose half (FPIR ``FPIR_CHOICE``), measure on the rest."""
    threshold = threshold_for_fpir(subset(scores, choose), FPIR_CHOICE)
    choose_dir, _ = open_set_rates(subset(scores, choose), threshold)
    dir_, fpir = open_set_rates(subset(scores, ~choose), threshold)
    dir_all, fpir_all = open_set_rates(scores, threshold)
    return Outcome(method, threshold, choose_dir, dir_, fpir, dir_all, fpir_all)


def best_of(
    d: npt.NDArray[np.float32],
    truth: npt.NDArray[np.intp],
    choose: npt.NDArray[np.bool_],
    methods: Sequence[Method],
    cohort: npt.NDArray[np.float32] | None = None,
) -> tuple[Outcome, list[Outcome]]:
    """Every method evaluated; the one with the best DIR on the choose half (never on the
    measure half), and all of them."""
    outcomes = [evaluate(score(d, truth, m, cohort), choose, m) for m in methods]
    return max(outcomes, key=lambda o: o.choose_dir), outcomes
