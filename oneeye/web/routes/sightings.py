"""Sightings: ``/sightings`` (filter by camera, person, watchlist and time) and
``/sightings/{id}``. Viewer and above; embeddings of unknown faces are never returned.

A reporter does not learn where or when an Amber Alert case's person was seen unless it filed
that case and the case is approved (``oneeye.services.alerts.CaseScope``): such sightings are
left out of its lists and are "not found" to it, like an unknown id.

Feedback (``oneeye.services.feedback``): ``POST /sightings/{id}/verdict`` confirms or rejects a
match (``teller`` for a customer's arrival, ``coordinator`` for a case sighting; a rejection
takes the card off every dashboard), ``POST /sightings/{id}/enrol`` adds a confirmed
sighting's face to the person's templates, or names an unknown face, and ``GET
/sightings/rejections`` (``admin``) counts the rejections between people. All audited."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from oneeye.services.context import Services
from oneeye.services.feedback import RejectedPair, SightingEnrolment, Verdict
from oneeye.services.history import (
    EXPORT_MAX_ROWS,
    Cursor,
    HistoryQuery,
    csv_lines,
    export,
)
from oneeye.services.sighting_queries import SightingView
from oneeye.services.sightings import photo_url
from oneeye.vision.engine import Deadline
from oneeye.web.deps import Admin, ServicesDep, Teller, Viewer, audit_access
from oneeye.web.offload import work_on_photo
from oneeye.web.routes.people import EnrolledPublic, enrolled_public

router = APIRouter(prefix="/sightings", tags=["sightings"])


class DecisionPublic(BaseModel):
    """Who a sighting was said to be, from ``decided_at`` until the next decision."""

    person_id: str | None
    person_name: str | None
    watchlist: str | None
    distance: float | None
    decided_at: datetime


class SightingPublic(BaseModel):
    """One sighting: a track of one face on one camera (a visit, not a frame)."""

    id: str
    camera_id: str
    track: int
    person_id: str | None
    """``None``: an unknown face."""
    person_name: str | None
    watchlist: str | None
    distance: float | None
    quality: float | None
    frame: int
    box: tuple[int, int, int, int]
    """(top, right, bottom, left) in the frame."""
    first_seen: datetime
    last_seen: datetime
    left_at: datetime | None
    snapshot_url: str | None
    revised: bool = False
    """Whether an earlier decision (shown to the dashboards) was replaced; see ``decisions``."""
    decisions: list[DecisionPublic] = []
    """The decision trail, oldest first; the last is the current one."""
    verdict: Literal["confirmed", "rejected", "none"] = "none"
    """What a teller or coordinator said of the match to ``person_id`` (``POST
    /sightings/{id}/verdict``); a rejected match stays in the history, marked."""


def _public(view: SightingView, verdict: str = "none") -> SightingPublic:
    row = view.sighting
    return SightingPublic(
        id=row.id,
        camera_id=row.camera_id,
        track=row.track,
        person_id=row.person_id,
        person_name=view.person_name,
        watchlist=row.watchlist,
        distance=row.distance,
        quality=row.quality,
        frame=row.frame,
        box=(row.top, row.right, row.bottom, row.left),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        left_at=row.left_at,
        snapshot_url=photo_url(row.snapshot_key),
        revised=view.revised,
        decisions=[
            DecisionPublic(
                person_id=d.person_id,
                person_name=d.person_name,
                watchlist=d.watchlist,
                distance=d.distance,
                decided_at=d.decided_at,
            )
            for d in view.decisions
        ],
        verdict=verdict,  # type: ignore[arg-type]
    )


def verdicts_of(services: Services, views: list[SightingView]) -> dict[str, str]:
    """Each sighting's verdict on its current match (``none`` when nobody judged it)."""
    return services.feedback.verdict_states([(v.sighting.id, v.sighting.person_id) for v in views])


CURSOR_SEPARATOR = "~"


def cursor_text(cursor: Cursor) -> str:
    """A page cursor as the ``after`` query value: ``<first_seen ISO>~<sighting id>``."""
    return f"{cursor[0].isoformat()}{CURSOR_SEPARATOR}{cursor[1]}"


