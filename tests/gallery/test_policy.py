"""MatchPolicy.decide: each watchlist decides on its own persons (issue 12, bug 1)."""

from __future__ import annotations

import pytest

from oneeye.gallery.policy import MatchPolicy
from oneeye.types import UNKNOWN, Identification, Match


def m(person: str, watchlist: str, distance: float) -> Match:
    return Match(person, watchlist, f"{person}-{watchlist}-t", distance)


POLICY = MatchPolicy.checked(0.4, {"amber-alert": 0.45}, margin=0.05)


def test_the_same_human_on_two_watchlists_is_accepted_on_both() -> None:
    # The bug: a customer enrolled from a photo and a case filed with it were each other's
    # rival (0.310 and 0.310) and the face was unknown to both.
    answer = POLICY.decide([m("cust-1", "customers", 0.310), m("case-1", "amber-alert", 0.310)], 5)
    assert {(x.person, x.watchlist) for x in answer.matches} == {
        ("cust-1", "customers"),
        ("case-1", "amber-alert"),
    }
    assert answer.match == answer.matches[0]
    assert answer.person in {"cust-1", "case-1"}


def test_a_rival_on_the_same_watchlist_still_means_not_sure_there_only() -> None:
    answer = POLICY.decide(
        [
            m("ann", "customers", 0.30),
            m("bob", "customers", 0.32),  # within the margin of ann: customers is not sure
            m("case-1", "amber-alert", 0.33),
        ],
        5,
    )
    assert answer.match is not None
    assert answer.match.person == "case-1"
    assert answer.matches == (answer.match,)
    assert answer.match_on("customers") is None


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ([], []),
        ([m("ann", "customers", 0.41)], []),  # beyond customers' 0.4
        ([m("ann", "amber-alert", 0.41)], [("ann", "amber-alert")]),  # within its own 0.45
        ([m("ann", "customers", 0.2), m("bob", "customers", 0.26)], [("ann", "customers")]),
        ([m("ann", "customers", 0.2), m("bob", "customers", 0.24)], []),
        (  # the nearest on a watchlist decides it, a farther one is never promoted
            [m("ann", "customers", 0.5), m("bob", "customers", 0.6)],
            [],
        ),
        (  # one person on two watchlists: a match on each, nearest first
            [m("ann", "amber-alert", 0.30), m("ann", "customers", 0.30), m("bob", "staff", 0.1)],
            [("bob", "staff"), ("ann", "amber-alert"), ("ann", "customers")],
        ),
    ],
)
def test_decide_per_watchlist(candidates: list[Match], expected: list[tuple[str, str]]) -> None:
    answer = POLICY.decide(candidates, 5)
    assert [(x.person, x.watchlist) for x in answer.matches] == expected
    assert answer.person == (expected[0][0] if expected else UNKNOWN)


def test_no_margin_accepts_each_watchlists_nearest() -> None:
    policy = POLICY.with_margin(0.0)
    answer = policy.decide([m("ann", "customers", 0.2), m("bob", "customers", 0.2001)], 1)
    assert answer.person == "ann"
    assert len(answer.candidates) == 1


@pytest.mark.parametrize(
    ("candidates", "watchlist", "expected"),
    [
        # fewer than asked for: the search saw every group
        ([m("ann", "customers", 0.1)], "amber-alert", False),
        # amber-alert absent, but the last candidate is within its threshold: it may hide there
        ([m("ann", "customers", 0.1), m("bob", "customers", 0.3)], "amber-alert", True),
        # ... and beyond it: nobody on amber-alert can be accepted
        ([m("ann", "customers", 0.1), m("bob", "customers", 0.5)], "amber-alert", False),
        # customers' nearest is accepted only if no other customer is within the margin, and
        # the search stopped within it
        ([m("ann", "customers", 0.1), m("c", "amber-alert", 0.12)], "customers", True),
        ([m("ann", "customers", 0.1), m("c", "amber-alert", 0.16)], "customers", False),
        ([m("ann", "customers", 0.1), m("bob", "customers", 0.12)], "customers", False),
        ([m("ann", "customers", 0.5), m("c", "amber-alert", 0.52)], "customers", False),
    ],
)
def test_needs_own_search(candidates: list[Match], watchlist: str, expected: bool) -> None:
    assert POLICY.needs_own_search(candidates, watchlist, 2) is expected


def test_identification_checks_its_matches() -> None:
    ann, bob = m("ann", "customers", 0.2), m("bob", "customers", 0.3)
    assert Identification(match=ann, candidates=(ann,)).matches == (ann,)
    with pytest.raises(ValueError, match="one match per watchlist"):
        Identification(match=ann, candidates=(ann, bob), matches=(ann, bob))
    with pytest.raises(ValueError, match="nearest of matches"):
        Identification(match=bob, candidates=(ann, bob), matches=(ann,))
