"""The domain as SQLAlchemy 2 tables (see DESIGN.md, "Domain").

Ids of things that may be created on another host (sightings at an edge, people on another
server) are 32-character hex UUIDs, so they never collide; cameras are named by a short slug
that also names their MQTT topic. Times are timezone-aware UTC. Embeddings are 128 float32
stored as 512 raw bytes; ``store.repos.templates`` is the one codec of those bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    """A fresh 32-character hex id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Every OneEye table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


person_watchlists = Table(
    "person_watchlists",
    Base.metadata,
    Column("person_id", ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True),
    Column("watchlist_id", ForeignKey("watchlists.id", ondelete="CASCADE"), primary_key=True),
)


class Watchlist(Base):
    """A named group of people with its own threshold and action."""

    __tablename__ = "watchlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    threshold: Mapped[float | None] = mapped_column(Float)
    """``None``: the gallery's default threshold."""
    threshold_mode: Mapped[str] = mapped_column(String(8), default="fixed", server_default="fixed")
    """``fixed`` (``threshold`` or the default) or ``auto`` (calibrated for ``target_fpir``)."""
    target_fpir: Mapped[float | None] = mapped_column(Float)
    """The automatic mode's target share of strangers named wrongly; ``None``: 1%."""
    action: Mapped[str] = mapped_column(String(32), default="none")
    """``customers`` (account card to tellers), ``amber-alert`` (notify), or ``none``."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    persons: Mapped[list[Person]] = relationship(
        secondary=person_watchlists, back_populates="watchlists"
    )


class Person(Base):
    """A face identity with one or more templates."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The customer account this person holds, looked up in the CustomerDirectory."""
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    watchlists: Mapped[list[Watchlist]] = relationship(
        secondary=person_watchlists, back_populates="persons"
    )
    templates: Mapped[list[FaceTemplate]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class FaceTemplate(Base):
    """One enrolled photo of a person: the photo, the face's box, quality and embedding."""

    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    photo_key: Mapped[str] = mapped_column(String(200))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float] = mapped_column(Float)
    size_px: Mapped[float] = mapped_column(Float, default=0.0)
    sharpness: Mapped[float] = mapped_column(Float, default=0.0)
    frontalness: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_sighting_id: Mapped[str | None] = mapped_column(String(32))
    """The sighting whose camera face this template was enrolled from; ``None``: an upload."""

    person: Mapped[Person] = relationship(back_populates="templates")


