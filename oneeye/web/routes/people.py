"""People and their enrolled photos: ``/people``.

Reading needs ``viewer``; creating, changing, enrolling and deleting need ``admin``. Who holds
which account, and the notes kept on a person, are for ``teller`` and above: lower roles get
people without ``account_id`` and ``notes``, and their ``q`` searches names only (so an
account number cannot be probed). A reporter does not see the person of another reporter's
Amber Alert case at all (``oneeye.services.alerts.CaseScope``): not in lists, and "not found"
by id, like an unknown id. Every listing is written to the audit log. An upload
that cannot be enrolled (not an image, too large, no face, several faces) is answered with a
4xx that says why, and leaves nothing behind.

``DELETE /people/{id}`` stops recognising a person (templates, photos, gallery entries);
``POST /people/{id}/erase`` removes everything held about them (their sightings, snapshots,
dashboard events, cases, account: see ``oneeye.services.privacy``), and ``GET
/people/{id}/export`` answers everything held about them (subject access). Both are admin only
and audited.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from oneeye.services.auth import Principal
from oneeye.services.context import Services
from oneeye.services.customers import PHOTOS_URL
from oneeye.services.enrolment import (
    UNSET,
    EnrolledTemplate,
    NotFoundError,
    PersonInfo,
    TemplateInfo,
)
from oneeye.services.privacy import ErasureReport
from oneeye.store.photos import PhotoNotFoundError, PhotoStoreError
from oneeye.types import FaceBox
from oneeye.vision.engine import Deadline
from oneeye.web.deps import Admin, ServicesDep, Teller, Viewer, audit_access
from oneeye.web.limits import UPLOAD_BODY, accepts
from oneeye.web.offload import work_on_photo

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/people", tags=["people"])

ACCOUNT_ROLE = "teller"
"""The lowest role that sees who holds which account, and the notes on a person."""

UploadDep = Annotated[UploadFile, File(description="A JPEG, PNG, WebP, BMP, GIF or TIFF photo")]


# schemas -------------------------------------------------------------------------------------


class PersonCreate(BaseModel):
    """A new person."""

    name: str = Field(min_length=1, max_length=200, examples=["Barack Obama"])
    account_id: str | None = Field(default=None, max_length=64, examples=["ACC-1001"])
    """The customer account this person holds (looked up in the customer directory)."""
    notes: str = Field(default="", max_length=2000)
    watchlists: list[str] = Field(default_factory=lambda: ["customers"], max_length=50)


class PersonUpdate(BaseModel):
    """Changes to a person: only the fields sent change (``account_id: null`` clears it)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    account_id: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=2000)
    watchlists: list[str] | None = Field(default=None, max_length=50)


class PersonSummary(BaseModel):
    """A person as roles below ``teller`` see them: no account, no notes."""

    id: str
    name: str
    watchlists: list[str]
    templates: int
    """How many photos are enrolled."""
    created_at: datetime


class PersonPublic(PersonSummary):
    """A person as ``teller`` and above see them."""

    account_id: str | None
    notes: str


class BoxPublic(BaseModel):
    """A face's box in pixels of the (upright) photo: ``top``, ``right``, ``bottom``, ``left``,
    all inside the face."""

    top: int
    right: int
    bottom: int
    left: int


class TemplatePublic(BaseModel):
    """An enrolled photo of a person: where the face is and how good it is."""

    id: str
    person_id: str
    photo_url: str
    """The stored photo (``teller`` or above may fetch it)."""
    box: BoxPublic
    quality: float
    """Overall quality in [0, 1]."""
    size_px: float
    sharpness: float
    frontalness: float
    created_at: datetime
    source_sighting_id: str | None = None
    """The sighting whose camera face it was enrolled from; ``None``: an uploaded photo."""


class SameFacePublic(BaseModel):
    """How a new photo's face compared with the person's other photos and with other people
    (``oneeye.services.same_face``)."""

    own_templates: int = Field(description="Photos the person had (0: nothing to compare).")
    own_distance: float | None = Field(description="Distance to the person's nearest photo.")
    limit: float = Field(description="The largest own_distance that passes.")
    other_person: str | None = Field(description="The nearest other person, if any.")
    other_distance: float | None
    far: bool
    nearer_other: bool
    suspicious: bool = Field(description="True only when the enrolment was forced.")


