"""The gallery file: one ``.npz`` with the embeddings, the qualities and JSON metadata.

The file holds the embeddings as an (n, 128) float32 array, the qualities, and the rest (ids,
persons, watchlists, thresholds, margin, version) as UTF-8 JSON; no pickles. It is written
atomically (a temp file in the same directory, fsync, rename) and read back with every field
checked. :meth:`~oneeye.gallery.index.GalleryIndex.save` and ``load`` are the callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from oneeye.config import DEFAULT_MARGIN

FILE_FORMAT: Final = "oneeye-gallery"
FILE_FORMAT_VERSION: Final = 1

_FILE_MEMBERS: Final = ("embeddings", "metadata", "qualities")


@dataclass(frozen=True)
class GalleryFile:
    """What a gallery file holds.

    Attributes:
        version: the gallery's version.
        default_threshold: the threshold of watchlists without their own.
        thresholds: per-watchlist thresholds.
        margin: the margin.
        ids: template ids, one per embedding row.
        persons: the person of each template.
        watchlists: the watchlist of each template.
        embeddings: an (n, 128) array.
        qualities: n quality scores.
    """

    version: int
    default_threshold: float
    thresholds: dict[str, float]
    margin: float
    ids: list[str]
    persons: list[str]
    watchlists: list[str]
    embeddings: npt.NDArray[Any]
    qualities: npt.NDArray[Any]


def write(target: Path, saved: GalleryFile) -> None:
    """Write ``saved`` to ``target`` atomically (temp file, fsync, rename).

    Raises:
        OSError: the file could not be written (no temp file is left behind).
    """
    metadata: dict[str, Any] = {
        "format": FILE_FORMAT,
        "format_version": FILE_FORMAT_VERSION,
        "version": saved.version,
        "default_threshold": saved.default_threshold,
        "thresholds": dict(saved.thresholds),
        "margin": saved.margin,
        "ids": saved.ids,
        "persons": saved.persons,
        "watchlists": saved.watchlists,
    }
    encoded = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    temp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        ) as handle:
            temp_name = handle.name
            np.savez(
                handle, embeddings=saved.embeddings, qualities=saved.qualities, metadata=encoded
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
        temp_name = None
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)


def read(source: Path) -> GalleryFile:
    """Read a file written by :func:`write`.

    Raises:
        OSError, EOFError, zipfile.BadZipFile: the file is missing or unreadable.
        ValueError, KeyError, TypeError: it is not a gallery file of this format.
    """
    with np.load(source, allow_pickle=False) as archive:
        missing = sorted(set(_FILE_MEMBERS) - set(archive.files))
        if missing:
            raise ValueError(f"expected arrays {list(_FILE_MEMBERS)}, missing {missing}")
        embeddings = archive["embeddings"]
        qualities = archive["qualities"]
        metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
    if not isinstance(metadata, dict) or metadata.get("format") != FILE_FORMAT:
        raise ValueError(f"expected format {FILE_FORMAT!r} in the metadata")
    if metadata.get("format_version") != FILE_FORMAT_VERSION:
        raise ValueError(
            f"expected format_version {FILE_FORMAT_VERSION}, got {metadata.get('format_version')!r}"
        )
    version = metadata["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"expected a version >= 0, got {version!r}")
    return GalleryFile(
        version=version,
        default_threshold=metadata["default_threshold"],
        thresholds=metadata["thresholds"],
        margin=metadata.get("margin", DEFAULT_MARGIN),
        ids=metadata["ids"],
        persons=metadata["persons"],
        watchlists=metadata["watchlists"],
        embeddings=embeddings,
        qualities=qualities,
    )
