"""Amber Alert cases and who is told about them: ``/cases`` and ``/subscriptions``.

Filing and checking a photo need ``reporter``; reading cases needs ``viewer``. A case belongs
to whoever filed it: its filer, coordinators and admins may resolve it and manage its
subscriptions, others get a 403 saying so; a reporter sees only its own cases and gets a 404
for the rest, as if they did not exist. Contact details (``contact``, ``reporter``,
``approved_by``, subscribers' addresses) are ``null`` or refused below ``teller`` unless you
filed the case. Approving a case (its sightings may then be sent to its subscribers) needs
``coordinator``; a coordinator's or admin's own case is approved as it is filed.
Subscriptions to every case (``/subscriptions``) need ``admin``. A photo that cannot be filed
(not an image, too large, no face, several faces) is answered with a 4xx that says why, and
nothing is stored. A webhook's signing secret is shown once, in the
answer that creates it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from pydantic import BaseModel, Field

from oneeye.services.alerts import (
    MAX_CONTACT,
    MAX_DESCRIPTION,
    MAX_HOURS,
    MAX_NAME,
    MAX_PHOTOS,
    AlertError,
    AlertService,
    CaseInfo,
    MatchInfo,
    PhotoCheck,
    SubscriptionInfo,
    SubscriptionNotFoundError,
    as_seen_by,
    held_matches,
    may_approve,
    may_manage_case,
    may_see_case,
    may_see_contact,
    sees_own_cases_only,
    visible_matches,
)
from oneeye.services.auth import Principal
from oneeye.services.notify.senders import ChannelName as Channel
from oneeye.services.notify.senders import mask_address
from oneeye.services.sightings import photo_url
from oneeye.vision.engine import Deadline
from oneeye.web.deps import (
    Admin,
    Coordinator,
    Reporter,
    Viewer,
    audit_access,
    client_address,
    get_services,
)
from oneeye.web.limits import UPLOAD_BODY, accepts
from oneeye.web.offload import work_on_photo
from oneeye.web.routes.people import BoxPublic, box_public, read_upload

logger = logging.getLogger(__name__)

router = APIRouter()

Status = Literal["active", "resolved", "expired"]
MAX_EMAIL = 254
"""The longest email address a report takes (RFC 5321's limit)."""
MAX_PHONE = 32
"""The longest phone number a report takes, as typed (spaces and dashes included)."""


def get_alerts(request: Request) -> AlertService:
    """The server's ``AlertService`` (``services.alerts``, or ``app.state.alerts``); 503 when
    this server runs without one."""
    alerts = getattr(request.app.state.services, "alerts", None)
    if alerts is None:
        alerts = getattr(request.app.state, "alerts", None)
    if not isinstance(alerts, AlertService):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "Amber Alert cases are not running on this server"
        )
    return alerts


# schemas -------------------------------------------------------------------------------------


class CasePublic(BaseModel):
    """A case as the API shows it."""

    id: str
    name: str
    description: str
    contact: str | None
    """Whom to call; ``null`` for a viewer, or a reporter who did not file the case."""
    reporter: str | None
    """Who filed it; ``null`` when ``contact`` is."""
    status: Status
    person_id: str | None
    photo_urls: list[str]
    """The case's photos (every viewer may fetch them: the alert is meant to be seen)."""
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    purged_at: datetime | None
    """When retention deleted the photos, templates and snapshots."""
    matches: int
    """Sightings of the person you may see (a reporter: none until the case is approved)."""
    last_seen_at: datetime | None
    held_matches: int
    """Sightings waiting for the case's approval (shown to viewers, tellers and above; to a
    reporter only counted)."""
    approved: bool
    """Whether its sightings may be sent to its subscribers (a coordinator or admin approved
    it); until then they are held."""
    approved_at: datetime | None
    approved_by: str | None
    """Who approved it; ``null`` when ``contact`` is."""
    can_manage: bool
    """Whether you may resolve it and manage its subscriptions."""


class MatchPublic(BaseModel):
    """A sighting of the case's person: ``live`` (a camera, now) or ``retro`` (an unknown face
    from before the case was filed)."""

    id: int
    sighting_id: str
    camera_id: str
    camera_name: str
    location: str
    distance: float
    kind: Literal["live", "retro"]
    seen_at: datetime
    found_at: datetime
    notified: bool
    """Whether anyone was told of it: false when nobody was subscribed, each subscriber was
    inside its own (case, camera) cooldown, or it is held: stored, not sent."""
    held: bool
    """Found before the case was approved: sent (by the cooldown) when it is approved."""
    snapshot_url: str | None


class CaseDetail(CasePublic):
    """A case with every match, in the order they were seen (the timeline)."""

    timeline: list[MatchPublic]
    rejected_matches: int = 0
    """Matches a coordinator rejected ("not them", ``POST /sightings/{id}/verdict``): left
    out of ``timeline``, like the case page does (``matches`` still counts them)."""


