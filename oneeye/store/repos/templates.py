"""Face templates: enrolled photos' rows, and the one codec of stored embeddings.

An embedding is kept as 128 little-endian float32, 512 raw bytes; every encoding and decoding
of those bytes (templates here, kept embeddings of unknown faces in sightings) goes through
``embedding_to_bytes``, ``embedding_from_bytes`` and ``embeddings_from_bytes``. Functions take
the caller's ``Session`` (the caller owns the transaction) and return value types, never rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneeye.errors import OneEyeError
from oneeye.store.models import FaceTemplate, Watchlist, person_watchlists
from oneeye.types import Face, FaceBox

EMBEDDING_DIM = 128
EMBEDDING_BYTES = EMBEDDING_DIM * 4
"""The size of one stored embedding."""


class DamagedEmbeddingError(OneEyeError):
    """Stored embedding bytes are not 512 long."""

    def __init__(self, message: str, bad: Sequence[int]) -> None:
        super().__init__(message)
        self.bad = tuple(bad)
        """The positions of the damaged blobs in what was decoded."""


def embedding_to_bytes(embedding: npt.ArrayLike) -> bytes:
    """A 128-D embedding as the 512 bytes the database keeps."""
    array = np.asarray(embedding, dtype="<f4").reshape(-1)
    if array.shape != (EMBEDDING_DIM,):
        raise ValueError(f"an embedding has {EMBEDDING_DIM} values, got {array.shape[0]}")
    return array.tobytes()


def embedding_from_bytes(data: bytes) -> npt.NDArray[np.float32]:
    """The 128-D embedding stored as ``data``; ``ValueError`` if it is not 512 bytes."""
    if len(data) != EMBEDDING_BYTES:
        raise ValueError(f"a stored embedding has {EMBEDDING_BYTES} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def is_embedding(data: bytes | None) -> bool:
    """Whether ``data`` has the size of a stored embedding (``None``: none kept)."""
    return data is not None and len(data) == EMBEDDING_BYTES


def embeddings_from_bytes(blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
    """Stored embeddings as one (n, 128) float32 array, decoded in one pass.

    Raises:
        DamagedEmbeddingError: some blob is not 512 bytes (``bad`` says which).
    """
    bad = [i for i, blob in enumerate(blobs) if len(blob) != EMBEDDING_BYTES]
    if bad:
        raise DamagedEmbeddingError(
            f"{len(bad)} stored embeddings are not {EMBEDDING_BYTES} bytes", bad
        )
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
    return flat.reshape(len(blobs), EMBEDDING_DIM)


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """An enrolled photo of a person: where the face is and how good it is."""

    id: str
    person_id: str
    photo_key: str
    box: FaceBox
    quality: float
    size_px: float
    sharpness: float
    frontalness: float
    created_at: datetime
    source_sighting_id: str | None = None
    """The sighting it was enrolled from; ``None``: an uploaded photo."""


@dataclass(frozen=True, slots=True)
class TemplateVector:
    """A template's embedding, decoded, with what the gallery files it under."""

    id: str
    person_id: str
    quality: float
    embedding: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class WatchlistTemplates:
    """Every (template, watchlist) pair of the people on watchlists, as columns: what the
    live gallery is rebuilt from."""

    template_ids: list[str]
    person_ids: list[str]
    watchlists: list[str]
    qualities: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32]
    """(n, 128)."""


def info_of(row: FaceTemplate) -> TemplateInfo:
    """The value of a template row."""
    return TemplateInfo(
        id=row.id,
        person_id=row.person_id,
        photo_key=row.photo_key,
        box=FaceBox(top=row.top, right=row.right, bottom=row.bottom, left=row.left),
        quality=row.quality,
        size_px=row.size_px,
        sharpness=row.sharpness,
        frontalness=row.frontalness,
        created_at=row.created_at,
        source_sighting_id=row.source_sighting_id,
    )


def of_person(session: Session, person_id: str) -> list[TemplateInfo]:
    """A person's templates, oldest first."""
    rows = session.scalars(
        select(FaceTemplate)
        .where(FaceTemplate.person_id == person_id)
        .order_by(FaceTemplate.created_at, FaceTemplate.id)
    )
    return [info_of(row) for row in rows]


