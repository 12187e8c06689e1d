"""The live gallery: rebuilt from the database at start, changed with every enrolment, and
announced on the bus.

The database is the truth; the ``GalleryIndex`` is a copy that searches fast. A person on
several watchlists has each template in the index once per watchlist, under the id
``f"{template_id}@{watchlist}"``. Every change is published on ``oneeye/v1/gallery/changes``
with the gallery's new version (and the embeddings added), so workers elsewhere can apply it;
the current version is also retained on ``oneeye/v1/gallery/version``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from oneeye.bus.base import GALLERY_CHANGES, GALLERY_VERSION, Bus
from oneeye.bus.messages import (
    AddChange,
    AnyChange,
    GalleryTemplate,
    GalleryVersionPayload,
    ReloadChange,
    RemoveChange,
    RemovePersonChange,
    ThresholdChange,
    describe_errors,
    new_signing_key,
    sign,
    signing_key_from_bytes,
    verify_key_bytes,
)
from oneeye.errors import Conflict, Invalid, NotFound
from oneeye.gallery import GalleryIndex
from oneeye.gallery.calibration import Calibration, calibrate, check_target
from oneeye.services import gallery_log as gallery_log_reader
from oneeye.services.calibration import CalibrationWorker
from oneeye.services.gallery_log import (
    GalleryFollower,
    GalleryReplica,
    LoggedAdd,
    LoggedEntry,
    LoggedReload,
    LoggedRemove,
    LoggedRemovePerson,
    LoggedThreshold,
    gallery_id,
)
from oneeye.store.db import Database
from oneeye.store.repos import gallery_log, keys, people, templates, watchlists
from oneeye.store.repos.watchlists import StoredWatchlist
from oneeye.types import Template

logger = logging.getLogger(__name__)

DEFAULT_WATCHLISTS: tuple[tuple[str, str, str], ...] = (
    ("customers", "customers", "Bank customers: their account card goes to the tellers."),
    ("amber-alert", "amber-alert", "Missing or wanted people: subscribers are notified."),
)
"""``(name, action, description)`` of the watchlists every server has."""

ACTIONS = ("customers", "amber-alert", "none")
THRESHOLD_MODES = ("fixed", "auto")
DEFAULT_TARGET_FPIR = 0.01
"""The automatic mode's target when a watchlist names none: 1 stranger in 100 named."""
GALLERY_KEY = "gallery-ed25519"
"""The ``server_keys`` row of the gallery changes' Ed25519 private key (raw 32 bytes). The row
``gallery`` that held the HMAC key of earlier versions is no longer read: every edge knew it."""
_WATCHLIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class WatchlistError(Invalid):
    """A watchlist cannot be created or changed as asked."""


class WatchlistNotFoundError(WatchlistError, NotFound):
    """No watchlist has this name."""


class WatchlistExistsError(WatchlistError, Conflict):
    """A watchlist with this name is already there."""


def gallery_signing_key(db: Database) -> Ed25519PrivateKey:
    """The private key gallery changes are signed with: made at the first start and kept in
    the database, which every central server shares (a server that makes one at the same moment
    as another keeps the one stored first). Edges get only its public half."""
    with db.session() as session:
        stored = keys.get(session, GALLERY_KEY)
        if stored is not None:
            return signing_key_from_bytes(stored)
    raw = new_signing_key().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    try:
        with db.session() as session:
            keys.add(session, GALLERY_KEY, raw)
        logger.info("made the gallery signing key (Ed25519, kept in the database)")
    except IntegrityError:
        pass  # another server stored its key first: that one is the key
    with db.session() as session:
        stored = keys.get(session, GALLERY_KEY)
        assert stored is not None
        return signing_key_from_bytes(stored)


