"""Who may do what with a case, and what a reporter may know of the cases' people.

A case is owned by the user or key that filed it. Its filer, coordinators and admins may
change it, manage its subscriptions and resolve it; nobody else. A reporter sees only its own
cases (others' are "not found" to it, so their existence is not revealed); viewers and tellers
see every case; the contact details (``contact``, ``reporter``, subscribers' addresses) are for
tellers and above and the filer. Matches found before a case is approved are held: a reporter,
even the filer, learns only how many there are until then. The web layer answers with these
functions; ``CaseScope`` (made by ``CaseService.scope_of``) carries the same rule to people,
sightings and photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from oneeye.services.auth import Principal
from oneeye.store.repos.cases import CaseInfo, MatchInfo


@dataclass(frozen=True, slots=True)
class CaseScope:
    """What a reporter may know of the people of Amber Alert cases (``AlertService.scope_of``).

    A case's person (and anyone on the ``amber-alert`` watchlist) exists for a reporter only if
    it filed a case for them; where and when they were seen, only once that case is approved.
    Everyone else is untouched: customers and unknown faces are seen as by a viewer."""

    hidden_people: frozenset[str]
    """Case people whose name, photos and templates are not for this reporter."""
    held_people: frozenset[str]
    """Case people whose sightings are not (yet) for this reporter: ``hidden_people`` and the
    people of its own cases that wait for approval."""
    held_sightings: frozenset[str]
    """Sightings matched to such a case while unknown (retro-search), by id."""

    def person_visible(self, person_id: str | None) -> bool:
        """Whether the person exists for the reporter."""
        return person_id is None or person_id not in self.hidden_people

    def sighting_visible(self, sighting_id: str, person_id: str | None) -> bool:
        """Whether the reporter may learn of this sighting (its camera, time, snapshot)."""
        if person_id is not None and person_id in self.held_people:
            return False
        return sighting_id not in self.held_sightings


def sees_own_cases_only(principal: Principal) -> bool:
    """Whether ``principal`` is a reporter (and not more): it sees only the cases it filed."""
    return principal.allows("reporter") and not principal.allows("teller")


def filed(principal: Principal, filed_by: str | None, reporter: str) -> bool:
    """Whether a case filed by ``filed_by`` (row id) as ``reporter`` (name) is
    ``principal``'s: same row and same name, so a row id a database reused for a new user
    does not inherit the case."""
    return filed_by == principal.ref and reporter == principal.actor


def owns_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` filed ``case`` (see ``filed``)."""
    return filed(principal, case.filed_by, case.reporter)


def may_see_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``case`` exists for ``principal``: viewers and tellers and above see every case,
    a reporter only its own."""
    if not principal.allows("viewer"):
        return False
    return not sees_own_cases_only(principal) or owns_case(principal, case)


def may_manage_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` may change, resolve or manage the subscriptions of ``case``: its
    filer (a reporter or above), coordinators and admins."""
    if principal.allows("coordinator"):
        return True
    return principal.allows("reporter") and owns_case(principal, case)


def may_see_contact(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` may read ``case``'s contact details (its contact, who filed it,
    who approved it, its subscribers' addresses): tellers and above, and the filer."""
    return principal.allows("teller") or owns_case(principal, case)


def may_see_held(principal: Principal) -> bool:
    """Whether ``principal`` sees the matches held while a case waits for approval (where and
    when the person was seen): viewers, tellers and above do; a reporter, even the filer, learns
    only how many there are until the case is approved, so that filing someone's photo is no
    way to follow them."""
    return not sees_own_cases_only(principal)


def as_seen_by(principal: Principal, case: CaseInfo) -> CaseInfo:
    """``case`` as ``principal`` may know it: for a reporter, the matches of a case that waits
    for approval are neither counted nor dated (``held_matches`` says how many there are)."""
    if case.approved_at is not None or may_see_held(principal):
        return case
    return replace(case, matches=0, last_seen_at=None)


def held_matches(case: CaseInfo) -> int:
    """How many of ``case``'s matches wait for its approval (all of them until then: approval
    releases every held match, and a match of an approved case is never held)."""
    return case.matches if case.approved_at is None else 0


def visible_matches(principal: Principal, matches: Sequence[MatchInfo]) -> list[MatchInfo]:
    """The matches ``principal`` may see: a reporter not the held ones."""
    return [m for m in matches if not m.held or may_see_held(principal)]


def may_approve(principal: Principal) -> bool:
    """Whether ``principal`` may approve cases (coordinators and admins); filing as one of
    them approves the case at once."""
    return principal.allows("coordinator")
