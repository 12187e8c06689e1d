"""Data files are owner-only (0600, folders 0700) whatever the umask; older, wider files are
narrowed when opened again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.store.db import Database
from oneeye.store.files import write_private
from oneeye.store.photos import LocalPhotoStore


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The most permissive usual umask, so only OneEye's own care makes files private."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "oneeye.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.migrate()
        assert db.tables()
        assert mode_of(path.parent) == 0o700
        for name in ("oneeye.db", "oneeye.db-wal", "oneeye.db-shm"):
            assert mode_of(path.parent / name) == 0o600, name
    finally:
        db.close()


def test_an_older_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "oneeye.db"
    for name in ("oneeye.db", "oneeye.db-wal"):
        (tmp_path / name).write_bytes(b"")
        os.chmod(tmp_path / name, 0o644)
    Database(f"sqlite:///{path}").close()
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "oneeye.db-wal") == 0o600


def test_photos_and_their_folders_are_owner_only(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    store.put("snapshots/cam/a.jpg", b"\xff\xd8\xff")
    assert mode_of(tmp_path / "photos") == 0o700
    assert mode_of(tmp_path / "photos" / "snapshots") == 0o700
    assert mode_of(tmp_path / "photos" / "snapshots" / "cam" / "a.jpg") == 0o600


def test_write_private_replaces_a_file_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "gallery.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_private(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert mode_of(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.json"]