class EnrolledPublic(TemplatePublic):
    """A template just enrolled, with the same-face check of its face."""

    same_face: SameFacePublic | None


class ErasurePublic(BaseModel):
    """What an erasure removed (counts only)."""

    person_id: str
    person: bool = Field(description="Whether a person row was deleted.")
    templates: int
    photos: int = Field(description="Enrolment and case photos and the profile photo deleted.")
    sightings: int
    snapshots: int
    events: int = Field(description="Stored dashboard events that named them, deleted.")
    cases: int
    notifications: int
    account: str = Field(
        description="``deleted`` (OneEye's own table), ``unlinked`` (the bank's directory, "
        "not OneEye's to delete), ``shared`` (another person holds it: kept) or ``none``."
    )
    audit_redacted: int = Field(description="Audit rows about them whose names were removed.")
    already_erased: bool = Field(description="Nothing was left: an earlier erasure took it.")


def erasure_public(report: ErasureReport) -> ErasurePublic:
    """An erasure report as its JSON schema."""
    return ErasurePublic(
        person_id=report.person_id,
        person=report.person,
        templates=report.templates,
        photos=report.photos,
        sightings=report.sightings,
        snapshots=report.snapshots,
        events=report.events,
        cases=report.cases,
        notifications=report.notifications,
        account=report.account,
        audit_redacted=report.audit_redacted,
        already_erased=report.already_erased,
    )


def box_public(box: FaceBox) -> BoxPublic:
    """A ``FaceBox`` as its JSON schema."""
    return BoxPublic(top=box.top, right=box.right, bottom=box.bottom, left=box.left)


def person_public(info: PersonInfo) -> PersonPublic:
    """A person as ``teller`` and above see them."""
    return PersonPublic(
        id=info.id,
        name=info.name,
        account_id=info.account_id,
        notes=info.notes,
        watchlists=list(info.watchlists),
        templates=info.templates,
        created_at=info.created_at,
    )


def person_summary(info: PersonInfo) -> PersonSummary:
    """A person as roles below ``teller`` see them."""
    return PersonSummary(
        id=info.id,
        name=info.name,
        watchlists=list(info.watchlists),
        templates=info.templates,
        created_at=info.created_at,
    )


def person_for(info: PersonInfo, principal: Principal) -> PersonPublic | PersonSummary:
    """A person as ``principal`` may see them (account and notes for ``teller`` and above)."""
    return person_public(info) if principal.allows(ACCOUNT_ROLE) else person_summary(info)


def template_public(info: TemplateInfo) -> TemplatePublic:
    """A template as the API shows it."""
    return TemplatePublic(
        id=info.id,
        person_id=info.person_id,
        photo_url=PHOTOS_URL + info.photo_key,
        box=box_public(info.box),
        quality=info.quality,
        size_px=info.size_px,
        sharpness=info.sharpness,
        frontalness=info.frontalness,
        created_at=info.created_at,
        source_sighting_id=info.source_sighting_id,
    )


def enrolled_public(info: EnrolledTemplate) -> EnrolledPublic:
    """A template just enrolled, with its same-face check."""
    check = info.same_face
    return EnrolledPublic(
        **template_public(info).model_dump(),
        same_face=None if check is None else SameFacePublic(**check.as_json()),
    )


def read_upload(file: UploadFile, limit: int) -> bytes:
    """The uploaded bytes, reading at most one byte past ``limit`` (so a huge upload is
    refused without being read into memory)."""
    return file.file.read(limit + 1)


def hide_case_person(services: Services, principal: Principal, person_id: str) -> None:
    """``NotFoundError``, worded as for an unknown id, when ``person_id`` is the person of an
    Amber Alert case that ``principal`` (a reporter) did not file."""
    scope = services.alerts.scope_of(principal)
    if scope is not None and not scope.person_visible(person_id):
        raise NotFoundError(f"no person with id {person_id!r}")