class SightingFeedback(Base):
    """A person's verdict on a match: the sighting's face is (``confirm``) or is not
    (``reject``) the person it was matched to. One row per (sighting, person); a rejected pair
    is never shown again."""

    __tablename__ = "sighting_feedback"
    __table_args__ = (UniqueConstraint("sighting_id", "person_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sighting_id: Mapped[str] = mapped_column(String(32), index=True)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    """The person the sighting was matched to."""
    verdict: Mapped[str] = mapped_column(String(8))
    actual_person_id: Mapped[str | None] = mapped_column(String(32))
    """Who the face really is, when the one who rejected it said so (or named it later)."""
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerAccount(Base):
    """The built-in customer directory: the fields the original's DynamoDB table had."""

    __tablename__ = "customer_accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    """Indexed: the customers page lists accounts in name order, a page at a time."""
    account_type: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    balance: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    profile_photo_key: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Camera(Base):
    """A video source that a camera worker watches."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A slug (letters, digits, ``-``, ``_``): it names the camera's bus topic."""
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(Text)
    """Webcam index, file path, or rtsp:// / http(s):// URL (credentials allowed)."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    min_face_px: Mapped[int] = mapped_column(Integer, default=40)
    detect_every: Mapped[int] = mapped_column(Integer, default=3)
    scan_every: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    """Scan for newcomers every Nth frame; ``NULL``: the server's ``VideoSettings``."""
    detect_threads: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    """Detector threads of this camera; ``NULL``: the server's ``VideoSettings``."""
    detector: Mapped[str | None] = mapped_column(String(8), nullable=True, default=None)
    """``hog``, ``cnn`` or ``auto``; ``NULL``: the server's ``VideoSettings``."""
    pace: Mapped[bool] = mapped_column(Boolean, default=True)
    """For a file source: play it at its native frame rate, as a camera would."""
    loop: Mapped[bool] = mapped_column(Boolean, default=False)
    """For a file source: start again at the end (demos)."""
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    """When a file source (not looping) played to its end: the camera stays ended when the
    server starts again, until it is restarted, enabled or its source changes."""
    resume_frame: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    """A file source stopped before its end (the server stopped): the frame it resumes at
    when the server starts again."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EdgeCamera(Base):
    """A camera that runs on an edge: sightings and statuses for it are accepted only from
    that edge (its topics), and snapshots under its prefix only from that edge's key."""

    __tablename__ = "edge_cameras"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Unique among every edge's cameras and the servers' own (``cameras``)."""
    edge_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sighting(Base):
    """One track of one face on one camera: a visit, not a frame.

    The id is the pipeline's event id, made where the face was seen, so a sighting that
    arrives twice (a retried bus message) is stored once.
    """

    __tablename__ = "sightings"
    __table_args__ = (
        Index("ix_sightings_camera_first_seen", "camera_id", "first_seen"),
        Index("ix_sightings_person_first_seen", "person_id", "first_seen"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    track: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[str | None] = mapped_column(String(32))
    """``None``: an unknown face."""
    watchlist: Mapped[str | None] = mapped_column(String(64))
    distance: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[float | None] = mapped_column(Float)
    frame: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column()
    snapshot_key: Mapped[str | None] = mapped_column(String(200))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Kept for unknown faces for a retention period, so a new case can search the past."""


class SightingAction(Base):
    """A stored sighting whose watchlist action has not finished: written in the transaction
    that stores the sighting, deleted when its action ran. A server that dies in between
    leaves the row; when its lease has run out, any server's sweeper takes it and runs the
    action (``services.sightings``)."""

    __tablename__ = "sighting_actions"

    sighting_id: Mapped[str] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(64))
    """The server process acting on it now (``SightingService.owner``)."""
    lease_until: Mapped[datetime] = mapped_column(index=True)
    """Until then only ``owner`` acts on it; after, any server may take it over."""
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    """How many servers have taken it (the first included)."""


class SightingDecision(Base):
    """A decision about a sighting that a later one replaced: who the track was said to be
    (shown to the dashboards as such) until ``revised_at``. The sighting row holds the
    current decision; these rows keep the trail, so the history never contradicts what
    someone saw."""

    __tablename__ = "sighting_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sighting_id: Mapped[str] = mapped_column(
        ForeignKey("sightings.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    """``None``: it was said to be an unknown face. No foreign key, as ``sightings.person_id``:
    deleting a person leaves their sightings until they are erased, and erasure removes every
    sighting ever decided to be them, trail and all."""
    watchlist: Mapped[str | None] = mapped_column(String(64))
    distance: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[datetime] = mapped_column()
    revised_at: Mapped[datetime] = mapped_column()


class User(Base):
    """A person who logs in to the dashboard."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    """``admin``, ``coordinator``, ``teller``, ``reporter`` or ``viewer``."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set for the first admin's printed one-time password: until it is changed, this user
    may do nothing else."""


class LoginSession(Base):
    """A logged-in browser. Only a hash of the cookie's token is stored."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime | None] = mapped_column()
    """When a request last used it (written at most every ``SEEN_RESOLUTION``); ``None``:
    not since it was created. Sessions idle longer than the idle timeout end."""


class ApiKey(Base):
    """A key a machine (an edge, a script) uses instead of a password. Only its hash is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    edge_id: Mapped[str | None] = mapped_column(String(64))
    """For an ``edge`` key: the edge it is (its broker user and topic prefix have this name);
    the cameras it registers and the snapshots it uploads are this edge's only."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ServerKey(Base):
    """A secret every central server shares (they share this database), made at first start:
    e.g. ``gallery-ed25519``, the private key gallery changes on the bus are signed with
    (``gallery``, the shared HMAC key of earlier versions, is no longer read)."""

    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GalleryState(Base):
    """The gallery's one global state row (``id`` 1), shared by every central server: the
    epoch (the build of the change log the versions count in) and the newest version. A change
    takes its version by bumping this row in the transaction that logs it, so versions commit
    in order on every database (``store.repos.gallery_log``)."""

    __tablename__ = "gallery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class GalleryLogEntry(Base):
    """One gallery change in the order every server and edge applies it: ids, watchlists and
    thresholds only, never an embedding (a follower reads those from ``face_templates``).
    Kept for a day (``gallery_log.KEEP``), then pruned: a server further behind rebuilds."""

    __tablename__ = "gallery_log"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    change: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AuditEntry(Base):
    """Who saw or changed what, when and from where: every view of account details, face
    search, gallery export, photo fetch and case view, every enrolment or deletion."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    """``user:<name>``, ``key:<name>``, ``link`` (a signed link) or ``system``."""
    role: Mapped[str] = mapped_column(String(16), default="")
    """The actor's role at the time (``""`` for the system and for signed links)."""
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="", index=True)
    """Which record: an id or a photo key, never a name."""
    address: Mapped[str] = mapped_column(String(64), default="")
    """The client's network address (``""`` when the action did not come over the web)."""
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DashboardEvent(Base):
    """An event pushed to dashboards, numbered so a client that reconnects gets what it
    missed (``/ws?since=<id>``)."""

    __tablename__ = "dashboard_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16), default="viewer")
    """The lowest role that may receive it: events with account details are ``teller``."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertCase(Base):
    """An Amber Alert case: a missing (or wanted) person every camera looks for.

    The person (with templates on the ``amber-alert`` watchlist) is deleted when the case's
    retention ends after it closes; the case row stays as the record, with ``purged_at``.
    """

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    person_id: Mapped[str | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(200), default="")
    reporter: Mapped[str] = mapped_column(String(100))
    """The actor who filed it (``user:<name>`` or ``key:<name>``)."""
    filed_by: Mapped[str | None] = mapped_column(String(40), index=True)
    """Who owns it, by row id (``user:<id>`` or ``key:<id>``); ``None``: nobody below
    coordinator (a case older than ownership whose filer could not be found)."""
    approved_at: Mapped[datetime | None] = mapped_column()
    """When a coordinator or admin approved it; until then no sighting leaves the server."""
    approved_by: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    """``active``, ``resolved`` or ``expired``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(100))
    purged_at: Mapped[datetime | None] = mapped_column()
    """When the case's photos, templates and snapshots were deleted (retention)."""


