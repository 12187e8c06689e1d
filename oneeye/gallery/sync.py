"""Keeps a gallery elsewhere (an edge's) equal to the servers': a full copy at start, then the
changes of ``oneeye/v1/gallery/changes`` in version order.

Versions come from the database every central server shares (``services.gallery_log``): each
change has one, whichever server made it, and every server announces the changes it makes. A
change one past the version held here is applied; one at or below it is a repeat (a
redelivered message, or one already inside the last full copy) and is ignored; one further
ahead waits up to :data:`REORDER_SECONDS` for those between (two servers' changes can cross on
the way) and is applied after them; if they do not come, one was missed, and the whole gallery
is fetched again (a *resync*; the waiting changes are applied after the copy if it is older).
A ``reload`` (a server started, or rebuilt its gallery), a change that cannot be applied, and
a retained ``oneeye/v1/gallery/version`` ahead of the version held here (or of another epoch)
also resync; the servers announce their version every half minute, so an
edge that missed the last change of a burst catches up. A message that is not a valid change
(``oneeye.bus.messages``) is dropped and counted without touching the version held here: the
genuine change of that version is still applied when it comes, and if it never does, the next
one is a gap and resyncs.

Every change and version message is signed by the servers (Ed25519, ``messages.sign``; they
share the key through the database) and verified here with the public key the last full copy
brought (the private key never leaves the servers), and names the epoch of the database's
change log: a change that does not verify, or of another epoch, is dropped and counted, its
version left free.

Fetching runs on a thread of its own, retried with backoff while the server is unreachable;
searches go on with the gallery as it is meanwhile. A server answers a fetch with its gallery
brought up to the database's newest version, so a copy is never older than a change already
announced. Changes that arrive during a fetch are kept and applied after it, those past its
version only. A full copy is applied as a difference (entries added and removed), so the
gallery is never empty in between.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from oneeye.bus.base import GALLERY_CHANGES, GALLERY_VERSION, Bus, Message
from oneeye.bus.messages import (
    AddChange,
    AnyChange,
    GalleryChangePayload,
    GalleryVersionPayload,
    PayloadReader,
    ReloadChange,
    RemoveChange,
    RemovePersonChange,
    ThresholdChange,
    verify,
    verify_key_bytes,
    verify_key_from_bytes,
)
from oneeye.errors import GalleryError
from oneeye.gallery.index import GalleryIndex

logger = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
_EPOCH = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
MAX_HELD = 10_000
"""Changes kept while a copy is being fetched."""
REORDER_SECONDS = 0.5
"""How long a change ahead of the next one waits for those between it and the version held
(two servers' changes can cross on the way) before the whole gallery is fetched."""
MAX_AHEAD = 1000
"""Changes kept waiting for a missing one; more, and the gallery is fetched at once."""
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
"""Seconds between two failed fetches: doubling from the first to the most."""


class GallerySyncError(ValueError):
    """A gallery copy or change is malformed (it is logged, and the gallery fetched again)."""


@dataclass(frozen=True, slots=True)
class GallerySnapshot:
    """The whole gallery at one version, as ``GET /api/v1/gallery`` answers it."""

    version: int
    margin: float
    default_threshold: float
    thresholds: dict[str, float]
    ids: list[str]
    persons: list[str]
    watchlists: list[str]
    embeddings: npt.NDArray[np.float32] = field(repr=False)
    """Shape ``(n, 128)``."""
    qualities: npt.NDArray[np.float32] = field(repr=False)
    epoch: str | None = None
    """The server's build of the gallery this copy is of; changes of another are not applied."""
    verify_key: bytes | None = None
    """The server's Ed25519 public key (raw 32 bytes) its changes verify with; without it no
    change is applied. Public: nothing in a copy can sign."""

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> GallerySnapshot:
        """Validate the export's JSON; ``GallerySyncError`` says what is wrong."""
        version = body.get("version")
        if type(version) is not int or version < 0:
            raise GallerySyncError(f"version must be a whole number >= 0, got {version!r}")
        thresholds = body.get("thresholds")
        if not isinstance(thresholds, dict) or not all(
            isinstance(k, str) and _is_number(v) for k, v in thresholds.items()
        ):
            raise GallerySyncError("thresholds must map watchlist names to numbers")
        margin, default = body.get("margin"), body.get("default_threshold")
        if not _is_number(margin) or not _is_number(default):
            raise GallerySyncError("margin and default_threshold must be numbers")
        entries = body.get("entries")
        if not isinstance(entries, list):
            raise GallerySyncError("entries must be a list")
        ids, persons, watchlists, embeddings, qualities = _columns(entries)
        # A copy saved by an older edge holds ``signing_key`` (a shared HMAC key): ignored, so
        # the edge verifies nothing until the next fetch brings the public key.
        epoch, key = body.get("epoch"), body.get("verify_key")
        if epoch is not None and (not isinstance(epoch, str) or not _EPOCH.match(epoch)):
            raise GallerySyncError("epoch must be 32 hex characters")
        if key is not None and (not isinstance(key, str) or not _KEY.match(key)):
            raise GallerySyncError("verify_key must be 64 hex characters")
        if key is not None:
            try:
                verify_key_from_bytes(bytes.fromhex(key))
            except ValueError as exc:
                raise GallerySyncError(f"verify_key is not an Ed25519 public key: {exc}") from None
        return cls(
            version=version,
            margin=float(margin),
            default_threshold=float(default),
            thresholds={k: float(v) for k, v in thresholds.items()},
            ids=ids,
            persons=persons,
            watchlists=watchlists,
            embeddings=embeddings,
            qualities=qualities,
            epoch=epoch,
            verify_key=None if key is None else bytes.fromhex(key),
        )

    def to_json(self) -> dict[str, Any]:
        """The snapshot as the export's JSON (what ``from_json`` reads back)."""
        return {
            "version": self.version,
            "epoch": self.epoch,
            "verify_key": None if self.verify_key is None else self.verify_key.hex(),
            "margin": self.margin,
            "default_threshold": self.default_threshold,
            "thresholds": dict(self.thresholds),
            "entries": [
                {
                    "id": ident,
                    "person": person,
                    "watchlist": watchlist,
                    "quality": float(quality),
                    "embedding": [float(x) for x in embedding],
                }
                for ident, person, watchlist, quality, embedding in zip(
                    self.ids,
                    self.persons,
                    self.watchlists,
                    self.qualities,
                    self.embeddings,
                    strict=True,
                )
            ],
        }


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _columns(
    entries: Sequence[object],
) -> tuple[list[str], list[str], list[str], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Entries (``{"id","person","watchlist","quality","embedding"}``) as column arrays."""
    ids: list[str] = []
    persons: list[str] = []
    watchlists: list[str] = []
    vectors: list[list[float]] = []
    qualities: list[float] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise GallerySyncError(f"a gallery entry must be an object, got {entry!r:.60}")
        names = [entry.get(k) for k in ("id", "person", "watchlist")]
        if not all(isinstance(n, str) and n for n in names):
            raise GallerySyncError(f"a gallery entry needs id, person and watchlist: {names}")
        embedding = entry.get("embedding")
        if (
            not isinstance(embedding, list)
            or len(embedding) != EMBEDDING_SIZE
            or not all(_is_number(v) and math.isfinite(v) for v in embedding)
        ):
            raise GallerySyncError(
                f"entry {names[0]}: embedding must be {EMBEDDING_SIZE} finite numbers"
            )
        quality = entry.get("quality", 1.0)
        if not _is_number(quality):
            raise GallerySyncError(f"entry {names[0]}: quality must be a number")
        ids.append(str(names[0]))
        persons.append(str(names[1]))
        watchlists.append(str(names[2]))
        vectors.append(embedding)
        qualities.append(float(quality))
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), EMBEDDING_SIZE)
    return ids, persons, watchlists, matrix, np.asarray(qualities, dtype=np.float32)


Fetch = Callable[[], GallerySnapshot]
"""Fetches the whole gallery from the server (raises on any failure)."""

Applied = Callable[[int, str], None]
"""Told ``(version, how)`` after a version is in force here: ``how`` is ``"change"`` or
``"resync"``."""


class GallerySync:
    """Applies the server's gallery changes to ``gallery``; resyncs through ``fetch``.

    Args:
        gallery: the local gallery the camera pipelines search (changed in place).
        bus: where the changes arrive.
        fetch: gets the whole gallery (over HTTP on an edge).
        on_applied: told every version that comes into force here.
        reader: reads the bus messages into their models (drops and counts the malformed).
    """

    def __init__(
        self,
        gallery: GalleryIndex,
        bus: Bus,
        fetch: Fetch,
        *,
        on_applied: Applied | None = None,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
        reorder_seconds: float = REORDER_SECONDS,
        reader: PayloadReader | None = None,
    ) -> None:
        self.gallery = gallery
        self.reader = reader or PayloadReader()
        self.bus = bus
        self.fetch = fetch
        self.on_applied = on_applied
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.reorder_seconds = reorder_seconds
        self.resyncs = 0
        """Full copies applied so far (for status and tests)."""
        self._version: int | None = None
        self._epoch: str | None = None
        self._key: Ed25519PublicKey | None = None
        """The server's public key, from the last full copy (fetched over HTTP)."""
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._fetching = False
        self._held: list[AnyChange] = []
        self._ahead: dict[int, AnyChange] = {}
        """Changes past the next version, by version, waiting for the ones between."""
        self._gap_timer: threading.Timer | None = None
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribed = False

    @property
    def version(self) -> int | None:
        """The server's gallery version in force here; ``None`` before the first copy."""
        with self._lock:
            return self._version

    def start(self) -> None:
        """Subscribe to the changes and fetch the whole gallery (in the background)."""
        if not self._subscribed:
            self.bus.subscribe(GALLERY_CHANGES, self._on_change)
            self.bus.subscribe(GALLERY_VERSION, self._on_version)
            self._subscribed = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gallery-sync", daemon=True)
        self._thread.start()
        self.request_resync("start")

    def stop(self) -> None:
        """Stop fetching (changes that still arrive are ignored)."""
        self._stop.set()
        self._wanted.set()
        with self._lock:
            self._cancel_gap_locked()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def snapshot(self) -> GallerySnapshot | None:
        """The gallery as it is here, at the version in force (read under the lock that
        every change is applied under, so the two agree); ``None`` before the first copy."""
        with self._lock:
            if self._version is None:
                return None
            templates = self.gallery.templates()
            embeddings = np.asarray([t.embedding for t in templates], dtype=np.float32).reshape(
                len(templates), EMBEDDING_SIZE
            )
            return GallerySnapshot(
                version=self._version,
                margin=self.gallery.margin,
                default_threshold=self.gallery.default_threshold,
                thresholds=self.gallery.thresholds(),
                ids=[t.id for t in templates],
                persons=[t.person for t in templates],
                watchlists=[t.watchlist for t in templates],
                embeddings=embeddings,
                qualities=np.asarray([t.quality for t in templates], dtype=np.float32),
                epoch=self._epoch,
                verify_key=None if self._key is None else verify_key_bytes(self._key),
            )

    def wait_synced(self, timeout: float) -> bool:
        """Wait until a full copy is in force and no fetch is running; whether that happened."""
        with self._synced:
            return self._synced.wait_for(
                lambda: (
                    self._version is not None and not self._fetching and not self._wanted.is_set()
                ),
                timeout,
            )

    def request_resync(self, reason: str) -> None:
        """Fetch the whole gallery again (soon, on the sync thread)."""
        logger.info("gallery: resync wanted (%s)", reason)
        self._wanted.set()

    # the full copy ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.retry_first
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            with self._lock:
                self._wanted.clear()
                self._fetching = True
                # Changes waiting for a missing one are applied after the copy, if newer.
                self._held.extend(self._ahead.values())
                self._ahead.clear()
                self._cancel_gap_locked()
            try:
                snapshot = self.fetch()
            except Exception as exc:  # unreachable server, bad answer: try again later
                logger.warning(
                    "gallery: could not fetch the gallery (%s); again in %.0f s", exc, delay
                )
                with self._lock:
                    self._fetching = False
                    self._wanted.set()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_first
            self.apply_snapshot(snapshot)

    def apply_snapshot(self, snapshot: GallerySnapshot) -> None:
        """Make the gallery equal to ``snapshot`` (as a difference), then apply the changes
        that came in meanwhile and are newer."""
        with self._lock:
            self._apply_snapshot_locked(snapshot)
            held, self._held = self._held, []
            self._fetching = False
            self.resyncs += 1
            for change in sorted(held, key=lambda c: c.version):
                self._change_locked(change)
            self._drain_ahead_locked()
            version = self._version
            self._synced.notify_all()
        logger.info("gallery: resynced to version %s (%d entries)", version, len(snapshot.ids))
        if self.on_applied is not None and version is not None:
            self.on_applied(version, "resync")

    def _apply_snapshot_locked(self, snapshot: GallerySnapshot) -> None:
        gallery = self.gallery
        wanted = set(snapshot.ids)
        held = {t.id for t in gallery.templates()}
        for entry in held - wanted:
            gallery.remove(entry)
        new = [i for i, entry in enumerate(snapshot.ids) if entry not in held]
        if gallery.margin != snapshot.margin:
            gallery.set_margin(snapshot.margin)
        for watchlist, threshold in snapshot.thresholds.items():
            if watchlist not in gallery.thresholds() or gallery.threshold(watchlist) != threshold:
                gallery.set_threshold(watchlist, threshold)
        if new:
            gallery.add_arrays(
                [snapshot.ids[i] for i in new],
                [snapshot.persons[i] for i in new],
                [snapshot.watchlists[i] for i in new],
                snapshot.embeddings[new],
                snapshot.qualities[new],
            )
        self._version = snapshot.version
        self._epoch = snapshot.epoch
        self._key = (
            None if snapshot.verify_key is None else verify_key_from_bytes(snapshot.verify_key)
        )

    # changes ----------------------------------------------------------------------------------

    def _on_version(self, message: Message) -> None:
        payload = self.reader.read(GalleryVersionPayload, message)
        if payload is None:
            return
        version = payload.version
        with self._lock:
            if self._fetching or self._wanted.is_set() or self._version is None:
                return
            if not self._verified_locked(payload, GALLERY_VERSION):
                return
            # Several servers announce: one that announced an older version last is behind
            # (it catches up from the database), not a reason to fetch.
            if self._ahead and payload.epoch == self._epoch and version <= max(self._ahead):
                return  # the changes up to it are here, waiting for one that crossed them
            if payload.epoch != self._epoch or version > self._version:
                self._resync_locked(
                    f"a server is at version {version}, this copy at {self._version}"
                )

    def _on_change(self, message: Message) -> None:
        if self._stop.is_set():
            return
        payload = self.reader.read(GalleryChangePayload, message)
        if payload is None:
            return  # dropped without touching the version: the genuine change still applies
        change = payload.root
        with self._lock:
            if self._fetching or self._version is None:
                self._hold_locked(change)
                return
            self._change_locked(change)
            self._drain_ahead_locked()
            version = self._version
        if self.on_applied is not None and version is not None and not self._wanted.is_set():
            self.on_applied(version, "change")

    def _hold_locked(self, change: AnyChange) -> None:
        """Keep a change to apply after the next full copy, if newer than it."""
        if len(self._held) >= MAX_HELD:
            # A flood while fetching: what is dropped here the next copy brings.
            self._held.pop(0)
        self._held.append(change)

    def _verified_locked(self, payload: AnyChange | GalleryVersionPayload, topic: str) -> bool:
        """Whether ``payload`` verifies under the server's public key; if not it is dropped, counted
        and logged (once per source). Without a key yet (a copy from an older server, or
        none) nothing can be verified: the gallery is fetched again, over HTTP."""
        if verify(self._key, payload):
            return True
        reason = "unsigned" if payload.sig is None else "bad_signature"
        self.reader.reject(topic, reason, f"{type(payload).__name__} without a valid signature")
        if self._key is None:
            self._resync_locked("no public key to verify changes with")
        return False

    def _resync_locked(self, reason: str) -> None:
        logger.info("gallery: resync wanted (%s)", reason)
        self._wanted.set()

    def _change_locked(self, change: AnyChange) -> None:
        """Apply one change if it is the next version; otherwise ignore it or resync."""
        assert self._version is not None
        version, op = change.version, change.op
        if not self._verified_locked(change, GALLERY_CHANGES):
            return  # the version stays free: the genuine change of it still applies
        if isinstance(change, ReloadChange):
            if change.epoch != self._epoch or version != self._version:
                self._resync_locked(f"the server rebuilt its gallery (version {version})")
            return
        if change.epoch != self._epoch:
            # Signed, but by another build of the server's gallery (before a restart, or
            # another server): its versions are not this copy's. The reload that came with
            # the new build, or the retained version, resyncs.
            self.reader.reject(GALLERY_CHANGES, "other_epoch", f"change {op} of another epoch")
            return
        if version <= self._version:
            logger.debug("gallery: version %d is in force already; ignoring it", version)
            return
        if version != self._version + 1:
            # Two servers' changes can cross on the way: wait a moment for those between.
            # If they do not come (one was lost), fetch the gallery, and keep this one for
            # after the copy in case the copy is older than it.
            if self.reorder_seconds > 0 and len(self._ahead) < MAX_AHEAD:
                self._ahead[version] = change
                if self._gap_timer is None:
                    self._gap_timer = threading.Timer(self.reorder_seconds, self._gap_expired)
                    self._gap_timer.daemon = True
                    self._gap_timer.start()
                return
            self._hold_locked(change)
            self._resync_locked(f"version {version} came after {self._version}: changes missed")
            return
        try:
            self._apply_change(change)
        except (GallerySyncError, GalleryError, ValueError) as exc:
            self._resync_locked(f"change {version} ({op!r}) could not be applied: {exc}")
            return
        self._version = version
        logger.debug("gallery: applied version %d (%s)", version, op)

    def _drain_ahead_locked(self) -> None:
        """Apply the waiting changes that are next now, in order; forget those in force."""
        while self._version is not None and self._version + 1 in self._ahead:
            before = self._version
            self._change_locked(self._ahead.pop(before + 1))
            if self._version == before:
                break  # it could not be applied: a resync is wanted
        if self._version is not None:
            for version in [v for v in self._ahead if v <= self._version]:
                del self._ahead[version]
        if not self._ahead:
            self._cancel_gap_locked()

    def _gap_expired(self) -> None:
        with self._lock:
            self._gap_timer = None
            if not self._ahead or self._fetching:
                return
            first = min(self._ahead)
            for change in self._ahead.values():
                self._hold_locked(change)
            self._ahead.clear()
            self._resync_locked(
                f"version {first} came after {self._version} and the ones between did not "
                f"within {self.reorder_seconds:.1f} s: changes missed"
            )

    def _cancel_gap_locked(self) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _apply_change(self, change: AnyChange) -> None:
        gallery = self.gallery
        if isinstance(change, AddChange):
            new = [t for t in change.templates if t.id not in gallery]
            if new:
                gallery.add_arrays(
                    [t.id for t in new],
                    [t.person for t in new],
                    [t.watchlist for t in new],
                    np.asarray([t.embedding for t in new], dtype=np.float32),
                    np.asarray([t.quality for t in new], dtype=np.float32),
                )
        elif isinstance(change, RemoveChange):
            for entry in change.templates:
                if entry in gallery:
                    gallery.remove(entry)
        elif isinstance(change, RemovePersonChange):
            if change.person in gallery.persons():
                gallery.remove_person(change.person)
        elif isinstance(change, ThresholdChange):
            gallery.set_threshold(change.watchlist, change.threshold)
        else:
            raise GallerySyncError(f"unknown change {change.op!r}")
