"""When is the nearest enrolled person a match? Thresholds per watchlist, and the margin.

Each watchlist decides on its own persons. On a watchlist, the nearest person is accepted
when their distance is within the watchlist's threshold (the default for watchlists without
one); with a margin, they must also be nearer than the next person *on the same watchlist* by
at least the margin, or the answer is "not sure" (unknown there): two people almost as close
must not produce a confident wrong name. A person on another watchlist is no rival: the same
human enrolled as a customer and filed as a missing person is two persons on two watchlists,
and the face is both (issue 12: with one margin over every watchlist, each cancelled the
other and the face was "unknown" to both).

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
            candidates: nearest first, one per (person, watchlist). For each watchlist whose
                nearest person may be accepted, they must hold that watchlist's nearest person
                and, when there is one within the margin, its nearest other person (the
                gallery searches so that they do); a missing rival counts as far away.
            k: how many candidates to report.

        Returns:
            Per watchlist, its nearest person when within its threshold and no other person
            of that watchlist is within the margin of them (``matches``, nearest first);
            ``match`` is the nearest of those, ``None`` (unknown) when there is none.
        """
        by_watchlist: dict[str, list[Match]] = {}
        for m in candidates:
            by_watchlist.setdefault(m.watchlist, []).append(m)
        accepted: list[Match] = []
        for watchlist, own in by_watchlist.items():
            nearest = own[0]
            if nearest.distance > self.threshold(watchlist):
                continue
            if self.margin > 0.0:
                rival = next((m for m in own if m.person != nearest.person), None)
                if rival is not None and rival.distance - nearest.distance < self.margin:
                    continue  # two people almost as close: "not sure" beats a wrong name
            accepted.append(nearest)
        accepted.sort(key=lambda m: m.distance)
        return Identification(
            match=accepted[0] if accepted else None,
            candidates=tuple(candidates[:k]),
            matches=tuple(accepted),
        )

    def needs_own_search(self, candidates: Sequence[Match], watchlist: str, k: int) -> bool:
        """Whether ``candidates`` (a search for the ``k`` nearest groups on every watchlist)
        may miss what :meth:`decide` needs on ``watchlist``: its nearest person when they may
        be within its threshold, or the nearest other person on it when they may be within
        the margin. Every group missing from the candidates is at least as far as the last.

        Args:
            candidates: the search's answer, nearest first.
            watchlist: a watchlist holding templates.
            k: how many groups the search asked for.

        Returns:
            True when ``watchlist`` must be searched on its own for this face.
        """
        if len(candidates) < k:
            return False  # fewer than asked for: every group is here
        last = candidates[-1].distance
        own = [m for m in candidates if m.watchlist == watchlist]
        if not own:
            return last <= self.threshold(watchlist)
        nearest = own[0]
        if nearest.distance > self.threshold(watchlist) or self.margin == 0.0:
            return False
        if any(m.person != nearest.person for m in own):
            return False
        return last - nearest.distance < self.margin
