"""``GET /photos/{key}``: the bytes of a stored photo or snapshot.

Camera snapshots (``snapshots/...``) need ``viewer``; enrolment photos (``templates/...``) and
customers' profile photos (``customers/...``) are biometric or account data and need
``teller``. Answers are marked ``Cache-Control: private`` so no shared cache keeps them.
Every photo handed out is written to the audit log (``photo.view``, by key) first. A reporter
gets a case photo only of a case it filed, and a snapshot only of a sighting it may know of
(``oneeye.services.alerts.CaseScope``); others are "not found", like an unknown key.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from oneeye.store.photos import PhotoNotFoundError, PhotoStoreError, check_key
from oneeye.web.deps import ServicesDep, Viewer, audit_access

router = APIRouter(prefix="/photos", tags=["photos"])

ROLE_FOR_KIND = {
    "snapshots": "viewer",
    "cases": "viewer",
    "templates": "teller",
    "customers": "teller",
}
"""The lowest role that may fetch each kind of photo; other kinds need ``admin``. A missing
person's case photo is shown to everyone who watches for them."""

CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
}
CACHE_CONTROL = "private, max-age=3600"


@router.get(
    "/{key:path}",
    response_class=Response,
    summary="A stored photo",
    responses={
        200: {"content": {v: {} for v in sorted(set(CONTENT_TYPES.values()))}},
        404: {"description": "No photo has this key"},
    },
)
def get_photo(key: str, request: Request, services: ServicesDep, principal: Viewer) -> Response:
    """The photo stored under ``key`` (as given in ``photo_url``/``snapshot_url`` fields)."""
    try:
        check_key(key)
    except PhotoStoreError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no photo {key!r}") from None
    kind = key.split("/", 1)[0]
    needed = ROLE_FOR_KIND.get(kind, "admin")
    if not principal.allows(needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{kind} photos need the {needed} role or above; you are {principal.role}",
        )
    try:
        if not services.alerts.photo_visible(principal, key):
            raise PhotoNotFoundError(key)
        data = services.photos.get(key)
    except PhotoNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no photo {key!r}") from None
    audit_access(services, principal, request, "photo.view", key, {"kind": kind})
    suffix = key.rsplit(".", 1)[-1].lower()
    return Response(
        content=data,
        media_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
    )