class HistoryFilter(BaseModel):
    """The history's filters (page and CSV): every one given must match. Days are UTC, both
    ends included; ``after`` is the cursor of the previous page's last sighting."""

    model_config = ConfigDict(extra="forbid")

    person: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    """Decided to be this person, now or before a revision."""
    camera: str | None = Field(default=None, max_length=64)
    watchlist: str | None = Field(default=None, max_length=64)
    unknown: bool = False
    """Only faces that are unknown now."""
    since: date | None = None
    until: date | None = None
    after: str | None = Field(default=None, max_length=80)

    @field_validator("after")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            cls.parse_cursor(value)
        return value

    @staticmethod
    def parse_cursor(value: str) -> Cursor:
        """``after`` as a cursor; ``ValueError`` saying what is wrong."""
        when, _, ident = value.rpartition(CURSOR_SEPARATOR)
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None or len(ident) != 32 or not ident.isalnum():
            raise ValueError("after must be a page cursor (<time>~<sighting id>) from a page")
        return (at, ident)

    def query(self) -> HistoryQuery:
        """The filters for the history service."""
        return HistoryQuery(
            person=self.person,
            camera=self.camera,
            watchlist=self.watchlist,
            unknown=self.unknown,
            since=self.since,
            until=self.until,
        )

    def cursor(self) -> Cursor | None:
        """Where the page starts (``None``: the newest)."""
        return None if self.after is None else self.parse_cursor(self.after)

    def audit_detail(self) -> dict[str, object]:
        """The filters as the audit log keeps them."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class VerdictIn(BaseModel):
    """A verdict on a sighting's match to its person."""

    verdict: Literal["confirm", "reject"]
    actual_person_id: str | None = Field(
        default=None, max_length=32, description="With a rejection: who the face really is."
    )


class VerdictPublic(BaseModel):
    """A stored verdict."""

    sighting_id: str
    person_id: str
    verdict: str
    actual_person_id: str | None
    actor: str
    at: datetime


class SightingEnrolIn(BaseModel):
    """Enrol a sighting's face: into its (confirmed) person, or name it as ``person_id``."""

    person_id: str | None = Field(default=None, max_length=32)
    force: bool = Field(
        default=False, description="Enrol even if the face may be someone else's (audited)."
    )


class SightingEnrolmentPublic(BaseModel):
    """A template enrolled from a sighting."""

    sighting_id: str
    person_id: str
    template: EnrolledPublic


class RejectedPairPublic(BaseModel):
    """How often faces matched to a person were rejected, by who they really were."""

    person_id: str
    person_name: str | None
    actual_person_id: str | None
    """``None``: nobody said who the face was."""
    actual_name: str | None
    rejections: int
    last_at: datetime


def verdict_public(verdict: Verdict) -> VerdictPublic:
    """A verdict as its JSON schema."""
    return VerdictPublic(
        sighting_id=verdict.sighting_id,
        person_id=verdict.person_id,
        verdict=verdict.verdict,
        actual_person_id=verdict.actual_person_id,
        actor=verdict.actor,
        at=verdict.at,
    )


def pair_public(pair: RejectedPair) -> RejectedPairPublic:
    """A rejected pair as its JSON schema."""
    return RejectedPairPublic(
        person_id=pair.person_id,
        person_name=pair.person_name,
        actual_person_id=pair.actual_person_id,
        actual_name=pair.actual_name,
        rejections=pair.rejections,
        last_at=pair.last_at,
    )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name} needs a time zone, e.g. 2026-01-31T09:00:00Z",
        )
    return value


