"""Unknown faces grouped by person: ``/unknowns``.

The unknown faces of the last 24 hours (less when ``ONEEYE_ALERTS__UNKNOWN_RETENTION_HOURS``
keeps their embeddings less long) clustered by face, so staff see a stranger who keeps coming
back as one group (``oneeye.services.library``). Seeing them needs ``teller`` (they are camera
snapshots of people, grouped by biometric likeness) and is audited (``unknown.list``); naming a
group (enrolling its best face into a customer) needs ``admin`` and is audited too.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from oneeye.services.customers import PHOTOS_URL
from oneeye.services.library import UnknownGroup
from oneeye.vision.engine import Deadline
from oneeye.web.deps import Admin, ServicesDep, Teller, audit_access
from oneeye.web.offload import work_on_photo
from oneeye.web.routes.people import TemplatePublic, template_public

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/unknowns", tags=["unknowns"])


class UnknownGroupPublic(BaseModel):
    """Unknown sightings that are probably the same person."""

    best_sighting_id: str
    """The group's best face: name or report this one."""
    snapshot_url: str | None
    best_quality: float
    sightings: int
    sighting_ids: list[str] = Field(description="Newest first, at most 50.")
    cameras: list[str]
    first_seen: datetime
    last_seen: datetime


class UnknownGroupsPublic(BaseModel):
    """The unknown faces of a window, grouped by person, largest group first."""

    groups: list[UnknownGroupPublic]
    faces: int = Field(description="Unknown faces whose embedding is still kept.")
    hours: float = Field(description="The window (the embeddings' retention when shorter).")
    threshold: float
    truncated: bool = Field(description="Only the newest 2,000 faces were grouped.")


class NameUnknown(BaseModel):
    """Whose face an unknown sighting is: a customer's account (created when ``name`` is
    given and the account does not exist yet)."""

    account_id: str = Field(min_length=1, max_length=64, examples=["ACC-1001"])
    name: str | None = Field(default=None, min_length=1, max_length=200)


class NamedUnknown(BaseModel):
    """The sighting's face, enrolled."""

    person_id: str
    template: TemplatePublic


def group_public(group: UnknownGroup) -> UnknownGroupPublic:
    """A group as its JSON schema."""
    key = group.best_snapshot_key
    return UnknownGroupPublic(
        best_sighting_id=group.best_sighting_id,
        snapshot_url=PHOTOS_URL + key if key else None,
        best_quality=group.best_quality,
        sightings=group.sightings,
        sighting_ids=list(group.sighting_ids),
        cameras=list(group.cameras),
        first_seen=group.first_seen,
        last_seen=group.last_seen,
    )


@router.get("", response_model=UnknownGroupsPublic, summary="Unknown faces, grouped by person")
def list_unknowns(request: Request, services: ServicesDep, teller: Teller) -> UnknownGroupsPublic:
    """The unknown faces of the last 24 hours grouped by person, largest group first (at
    most 100 groups of the newest 2,000 faces). Audited (``unknown.list``, ids only)."""
    found = services.library.unknown_groups()
    audit_access(
        services,
        teller,
        request,
        "unknown.list",
        "",
        {"groups": [g.best_sighting_id for g in found.groups], "faces": found.faces},
    )
    return UnknownGroupsPublic(
        groups=[group_public(g) for g in found.groups],
        faces=found.faces,
        hours=found.hours,
        threshold=found.threshold,
        truncated=found.truncated,
    )


@router.post(
    "/{sighting_id}/name",
    response_model=NamedUnknown,
    status_code=status.HTTP_201_CREATED,
    summary="Name an unknown face",
    responses={
        404: {"description": "No unknown face with a kept snapshot, or no such account"},
        422: {"description": "The snapshot's face cannot be enrolled"},
    },
)
async def name_unknown(
    request: Request,
    sighting_id: Annotated[str, PathParam(max_length=64)],
    body: NameUnknown,
    services: ServicesDep,
    admin: Admin,
) -> NamedUnknown:
    """Enrol the sighting's face (its snapshot, checked like any enrolment photo) into the
    customer of ``account_id``; with ``name``, a new customer is created for it first."""

    def work(deadline: Deadline) -> NamedUnknown:
        person_id, info = services.library.name_unknown(
            sighting_id, body.account_id, name=body.name, actor=admin.actor, deadline=deadline
        )
        return NamedUnknown(person_id=person_id, template=template_public(info))

    return await work_on_photo(request, work)
