"""GallerySync against the server's real GalleryService (SQLite, in-process bus): a full copy at
start, changes applied in version order, a gap / a reload / a malformed change / a differing
retained version answered with a resync, repeats ignored, and a server that cannot be reached
retried until it answers."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oneeye.bus.base import GALLERY_CHANGES, GALLERY_VERSION, Message
from oneeye.bus.memory import MemoryBus
from oneeye.bus.messages import (
    AddChange,
    GalleryChangePayload,
    GalleryTemplate,
    GalleryVersionPayload,
    PayloadReader,
    Rejections,
    ReloadChange,
    RemovePersonChange,
    _signed_bytes,
    new_signing_key,
    sign,
)
from oneeye.gallery import GalleryIndex
from oneeye.gallery.sync import GallerySnapshot, GallerySync, GallerySyncError
from oneeye.services.gallery import GalleryEntry, GalleryService
from oneeye.store.db import Database
from oneeye.store.models import new_id
from tests.bus.helpers import Note


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def export(service: GalleryService) -> dict[str, Any]:
    """What ``GET /api/v1/gallery`` answers (the route's own shape)."""
    copy = service.copy()
    return {
        "version": copy.version,
        "epoch": service.epoch,
        "verify_key": service.verify_key.hex(),
        "margin": copy.margin,
        "default_threshold": copy.default_threshold,
        "thresholds": copy.thresholds,
        "entries": [
            {
                "id": t.id,
                "person": t.person,
                "watchlist": t.watchlist,
                "quality": t.quality,
                "embedding": [float(v) for v in t.embedding],
            }
            for t in copy.templates
        ],
    }


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


class Rig:
    """A server side (database, gallery, GalleryService) and an edge side (its own gallery
    and GallerySync) on one in-process bus."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
        self.db.migrate()
        self.bus = MemoryBus()
        self.server_gallery = GalleryIndex()
        self.service = GalleryService(self.db, self.server_gallery, self.bus)
        self.service.load()
        self.edge_gallery = GalleryIndex()
        self.fetches = 0
        self.failing = threading.Event()
        self.applied: list[tuple[int, str]] = []
        self.sync = GallerySync(
            self.edge_gallery,
            self.bus,
            self.fetch,
            on_applied=lambda v, how: self.applied.append((v, how)),
            retry_first=0.05,
            retry_max=0.1,
        )
        self.bus.start()

    def fetch(self) -> GallerySnapshot:
        self.fetches += 1
        if self.failing.is_set():
            raise ConnectionError("server unreachable")
        return GallerySnapshot.from_json(export(self.service))

    def enrol(self, seed: int, watchlists: tuple[str, ...] = ("customers",)) -> str:
        person = new_id()
        self.service.add_templates(watchlists, [GalleryEntry(new_id(), person, unit(seed), 0.8)])
        return person

    def in_step(self) -> bool:
        edge = {t.id: t.person for t in self.edge_gallery.templates()}
        server = {t.id: t.person for t in self.server_gallery.templates()}
        return (
            edge == server
            and self.sync.version == self.service.version
            and self.edge_gallery.thresholds() == self.server_gallery.thresholds()
        )

    def close(self) -> None:
        self.sync.stop()
        self.service.close()
        self.bus.stop()
        self.db.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    try:
        yield made
    finally:
        made.close()


def test_a_full_copy_at_start_then_every_change_in_order(rig: Rig) -> None:
    rig.enrol(1)
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    assert rig.in_step()
    assert rig.fetches == 1
    rig.enrol(2, ("customers", "amber-alert"))
    gone = rig.enrol(3)
    rig.service.update_watchlist("amber-alert", threshold=0.41)
    rig.service.remove_person(gone)
    wait_for(rig.in_step)
    assert rig.fetches == 1, "changes in order need no resync"
    assert rig.edge_gallery.threshold("amber-alert") == pytest.approx(0.41)
    versions = [v for v, how in rig.applied if how == "change"]
    assert versions == sorted(versions)
    match = rig.edge_gallery.identify(unit(2))
    assert match.person is not None


def lost_announcements(rig: Rig) -> GalleryService:
    """A second server on the same database whose announcements never reach the edge."""
    return GalleryService(rig.db, GalleryIndex(), MemoryBus())


def test_a_gap_in_versions_fetches_the_whole_gallery_again(rig: Rig) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    # Two changes in the database of which the edge hears only the second: a gap.
    lost_announcements(rig).update_watchlist("amber-alert", threshold=0.37)
    rig.enrol(5)
    wait_for(lambda: rig.sync.resyncs == 2 and rig.in_step())
    assert rig.edge_gallery.threshold("amber-alert") == pytest.approx(0.37)


def test_two_servers_changes_that_cross_on_the_way_are_applied_in_order(rig: Rig) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    # Server B's change (one version) reaches the edge after server A's next one.
    elsewhere = MemoryBus()
    caught: list[Message] = []
    elsewhere.subscribe("oneeye/#", caught.append)
    elsewhere.start()
    try:
        GalleryService(rig.db, GalleryIndex(), elsewhere).update_watchlist(
            "amber-alert", threshold=0.37
        )
        wait_for(lambda: len(caught) == 2)  # the change and the version
    finally:
        elsewhere.stop()
    rig.enrol(9)
    time.sleep(0.1)  # the edge holds A's change, waiting for B's (0.5 s at most)
    for message in caught:
        model: Any = (
            GalleryChangePayload.model_validate(message.payload).root
            if message.topic == GALLERY_CHANGES
            else GalleryVersionPayload.model_validate(message.payload)
        )
        rig.bus.publish(message.topic, model)
    wait_for(rig.in_step)
    assert rig.fetches == 1, "crossed changes are put in order, not fetched again"
    assert rig.edge_gallery.threshold("amber-alert") == pytest.approx(0.37)


def test_an_edge_that_missed_the_last_change_catches_up_by_the_servers_announcement(
    rig: Rig,
) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    # The last change of a burst, made on a server whose announcement never came, and no
    # change after it: this server finds it in the database and announces its version.
    lost_announcements(rig).update_watchlist("amber-alert", threshold=0.37)
    rig.service.follower.poll_seconds = 0.05
    rig.service.follower.announce_seconds = 0.1
    rig.service.start_following()
    wait_for(lambda: rig.sync.resyncs == 2 and rig.in_step())
    assert rig.edge_gallery.threshold("amber-alert") == pytest.approx(0.37)


def test_repeats_and_old_versions_are_ignored(rig: Rig) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    rig.enrol(6)
    wait_for(rig.in_step)
    version = rig.sync.version
    assert version is not None
    for old in (version, version - 1):
        stale = RemovePersonChange(version=old, epoch=rig.service.epoch, person="nobody")
        rig.bus.publish(GALLERY_CHANGES, sign(rig.service.signing_key, stale))
    rig.enrol(7)
    wait_for(rig.in_step)
    assert rig.fetches == 1


def test_a_reload_resyncs(rig: Rig) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    version = rig.service.version + 1
    rig.server_gallery.set_threshold("customers", 0.3)  # the server really is at version + 1
    reload = ReloadChange(version=version, epoch=rig.service.epoch, templates=0)
    rig.bus.publish(GALLERY_CHANGES, sign(rig.service.signing_key, reload))
    wait_for(lambda: rig.sync.resyncs == 2 and rig.in_step())


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"op": "rename"}, "union_tag_invalid"),
        ({"op": "add", "templates": [{"id": "a"}]}, "templates.0"),
        ({"op": "add"}, "add.templates: missing"),
        ({"op": "threshold", "watchlist": "customers", "threshold": float("inf")}, "threshold"),
        ({"op": "remove_person", "person": "x" * 1000}, "person"),
    ],
)
def test_a_malformed_change_is_dropped_without_taking_its_version(
    rig: Rig, change: dict[str, Any], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig.sync.reader = PayloadReader(rejections=Rejections())
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    version = rig.service.version + 1
    rig.bus.publish(GALLERY_CHANGES, Note.model_validate({"version": version, **change}))
    assert rig.bus.drain(5)
    assert why in caplog.text
    assert rig.sync.version == version - 1
    assert rig.sync.reader.rejections.total("invalid") == 1
    rig.enrol(8)  # the genuine change of that version still applies, with no fetch
    wait_for(rig.in_step)
    assert rig.fetches == 1


def test_a_retained_version_ahead_resyncs_and_one_behind_does_not(rig: Rig) -> None:
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    behind = GalleryVersionPayload(version=rig.service.version - 1, epoch=rig.service.epoch)
    rig.bus.publish(GALLERY_VERSION, sign(rig.service.signing_key, behind), retain=True)
    # A server that is behind is not a reason to fetch (the bus delivers in order: by the time
    # the next change is in force, that message was read).
    rig.enrol(8)
    wait_for(rig.in_step)
    assert rig.fetches == 1
    other = lost_announcements(rig)
    other.update_watchlist("customers", threshold=0.3)
    current = GalleryVersionPayload(version=other.version, epoch=rig.service.epoch)
    rig.bus.publish(GALLERY_VERSION, sign(rig.service.signing_key, current), retain=True)
    wait_for(lambda: rig.sync.resyncs == 2 and rig.in_step())
    assert rig.edge_gallery.threshold("customers") == pytest.approx(0.3)


def forged_add(rig: Rig, version: int, person: str) -> AddChange:
    """An ``add`` naming ``person`` for an attacker's face (seed 99), unsigned."""
    template = GalleryTemplate(
        id="evil@customers",
        person=person,
        watchlist="customers",
        embedding=[float(v) for v in unit(99)],
    )
    return AddChange(version=version, epoch=rig.service.epoch, templates=[template])


@pytest.mark.parametrize(
    ("how", "reason"),
    [("unsigned", "unsigned"), ("wrong key", "bad_signature"), ("tampered", "bad_signature")],
)
def test_a_forged_change_is_dropped_without_taking_its_version(
    rig: Rig, how: str, reason: str
) -> None:
    rig.sync.reader = PayloadReader(rejections=Rejections())
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    customer = rig.enrol(1)
    wait_for(rig.in_step)
    version = rig.service.version + 1
    forged: AddChange = forged_add(rig, version, customer)
    if how == "wrong key":
        forged = sign(new_signing_key(), forged)
    elif how == "tampered":  # signed by the server for someone else, then renamed
        genuine = sign(rig.service.signing_key, forged_add(rig, version, "someone-else"))
        forged = genuine.model_copy(update={"templates": forged.templates})
    rig.bus.publish(GALLERY_CHANGES, forged)
    assert rig.bus.drain(5)
    assert rig.sync.reader.rejections.total(reason) == 1
    assert rig.sync.version == version - 1
    assert not rig.edge_gallery.identify(unit(99)).is_known
    rig.enrol(2)  # the server's own change of that version
    wait_for(rig.in_step)
    assert rig.fetches == 1, "the genuine change applied in order, no fetch"
    assert not rig.edge_gallery.identify(unit(99)).is_known


def test_an_unsigned_version_message_is_ignored(rig: Rig) -> None:
    rig.sync.reader = PayloadReader(rejections=Rejections())
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    lie = GalleryVersionPayload(version=rig.service.version + 5, epoch=rig.service.epoch)
    rig.bus.publish(GALLERY_VERSION, lie, retain=True)
    assert rig.bus.drain(5)
    assert rig.sync.reader.rejections.total("unsigned") == 1
    assert rig.fetches == 1


def test_a_signed_change_of_another_epoch_is_not_applied(rig: Rig) -> None:
    """A change recorded before the server restarted (its versions start again) is signed
    with the same key; replayed, it names another epoch and is dropped."""
    rig.sync.reader = PayloadReader(rejections=Rejections())
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    customer = rig.enrol(1)
    wait_for(rig.in_step)
    old = forged_add(rig, rig.service.version + 1, customer)
    replayed = sign(rig.service.signing_key, old.model_copy(update={"epoch": "0" * 32}))
    rig.bus.publish(GALLERY_CHANGES, replayed)
    assert rig.bus.drain(5)
    assert rig.sync.reader.rejections.total("other_epoch") == 1
    assert not rig.edge_gallery.identify(unit(99)).is_known


def test_an_unreachable_server_is_retried_and_changes_wait_for_the_copy(rig: Rig) -> None:
    rig.failing.set()
    rig.sync.start()
    wait_for(lambda: rig.fetches >= 3)
    assert rig.sync.version is None
    rig.enrol(8)  # arrives while there is no copy yet: held, then applied or inside the copy
    rig.failing.clear()
    assert rig.sync.wait_synced(5)
    wait_for(rig.in_step)


def test_a_resync_replaces_entries_the_server_no_longer_has(rig: Rig) -> None:
    rig.edge_gallery.add_arrays(
        ["stale@customers"], [new_id()], ["customers"], unit(9)[None, :], np.ones(1, np.float32)
    )
    rig.enrol(10)
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    assert "stale@customers" not in rig.edge_gallery
    assert rig.in_step()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": -1}, "version"),
        ({"version": 1, "thresholds": [], "margin": 0.1, "default_threshold": 0.3}, "thresholds"),
        (
            {
                "version": 1,
                "thresholds": {},
                "margin": 0.1,
                "default_threshold": 0.3,
                "entries": [1],
            },
            "must be an object",
        ),
        (
            {
                "version": 1,
                "thresholds": {},
                "margin": 0.1,
                "default_threshold": 0.3,
                "entries": [{"id": "a", "person": "p", "watchlist": "w", "embedding": [0.0]}],
            },
            "128 finite numbers",
        ),
        (
            {
                "version": 1,
                "thresholds": {},
                "margin": 0.1,
                "default_threshold": 0.3,
                "entries": [
                    {"id": "a", "person": "p", "watchlist": "w", "embedding": [math.nan] * 128}
                ],
            },
            "128 finite numbers",
        ),
    ],
)
def test_a_malformed_export_is_refused_with_the_reason(body: dict[str, Any], message: str) -> None:
    with pytest.raises(GallerySyncError, match=message):
        GallerySnapshot.from_json(body)


