"""``GET /links/snapshot``: a camera snapshot through a signed, expiring link.

This route is public on purpose: the people an SMS or a webhook reaches have no OneEye login.
The link's signature (see ``oneeye.services.notify.links``) is the credential; a forged,
altered or expired link, or one to anything but a snapshot, is refused with 403. Every
snapshot handed out is written to the audit log (actor ``link``) first.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request, Response, status

from oneeye.services.notify.links import LinkError
from oneeye.store.photos import PhotoNotFoundError, PhotoStoreError, check_key
from oneeye.web.deps import ServicesDep, client_address
from oneeye.web.routes.photos import CONTENT_TYPES

router = APIRouter(prefix="/links", tags=["links"])


@router.get(
    "/snapshot",
    response_class=Response,
    summary="A snapshot through a signed link (no login)",
    responses={
        200: {"content": {v: {} for v in sorted(set(CONTENT_TYPES.values()))}},
        403: {"description": "The link is forged, altered or expired"},
        404: {"description": "The snapshot has been deleted"},
    },
)
def get_linked_snapshot(
    request: Request,
    services: ServicesDep,
    key: str | None = None,
    exp: str | None = None,
    sig: str | None = None,
) -> Response:
    """The snapshot a signed link points at, while the link is valid."""
    if not key or not exp or not sig:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "this link is incomplete; it needs key, exp and sig"
        )
    try:
        expires = int(exp)
        check_key(key)
        services.notifier.links.verify(key, expires, sig)
    except (ValueError, LinkError, PhotoStoreError) as exc:
        message = str(exc) if isinstance(exc, LinkError) else "this link is not valid"
        raise HTTPException(status.HTTP_403_FORBIDDEN, message) from None
    try:
        data = services.photos.get(key)
    except PhotoNotFoundError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "this snapshot has been deleted (the case was closed)"
        ) from None
    services.auth.audit(
        "link", "photo.view", key, {"via": "signed-link"}, address=client_address(request)
    )
    suffix = key.rsplit(".", 1)[-1].lower()
    max_age = max(0, min(3600, expires - int(time.time())))
    return Response(
        content=data,
        media_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        headers={
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