class Subscription(Base):
    """Who is told about a case's sightings, and how. ``case_id`` ``None``: every case."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    """``email``, ``sms`` or ``webhook``."""
    address: Mapped[str] = mapped_column(Text)
    """An email address, a phone number (E.164), or an https:// URL."""
    secret: Mapped[str | None] = mapped_column(String(128))
    """For a webhook: the key its HMAC-SHA256 signature is made with."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseMatch(Base):
    """A sighting of a case's person: live (a camera now) or retro (an unknown face from
    before the case was filed, found by searching the kept embeddings)."""

    __tablename__ = "case_matches"
    __table_args__ = (UniqueConstraint("case_id", "sighting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    sighting_id: Mapped[str] = mapped_column(String(32))
    camera_id: Mapped[str] = mapped_column(String(64))
    distance: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(8))
    """``live`` or ``retro``."""
    seen_at: Mapped[datetime] = mapped_column()
    found_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether this match produced notifications: false when nobody was to be told (no
    subscriber, or each inside its own (case, camera) cooldown)."""
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    """Found while the case waited for approval: nothing sent yet; approval sends it (by the
    cooldown rules) and clears this."""


class Notification(Base):
    """The outbox: one row per (sighting, subscription), sent by the notifier with retries.

    A row is written in the same transaction as the match it reports, so nothing is lost; the
    unique key means a sighting delivered twice never notifies twice; a worker leases a row
    (``lease_until``) before sending, so two workers never send the same one.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("sighting_id", "subscription_id"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    sighting_id: Mapped[str] = mapped_column(String(32))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending`` (to send, maybe after failures), ``sent``, or ``failed`` (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
