"""Cameras: the servers' own (``cameras``) and the ones edges registered (``edge_cameras``).

Functions take the caller's ``Session`` and return ``StoredCamera`` or ``EdgeCameraInfo``
values, never rows. Who may own which id, and what a worker makes of a camera's settings, is
the services' business (``services.cameras``, ``services.edge.registry``); this module only
knows how the rows look.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneeye.store.models import Camera, EdgeCamera
from oneeye.types import CAMERA_DETECTORS, CameraDetector


@dataclass(frozen=True, slots=True)
class StoredCamera:
    """A server camera's stored settings."""

    id: str
    name: str
    source: str
    enabled: bool
    location: str
    min_face_px: int
    detect_every: int
    pace: bool
    loop: bool
    scan_every: int | None = None
    """``None``: the server's video settings decide."""
    detect_threads: int | None = None
    """``None``: the server's video settings decide."""
    detector: CameraDetector | None = None
    """``hog``, ``cnn`` or ``auto``; ``None``: the server's video settings decide."""


@dataclass(frozen=True, slots=True)
class EdgeCameraInfo:
    """One registered edge camera."""

    camera_id: str
    edge_id: str
    name: str
    registered_at: datetime


EDITABLE_COLUMNS = frozenset(
    {
        "name",
        "source",
        "enabled",
        "location",
        "min_face_px",
        "detect_every",
        "pace",
        "loop",
        "scan_every",
        "detect_threads",
        "detector",
    }
)
"""The settings ``update`` may change."""


def _stored(row: Camera) -> StoredCamera:
    return StoredCamera(
        id=row.id,
        name=row.name,
        source=row.source,
        enabled=row.enabled,
        location=row.location,
        min_face_px=row.min_face_px,
        detect_every=row.detect_every,
        pace=row.pace,
        loop=row.loop,
        scan_every=row.scan_every,
        detect_threads=row.detect_threads,
        detector=_detector(row.detector),
    )


def _detector(value: str | None) -> CameraDetector | None:
    """A stored detector name as the type says (``None`` for one the code does not know: the
    server's setting then decides, and the camera still runs)."""
    return next((name for name in CAMERA_DETECTORS if name == value), None)


def _edge(row: EdgeCamera) -> EdgeCameraInfo:
    return EdgeCameraInfo(row.camera_id, row.edge_id, row.name, row.registered_at)


# the servers' cameras --------------------------------------------------------------------------


def every(session: Session) -> list[StoredCamera]:
    """Every server camera, by id."""
    return [_stored(row) for row in session.scalars(select(Camera).order_by(Camera.id))]


def get(session: Session, camera_id: str) -> StoredCamera | None:
    """One server camera, or ``None``."""
    row = session.get(Camera, camera_id)
    return None if row is None else _stored(row)


def add(session: Session, camera: StoredCamera) -> None:
    """Store a new server camera (its id must be free)."""
    session.add(
        Camera(
            id=camera.id,
            name=camera.name,
            location=camera.location,
            source=camera.source,
            enabled=camera.enabled,
            min_face_px=camera.min_face_px,
            detect_every=camera.detect_every,
            pace=camera.pace,
            loop=camera.loop,
            scan_every=camera.scan_every,
            detect_threads=camera.detect_threads,
            detector=camera.detector,
        )
    )


def update(session: Session, camera_id: str, changes: Mapping[str, Any]) -> bool:
    """Set a server camera's settings (names in ``EDITABLE_COLUMNS``); ``False``: no such
    camera."""
    unknown = set(changes) - EDITABLE_COLUMNS
    if unknown:
        raise ValueError(f"not a camera setting: {', '.join(sorted(unknown))}")
    row = session.get(Camera, camera_id)
    if row is None:
        return False
    for name, value in changes.items():
        setattr(row, name, value)
    return True


def mark_ended(session: Session, camera_id: str, at: datetime | None) -> bool:
    """Record that a server camera's file played to its end (``at``), or clear it
    (``None``); ``False``: no such camera."""
    row = session.get(Camera, camera_id)
    if row is None:
        return False
    row.ended_at = at
    return True


def set_resume(session: Session, camera_id: str, frame: int | None) -> bool:
    """Record the frame a server camera's file resumes at (``None``: from its start);
    ``False``: no such camera."""
    row = session.get(Camera, camera_id)
    if row is None:
        return False
    row.resume_frame = frame
    return True


def resume_frames(session: Session) -> dict[str, int]:
    """The server cameras whose file resumes past its start, and where."""
    found = session.execute(
        select(Camera.id, Camera.resume_frame).where(Camera.resume_frame.is_not(None))
    )
    return {camera: int(frame) for camera, frame in found if frame}


def ended_ids(session: Session) -> set[str]:
    """The server cameras whose file played to its end and was not started again."""
    return set(session.scalars(select(Camera.id).where(Camera.ended_at.is_not(None))))


def delete(session: Session, camera_id: str) -> str | None:
    """Delete a server camera (its sightings stay); returns its name, or ``None`` when there
    is no such camera."""
    row = session.get(Camera, camera_id)
    if row is None:
        return None
    name = row.name
    session.delete(row)
    return name


def server_ids(session: Session, among: Collection[str] | None = None) -> set[str]:
    """The ids of the server cameras (only those among ``among`` when given)."""
    query = select(Camera.id)
    if among is not None:
        query = query.where(Camera.id.in_(among))
    return set(session.scalars(query))


# the edges' cameras ----------------------------------------------------------------------------


def edge_owners(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """Every registered edge camera's edge and name, each by camera id."""
    owners: dict[str, str] = {}
    names: dict[str, str] = {}
    for camera, edge, name in session.execute(
        select(EdgeCamera.camera_id, EdgeCamera.edge_id, EdgeCamera.name)
    ):
        owners[camera] = edge
        names[camera] = name
    return owners, names


def edges_of(session: Session, camera_ids: Collection[str]) -> dict[str, str]:
    """The edge each registered camera among ``camera_ids`` belongs to, by camera id."""
    rows = session.execute(
        select(EdgeCamera.camera_id, EdgeCamera.edge_id).where(EdgeCamera.camera_id.in_(camera_ids))
    )
    return dict(rows.all())


def edge_of(session: Session, camera_id: str) -> str | None:
    """The edge that registered ``camera_id``, or ``None``."""
    row = session.get(EdgeCamera, camera_id)
    return None if row is None else row.edge_id


def register(session: Session, edge: str, camera_id: str, name: str) -> bool:
    """Register ``camera_id`` to ``edge`` under ``name``, or rename it when it is
    registered already (to whichever edge: the caller checked); ``True`` when it is new."""
    row = session.get(EdgeCamera, camera_id)
    if row is None:
        session.add(EdgeCamera(camera_id=camera_id, edge_id=edge, name=name))
        return True
    row.name = name
    return False


def edge_cameras(session: Session, edge: str | None = None) -> list[EdgeCameraInfo]:
    """The registered edge cameras (only ``edge``'s when given), by edge and camera."""
    session.flush()
    query = select(EdgeCamera).order_by(EdgeCamera.edge_id, EdgeCamera.camera_id)
    if edge is not None:
        query = query.where(EdgeCamera.edge_id == edge)
    return [_edge(row) for row in session.scalars(query)]


def unregister(session: Session, edge: str, camera_id: str) -> bool:
    """Forget that ``camera_id`` is ``edge``'s; whether it was."""
    row = session.get(EdgeCamera, camera_id)
    if row is None or row.edge_id != edge:
        return False
    session.delete(row)
    return True
