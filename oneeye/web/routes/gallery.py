"""The routes camera hosts (``oneeye edge``) use: the gallery export and snapshot uploads.

``GET /gallery`` answers the live gallery as one consistent snapshot: its version, thresholds,
margin and every entry with its embedding. Embeddings are biometric data, so the route lets in
an admin or an ``edge`` API key only (an edge's key passes no other route). An edge fetches it
at start and whenever it missed a version of ``oneeye/v1/gallery/changes``. The answer also
carries the key the server signs those changes with and its gallery's epoch: the one way an
edge learns them (over HTTP, with its own API key), so nothing on the broker can forge a
change an edge applies. Each fetch is one
row in the audit log (``gallery.export``, with the version and the number of entries).

``PUT /edge/snapshots/{key}`` stores a snapshot an edge took, under the key the edge chose
(``snapshots/{camera}/...``; random) and already named in its sighting. An edge's key may
upload only under its own cameras' prefixes (``routes/edges.py`` registers them), so it can
neither overwrite nor plant another camera's snapshot.
Uploading the same bytes again is a no-op (an edge retries after a lost answer); other bytes
under a stored key are refused.
"""

from __future__ import annotations

import logging

import numpy as np
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from oneeye.services.auth import EDGE_ROLE
from oneeye.store.photos import (
    PhotoNotFoundError,
    PhotoStoreError,
    check_key,
    snapshot_camera,
    snapshot_kind,
)
from oneeye.web.deps import AdminOrEdge, ServicesDep, audit_access
from oneeye.web.limits import UPLOAD_BODY, accepts

logger = logging.getLogger(__name__)

router = APIRouter(tags=["edge"])

MAX_SNAPSHOT_BYTES = 2_000_000
"""A face snapshot is a few tens of kilobytes; anything near this is not one."""
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


class GalleryEntryPublic(BaseModel):
    """One entry of the gallery: a template on one watchlist."""

    id: str = Field(description="The entry id, ``<template id>@<watchlist>``.")
    person: str
    watchlist: str
    quality: float
    embedding: list[float] = Field(description="The 128-D unit embedding.")


class GalleryExport(BaseModel):
    """The whole live gallery at one version."""

    version: int = Field(description="The version ``oneeye/v1/gallery/changes`` counts from.")
    margin: float
    default_threshold: float
    thresholds: dict[str, float]
    entries: list[GalleryEntryPublic]
    epoch: str = Field(
        description="This server's build of the gallery: changes of another epoch are not "
        "applied to this copy."
    )
    verify_key: str = Field(
        description="Hex Ed25519 public key (32 bytes) the changes on "
        "``oneeye/v1/gallery/changes`` are verified with; an edge applies only changes it "
        "verifies. Only the servers hold the private key, so no edge can sign a change."
    )


class SnapshotStored(BaseModel):
    """A snapshot upload's answer."""

    key: str
    created: bool = Field(description="False when the same bytes were stored already.")


@router.get("/gallery", response_model=GalleryExport, summary="The gallery, for edges")
def export_gallery(
    request: Request, services: ServicesDep, principal: AdminOrEdge
) -> GalleryExport:
    """Every gallery entry with its embedding, at one version (admin or an edge's key)."""
    # Brought up to the database's newest version first: an edge that saw version v
    # announced by any server gets a copy at v or later from this one.
    copy = services.gallery_service.copy()
    audit_access(
        services,
        principal,
        request,
        "gallery.export",
        f"version:{copy.version}",
        {"entries": len(copy.templates)},
    )
    logger.info(
        "%s fetched the gallery (version %d, %d entries)",
        principal.actor,
        copy.version,
        len(copy.templates),
    )
    return GalleryExport(
        version=copy.version,
        epoch=services.gallery_service.epoch,
        verify_key=services.gallery_service.verify_key.hex(),
        margin=copy.margin,
        default_threshold=copy.default_threshold,
        thresholds=copy.thresholds,
        entries=[
            GalleryEntryPublic(
                id=t.id,
                person=t.person,
                watchlist=t.watchlist,
                quality=float(t.quality),
                embedding=np.asarray(t.embedding, dtype=np.float32).tolist(),
            )
            for t in copy.templates
        ],
    )


@router.put(
    "/edge/snapshots/{key:path}",
    response_model=SnapshotStored,
    summary="Store an edge's snapshot",
)
@accepts(UPLOAD_BODY, MAX_SNAPSHOT_BYTES)
async def put_snapshot(
    key: str, request: Request, services: ServicesDep, principal: AdminOrEdge
) -> SnapshotStored:
    """Store the JPEG or PNG in the body under ``key`` (``snapshots/{camera}/...``; an edge's
    key: one of its own cameras)."""
    try:
        check_key(key)
    except PhotoStoreError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a photo key: {key!r}"
        ) from None
    camera = snapshot_camera(key)
    if camera is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "edges upload camera snapshots only: "
            f"the key must be {snapshot_kind('{camera}')}/<2 hex>/<32 hex>.jpg",
        )
    # An old edge key bound to no edge owns no camera (``allows(None, ...)`` would ask
    # about the servers' own).
    if principal.role == EDGE_ROLE and (
        principal.edge is None
        or not await run_in_threadpool(services.registry.allows, principal.edge, camera)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"camera {camera} is not one of this edge's registered cameras",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_SNAPSHOT_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes",
        )
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes",
            )
    if not data.startswith(_IMAGE_MAGIC):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "a snapshot is a JPEG or PNG image"
        )
    body = bytes(data)
    try:
        # The photo store is a disk or S3: off the event loop.
        stored = await run_in_threadpool(services.photos.get, key)
    except PhotoNotFoundError:
        stored = None
    if stored is not None:
        if stored != body:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"another snapshot is stored under {key!r} already"
            )
        return SnapshotStored(key=key, created=False)
    await run_in_threadpool(services.photos.put, key, body)
    logger.debug("%s uploaded snapshot %s (%d bytes)", principal.actor, key, len(body))
    return SnapshotStored(key=key, created=True)