@router.get("", response_model=list[SightingPublic])
def list_sightings(
    services: ServicesDep,
    principal: Viewer,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    person: Annotated[str | None, Query(max_length=32)] = None,
    watchlist: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="first seen at or after (ISO-8601)")
    ] = None,
    until: Annotated[datetime | None, Query(description="first seen before (ISO-8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    unknown: Annotated[bool, Query(description="only faces that are unknown now")] = False,
) -> list[SightingPublic]:
    """Sightings, newest first."""
    scope = services.alerts.scope_of(principal)
    views = services.sighting_queries.query(
        camera=camera,
        person=person,
        watchlist=watchlist,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        limit=limit,
        exclude_people=scope.held_people if scope is not None else (),
        exclude_sightings=scope.held_sightings if scope is not None else (),
        unknown=unknown,
    )
    verdicts = verdicts_of(services, views)
    return [_public(view, verdicts[view.sighting.id]) for view in views]


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_sightings(
    request: Request,
    services: ServicesDep,
    principal: Teller,
    filters: Annotated[HistoryFilter, Query()],
) -> StreamingResponse:
    """The history as CSV (teller and above): the sightings the filters find, newest first,
    each with its decision trail, at most ``EXPORT_MAX_ROWS`` rows; streamed. Every export
    is written to the audit log before it starts."""
    audit_access(
        services,
        principal,
        request,
        "sighting.export",
        filters.person or "*",
        {**filters.audit_detail(), "max_rows": EXPORT_MAX_ROWS},
    )
    # A sync iterator: Starlette reads it on a worker thread, so the paging queries never run
    # on the event loop.
    rows = csv_lines(export(services.sighting_queries, filters.query()))
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="oneeye-sightings.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/rejections", response_model=list[RejectedPairPublic], summary="Rejected matches by pair"
)
def list_rejections(
    request: Request,
    services: ServicesDep,
    admin: Admin,
    minimum: Annotated[int, Query(ge=1, le=1000, description="Only pairs rejected this often")] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RejectedPairPublic]:
    """Persons whose matches were rejected, by who the faces really were, most rejections
    first: repeated ones say two people are confused (enrol better photos, or raise the
    watchlist's threshold). Audited."""
    pairs = services.feedback.rejected_pairs(minimum=minimum, limit=limit)
    audit_access(services, admin, request, "sighting.rejections", "", {"pairs": len(pairs)})
    return [pair_public(p) for p in pairs]


@router.get("/{sighting_id}", response_model=SightingPublic)
def get_sighting(sighting_id: str, services: ServicesDep, principal: Viewer) -> SightingPublic:
    """One sighting."""
    view = services.sighting_queries.get(sighting_id)
    scope = services.alerts.scope_of(principal) if view is not None else None
    if view is None or (
        scope is not None
        and not all(
            scope.sighting_visible(view.sighting.id, person)
            for person in {view.sighting.person_id, *(d.person_id for d in view.decisions)}
        )
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no sighting {sighting_id!r}")
    return _public(view, verdicts_of(services, [view])[view.sighting.id])


@router.post(
    "/{sighting_id}/verdict",
    response_model=VerdictPublic,
    summary="Confirm or reject a match",
    responses={
        400: {"description": "An unknown face: nothing to judge"},
        403: {"description": "The role may not judge this match"},
        404: {"description": "No such sighting"},
    },
)
def judge_sighting(
    sighting_id: Annotated[str, Path(max_length=32)],
    body: VerdictIn,
    services: ServicesDep,
    teller: Teller,
) -> VerdictPublic:
    """Say whether the sighting's face is the person it was matched to: ``teller`` for a
    customer's arrival, ``coordinator`` for a case sighting (and any other watchlist). A
    rejection is never shown again: its card leaves every dashboard and the case page."""
    verdict = services.feedback.judge(
        sighting_id, body.verdict, teller, actual_person_id=body.actual_person_id
    )
    return verdict_public(verdict)


@router.post(
    "/{sighting_id}/enrol",
    response_model=SightingEnrolmentPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Enrol a sighting's face",
    responses={
        403: {"description": "The role may not enrol this person"},
        404: {"description": "No such sighting"},
        409: {
            "description": "The match is not confirmed (or, to name someone else, not "
            "rejected), or the face may be someone else's (``error.same_face``)"
        },
        422: {"description": "No usable face kept (no snapshot, or too poor a face)"},
    },
)
async def enrol_sighting(
    request: Request,
    sighting_id: Annotated[str, Path(max_length=32)],
    body: SightingEnrolIn,
    services: ServicesDep,
    teller: Teller,
) -> SightingEnrolmentPublic:
    """Add the sighting's face (its kept snapshot, quality- and same-face-checked) to its
    confirmed person's templates, or to ``person_id``'s for an unknown face or a rejected
    match. The template remembers the sighting; an admin removes it with ``DELETE
    /people/{id}/templates/{template}``."""

    def work(deadline: Deadline) -> SightingEnrolment:
        deadline.check()
        return services.feedback.enrol(
            sighting_id, teller, person_id=body.person_id, force=body.force
        )

    done = await work_on_photo(request, work)
    return SightingEnrolmentPublic(
        sighting_id=done.sighting_id,
        person_id=done.person_id,
        template=enrolled_public(done.template),
    )
