"""``POST /identify``: who is in this photo? (``teller`` and above).

A face search names people, so it needs the role that may see who a customer is, and every
search is written to the audit log (the photo's digest and the ids of the people shown).
The photo itself is not stored.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel

from oneeye.services.enrolment import IdentifiedFace
from oneeye.vision.engine import Deadline
from oneeye.web.deps import ServicesDep, Teller, audit_access
from oneeye.web.limits import UPLOAD_BODY, accepts
from oneeye.web.offload import work_on_photo
from oneeye.web.routes.people import BoxPublic, UploadDep, box_public, read_upload

router = APIRouter(prefix="/identify", tags=["identify"])


class MatchPublic(BaseModel):
    """One candidate for a face: an enrolled person on one watchlist."""

    person_id: str
    name: str
    watchlist: str
    distance: float
    matched: bool
    """Whether this candidate is its watchlist's answer (within the watchlist's threshold, and
    clearly nearer than anyone else on that watchlist); one per watchlist at most."""


class QualityPublic(BaseModel):
    """How much the face can be trusted: size in pixels, sharpness, frontalness in [0, 1],
    and the combined score in [0, 1]."""

    size: int
    sharpness: float
    frontalness: float
    score: float


class FacePublic(BaseModel):
    """A face in the photo and who it is (``person_id`` is ``null`` for an unknown face)."""

    box: BoxPublic
    quality: QualityPublic
    person_id: str | None
    name: str | None
    watchlist: str | None
    distance: float | None
    matches: list[MatchPublic]


class IdentifyResult(BaseModel):
    """Every face found in the photo, largest detections first as the detector ranks them."""

    faces: list[FacePublic]


def face_public(face: IdentifiedFace) -> FacePublic:
    """An identified face as its JSON schema."""
    return FacePublic(
        box=box_public(face.box),
        quality=QualityPublic(
            size=face.quality.size,
            sharpness=face.quality.sharpness,
            frontalness=face.quality.frontalness,
            score=face.quality.score,
        ),
        person_id=face.person_id,
        name=face.name,
        watchlist=face.watchlist,
        distance=face.distance,
        matches=[
            MatchPublic(
                person_id=m.person_id,
                name=m.name,
                watchlist=m.watchlist,
                distance=m.distance,
                matched=m.matched,
            )
            for m in face.matches
        ],
    )


@router.post(
    "",
    response_model=IdentifyResult,
    status_code=status.HTTP_200_OK,
    summary="Identify the faces in a photo",
    responses={
        400: {"description": "Not an image, or a damaged one"},
        413: {"description": "The upload is too large"},
        503: {"description": "Busy with other photos, or the photo took too long"},
    },
)
@accepts(UPLOAD_BODY)
async def identify(
    request: Request,
    file: UploadDep,
    services: ServicesDep,
    teller: Teller,
    k: Annotated[int, Query(ge=1, le=20, description="Candidates per face")] = 3,
) -> IdentifyResult:
    """Find every face in the uploaded photo and its nearest enrolled people (up to ``k`` per
    face, and each watchlist's accepted person when not among them: each watchlist decides on
    its own, so a face can be ``matched`` on several). A photo without faces answers an empty
    list.

    The photo is shrunk to ``ONEEYE_LIMITS__PHOTO_MAX_SIDE`` pixels on its longer side before
    faces are looked for (boxes are given in the uploaded photo's own pixels); the search is
    given up after ``ONEEYE_LIMITS__PHOTO_SECONDS`` or when the client leaves."""

    def work(deadline: Deadline) -> list[IdentifiedFace]:
        data = read_upload(file, services.enrolment.max_upload_bytes)
        found = services.enrolment.identify(data, file.filename or "", k=k, deadline=deadline)
        # Audited in the photo's thread (database work), before anything is shown.
        audit_access(
            services,
            teller,
            request,
            "face.search",
            f"sha256:{hashlib.sha256(data).hexdigest()[:32]}",
            {
                "faces": len(found),
                "matched": sorted({m.person_id for f in found for m in f.matches if m.matched}),
                "shown": sorted({m.person_id for f in found for m in f.matches}),
                "k": k,
            },
        )
        return found

    faces = await work_on_photo(request, work)
    return IdentifyResult(faces=[face_public(f) for f in faces])