class PhotoCheckPublic(BaseModel):
    """Whether a photo can be filed, and why not."""

    usable: bool
    reason: str | None
    """Why not, in the engine's words."""
    box: BoxPublic | None
    quality: float | None
    advice: str | None
    """Why not and what to do, in plain words (what the report page shows a parent)."""


class SubscriptionCreate(BaseModel):
    """Someone to tell: an email address, a phone number (E.164, for SMS) or a webhook URL."""

    channel: Channel
    address: str = Field(min_length=3, max_length=2000, examples=["desk@example.org"])
    secret: str | None = Field(default=None, min_length=16, max_length=128)
    """A webhook's HMAC-SHA256 key; one is generated (and shown once) when not given."""


class SubscriptionPublic(BaseModel):
    """A subscription (never its secret)."""

    id: int
    case_id: str | None
    """``None``: every case."""
    channel: Channel
    address: str
    masked_address: str
    """The address as a page shows it: ``a***@example.org``, ``+44*******958``, a URL's
    host."""
    active: bool
    created_by: str
    created_at: datetime


class SubscriptionCreated(SubscriptionPublic):
    """A new subscription; a webhook's ``secret`` is shown here and never again."""

    secret: str | None


def case_public(info: CaseInfo, principal: Principal) -> CasePublic:
    """A case as the API shows it to ``principal`` (contact details only if it may see
    them)."""
    contact = may_see_contact(principal, info)
    seen = as_seen_by(principal, info)
    return CasePublic(
        id=info.id,
        name=info.name,
        description=info.description,
        contact=info.contact if contact else None,
        reporter=info.reporter if contact else None,
        status=info.status,  # type: ignore[arg-type]
        person_id=info.person_id,
        photo_urls=[url for key in info.photo_keys if (url := photo_url(key))],
        created_at=info.created_at,
        expires_at=info.expires_at,
        closed_at=info.closed_at,
        closed_by=info.closed_by,
        purged_at=info.purged_at,
        matches=seen.matches,
        last_seen_at=seen.last_seen_at,
        held_matches=held_matches(info),
        approved=info.approved_at is not None,
        approved_at=info.approved_at,
        approved_by=info.approved_by if contact else None,
        can_manage=may_manage_case(principal, info),
    )


def match_public(info: MatchInfo) -> MatchPublic:
    """A match as the API shows it."""
    return MatchPublic(
        id=info.id,
        sighting_id=info.sighting_id,
        camera_id=info.camera_id,
        camera_name=info.camera_name,
        location=info.location,
        distance=info.distance,
        kind=info.kind,  # type: ignore[arg-type]
        seen_at=info.seen_at,
        found_at=info.found_at,
        notified=info.notified,
        held=info.held,
        snapshot_url=photo_url(info.snapshot_key),
    )


def case_detail(
    info: CaseInfo,
    matches: list[MatchInfo],
    principal: Principal,
    rejected: Collection[tuple[str, str]] = (),
) -> CaseDetail:
    """A case with its timeline, as ``principal`` may see it, without the ``rejected``
    (sighting, person) pairs."""
    shown = visible_matches(principal, matches)
    kept = [m for m in shown if (m.sighting_id, info.person_id) not in rejected]
    return CaseDetail(
        **case_public(info, principal).model_dump(),
        timeline=[match_public(m) for m in kept],
        rejected_matches=len(shown) - len(kept),
    )


def subscription_public(info: SubscriptionInfo) -> SubscriptionPublic:
    """A subscription as the API shows it."""
    return SubscriptionPublic(
        id=info.id,
        case_id=info.case_id,
        channel=info.channel,
        address=info.address,
        masked_address=mask_address(info.channel, info.address),
        active=info.active,
        created_by=info.created_by,
        created_at=info.created_at,
    )


def visible_case(alerts: AlertService, principal: Principal, case_id: str) -> CaseInfo:
    """The case, if ``principal`` may see it; otherwise the same 404 as for no case at all
    (a reporter does not learn that others' cases exist)."""
    info = alerts.case(case_id)
    if not may_see_case(principal, info):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case with id {case_id!r}")
    return info


def managed_case(alerts: AlertService, principal: Principal, case_id: str, doing: str) -> CaseInfo:
    """The case, if ``principal`` may change it (see ``visible_case`` for the 404); a 403
    naming who may ``doing`` otherwise."""
    info = visible_case(alerts, principal, case_id)
    if not may_manage_case(principal, info):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"only the person who filed this case, a coordinator or an admin may {doing}; "
            f"you are {principal.role}",
        )
    return info


