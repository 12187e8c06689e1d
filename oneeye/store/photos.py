"""Where photos and snapshots live: behind ``PhotoStore``, a local folder by default.

Keys are opaque relative names chosen by the store (``templates/ab/ab12....jpg``); callers keep
the key in the database and never build paths themselves.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from oneeye.errors import NotFound, OneEyeError
from oneeye.store.files import private_dir, write_private
from oneeye.store.models import new_id

_KEY = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.[a-z0-9]{2,5}$")
_KIND = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$")
_SUFFIX = re.compile(r"^[a-z0-9_-]+$")
SNAPSHOTS = "snapshots"
"""The kind of camera snapshots; each camera's are under ``snapshots/{camera}/``."""
_SNAPSHOT_OF = re.compile(r"^snapshots/([a-z0-9_-]{1,64})/[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png)$")


class PhotoStoreError(OneEyeError):
    """A photo cannot be stored or read."""


class PhotoNotFoundError(PhotoStoreError, NotFound):
    """No photo has this key."""


def check_key(key: str) -> str:
    """``key`` if it is a well-formed photo key, else a ``PhotoStoreError``."""
    if not _KEY.match(key) or ".." in key:
        raise PhotoStoreError(f"not a photo key: {key!r}")
    return key


def snapshot_kind(camera_id: str) -> str:
    """The photo kind of ``camera_id``'s snapshots: its keys are ``snapshots/{camera}/...``."""
    return f"{SNAPSHOTS}/{camera_id}"


def snapshot_camera(key: str) -> str | None:
    """The camera whose snapshot ``key`` is (made by ``new_key(snapshot_kind(camera))``), or
    ``None`` for any other key: an enrolment photo, a case photo, a snapshot key of the old
    form without a camera."""
    found = _SNAPSHOT_OF.match(key)
    return None if found is None else found.group(1)


class PhotoStore(ABC):
    """Photos by key."""

    def new_key(self, kind: str, suffix: str = "jpg") -> str:
        """A fresh key for a photo of ``kind`` (``templates``, ``customers``, or a camera's
        ``snapshot_kind``)."""
        if not _KIND.match(kind) or not _SUFFIX.match(suffix):
            raise PhotoStoreError(f"bad photo kind or suffix: {kind!r}, {suffix!r}")
        ident = new_id()
        return f"{kind}/{ident[:2]}/{ident}.{suffix.lower()}"

    def add(self, kind: str, data: bytes, suffix: str = "jpg") -> str:
        """Store ``data`` under a fresh key and return the key."""
        key = self.new_key(kind, suffix)
        self.put(key, data)
        return key

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``PhotoNotFoundError`` if there are none."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Delete ``key``; ``True`` if it existed."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a photo."""

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every key (retention and erasure delete many at once); keys already gone
        are fine. Returns how many were deleted (a backend that cannot tell counts every key
        it was asked to delete); ``PhotoStoreError`` if the store refused."""
        return sum(1 for key in keys if self.delete(key))


class LocalPhotoStore(PhotoStore):
    """Photos as files under one folder. Writes are atomic (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        private_dir(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        write_private(self._path(key), data)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PhotoNotFoundError(f"no photo {key!r}") from None

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()