@dataclass(frozen=True, slots=True)
class WatchlistInfo:
    """A watchlist as the API shows it."""

    name: str
    action: str
    description: str
    threshold: float | None
    """The stored threshold; ``None`` means the gallery's default."""
    effective_threshold: float
    """The threshold the live gallery uses now."""
    persons: int
    created_at: datetime
    threshold_mode: str = "fixed"
    """``fixed``: ``threshold`` or the default; ``auto``: calibrated for ``target_fpir``."""
    target_fpir: float = DEFAULT_TARGET_FPIR
    """The automatic mode's target (kept, and shown, in fixed mode too)."""
    calibration: Calibration | None = None
    """The newest calibration in automatic mode; ``None`` in fixed mode or before the first."""


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    """One template as the gallery holds it (for ``add_templates``)."""

    template_id: str
    person_id: str
    embedding: np.ndarray[Any, np.dtype[np.float32]]
    quality: float


@dataclass(frozen=True, slots=True)
class GalleryCopy:
    """The live gallery at one version (what ``GET /api/v1/gallery`` answers)."""

    version: int
    templates: list[Template]
    thresholds: dict[str, float]
    margin: float
    default_threshold: float


def check_watchlist_name(name: str) -> str:
    """``name`` if it is a slug of 1-64 lower-case letters, digits, ``-`` or ``_``."""
    if not isinstance(name, str) or not _WATCHLIST_NAME.match(name):
        raise WatchlistError(
            "a watchlist name is 1-64 lower-case letters, digits, '-' or '_', starting with a "
            f"letter or digit; got {name!r}"
        )
    return name


