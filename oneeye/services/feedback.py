"""Feedback that teaches: confirm or reject a match, and enrol a sighting's face.

A teller confirms or rejects the match of an arrival (a sighting on a ``customers``
watchlist); a coordinator that of a case sighting (``amber-alert``, and any other action);
admins both. A rejection is stored (who, when) and that (sighting, person) pair is never shown
again: a ``sighting.withdrawn`` event takes the card off every dashboard, and the case page
and the dashboard's first render leave it out. Rejections between two people are counted for
the admins (``rejected_pairs``).

A confirmed sighting's face, from its kept snapshot, can be added to the person's templates
(``enrol``): the snapshot must show one usable face of at least ``MIN_QUALITY``, and it passes
the enrolment's same-face check like any photo. An unknown face, or a rejected match, can be
named the same way ("this is customer X"). The template remembers its sighting, so an admin
sees which templates came from cameras and can delete them. Everything is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from oneeye.errors import Conflict, Forbidden, Invalid, NotFound, OneEyeError, Unusable
from oneeye.services.arrivals import ACTION as CUSTOMERS_ACTION
from oneeye.services.auth import AuthService, Principal
from oneeye.services.enrolment import EnrolledTemplate, EnrolmentService, encode_jpeg
from oneeye.services.events import EventHub
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import feedback as verdicts
from oneeye.store.repos import people
from oneeye.store.repos import sightings as sighting_rows
from oneeye.store.repos.feedback import CONFIRM, REJECT, RejectedPair, Verdict
from oneeye.store.repos.sightings import SightingRecord
from oneeye.store.repos.watchlists import actions_of
from oneeye.types import Face

__all__ = [
    "CONFIRM",
    "MIN_QUALITY",
    "REJECT",
    "WITHDRAWN",
    "FeedbackError",
    "FeedbackService",
    "RejectedPair",
    "Verdict",
]

logger = logging.getLogger(__name__)

WITHDRAWN = "sighting.withdrawn"
"""The dashboard event that takes a rejected match's card off every dashboard."""
MIN_QUALITY = 0.3
"""A sighting's face must rate at least this (``FaceQuality.score``) to become a template:
the cameras trust faces from 0.25 for a vote, a template is kept for good."""


class FeedbackError(Invalid):
    """A verdict or an enrolment from a sighting cannot be made as asked."""


class SightingNotFoundError(FeedbackError, NotFound):
    """No sighting has this id (or the asker may not know of it)."""


class NotYoursError(FeedbackError, Forbidden):
    """The asker's role may not judge this match or enrol this person."""


class NotConfirmedError(FeedbackError, Conflict):
    """The sighting must be confirmed (or, to name someone else, rejected) first."""


class UnusableSightingError(FeedbackError, Unusable):
    """The sighting kept no usable face (no snapshot, no face in it, or too poor a face)."""


@dataclass(frozen=True, slots=True)
class SightingEnrolment:
    """A template enrolled from a sighting."""

    sighting_id: str
    person_id: str
    template: EnrolledTemplate


def role_for(actions: Collection[str | None]) -> str:
    """The lowest role that may judge a match on watchlists with these actions, or enrol a
    person on them: ``teller`` for customers only, ``coordinator`` otherwise (case people and
    any other watchlist)."""
    named = {a for a in actions if a}
    return "teller" if named and named <= {CUSTOMERS_ACTION} else "coordinator"


