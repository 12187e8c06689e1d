"""Which cameras belong to which edge: an edge registers its own, an admin sees and removes.

``PUT /edge/cameras`` is called by ``oneeye edge`` at start with its API key, which names the
edge it is (``oneeye users api-key NAME --role edge --edge EDGE_ID``): the cameras are
registered to that edge. A camera id that is a server's camera or another edge's is refused
(409) and nothing changes. The servers then accept sightings and statuses for a camera only on
its edge's topics (``oneeye/v1/edges/{edge}/cameras/{camera}/...``, which the broker's ACL
lets only that edge's broker user write), and snapshots under ``snapshots/{camera}/`` only
from its edge's key. An admin may register cameras for an edge too (``PUT
/edges/{edge}/cameras``), list every edge's (``GET /edges/cameras``) and remove one.
"""

from __future__ import annotations

import re
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from oneeye.services.auth import EDGE_ROLE, Principal
from oneeye.services.edge.registry import EdgeCameraInfo
from oneeye.web.deps import Admin, AdminOrEdge, ServicesDep

router = APIRouter(tags=["edge"])

SLUG = r"^[a-z0-9_-]{1,64}$"
_SLUG = re.compile(SLUG)
MAX_CAMERAS = 256
"""Cameras one registration may name (an edge runs a handful)."""


class EdgeCameraIn(BaseModel):
    """One camera an edge runs."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, examples=["branch-12-door"])
    name: str = Field(min_length=1, max_length=200, examples=["Branch 12, front door"])


class EdgeCamerasIn(BaseModel):
    """The cameras to register."""

    model_config = ConfigDict(extra="forbid")

    cameras: list[EdgeCameraIn] = Field(min_length=1, max_length=MAX_CAMERAS)


class EdgeCameraPublic(BaseModel):
    """A registered edge camera."""

    camera_id: str
    edge_id: str
    name: str
    registered_at: datetime


class EdgeRegistration(BaseModel):
    """An edge and every camera registered to it."""

    edge: str
    cameras: list[EdgeCameraPublic]


def _public(info: EdgeCameraInfo) -> EdgeCameraPublic:
    return EdgeCameraPublic(
        camera_id=info.camera_id,
        edge_id=info.edge_id,
        name=info.name,
        registered_at=info.registered_at,
    )


def _register(services: ServicesDep, edge: str, body: EdgeCamerasIn) -> EdgeRegistration:
    ids = [c.id for c in body.cameras]
    if len(set(ids)) != len(ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "camera ids must differ")
    registered = services.registry.register(edge, [(c.id, c.name) for c in body.cameras])
    return EdgeRegistration(edge=edge, cameras=[_public(c) for c in registered])


def edge_of(principal: Principal) -> str:
    """The edge an edge key is bound to; 403 for any other principal or an unbound key."""
    if principal.role != EDGE_ROLE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an edge's API key registers itself")
    if principal.edge is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this edge key names no edge; create one that does "
            "(oneeye users api-key NAME --role edge --edge EDGE_ID) and revoke this one",
        )
    return principal.edge


@router.put(
    "/edge/cameras", response_model=EdgeRegistration, summary="Register this edge's cameras"
)
def register_own_cameras(
    body: EdgeCamerasIn, services: ServicesDep, principal: AdminOrEdge
) -> EdgeRegistration:
    """Register the calling edge's cameras (its key names the edge); ones registered before
    stay. 409 if a camera id is a server's or another edge's."""
    return _register(services, edge_of(principal), body)


@router.put(
    "/edges/{edge}/cameras",
    response_model=EdgeRegistration,
    summary="Register an edge's cameras (admin)",
)
def register_cameras(
    edge: str, body: EdgeCamerasIn, services: ServicesDep, admin: Admin
) -> EdgeRegistration:
    """Register cameras to ``edge``; 409 if a camera id is a server's or another edge's."""
    if not _SLUG.match(edge):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"an edge id is 1-64 lower-case letters, digits, - or _, got {edge[:80]!r}",
        )
    registered = _register(services, edge, body)
    services.auth.audit(admin.actor, "edge.cameras.register", edge, {"cameras": len(body.cameras)})
    return registered


@router.get(
    "/edges/cameras",
    response_model=list[EdgeCameraPublic],
    summary="Every edge's registered cameras",
)
def list_edge_cameras(services: ServicesDep, admin: Admin) -> list[EdgeCameraPublic]:
    """Every registered edge camera, by edge and camera id."""
    return [_public(c) for c in services.registry.edge_cameras()]


@router.delete(
    "/edges/{edge}/cameras/{camera}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Unregister an edge's camera",
)
def unregister_camera(edge: str, camera: str, services: ServicesDep, admin: Admin) -> Response:
    """Stop accepting anything for ``camera`` from ``edge`` (its id becomes free)."""
    if not services.registry.unregister(edge, camera):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"edge {edge[:64]!r} has no camera {camera[:64]!r}"
        )
    services.auth.audit(admin.actor, "edge.cameras.unregister", f"{edge}/{camera}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