class GalleryService:
    """Keeps ``gallery`` equal to the templates in the database, and owns the watchlists."""

    def __init__(
        self,
        db: Database,
        gallery: GalleryIndex,
        bus: Bus,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.db = db
        self.gallery = gallery
        self.bus = bus
        self.signing_key = signing_key if signing_key is not None else gallery_signing_key(db)
        """Signs every change announced (shared by the servers through the database; never
        leaves them)."""
        self.verify_key = verify_key_bytes(self.signing_key)
        """The public half, raw: edges get it with the gallery over HTTP and verify with it."""
        self.epoch = gallery_log.ensure(db.session).epoch
        """The build of the database's change log the versions count in (every server
        shares it, so an edge takes changes from any of them)."""
        self._configured = gallery.thresholds()
        """Thresholds from the settings: what a watchlist without its own falls back to."""
        self._lock = threading.RLock()
        """Serialises changes, so the versions published are in the order they happened."""
        self._auto: dict[str, float] = {}
        """Watchlists in automatic mode, with their FPIR target."""
        self._calibrations: dict[str, Calibration] = {}
        self.calibrator = CalibrationWorker(self._recalibrate)
        """Recalibrates automatic watchlists in its own thread after every change."""
        self.replica = GalleryReplica(
            db,
            gallery,
            self._lock,
            threshold_for=lambda name, stored: (
                stored if stored is not None else self._default_for(name)
            ),
            automatic=lambda: list(self._auto),
            on_mode=self._set_mode,
            on_templates=self._changed_templates,
        )
        """Applies the database's change log to ``gallery``, this server's changes included."""
        self.follower = GalleryFollower(self.catch_up, self.announce, db, bus)
        """Applies other servers' changes (``start_following``)."""

    # watchlists ----------------------------------------------------------------------------

    def ensure_defaults(self) -> list[str]:
        """Create the ``customers`` and ``amber-alert`` watchlists if missing; returns the
        names created."""
        created = []
        with self.db.session() as session:
            existing = watchlists.names(session)
            for name, action, description in DEFAULT_WATCHLISTS:
                if name not in existing:
                    watchlists.add(session, name, action=action, description=description)
                    created.append(name)
        if created:
            logger.info("created the default watchlists: %s", ", ".join(created))
        return created

    def _threshold_for(self, name: str, stored: float | None) -> float:
        return stored if stored is not None else self._default_for(name)

    def _default_for(self, name: str) -> float:
        return self._configured.get(name, self.gallery.default_threshold)

    def _info(self, row: StoredWatchlist) -> WatchlistInfo:
        auto = row.threshold_mode == "auto"
        return WatchlistInfo(
            name=row.name,
            action=row.action,
            description=row.description,
            threshold=row.threshold,
            effective_threshold=self.gallery.threshold(row.name),
            persons=row.persons,
            created_at=row.created_at,
            threshold_mode=row.threshold_mode,
            target_fpir=row.target_fpir if row.target_fpir is not None else DEFAULT_TARGET_FPIR,
            calibration=self._calibrations.get(row.name) if auto else None,
        )

    def watchlists(self) -> list[WatchlistInfo]:
        """Every watchlist, by name, with how many people are on it."""
        with self.db.session() as session:
            rows = watchlists.with_counts(session)
        return [self._info(row) for row in rows]

    def watchlist(self, name: str) -> WatchlistInfo:
        """One watchlist; ``WatchlistNotFoundError`` if there is none by that name."""
        for info in self.watchlists():
            if info.name == name:
                return info
        raise WatchlistNotFoundError(f"no watchlist named {name!r}")

    def create_watchlist(
        self,
        name: str,
        *,
        action: str = "none",
        threshold: float | None = None,
        description: str = "",
        threshold_mode: str = "fixed",
        target_fpir: float | None = None,
    ) -> WatchlistInfo:
        """Add a watchlist; its threshold takes effect in the live gallery at once (in
        ``auto`` mode, the default threshold until its first calibration, a moment later)."""
        check_watchlist_name(name)
        if action not in ACTIONS:
            raise WatchlistError(
                f"a watchlist action is one of {', '.join(ACTIONS)}; got {action!r}"
            )
        _check_threshold(threshold)
        _check_mode(threshold_mode, target_fpir)
        with self._lock:
            with self.db.session() as session:
                if watchlists.exists(session, name):
                    raise WatchlistExistsError(f"a watchlist named {name!r} already exists")
                watchlists.add(
                    session,
                    name,
                    action=action,
                    threshold=threshold,
                    description=description,
                    threshold_mode=threshold_mode,
                    target_fpir=target_fpir,
                )
            value = threshold if threshold is not None else self._default_for(name)
            self._apply_value(name, value, threshold_mode, target_fpir)
        return self.watchlist(name)

    def update_watchlist(
        self,
        name: str,
        *,
        threshold: float | None = None,
        clear_threshold: bool = False,
        description: str | None = None,
        threshold_mode: str | None = None,
        target_fpir: float | None = None,
    ) -> WatchlistInfo:
        """Change a watchlist's threshold (``clear_threshold``: back to the default),
        description, threshold mode or FPIR target; the live gallery uses a new fixed threshold
        at once, an automatic one as soon as it is recalibrated (a moment later, in the
        calibration thread)."""
        _check_threshold(threshold)
        _check_mode(threshold_mode or "fixed", target_fpir)
        with self._lock:
            with self.db.session() as session:
                changed = threshold is not None or clear_threshold
                row = watchlists.update(
                    session,
                    name,
                    threshold=None if clear_threshold else threshold,
                    change_threshold=changed,
                    description=description,
                    threshold_mode=threshold_mode,
                    target_fpir=target_fpir,
                )
                if row is None:
                    raise WatchlistNotFoundError(f"no watchlist named {name!r}")
                stored = row.threshold
                mode, target = row.threshold_mode, row.target_fpir
            if changed or threshold_mode is not None or target_fpir is not None:
                # Every server takes the mode with the threshold; an automatic one keeps the
                # threshold in force until its calibration (a moment later) changes it.
                fixed = stored if stored is not None else self._default_for(name)
                value = fixed if mode == "fixed" else self.gallery.threshold(name)
                self._apply_value(name, value, mode, target)
        return self.watchlist(name)

    def _set_mode(self, name: str, mode: str, target: float | None) -> None:
        """Remember ``name``'s mode (the caller holds the lock); an automatic one is
        recalibrated in the calibration thread."""
        if mode == "auto":
            self._auto[name] = target if target is not None else DEFAULT_TARGET_FPIR
            self.calibrator.request([name])
        else:
            self._auto.pop(name, None)
            self._calibrations.pop(name, None)

    def calibration(self, name: str) -> Calibration | None:
        """The newest calibration of an automatic watchlist; ``None`` in fixed mode or before
        the first one ends."""
        return self._calibrations.get(name)

    def _recalibrate(self, name: str) -> None:
        """Calibrate one automatic watchlist on the gallery's templates now, and use the
        threshold (runs in the calibration thread: the pair distances are O(n^2) work)."""
        target = self._auto.get(name)
        if target is None:
            return
        persons, embeddings = self.gallery.watchlist_templates(name)
        result = calibrate(
            embeddings, persons, target, self.gallery.margin, self._default_for(name)
        )
        with self._lock:
            if self._auto.get(name) != target:
                return  # the mode or target changed meanwhile: that change asked for a new run
            self._calibrations[name] = result
            if self.gallery.threshold(name) != result.threshold:
                self._apply_value(name, result.threshold)
        logger.info(
            "watchlist %s: automatic threshold %.3f for FPIR %.1f%% (%s, %d people)",
            name,
            result.threshold,
            100 * target,
            result.method,
            result.persons,
        )

    def _changed_templates(self) -> None:
        """Ask for every automatic watchlist to be recalibrated (after a change of templates)."""
        if self._auto:
            self.calibrator.request(list(self._auto))

    def close(self) -> None:
        """Stop following the log and the calibration thread."""
        self.follower.stop()
        self.calibrator.stop()

    def _apply_value(
        self, name: str, value: float, mode: str | None = None, target: float | None = None
    ) -> None:
        """Log and apply ``name``'s threshold (with ``mode``: its mode changes too); the
        caller holds the lock."""
        version = self.replica.log(
            LoggedThreshold(
                watchlist=name,
                threshold=value,
                mode=None if mode is None else ("auto" if mode == "auto" else "fixed"),
                target_fpir=target,
            )
        )
        self._publish(
            version,
            lambda: ThresholdChange(
                version=version, epoch=self.epoch, watchlist=name, threshold=value
            ),
        )

    # the index -----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The database's gallery version this process's gallery is at."""
        return self.replica.version

    def load(self) -> int:
        """Rebuild the gallery from the database (creating the default watchlists first),
        log a reload so every other server and edge rebuilds too (which also repairs a change
        a server died in the middle of), and start following the log; returns the number of
        entries (templates times their person's watchlists)."""
        self.ensure_defaults()
        with self._lock:
            with self.db.session() as session:
                version = gallery_log.append(session, LoggedReload().model_dump())
            count, persons = self.replica.rebuild(version, keep_auto=False)
            self._publish(
                version, lambda: ReloadChange(version=version, epoch=self.epoch, templates=count)
            )
            for name, (mode, target) in self._modes().items():
                self._set_mode(name, mode, target)
            self.replica.catch_up()
        logger.info(
            "gallery rebuilt from the database: %d entries of %d people (version %d)",
            count,
            persons,
            version,
        )
        return count

    def start_following(self) -> None:
        """Apply other servers' changes as they are logged (a thread; ``close`` stops it)."""
        self.follower.start()

    def _modes(self) -> dict[str, tuple[str, float | None]]:
        with self.db.session() as session:
            return {
                w.name: (w.threshold_mode, w.target_fpir) for w in watchlists.with_counts(session)
            }

    def catch_up(self) -> int:
        """Apply what the database's log holds past the version held here (other servers'
        changes); returns the version now held."""
        return self.replica.catch_up()

    def add_templates(self, watchlists: Sequence[str], entries: Sequence[GalleryEntry]) -> int:
        """Add templates of people on ``watchlists`` (each once per watchlist); the templates
        must be in the database already. Returns the new version.

        The add is logged even when this gallery holds its entries already (a rebuild from the
        tables may have read them before the add was logged): another server's gallery may
        not, and applying it twice changes nothing."""
        with self._lock:
            pairs = [(entry, watchlist) for entry in entries for watchlist in watchlists]
            if not pairs:
                return self.replica.version
            logged: gallery_log_reader.LoggedChange = (
                LoggedAdd(
                    entries=[
                        LoggedEntry(
                            id=gallery_id(e.template_id, w),
                            person=e.person_id,
                            watchlist=w,
                            quality=min(1.0, max(0.0, float(e.quality))),
                        )
                        for e, w in pairs
                    ]
                )
                if len(pairs) <= gallery_log_reader.MAX_ENTRIES
                else LoggedReload()
            )
            version = self.replica.log(logged, {e.template_id: e.embedding for e, _ in pairs})
            self._publish(
                version,
                lambda: AddChange(
                    version=version,
                    epoch=self.epoch,
                    templates=[
                        GalleryTemplate(
                            id=gallery_id(e.template_id, w),
                            person=e.person_id,
                            watchlist=w,
                            quality=float(e.quality),
                            embedding=[float(x) for x in e.embedding],
                        )
                        for e, w in pairs
                    ],
                ),
            )
            return version

    def remove_template(self, template_id: str) -> int:
        """Remove every entry of one template (all its watchlists); returns the new version."""
        with self._lock:
            self.replica.catch_up()
            entries = [
                gallery_id(template_id, watchlist)
                for watchlist in self.gallery.watchlists()
                if gallery_id(template_id, watchlist) in self.gallery
            ]
            if not entries:
                return self.replica.version
            version = self.replica.log(LoggedRemove(entries=entries))
            self._publish(
                version,
                lambda: RemoveChange(version=version, epoch=self.epoch, templates=entries),
            )
            return version

    def remove_person(self, person_id: str) -> int:
        """Remove every entry of a person; returns the new version."""
        with self._lock:
            self.replica.catch_up()
            if not self.gallery.templates(person=person_id):
                return self.replica.version  # no entries: nothing changes, nothing to announce
            version = self.replica.log(LoggedRemovePerson(person=person_id))
            self._publish(
                version,
                lambda: RemovePersonChange(version=version, epoch=self.epoch, person=person_id),
            )
            return version

    def sync_person(self, person_id: str) -> int:
        """Make the person's entries equal to the database (after their watchlists changed);
        returns the new version.

        The database is read under the same lock as every change, so an enrolment of this
        person that runs at the same time ends with its template in the gallery either way.
        """
        with self._lock:
            with self.db.session() as session:
                on_lists = people.watchlists_of(session, person_id) or []
                vectors = templates.vectors_of_person(session, person_id)
            self.remove_person(person_id)
            entries = [GalleryEntry(v.id, person_id, v.embedding, v.quality) for v in vectors]
            return self.add_templates(on_lists, entries)

    def copy(self) -> GalleryCopy:
        """The whole gallery at one version, brought up to the database's newest first."""
        with self._lock:
            self.replica.catch_up()
            return GalleryCopy(
                version=self.replica.version,
                templates=self.gallery.templates(),
                thresholds=self.gallery.thresholds(),
                margin=self.gallery.margin,
                default_threshold=self.gallery.default_threshold,
            )

    def announce(self) -> None:
        """Publish the version held here (retained), for edges that missed a change."""
        with self._lock:
            current = GalleryVersionPayload(version=self.replica.version, epoch=self.epoch)
        self.bus.publish(GALLERY_VERSION, sign(self.signing_key, current), retain=True)

    def _publish(self, version: int, build: Callable[[], AnyChange]) -> None:
        """Announce the change that made ``version``. A change the model refuses (an add too
        large for one message) goes out as a ``reload`` instead: the edges fetch the whole
        gallery, which is slower but never wrong."""
        try:
            change: AnyChange = build()
        except ValidationError as exc:
            logger.warning(
                "gallery version %d: announced as a reload, the change itself does not fit a "
                "message (%s)",
                version,
                describe_errors(exc),
            )
            change = ReloadChange(version=version, epoch=self.epoch, templates=len(self.gallery))
        current = GalleryVersionPayload(version=self.replica.version, epoch=self.epoch)
        # Ed25519 over an enrolment's add (a template or two): ~0.1 ms (messages.sign).
        self.bus.publish(GALLERY_CHANGES, sign(self.signing_key, change))
        self.bus.publish(GALLERY_VERSION, sign(self.signing_key, current), retain=True)


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 < threshold <= 2.0:
        raise WatchlistError(f"a threshold is a distance in (0, 2], got {threshold}")


def _check_mode(mode: str, target: float | None) -> None:
    if mode not in THRESHOLD_MODES:
        raise WatchlistError(
            f"a threshold mode is one of {', '.join(THRESHOLD_MODES)}; got {mode!r}"
        )
    if target is not None:
        try:
            check_target(target)
        except ValueError as exc:
            raise WatchlistError(str(exc)) from exc