def photo_keys(session: Session, person_id: str) -> list[str]:
    """The photo keys of a person's templates."""
    return list(
        session.scalars(select(FaceTemplate.photo_key).where(FaceTemplate.person_id == person_id))
    )


def add(
    session: Session,
    person_id: str,
    photo_key: str,
    face: Face,
    *,
    sighting_id: str | None = None,
) -> TemplateInfo:
    """Store a template of ``face`` (photo at ``photo_key``) for a person, enrolled from the
    sighting ``sighting_id`` if given; flushed, so a person deleted meanwhile raises
    ``IntegrityError`` here or at commit."""
    row = FaceTemplate(
        person_id=person_id,
        photo_key=photo_key,
        embedding=embedding_to_bytes(face.embedding),
        top=face.box.top,
        right=face.box.right,
        bottom=face.box.bottom,
        left=face.box.left,
        quality=face.quality.score,
        size_px=float(face.quality.size),
        sharpness=face.quality.sharpness,
        frontalness=face.quality.frontalness,
        source_sighting_id=sighting_id,
    )
    session.add(row)
    session.flush()
    return info_of(row)


def delete(session: Session, template_id: str, *, person_id: str | None = None) -> str | None:
    """Delete a template (only if it is ``person_id``'s, when given); returns its photo key,
    or ``None`` if there was no such template."""
    row = session.get(FaceTemplate, template_id)
    if row is None or (person_id is not None and row.person_id != person_id):
        return None
    key = row.photo_key
    session.delete(row)
    return key


def vectors_of_person(session: Session, person_id: str) -> list[TemplateVector]:
    """A person's templates with their embeddings decoded."""
    rows = session.execute(
        select(FaceTemplate.id, FaceTemplate.quality, FaceTemplate.embedding).where(
            FaceTemplate.person_id == person_id
        )
    ).all()
    return [
        TemplateVector(tid, person_id, quality, embedding_from_bytes(bytes(blob)))
        for tid, quality, blob in rows
    ]


def vectors(session: Session, template_ids: Sequence[str]) -> dict[str, TemplateVector]:
    """The templates of ``template_ids`` that exist, by id, with their embeddings decoded."""
    found: dict[str, TemplateVector] = {}
    for start in range(0, len(template_ids), 500):
        rows = session.execute(
            select(
                FaceTemplate.id,
                FaceTemplate.person_id,
                FaceTemplate.quality,
                FaceTemplate.embedding,
            ).where(FaceTemplate.id.in_(template_ids[start : start + 500]))
        ).all()
        for tid, person, quality, blob in rows:
            found[tid] = TemplateVector(tid, person, quality, embedding_from_bytes(bytes(blob)))
    return found


def on_watchlists(session: Session) -> WatchlistTemplates:
    """Every template once per watchlist its person is on, embeddings decoded in one pass.

    Raises:
        DamagedEmbeddingError: some stored embedding is damaged (``bad`` indexes the pairs).
    """
    rows = session.execute(
        select(
            FaceTemplate.id,
            FaceTemplate.person_id,
            Watchlist.name,
            FaceTemplate.quality,
            FaceTemplate.embedding,
        )
        .join(person_watchlists, person_watchlists.c.person_id == FaceTemplate.person_id)
        .join(Watchlist, Watchlist.id == person_watchlists.c.watchlist_id)
    ).all()
    try:
        embeddings = embeddings_from_bytes([bytes(blob) for *_, blob in rows])
    except DamagedEmbeddingError as exc:
        tid, _, watchlist, _, _ = rows[exc.bad[0]]
        raise DamagedEmbeddingError(
            f"{len(exc.bad)} stored templates have a damaged embedding, e.g. {tid!r} "
            f"(on {watchlist!r})",
            exc.bad,
        ) from None
    return WatchlistTemplates(
        template_ids=[tid for tid, *_ in rows],
        person_ids=[person for _, person, _, _, _ in rows],
        watchlists=[watchlist for _, _, watchlist, _, _ in rows],
        qualities=np.fromiter((q for *_, q, _ in rows), dtype=np.float32, count=len(rows)),
        embeddings=embeddings,
    )


def get(session: Session, template_id: str) -> TemplateInfo | None:
    """One template, or ``None``."""
    row = session.get(FaceTemplate, template_id)
    return None if row is None else info_of(row)