def key_material(value: object) -> list[bytes]:
    """Every 32-byte hex string anywhere in ``value`` (a JSON document): a key, if it holds one."""
    if isinstance(value, dict):
        return [k for v in value.values() for k in key_material(v)]
    if isinstance(value, list):
        return [k for v in value for k in key_material(v)]
    if isinstance(value, str) and len(value) == 64:
        try:
            return [bytes.fromhex(value)]
        except ValueError:
            return []
    return []


def test_nothing_an_edge_holds_can_sign_a_change(rig: Rig) -> None:
    """Issue 11, finding 1 (#16): with a shared HMAC key every edge could sign a change every
    other edge applied. Whatever an edge is given (the export) or keeps (its saved copy), used
    as an HMAC key or as an Ed25519 private key, signs nothing an edge accepts."""
    rig.sync.reader = PayloadReader(rejections=Rejections())
    rig.sync.start()
    assert rig.sync.wait_synced(5)
    customer = rig.enrol(1)
    wait_for(rig.in_step)
    snapshot = rig.sync.snapshot()
    assert snapshot is not None
    held = key_material(export(rig.service)) + key_material(snapshot.to_json())
    assert held, "the edge holds the server's key material to verify with"
    version = rig.service.version + 1
    forged = forged_add(rig, version, customer)
    body = _signed_bytes(forged)
    attempts = []
    for raw in held:
        # The scheme before Ed25519: an HMAC-SHA256 under the key the edge was given.
        attempts.append(hmac.new(raw, body, hashlib.sha256).hexdigest())
        attempts.append(Ed25519PrivateKey.from_private_bytes(raw).sign(body).hex())
    for sig in attempts:
        rig.bus.publish(GALLERY_CHANGES, Note.model_validate({**forged.model_dump(), "sig": sig}))
    assert rig.bus.drain(5)
    assert sum(rig.sync.reader.rejections.counts().values()) == len(attempts)
    assert rig.sync.version == version - 1, "no forged change took the version"
    assert not rig.edge_gallery.identify(unit(99)).is_known
    rig.enrol(2)  # the server's own change of that version still applies
    wait_for(rig.in_step)
    assert not rig.edge_gallery.identify(unit(99)).is_known
