"""Photo stores: the same round trip through every backend, and the local store's own habits."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from oneeye.config import ServeSettings
from oneeye.errors import OneEyeError
from oneeye.store import s3
from oneeye.store.photo_stores import make_photo_store
from oneeye.store.photos import (
    LocalPhotoStore,
    PhotoNotFoundError,
    PhotoStore,
    PhotoStoreError,
    check_key,
    snapshot_camera,
    snapshot_kind,
)

JPEG_LIKE = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"


def test_round_trip(photo_store: PhotoStore) -> None:
    key = photo_store.add("snapshots", JPEG_LIKE)
    assert key.startswith("snapshots/")
    assert key.endswith(".jpg")
    assert photo_store.exists(key)
    assert photo_store.get(key) == JPEG_LIKE


def test_put_replaces(photo_store: PhotoStore) -> None:
    key = photo_store.add("templates", b"first", suffix="png")
    assert key.endswith(".png")
    photo_store.put(key, b"second")
    assert photo_store.get(key) == b"second"


def test_empty_photo_round_trips(photo_store: PhotoStore) -> None:
    key = photo_store.add("customers", b"")
    assert photo_store.get(key) == b""


def test_delete(photo_store: PhotoStore) -> None:
    key = photo_store.add("snapshots", JPEG_LIKE)
    assert photo_store.delete(key) is True
    assert not photo_store.exists(key)
    assert photo_store.delete(key) is False
    with pytest.raises(PhotoNotFoundError, match="no photo"):
        photo_store.get(key)


def test_delete_many(photo_store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention and erasure delete many photos at once (on S3 one request per
    ``DELETE_BATCH`` keys: 3 here, so that 7 keys take three requests)."""
    monkeypatch.setattr(s3, "DELETE_BATCH", 3)
    keys = [photo_store.add("snapshots", f"face {i}".encode()) for i in range(7)]
    kept = photo_store.add("snapshots", b"kept")
    gone = photo_store.new_key("snapshots")  # never stored: deleting it is fine
    assert photo_store.delete_many([*keys, gone]) >= len(keys)
    assert not any(photo_store.exists(k) for k in keys)
    assert photo_store.get(kept) == b"kept"
    assert photo_store.delete_many([]) == 0
    with pytest.raises(PhotoStoreError):
        photo_store.delete_many(["../escape.jpg"])


def test_missing_key(photo_store: PhotoStore) -> None:
    key = photo_store.new_key("snapshots")
    assert not photo_store.exists(key)
    with pytest.raises(PhotoNotFoundError):
        photo_store.get(key)


def test_keys_are_fresh(photo_store: PhotoStore) -> None:
    keys = [photo_store.add("snapshots", str(i).encode()) for i in range(5)]
    assert len(set(keys)) == 5
    assert [photo_store.get(key) for key in keys] == [str(i).encode() for i in range(5)]


BAD_KEYS = [
    ("../etc/passwd", "not a photo key"),
    ("/etc/passwd.jpg", "not a photo key"),
    ("snapshots/../../x.jpg", "not a photo key"),
    ("snapshots/ab/AB.jpg", "not a photo key"),
    ("snapshots/ab/x", "not a photo key"),
    ("snapshots//x.jpg", "not a photo key"),
    ("snapshots/x.jpg/", "not a photo key"),
    ("", "not a photo key"),
    ("snap shots/x.jpg", "not a photo key"),
    ("snapshots\\x.jpg", "not a photo key"),
]


@pytest.mark.parametrize(("key", "error"), BAD_KEYS)
def test_bad_keys_refused(photo_store: PhotoStore, key: str, error: str) -> None:
    with pytest.raises(PhotoStoreError, match=error):
        photo_store.put(key, b"x")
    with pytest.raises(PhotoStoreError, match=error):
        photo_store.get(key)
    with pytest.raises(PhotoStoreError, match=error):
        photo_store.exists(key)
    with pytest.raises(PhotoStoreError, match=error):
        photo_store.delete(key)


@pytest.mark.parametrize(
    ("kind", "suffix"), [("../x", "jpg"), ("snapshots", "j/pg"), ("", "jpg"), ("Snap", "jpg")]
)
def test_bad_kind_or_suffix_refused(photo_store: PhotoStore, kind: str, suffix: str) -> None:
    with pytest.raises(PhotoStoreError, match="bad photo kind or suffix"):
        photo_store.add(kind, b"x", suffix=suffix)


def test_check_key_accepts_store_keys(photo_store: PhotoStore) -> None:
    for kind in ("templates", "snapshots", "customers"):
        key = photo_store.new_key(kind, "png")
        assert check_key(key) == key


# LocalPhotoStore only -----------------------------------------------------------------------


def test_local_files_live_under_root(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.add("snapshots", JPEG_LIKE)
    assert (tmp_path / "photos" / key).read_bytes() == JPEG_LIKE


def test_local_write_is_atomic(tmp_path: Path) -> None:
    """Readers see the old photo or the new one, never a part; no temporary file is left."""
    store = LocalPhotoStore(tmp_path / "photos")
    old, new = b"a" * 2_000_000, b"b" * 2_000_000
    key = store.add("snapshots", old)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = store.get(key)
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(20):
            store.put(key, new if i % 2 == 0 else old)
    finally:
        stop.set()
        reader.join()
    assert seen <= {b"aa2000000", b"bb2000000"}
    assert store.get(key) == old
    assert sorted(os.listdir((tmp_path / "photos" / key).parent)) == [Path(key).name]


def test_local_failed_write_leaves_old_photo(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path / "photos")
    key = store.add("snapshots", b"old")
    with pytest.raises(TypeError):
        store.put(key, "not bytes")  # type: ignore[arg-type]
    assert store.get(key) == b"old"
    assert sorted(os.listdir((tmp_path / "photos" / key).parent)) == [Path(key).name]


def test_a_camera_s_snapshot_keys_name_the_camera(photo_store: PhotoStore) -> None:
    key = photo_store.add(snapshot_kind("door"), b"\xff\xd8\xff")
    assert key.startswith("snapshots/door/")
    assert snapshot_camera(key) == "door"
    for other in (
        photo_store.add("templates", b"x"),  # an enrolment photo
        photo_store.add("snapshots", b"x"),  # the old form, no camera
        "snapshots/door/ab/../../templates/ab/x.jpg",
        "snapshots/door/ab/" + "ab" * 16 + ".jpg/x",
        "snapshots/door-2/ab/" + "AB" * 16 + ".jpg",
    ):
        assert snapshot_camera(other) is None, other


def test_make_photo_store_by_name(tmp_path: Path) -> None:
    """The store is chosen by the name in the settings; S3 without a bucket and an unknown
    name are refused with a sentence naming the fix or the known stores."""
    local = make_photo_store(ServeSettings(data_dir=tmp_path))
    assert isinstance(local, LocalPhotoStore)
    key = local.add("templates", b"photo")
    assert local.get(key) == b"photo"
    with pytest.raises(OneEyeError, match="needs a bucket"):
        make_photo_store(ServeSettings(data_dir=tmp_path, photo_store="s3"))
    odd = ServeSettings(data_dir=tmp_path).model_copy(update={"photo_store": "ftp"})
    with pytest.raises(OneEyeError, match="known stores: local, s3"):
        make_photo_store(odd)