class FeedbackService:
    """Verdicts on matches and enrolment from sightings."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        events: EventHub,
        enrolment: EnrolmentService,
        auth: AuthService,
    ) -> None:
        self.db = db
        self.photos = photos
        self.events = events
        self.enrolment = enrolment
        self.auth = auth

    # verdicts -------------------------------------------------------------------------------

    def _sighting(self, sighting_id: str) -> SightingRecord:
        with self.db.session() as session:
            found = sighting_rows.get(session, sighting_id)
        if found is None:
            raise SightingNotFoundError(f"there is no sighting {sighting_id!r}")
        return found[0]

    def _check_role(self, principal: Principal, actions: Collection[str | None], what: str) -> None:
        needed = role_for(actions)
        if not principal.allows(needed):
            raise NotYoursError(f"{what} needs the {needed} role; you are {principal.role}")

    def judge(
        self,
        sighting_id: str,
        verdict: str,
        principal: Principal,
        *,
        actual_person_id: str | None = None,
    ) -> Verdict:
        """Confirm or reject the match of a sighting to its person.

        Args:
            sighting_id: the sighting.
            verdict: ``confirm`` or ``reject``.
            principal: who judges (``teller`` for a customer's arrival, ``coordinator`` for a
                case sighting or any other watchlist's).
            actual_person_id: with a rejection, who the face really is, if known.

        Raises:
            SightingNotFoundError: no such sighting.
            FeedbackError: an unknown face (nothing to judge), or an unknown actual person.
            NotYoursError: the role may not judge this match.
        """
        if verdict not in (CONFIRM, REJECT):
            raise FeedbackError(f"a verdict is {CONFIRM!r} or {REJECT!r}, got {verdict!r}")
        sighting = self._sighting(sighting_id)
        person_id = sighting.person_id
        if person_id is None:
            raise FeedbackError(
                "this sighting is an unknown face: there is no match to confirm or reject "
                "(name it instead)"
            )
        with self.db.session() as session:
            actions = actions_of(session, [sighting.watchlist] if sighting.watchlist else [])
        self._check_role(principal, actions, "judging this match")
        if actual_person_id is not None:
            if verdict != REJECT or actual_person_id == person_id:
                raise FeedbackError(
                    "who the face really is goes with a rejection, and is not "
                    "the person it was matched to"
                )
            self._check_person(actual_person_id)
        with self.db.session() as session:
            stored = verdicts.record(
                session,
                sighting_id,
                person_id,
                verdict,
                actor=principal.actor,
                actual_person_id=actual_person_id,
            )
        detail: dict[str, object] = {"person": person_id, "camera": sighting.camera_id}
        if actual_person_id is not None:
            detail["actual_person"] = actual_person_id
        self.auth.audit(
            principal.actor, f"sighting.{verdict}", sighting_id, detail, role=principal.role
        )
        if verdict == REJECT:
            self.events.publish(
                WITHDRAWN,
                # No person: every role gets this event (a reporter too), and an id says nothing.
                {"sighting_id": sighting_id, "reason": "rejected"},
                audience="viewer",
            )
        logger.info(
            "camera %s: sighting %s of person %s %sed",
            sighting.camera_id,
            sighting_id,
            person_id,
            "confirm" if verdict == CONFIRM else "reject",
        )
        return stored

    def _check_person(self, person_id: str) -> list[str]:
        with self.db.session() as session:
            watchlists = people.watchlists_of(session, person_id)
        if watchlists is None:
            raise FeedbackError(f"no person with id {person_id!r}")
        return watchlists

    def verdicts(self, sighting_id: str) -> list[Verdict]:
        """Every verdict on a sighting's matches."""
        with self.db.session() as session:
            return verdicts.of_sighting(session, sighting_id)

    def rejected(self, sighting_ids: Collection[str]) -> set[tuple[str, str]]:
        """The rejected (sighting, person) pairs among ``sighting_ids``: never shown again."""
        return self._judged(sighting_ids, REJECT)

    def confirmed(self, sighting_ids: Collection[str]) -> set[tuple[str, str]]:
        """The confirmed (sighting, person) pairs among ``sighting_ids``."""
        return self._judged(sighting_ids, CONFIRM)

    def verdict_states(self, matches: Collection[tuple[str, str | None]]) -> dict[str, str]:
        """The verdict on each (sighting, person) match, by sighting id: ``rejected``,
        ``confirmed`` or ``none`` (an unknown face, or nobody judged it). The history keeps
        rejected matches, marked as such."""
        ids = [sighting for sighting, person in matches if person is not None]
        rejected = self.rejected(ids)
        confirmed = self.confirmed(ids)
        states: dict[str, str] = {}
        for sighting, person in matches:
            pair = (sighting, person or "")
            states[sighting] = (
                "rejected" if pair in rejected else "confirmed" if pair in confirmed else "none"
            )
        return states

    def _judged(self, sighting_ids: Collection[str], verdict: str) -> set[tuple[str, str]]:
        if not sighting_ids:
            return set()
        with self.db.session() as session:
            return verdicts.judged(session, sighting_ids, verdict)

    def rejected_pairs(self, *, minimum: int = 1, limit: int = 200) -> list[RejectedPair]:
        """Persons whose matches were rejected, by who the faces really were, most first."""
        with self.db.session() as session:
            return verdicts.rejected_pairs(session, minimum=minimum, limit=limit)

    # enrolment from a sighting ----------------------------------------------------------------

    def enrol(
        self,
        sighting_id: str,
        principal: Principal,
        *,
        person_id: str | None = None,
        force: bool = False,
    ) -> SightingEnrolment:
        """Add a sighting's face (from its kept snapshot) to a person's templates.

        Args:
            sighting_id: the sighting.
            principal: who enrols (the role that may judge matches of the person's watchlists).
            person_id: whose face it is; default the sighting's person, whose match must be
                confirmed. Another person names the face: the sighting must be an unknown face
                or a rejected match (which then records who it really was).
            force: enrol even when the same-face check finds the face suspicious (audited).

        Raises:
            SightingNotFoundError, NotConfirmedError, NotYoursError, UnusableSightingError,
            SameFaceError (``force`` not set), FeedbackError (no person named).
        """
        sighting = self._sighting(sighting_id)
        target = person_id or sighting.person_id
        if target is None:
            raise FeedbackError("this sighting is an unknown face: say who it is (person_id)")
        watchlists = self._check_person(target)
        with self.db.session() as session:
            actions = actions_of(session, watchlists)
        self._check_role(principal, actions, "enrolling this person's face")
        judged = {(v.person_id, v.verdict) for v in self.verdicts(sighting_id)}
        naming = target != sighting.person_id
        if not naming and (target, CONFIRM) not in judged:
            raise NotConfirmedError("confirm the match first; only a confirmed face is enrolled")
        if naming and sighting.person_id is not None and (sighting.person_id, REJECT) not in judged:
            raise NotConfirmedError(
                "this sighting was matched to another person: reject that match first"
            )
        face, jpeg = self._face_of(sighting)
        enrolled = self.enrolment.enrol_face(
            target, face, jpeg, actor=principal.actor, force=force, sighting_id=sighting_id
        )
        if naming:
            with self.db.session() as session:
                if sighting.person_id is not None:
                    verdicts.record(
                        session,
                        sighting_id,
                        sighting.person_id,
                        REJECT,
                        actor=principal.actor,
                        actual_person_id=target,
                    )
                else:
                    verdicts.record(session, sighting_id, target, CONFIRM, actor=principal.actor)
        return SightingEnrolment(sighting_id, target, enrolled)

    def _face_of(self, sighting: SightingRecord) -> tuple[Face, bytes]:
        """The one usable face of a sighting's snapshot, and the snapshot as JPEG."""
        if sighting.snapshot_key is None:
            raise UnusableSightingError("this sighting kept no snapshot; there is no face to enrol")
        try:
            data = self.photos.get(sighting.snapshot_key)
        except OneEyeError:
            raise UnusableSightingError(
                "this sighting's snapshot is gone (deleted by retention?)"
            ) from None
        image = self.enrolment.decode_upload(data, "the snapshot")
        try:
            face = self.enrolment.engine.enrolment_face(image, thorough=True)
        except OneEyeError as exc:
            raise UnusableSightingError(
                f"the sighting's snapshot cannot be enrolled: {exc}"
            ) from None
        if face.quality.score < MIN_QUALITY:
            raise UnusableSightingError(
                f"the sighting's face is too poor to keep (quality {face.quality.score:.2f}, "
                f"at least {MIN_QUALITY} needed)"
            )
        return face, encode_jpeg(image)
