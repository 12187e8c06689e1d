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
        p for p, rows in people.items() if len(rows) >= 2 and (people_subset is None or p in people_subset)
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
