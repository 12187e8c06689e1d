"""When is the nearest enrolled person a match? Thresholds per watchlist, and the margin.

A candidate is accepted when its distance is within its watchlist's threshold (the default
for watchlists without one); with a margin, the accepted person must also be nearer than the
next person by at least the margin, or the answer is "not sure" (unknown): two people almost
as close must not produce a confident wrong name.

A :class:`MatchPolicy` never changes: the gallery swaps in a new one under its write lock, so
a search can read it once and decide without the lock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from oneeye.config import DEFAULT_MARGIN, DEFAULT_THRESHOLD
from oneeye.gallery.storage import check_name
from oneeye.types import Identification, Match


def check_threshold(value: float, what: str) -> float:
    """``value`` as a float if it is a distance in (0, 2].

    Raises:
        ValueError: it is not.
    """
    number = float(value)
    if not (math.isfinite(number) and 0.0 < number <= 2.0):
        raise ValueError(f"{what} must be a distance in (0, 2], got {value!r}")
    return number


def check_margin(value: float) -> float:
    """``value`` as a float if it is in [0, 2).

    Raises:
        ValueError: it is not.
    """
    if not 0.0 <= value < 2.0:
        raise ValueError(f"margin must be in [0, 2), got {value}")
    return float(value)


@dataclass(frozen=True)
class MatchPolicy:
    """Thresholds per watchlist, the default threshold and the margin, checked.

    Attributes:
        default_threshold: the largest accepted distance on a watchlist without its own.
        thresholds: per-watchlist thresholds that override the default.
        margin: how much nearer than the next person a match must be; 0 turns it off.
    """

    default_threshold: float = DEFAULT_THRESHOLD
    thresholds: Mapping[str, float] = field(default_factory=dict)
    margin: float = DEFAULT_MARGIN

    @classmethod
    def checked(
        cls,
        default_threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        margin: float = DEFAULT_MARGIN,
    ) -> MatchPolicy:
        """A policy from unchecked values.

        Raises:
            ValueError: a threshold outside (0, 2], a margin outside [0, 2), an empty name.
        """
        default = check_threshold(default_threshold, "default_threshold")
        checked_margin = check_margin(margin)
        own: dict[str, float] = {}
        for watchlist, value in (thresholds or {}).items():
            check_name(watchlist, "watchlist")
            own[watchlist] = check_threshold(value, f"threshold of {watchlist!r}")
        return cls(default, own, checked_margin)

    def threshold(self, watchlist: str) -> float:
        """The largest distance accepted as a match on ``watchlist``."""
        return self.thresholds.get(watchlist, self.default_threshold)

    def with_threshold(self, watchlist: str, value: float) -> MatchPolicy:
        """This policy with ``watchlist``'s threshold set to ``value`` (checked)."""
        check_name(watchlist, "watchlist")
        number = check_threshold(value, f"threshold of {watchlist!r}")
        return replace(self, thresholds={**self.thresholds, watchlist: number})

    def with_margin(self, value: float) -> MatchPolicy:
        """This policy with another margin (checked)."""
        return replace(self, margin=check_margin(value))

    def decide(self, candidates: Sequence[Match], k: int) -> Identification:
        """The identification for a face whose nearest groups are ``candidates``.

        Args:
            candidates: nearest first; at least two persons when there are (the margin
                needs the nearest rival).
            k: how many candidates to report.

        Returns:
            The first candidate within its threshold, unless a rival person is within the
            margin of it; ``match`` is ``None`` (unknown) otherwise.
        """
        accepted = next((m for m in candidates if m.distance <= self.threshold(m.watchlist)), None)
        if accepted is not None and self.margin > 0.0:
            rival = next((m for m in candidates if m.person != accepted.person), None)
            if rival is not None and rival.distance - accepted.distance < self.margin:
                accepted = None  # two people almost as close: "not sure" beats a wrong name
        return Identification(match=accepted, candidates=tuple(candidates[:k]))