PhotoUpload = Annotated[
    UploadFile, File(description="The person's photo (JPEG, PNG, WebP...): one clear face")
]
ExtraPhotos = Annotated[
    list[UploadFile] | None,
    File(description=f"More photos of the person (at most {MAX_PHOTOS} in all)"),
]
UPLOAD_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Not an image, a damaged one, or a bad field"},
    413: {"description": "A photo is too large"},
    422: {"description": "No face, several faces, or a face too small"},
    503: {"description": "Busy with other photos, or the photos took too long"},
}


# cases ---------------------------------------------------------------------------------------


@router.post(
    "/cases",
    response_model=CaseDetail,
    status_code=status.HTTP_201_CREATED,
    tags=["cases"],
    summary="File a case",
    responses=UPLOAD_ERRORS,
)
@accepts(UPLOAD_BODY)
async def create_case(
    request: Request,
    reporter: Reporter,
    name: Annotated[str, Form(min_length=1, max_length=MAX_NAME)],
    photo: PhotoUpload,
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION)] = "",
    contact: Annotated[str, Form(max_length=MAX_CONTACT)] = "",
    expires_hours: Annotated[float | None, Form(gt=0, le=MAX_HOURS)] = None,
    photos: ExtraPhotos = None,
    email: Annotated[str, Form(max_length=MAX_EMAIL)] = "",
    phone: Annotated[str, Form(max_length=MAX_PHONE)] = "",
) -> CaseDetail:
    """File a case from one or more photos of the person: every camera looks for them at once,
    and the unknown faces of the last hours are searched (their matches are in the
    timeline). ``email`` and ``phone`` (E.164, for text messages), when given, are subscribed
    to the case's sightings in the same transaction as the case (a channel this server has
    not set up is refused). If any photo or address cannot be used, nothing is stored and
    the answer says why."""
    alerts = get_alerts(request)
    files = [photo, *(photos or [])]
    if len(files) > MAX_PHOTOS:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"a case takes at most {MAX_PHOTOS} photos, got {len(files)}",
        )
    limit = alerts.enrolment.max_upload_bytes
    expires_at = (
        None if expires_hours is None else datetime.now(UTC) + timedelta(hours=expires_hours)
    )

    notify_to = [
        (channel, address.strip())
        for channel, address in (("email", email), ("sms", phone))
        if address.strip()
    ]

    def work(deadline: Deadline) -> CaseDetail:
        uploads = [(read_upload(f, limit), f.filename or "") for f in files]
        info = alerts.create_case(
            name,
            description,
            contact,
            uploads,
            actor=reporter.actor,
            filed_by=reporter.ref,
            approved=may_approve(reporter),
            expires_at=expires_at,
            deadline=deadline,
            role=reporter.role,
            address=client_address(request),
            notify_to=notify_to,
        )
        return case_detail(info, alerts.matches(info.id), reporter)

    return await work_on_photo(request, work)


@router.post(
    "/cases/check-photo",
    response_model=PhotoCheckPublic,
    tags=["cases"],
    summary="Check a photo before filing",
)
@accepts(UPLOAD_BODY)
async def check_photo(request: Request, reporter: Reporter, photo: PhotoUpload) -> PhotoCheckPublic:
    """Whether the photo shows exactly one usable face (and why not); nothing is stored."""
    alerts = get_alerts(request)

    def work(deadline: Deadline) -> PhotoCheck:
        data = read_upload(photo, alerts.enrolment.max_upload_bytes)
        return alerts.check_photo(data, photo.filename or "", deadline=deadline)

    checked = await work_on_photo(request, work)
    return PhotoCheckPublic(
        usable=checked.usable,
        reason=checked.reason,
        box=None if checked.box is None else box_public(checked.box),
        quality=checked.quality,
        advice=checked.advice,
    )


@router.get("/cases", response_model=list[CasePublic], tags=["cases"], summary="List cases")
def list_cases(
    request: Request,
    viewer: Viewer,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CasePublic]:
    """Cases, newest first; only those with ``status`` if given. A reporter gets only the
    cases it filed."""
    alerts = get_alerts(request)
    mine = viewer if sees_own_cases_only(viewer) else None
    cases = alerts.cases(status_, limit=limit, offset=offset, filed_by=mine)
    return [case_public(c, viewer) for c in cases]


@router.get("/cases/{case_id}", response_model=CaseDetail, tags=["cases"], summary="One case")
def get_case(request: Request, viewer: Viewer, case_id: str) -> CaseDetail:
    """A case with every sighting of the person on a timeline, retro-search results
    included; a match a coordinator rejected is left out (``rejected_matches`` counts
    them)."""
    alerts = get_alerts(request)
    info = visible_case(alerts, viewer, case_id)
    services = get_services(request)
    matches = alerts.matches(case_id)
    # A match a coordinator rejected ("Not them") is never shown again.
    rejected = services.feedback.rejected([m.sighting_id for m in matches])
    detail = case_detail(info, matches, viewer, rejected)
    audit_access(services, viewer, request, "case.view", case_id, {"via": "api"})
    return detail