# routes --------------------------------------------------------------------------------------


@router.get(
    "",
    # The fuller model first: an answer with account ids must not be cut down to the summary.
    response_model=list[PersonPublic] | list[PersonSummary],
    summary="List people",
)
def list_people(
    request: Request,
    services: ServicesDep,
    viewer: Viewer,
    watchlist: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Part of a name (or of an account id, for tellers)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PersonPublic] | list[PersonSummary]:
    """People by name, optionally only those on a watchlist or matching ``q``; account ids
    and notes for ``teller`` and above only."""
    accounts = viewer.allows(ACCOUNT_ROLE)
    scope = services.alerts.scope_of(viewer)
    people = services.enrolment.people(
        watchlist=watchlist,
        q=q,
        limit=limit,
        offset=offset,
        match_accounts=accounts,
        exclude=scope.hidden_people if scope is not None else (),
    )
    # The search text may be a name: the audit row keeps only the ids that were shown.
    audit_access(
        services,
        viewer,
        request,
        "person.list",
        watchlist or "",
        {"people": [p.id for p in people], "accounts": accounts},
    )
    if accounts:
        return [person_public(p) for p in people]
    return [person_summary(p) for p in people]


@router.post(
    "",
    response_model=PersonPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add a person",
)
def create_person(body: PersonCreate, services: ServicesDep, admin: Admin) -> PersonPublic:
    """Add a person on one or more watchlists; enrol their photos next."""
    info = services.enrolment.create_person(
        body.name,
        body.watchlists,
        actor=admin.actor,
        account_id=body.account_id,
        notes=body.notes,
    )
    return person_public(info)


@router.get("/{person_id}", response_model=PersonPublic | PersonSummary, summary="One person")
def get_person(
    person_id: str, services: ServicesDep, viewer: Viewer
) -> PersonPublic | PersonSummary:
    """The person with this id (account id and notes for ``teller`` and above)."""
    hide_case_person(services, viewer, person_id)
    return person_for(services.enrolment.person(person_id), viewer)


@router.patch("/{person_id}", response_model=PersonPublic, summary="Change a person")
def update_person(
    person_id: str, body: PersonUpdate, services: ServicesDep, admin: Admin
) -> PersonPublic:
    """Change a person's name, account, notes or watchlists (the live gallery follows)."""
    sent = body.model_fields_set
    for field in ("name", "notes", "watchlists"):
        if field in sent and getattr(body, field) is None:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{field} cannot be null")
    info = services.enrolment.update_person(
        person_id,
        actor=admin.actor,
        name=body.name if body.name is not None else UNSET,
        account_id=body.account_id if "account_id" in sent else UNSET,
        notes=body.notes if body.notes is not None else UNSET,
        watchlists=body.watchlists if body.watchlists is not None else UNSET,
    )
    return person_public(info)


@router.delete(
    "/{person_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a person",
)
def delete_person(person_id: str, services: ServicesDep, admin: Admin) -> Response:
    """Delete a person with every photo and template (they are no longer recognised)."""
    services.enrolment.delete_person(person_id, actor=admin.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{person_id}/photos",
    response_model=EnrolledPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Enrol a photo",
    responses={
        400: {"description": "Not an image, or a damaged one"},
        409: {
            "description": "The photo may show someone else (the same-face check, its "
            "distances in ``error.same_face``); send it with ``force=true`` if it is them"
        },
        413: {"description": "The upload is too large"},
        422: {"description": "No face, several faces, or a face too small"},
        503: {"description": "Busy with other photos, or the photo took too long"},
    },
)
@accepts(UPLOAD_BODY)
async def enrol_photo(
    request: Request,
    person_id: str,
    file: UploadDep,
    services: ServicesDep,
    admin: Admin,
    force: Annotated[
        bool,
        Query(description="Enrol even if the photo may show someone else (audited)"),
    ] = False,
) -> EnrolledPublic:
    """Enrol a photo showing exactly one usable face; answers the template with its box,
    quality and same-face check. A photo whose face is far from the person's other photos, or
    nearer to another person, is refused with 409 unless ``force`` is set. A photo that
    cannot be enrolled changes nothing."""

    def work(deadline: Deadline) -> EnrolledTemplate:
        data = read_upload(file, services.enrolment.max_upload_bytes)
        return services.enrolment.enrol_photo(
            person_id,
            data,
            file.filename or "",
            actor=admin.actor,
            deadline=deadline,
            force=force,
        )

    info = await work_on_photo(request, work)
    return enrolled_public(info)


