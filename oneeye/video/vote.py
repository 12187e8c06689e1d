"""Identity voting over one face track: who a track is, from several of its frames.

Pure logic on project types: no I/O, no images, no dlib. The pipeline adds each identified
frame of a track (see :mod:`oneeye.video.track` for the tracks themselves) and asks the vote
when the track's identity is settled; the vote also fuses the track's embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from oneeye.types import (
    UNKNOWN,
    Embedding,
    FaceQuality,
    Identification,
    check_embedding,
)

__all__ = ["TrackVote"]


@dataclass(frozen=True, slots=True)
class _Sample:
    label: str
    quality: float
    distance: float | None
    accepted: tuple[tuple[str | None, str, float | None], ...] = ()
    """(watchlist, person, distance) of each match the frame accepted; a person id given
    alone counts on the ``None`` watchlist."""


class TrackVote:
    """Decides who a track is from the identifications of several of its frames.

    Each watchlist votes on its own, as the gallery decides on its own (a face can be a
    customer and the subject of a missing-person case). On a watchlist, each sample votes for
    the person it accepted there, or for nobody, with its quality score as weight. A person
    is confirmed on the watchlist when their weight reaches ``min_votes`` and is at least
    ``dominance`` times the weight of every other person on it and of "nobody there". With one
    watchlist this is a vote over person ids and ``UNKNOWN``. :attr:`confirmed` is the primary
    answer: the confirmed person with the most weight, and it stays the same while its
    watchlist still confirms it (the answer does not flip between two watchlists that confirm
    the same face). After ``unknown_after`` samples with no person confirmed, the decision is
    ``UNKNOWN``, so a stranger yields a sighting too. The decision is recomputed from all
    samples, so a later run of good frames can still turn an unknown (or undecided) track into
    a confirmed person.

    **Fusion.** Samples added with their embedding are also fused: the quality-weighted mean
    of their unit embeddings, made unit length again (:attr:`fused_embedding`), once at least
    ``fuse_after`` of them are in. Frames of one face differ in pose, blur and noise, and
    their mean lies nearer the person's own centre than most single frames, so it is the
    track's strongest single piece of evidence. The caller identifies it against the gallery
    and hands the answer to :meth:`set_fused`, which replaces the previous fused answer. On
    each watchlist where the fused answer accepts a person, that person is confirmed (with
    the fused frames' total quality as weight), whatever the per-frame votes say there; where
    it accepts nobody, the per-frame votes decide as before. So fusion can name a face whose
    single frames each fall just short of the threshold, and overrule a few early frames that
    named someone else, but it never un-names a face its frames confirm. Before
    ``fuse_after`` frames, the per-frame votes alone decide, so a face is named as quickly as
    without fusion.
    """

    def __init__(
        self,
        *,
        min_votes: float = 2.0,
        dominance: float = 2.0,
        unknown_after: int = 5,
        fuse_after: int | None = None,
    ) -> None:
        """Create an empty vote for one track.

        Args:
            min_votes: quality-weighted votes a person needs (2.0 = two perfect frames); > 0.
            dominance: how many times the next label's weight the leader needs; >= 1.
            unknown_after: samples after which an unconfirmed track is decided ``UNKNOWN``;
                >= 1.
            fuse_after: samples with an embedding after which :attr:`fused_embedding` is
                given (see the class docstring); >= 1, or ``None`` for no fusion.

        Raises:
            ValueError: an argument is outside its range.
        """
        if not (math.isfinite(min_votes) and min_votes > 0.0):
            raise ValueError(f"min_votes must be a finite number > 0, got {min_votes!r}")
        if not (math.isfinite(dominance) and dominance >= 1.0):
            raise ValueError(f"dominance must be a finite number >= 1, got {dominance!r}")
        if (
            isinstance(unknown_after, bool)
            or not isinstance(unknown_after, int)
            or unknown_after < 1
        ):
            raise ValueError(f"unknown_after must be an int >= 1, got {unknown_after!r}")
        if fuse_after is not None and (
            isinstance(fuse_after, bool) or not isinstance(fuse_after, int) or fuse_after < 1
        ):
            raise ValueError(f"fuse_after must be an int >= 1 or None, got {fuse_after!r}")
        self.min_votes = min_votes
        self.dominance = dominance
        self.unknown_after = unknown_after
        self.fuse_after = fuse_after
        self._fused_sum: npt.NDArray[np.float64] | None = None
        self._fused_weight = 0.0
        self._fused_count = 0
        self._fused_qualities: list[float] = []
        self._fused: Identification | None = None
        self._samples: list[_Sample] = []
        self._weights: dict[str, float] = {}
        self._lanes: dict[str | None, dict[str, float]] = {}
        self._total = 0.0
        self._gave_up = False
        self._primary: tuple[str | None, str] | None = None

    def add(
        self,
        identity: Identification | str,
        quality: FaceQuality | float,
        distance: float | None = None,
        embedding: npt.ArrayLike | None = None,
    ) -> None:
        """Record one frame's identification.

        Args:
            identity: the gallery's answer, or a person id (``UNKNOWN`` for nobody).
            quality: the face's quality, or its score, in [0, 1]; the sample's weight.
            distance: embedding distance to the person, only with a person id; with an
                ``Identification`` it is taken from the match (or, when unknown, the nearest
                candidate).
            embedding: the frame's face embedding (128 finite numbers), to be fused with the
                track's other frames; ``None`` leaves the sample out of the fusion.

        Raises:
            ValueError: quality or distance out of range, an empty person id, or an embedding
                of the wrong shape or not finite.
            TypeError: ``distance`` given together with an ``Identification``.
        """
        accepted: tuple[tuple[str | None, str, float | None], ...]
        if isinstance(identity, Identification):
            if distance is not None:
                raise TypeError("distance comes from the Identification; pass it only with an id")
            label = identity.person
            nearest = identity.match or (identity.candidates[0] if identity.candidates else None)
            distance = nearest.distance if nearest is not None else None
            accepted = tuple((m.watchlist, m.person, m.distance) for m in identity.matches)
        else:
            if not isinstance(identity, str) or not identity:
                raise ValueError(f"identity must be a non-empty person id, got {identity!r}")
            label = identity
            accepted = () if label == UNKNOWN else ((None, label, distance),)
        score = quality.score if isinstance(quality, FaceQuality) else float(quality)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"quality must be in [0, 1], got {score!r}")
        if distance is not None and not (math.isfinite(distance) and distance >= 0.0):
            raise ValueError(f"distance must be a finite number >= 0, got {distance!r}")
        if embedding is not None:
            vector = check_embedding(embedding, "embedding").astype(np.float64)
            norm = float(np.linalg.norm(vector))
            if norm > 0.0:
                weighted = (score / norm) * vector
                self._fused_sum = (
                    weighted if self._fused_sum is None else self._fused_sum + weighted
                )
                self._fused_weight += score
                self._fused_count += 1
                self._fused_qualities.append(score)
        self._samples.append(_Sample(label, score, distance, accepted))
        self._weights[label] = self._weights.get(label, 0.0) + score
        self._total += score
        for watchlist, person, _ in accepted:
            lane = self._lanes.setdefault(watchlist, {})
            lane[person] = lane.get(person, 0.0) + score

    @property
    def fused_embedding(self) -> Embedding | None:
        """The quality-weighted mean of the samples' embeddings, unit length, once
        ``fuse_after`` samples came with one (and their weights add up to more than 0);
        ``None`` before, or without fusion."""
        if (
            self.fuse_after is None
            or self._fused_count < self.fuse_after
            or self._fused_sum is None
            or self._fused_weight <= 0.0
        ):
            return None
        norm = float(np.linalg.norm(self._fused_sum))
        if norm <= 0.0:
            return None
        return np.asarray(self._fused_sum / norm, dtype=np.float32)

    @property
    def fused_frames(self) -> int:
        """How many samples the fusion holds (those added with an embedding)."""
        return self._fused_count

    def set_fused(self, identity: Identification) -> None:
        """Record the gallery's answer for :attr:`fused_embedding`, replacing the previous.

        Args:
            identity: the gallery's identification of the fused embedding.

        Raises:
            ValueError: there is no fused embedding yet (too few samples, or no fusion).
        """
        if self.fused_embedding is None:
            raise ValueError("set_fused needs a fused embedding: too few samples or no fusion")
        self._fused = identity

    @property
    def fused(self) -> Identification | None:
        """The latest answer given to :meth:`set_fused`, or ``None``."""
        return self._fused

    def give_up(self) -> None:
        """Decide ``UNKNOWN`` now unless a person is confirmed: the caller has looked at the
        track for as long as it will wait. Later samples can still confirm a person."""
        self._gave_up = True

    @property
    def samples(self) -> int:
        """How many samples have been added."""
        return len(self._samples)

    @property
    def votes(self) -> dict[str, float]:
        """Quality-weighted votes per primary label (person ids and ``UNKNOWN``)."""
        return dict(self._weights)

    def _confirmed_on(self, lane: dict[str, float]) -> tuple[str, float] | None:
        people = sorted(((weight, person) for person, weight in lane.items()), reverse=True)
        if not people:
            return None
        weight, person = people[0]
        # A tiny tolerance so that e.g. 0.8 + 0.6 + 0.6 counts as reaching 2.0.
        if weight + 1e-9 < self.min_votes:
            return None
        nobody = self._total - sum(lane.values())
        rival = max([nobody, *(other for p, other in lane.items() if p != person)])
        if weight <= rival or weight + 1e-9 < self.dominance * rival:
            return None
        return person, weight

    def _found(self) -> dict[str | None, tuple[str, float]]:
        """Per watchlist that confirms someone: who, and the weight behind it (the fused
        answer's acceptances over the per-frame votes, see the class docstring)."""
        found = {w: c for w, lane in self._lanes.items() if (c := self._confirmed_on(lane))}
        if self._fused is not None:
            for match in self._fused.matches:
                found[match.watchlist] = (match.person, self._fused_weight)
        return found

    @property
    def decisions(self) -> dict[str | None, str]:
        """The person confirmed on each watchlist that confirms one (``None``: the persons
        given as bare ids)."""
        return {w: c[0] for w, c in self._found().items()}

    @property
    def confirmed_watchlist(self) -> str | None:
        """The watchlist of :attr:`confirmed` (``None`` when none, or for bare ids)."""
        return self._primary_lane()[0] if self.confirmed is not None else None

    def _primary_lane(self) -> tuple[str | None, str] | tuple[None, None]:
        found = self._found()
        if self._primary is not None:
            watchlist, person = self._primary
            if watchlist in found and found[watchlist][0] == person:
                return self._primary
        if not found:
            return (None, None)

        def rank(w: str | None) -> tuple[float, float, str]:
            distance = self.best_distance_on(w, found[w][0])
            return (-found[w][1], math.inf if distance is None else distance, w or "")

        watchlist = min(found, key=rank)
        self._primary = (watchlist, found[watchlist][0])
        return self._primary

    @property
    def confirmed(self) -> str | None:
        """The primary confirmed person's id, or ``None`` while no person has cleared the
        bar on any watchlist."""
        return self._primary_lane()[1]

    @property
    def decision(self) -> str | None:
        """The confirmed person, ``UNKNOWN`` after ``unknown_after`` samples without one (or
        once the caller gave up waiting), or ``None`` while undecided."""
        person = self.confirmed
        if person is not None:
            return person
        if self._gave_up or len(self._samples) >= self.unknown_after:
            return UNKNOWN
        return None

    def best_distance_on(self, watchlist: str | None, person: str) -> float | None:
        """The smallest distance among the samples that accepted ``person`` on ``watchlist``,
        and the fused answer when it accepted them there.

        Args:
            watchlist: the watchlist (``None`` for bare ids).
            person: the person id.

        Returns:
            The distance, or ``None`` when no such sample had one.
        """
        distances = [
            d
            for s in self._samples
            for w, p, d in s.accepted
            if w == watchlist and p == person and d is not None
        ]
        if self._fused is not None:
            distances += [
                m.distance
                for m in self._fused.matches
                if m.watchlist == watchlist and m.person == person
            ]
        return min(distances) if distances else None

    @property
    def best_distance(self) -> float | None:
        """The smallest distance among the samples for :attr:`decision` (for ``UNKNOWN``, the
        nearest non-accepted candidate), or ``None`` when undecided or no sample had one."""
        label = self.decision
        if label is not None and label != UNKNOWN:
            watchlist, person = self._primary_lane()
            if person is not None:
                return self.best_distance_on(watchlist, person)
        distances = [
            s.distance for s in self._samples if s.label == label and s.distance is not None
        ]
        return min(distances) if distances else None

    @property
    def best_quality(self) -> float | None:
        """The highest quality score among the samples for :attr:`decision`, or ``None`` when
        undecided."""
        label = self.decision
        if label is not None and label != UNKNOWN:
            watchlist, person = self._primary_lane()
            qualities = [s.quality for s in self._samples if (watchlist, person) in _lanes_of(s)]
            # Named by the fused answer alone: every fused frame spoke for it.
            qualities = qualities or self._fused_qualities
            return max(qualities) if qualities else None
        qualities = [s.quality for s in self._samples if s.label == label]
        return max(qualities) if qualities else None


def _lanes_of(sample: _Sample) -> set[tuple[str | None, str]]:
    return {(w, p) for w, p, _ in sample.accepted}