@router.post(
    "/cases/{case_id}/resolve",
    response_model=CasePublic,
    tags=["cases"],
    summary="Resolve a case",
    responses={
        403: {"description": "You did not file this case and are no coordinator or admin"},
        409: {"description": "The case is already closed"},
    },
)
def resolve_case(request: Request, reporter: Reporter, case_id: str) -> CasePublic:
    """Close the case as found: cameras stop looking at once and nobody is notified any
    more. Its filer, a coordinator or an admin only."""
    alerts = get_alerts(request)
    managed_case(alerts, reporter, case_id, "resolve it")
    return case_public(alerts.resolve(case_id, actor=reporter.actor), reporter)


@router.post(
    "/cases/{case_id}/approve",
    response_model=CasePublic,
    tags=["cases"],
    summary="Approve a case",
    responses={409: {"description": "The case is approved already, or closed"}},
)
def approve_case(request: Request, coordinator: Coordinator, case_id: str) -> CasePublic:
    """Let the case's sightings go to its subscribers (email, SMS, webhooks): those found
    since it was filed are sent now, by the cooldown, and new ones as they happen. Check the
    case and who is subscribed first. Coordinators and admins; written to the audit log."""
    alerts = get_alerts(request)
    visible_case(alerts, coordinator, case_id)
    approved = alerts.approve(
        case_id,
        actor=coordinator.actor,
        role=coordinator.role,
        address=client_address(request),
    )
    return case_public(approved, coordinator)


# subscriptions -------------------------------------------------------------------------------


@router.get(
    "/cases/{case_id}/subscriptions",
    response_model=list[SubscriptionPublic],
    tags=["subscriptions"],
    summary="A case's subscriptions",
)
def list_case_subscriptions(
    request: Request, reporter: Reporter, case_id: str
) -> list[SubscriptionPublic]:
    """Who is told about this case's sightings (addresses are personal: tellers and above,
    and the case's filer)."""
    alerts = get_alerts(request)
    info = visible_case(alerts, reporter, case_id)
    if not may_see_contact(reporter, info):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a case's subscribers are for its filer and the teller role or above; "
            f"you are {reporter.role}",
        )
    return [subscription_public(s) for s in alerts.subscriptions(case_id)]


@router.post(
    "/cases/{case_id}/subscriptions",
    response_model=SubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["subscriptions"],
    summary="Subscribe to a case",
)
def subscribe_to_case(
    request: Request, reporter: Reporter, case_id: str, body: SubscriptionCreate
) -> SubscriptionCreated:
    """Tell an email address, a phone (SMS) or a webhook about this case's sightings (once
    the case is approved). Its filer, a coordinator or an admin only."""
    alerts = get_alerts(request)
    managed_case(alerts, reporter, case_id, "change who is told about it")
    info = alerts.add_subscription(
        body.channel, body.address, case_id=case_id, secret=body.secret, actor=reporter.actor
    )
    return SubscriptionCreated(**subscription_public(info).model_dump(), secret=info.secret)


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionPublic],
    tags=["subscriptions"],
    summary="Subscriptions to every case",
)
def list_subscriptions(request: Request, admin: Admin) -> list[SubscriptionPublic]:
    """Who is told about the sightings of every case."""
    return [subscription_public(s) for s in get_alerts(request).subscriptions()]


@router.post(
    "/subscriptions",
    response_model=SubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["subscriptions"],
    summary="Subscribe to every case",
)
def subscribe_to_all(
    request: Request, admin: Admin, body: SubscriptionCreate
) -> SubscriptionCreated:
    """Tell an email address, a phone (SMS) or a webhook about every case's sightings."""
    alerts = get_alerts(request)
    info = alerts.add_subscription(
        body.channel, body.address, secret=body.secret, actor=admin.actor
    )
    return SubscriptionCreated(**subscription_public(info).model_dump(), secret=info.secret)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["subscriptions"],
    summary="Remove a subscription",
)
def delete_subscription(request: Request, reporter: Reporter, subscription_id: int) -> Response:
    """Stop telling this address: one for a case by its filer, a coordinator or an admin; one
    for every case by an admin."""
    alerts = get_alerts(request)
    info = alerts.subscription(subscription_id)
    if info.case_id is None and not reporter.allows("admin"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a subscription to every case needs the admin role to remove; you are {reporter.role}",
        )
    if info.case_id is not None:
        try:
            visible_case(alerts, reporter, info.case_id)
        except (HTTPException, AlertError):
            # Not "no case": the subscription's id must not reveal the case either.
            raise SubscriptionNotFoundError(f"no subscription with id {subscription_id}") from None
        managed_case(alerts, reporter, info.case_id, "change who is told about it")
    alerts.delete_subscription(subscription_id, actor=reporter.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