@router.get(
    "/{person_id}/templates", response_model=list[TemplatePublic], summary="A person's photos"
)
def list_templates(person_id: str, services: ServicesDep, viewer: Viewer) -> list[TemplatePublic]:
    """The person's enrolled photos with their boxes and quality, oldest first."""
    hide_case_person(services, viewer, person_id)
    return [template_public(t) for t in services.enrolment.templates(person_id)]


@router.get(
    "/{person_id}/templates/{template_id}/thumbnail",
    response_class=Response,
    summary="An enrolled face, small",
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No such template"}},
)
def template_thumbnail(
    person_id: Annotated[str, PathParam(max_length=64)],
    template_id: Annotated[str, PathParam(max_length=64)],
    request: Request,
    services: ServicesDep,
    teller: Teller,
) -> Response:
    """The enrolled photo cropped to its face and shrunk to 160 px (a JPEG), for the face
    library's pages. Enrolled photos are biometric data: ``teller`` and above, like the
    photos themselves; each one handed out is audited (``template.view``)."""
    hide_case_person(services, teller, person_id)
    info = services.library.template(person_id, template_id)
    try:
        data = services.library.thumbnail(info)
    except PhotoNotFoundError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"the photo of template {template_id!r} is gone"
        ) from None
    audit_access(services, teller, request, "template.view", person_id, {"template": template_id})
    return Response(
        content=data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.delete(
    "/{person_id}/templates/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an enrolled photo",
)
def delete_template(
    person_id: str, template_id: str, services: ServicesDep, admin: Admin
) -> Response:
    """Delete one enrolled photo: its file, its template and its gallery entries."""
    services.enrolment.delete_template(person_id, template_id, actor=admin.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{person_id}/erase",
    response_model=ErasurePublic,
    summary="Erase everything about a person",
    responses={404: {"description": "OneEye holds nothing about this id"}},
)
def erase_person(
    person_id: Annotated[str, PathParam(max_length=64)], services: ServicesDep, admin: Admin
) -> ErasurePublic:
    """Remove the person and everything held about them: templates and photos, sightings and
    snapshots, stored dashboard events, their cases, their account in OneEye's own directory
    (an account in the bank's directory is only unlinked), and every edge's copy of their
    templates. Works for an id whose person was deleted earlier (what that left goes now);
    running it again changes nothing. One ``person.erase`` audit row, with counts only."""
    try:
        report = services.privacy.erase(person_id, actor=admin.actor)
    except PhotoStoreError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the photo store could not delete the photos, so nothing was erased; try again "
            f"({exc})",
        ) from None
    return erasure_public(report)


@router.get(
    "/{person_id}/export",
    summary="Everything held about a person (subject access)",
    response_model=None,
    responses={
        200: {
            "description": "JSON, or with ``photos=true`` a zip of ``person.json`` and the photos",
            "content": {"application/json": {}, "application/zip": {}},
        },
        404: {"description": "OneEye holds nothing about this id"},
    },
)
def export_person(
    person_id: Annotated[str, PathParam(max_length=64)],
    services: ServicesDep,
    admin: Admin,
    photos: Annotated[bool, Query(description="A zip with every photo too")] = False,
) -> dict[str, Any] | FileResponse:
    """The person, their templates (metadata), account card, sightings, cases, dashboard
    events and the audit rows about them, in one download. Each export is audited."""
    if not photos:
        return services.privacy.export(person_id, actor=admin.actor)
    fd, path = tempfile.mkstemp(prefix="oneeye-export-", suffix=".zip")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as target:
            services.privacy.export_zip(person_id, target, actor=admin.actor)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"oneeye-person-{person_id}.zip",
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(os.unlink, path),
    )
