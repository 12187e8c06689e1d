"""Settings, read from the environment (prefix ``ONEEYE_``) and passed to constructors.

Nested fields use ``__``: ``ONEEYE_ENGINE__DETECTOR=cnn``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_THRESHOLD = 0.32
"""Watchlist threshold on the euclidean distance between OneEye's unit embeddings. Chosen on
LFW's open-set test (half of the people; measured on the other half, see BENCHMARKS.md): with
``DEFAULT_MARGIN`` it names about 1 stranger in 100 wrongly against a 1,680-person gallery and
fewer against smaller ones, while naming ~72% of enrolled people from one photo each."""

DEFAULT_MARGIN = 0.05
"""A match must be this much nearer than the next-nearest other person, else the answer is
unknown ("not sure"): ambiguous faces are where wrong names come from."""

ENROL_JITTER = 0
"""Jittered copies an enrolment photo's template averages by default (``enrol_jitter``). 8
lifts LFW open-set DIR by 3 points at the shipped threshold (BENCHMARKS.md, "Open-set from
one photo"); off until the test suite has been run under it."""


_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class EngineSettings(BaseModel):
    """How faces are found and encoded."""

    detector: Literal["hog", "cnn", "cnn-dlib"] = "hog"
    """Primary detector: dlib's HOG (fast, CPU), its MMOD CNN (slower, finds more) run without
    dlib, or the same CNN run by dlib (``cnn-dlib``, the reference: about 17x slower)."""
    min_face_px: int = Field(default=40, ge=8, le=4096)
    """The smallest face worth finding, in pixels; sets the detection scale."""
    fallback: bool = True
    """Enrolment photos: when the primary detector finds nothing, upsample, then try the CNN."""
    alignment: Literal["5", "5+68"] = "5"
    """Chips cut with dlib's 5-point landmarks (CC0), or with both its 5- and 68-point ones
    (each face embedded twice and averaged: +0.1 points on LFW for 2x encoding). The 68-point
    model was trained on iBUG 300-W, whose licence excludes commercial use: opt-in only."""
    mirror: bool = True
    """Average each face's embedding with its mirror image's (more accurate, 2x encoding)."""
    jitter: int = Field(default=0, ge=0, le=100)
    """Extra randomly jittered copies per face to average (dlib's ``num_jitters`` - 1)."""
    enrol_jitter: int = Field(default=ENROL_JITTER, ge=0, le=100)
    """Enrolment photos only: jittered copies of the chip (and of its mirror) averaged into
    the template, on top of ``jitter``. Enrolment is one-off, so it can afford them; camera
    frames are encoded with ``jitter`` alone (issue 13, BENCHMARKS.md "Open-set from one
    photo")."""
    embedder: Literal["auto", "onnxruntime", "opencv", "numpy", "dlib"] = "auto"
    """Which forward pass computes dlib's ResNet descriptor: OneEye's own (``auto`` picks the
    fastest installed: onnxruntime, then OpenCV, then numpy) or dlib's (slow without BLAS)."""
    threads: int | None = Field(default=None, ge=1, le=256)
    """Threads for the ResNet backend; ``None`` uses one per core."""
    max_pixels: int = Field(default=40_000_000, ge=10_000)
    """Images with more pixels than this are refused (decompression bombs)."""


class GallerySettings(BaseModel):
    """Identification thresholds."""

    default_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0.0, le=2.0)
    margin: float = Field(default=DEFAULT_MARGIN, ge=0.0, lt=2.0)
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Per-watchlist thresholds that override the default."""
    index: Literal["exact", "ivf"] = "exact"
    """``exact``: every search compares the face with every template (the default, always
    right). ``ivf``: an inverted file (k-means cells) compares it only with the templates of
    the ``ivf_probes`` nearest cells, then re-ranks those exactly; much faster on very large
    galleries, and it can miss a match whose templates all lie in cells it did not probe."""
    ivf_lists: int = Field(default=0, ge=0, le=1_000_000)
    """``ivf``: number of cells; 0 picks about the square root of the gallery size each time
    the cells are trained (at ``ivf_min_templates``, then whenever the gallery doubles)."""
    ivf_probes: int = Field(default=32, ge=1, le=1_000_000)
    """``ivf``: cells searched per face. More is slower and misses less."""
    ivf_min_templates: int = Field(default=50_000, ge=1)
    """``ivf``: below this many templates the search stays exact (it is fast enough there)."""

    @model_validator(mode="after")
    def _probes_within_lists(self) -> GallerySettings:
        if self.ivf_lists and self.ivf_probes > self.ivf_lists:
            raise ValueError(
                f"ivf_probes must be at most ivf_lists ({self.ivf_lists}), got {self.ivf_probes}"
            )
        return self


class VideoSettings(BaseModel):
    """How hard every camera of this process works, beyond each camera's own
    ``min_face_px`` and ``detect_every`` (see ``oneeye.video.pipeline_io.PipelineSettings``)."""

    scan_every: int | None = Field(default=None, ge=1, le=1000)
    """Scan for newcomers every Nth frame; ``None``: the pipeline's default (12)."""
    detect_threads: int = Field(default=1, ge=1, le=16)
    """Detector threads per camera: 2 for a camera with a core to spare (big frames, small
    faces); 1 when the cameras share the cores already."""
    light: Literal["off", "lift", "clahe"] = "off"
    """How every camera brightens a dark frame before looking for faces in it (``off``,
    ``lift``, ``clahe``; see ``oneeye.vision.light``). A frame lit well enough is never
    changed; ``lift`` is the one that measurably helps (BENCHMARKS.md, "Recognition in
    conditions")."""
    light_encode: bool = False
    """Brighten a dark frame the same way before its faces are encoded, too."""
    detector: Literal["hog", "cnn", "auto"] = "hog"
    """How a camera that does not say looks for faces: ``hog`` (fast, frontal faces), ``cnn``
    (the MMOD CNN on everything: finds turned and dim faces, many times the cost) or ``auto``
    (HOG, plus CNN time where HOG misses, within ``cnn_ms_per_s``). The values of
    ``oneeye.types.CameraDetector``, written out: settings load without numpy."""
    cnn_ms_per_s: float | None = Field(default=None, ge=0.0, le=1000.0)
    """``auto``: CPU milliseconds of CNN per camera per second of video; ``None``: the
    pipeline's default (100, a tenth of a core; see ``oneeye.video.pipeline_io.CNN_MS_PER_S``)."""


class LogSettings(BaseModel):
    """How log lines are written (``ONEEYE_LOG__FORMAT``)."""

    format: Literal["text", "json"] = "text"
    """``text`` for people; ``json``: one object per line (time, level, logger, message), for
    log shippers."""


class Settings(BaseSettings):
    """Everything OneEye reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="ONEEYE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("data")
    engine: EngineSettings = Field(default_factory=EngineSettings)
    gallery: GallerySettings = Field(default_factory=GallerySettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    log: LogSettings = Field(default_factory=LogSettings)


class CustomerDirectorySettings(BaseModel):
    """Where account details come from when a customer is recognised."""

    kind: Literal["sql", "http"] = "sql"
    """``sql``: OneEye's own ``customer_accounts`` table; ``http``: the bank's own API."""
    url_template: str | None = None
    """For ``http``: the account URL, with ``{account_id}`` where the id goes."""
    auth_header: str | None = None
    """For ``http``: a header sent with every call, as ``Name: value``."""
    timeout: float = Field(default=2.0, gt=0.0, le=60.0)
    cache_seconds: float = Field(default=30.0, ge=0.0)


class OutboundSettings(BaseModel):
    """Outbound HTTP requests (webhooks, the SMS gateway, the bank's customer directory).

    They never reach loopback, private, link-local, multicast, reserved or cloud-metadata
    addresses, unless the host or network is named here.
    """

    allow_internal: list[str] = Field(default_factory=list, max_length=100)
    """Internal host names (``"sms-gw.internal"``) and networks or single addresses
    (``"10.1.2.0/24"``, ``"10.1.2.3"``, ``"::1"``) that outbound requests may reach, e.g. an SMS
    gateway or the bank's API inside the network. Webhook subscribers can reach them too, so
    name hosts, not whole ranges. Cloud-metadata addresses are reached only when named exactly.
    ``ONEEYE_OUTBOUND__ALLOW_INTERNAL='["10.1.2.0/24","sms-gw.internal"]'``."""

    @field_validator("allow_internal")
    @classmethod
    def _entries(cls, entries: list[str]) -> list[str]:
        cleaned = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_NAME.match(entry):
                    raise ValueError(
                        "an allow_internal entry is a host name, an IP address or a network "
                        f"like 10.1.2.0/24; got {raw!r}"
                    ) from None
            cleaned.append(entry)
        return cleaned


class ServerSettings(BaseModel):
    """The web server and its sessions."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    session_hours: float = Field(default=12.0, gt=0.0)
    secure_cookies: bool = False
    """Set this when OneEye is served over HTTPS: the session cookie is then ``Secure`` and
    named ``__Host-oneeye_session`` (the browser keeps it to this exact host, Path=/, no
    Domain: no sibling subdomain or plain-HTTP page can set or shadow it)."""
    trusted_proxies: list[str] = Field(default_factory=list, max_length=100)
    """Addresses of reverse proxies whose ``X-Forwarded-For`` names the client (e.g.
    ``["127.0.0.1"]`` behind a proxy on this host). Empty (the default): the TCP peer is the
    client, so nobody can pick the address the login throttle counts by a header."""
    session_idle_minutes: float = Field(default=30.0, gt=0.0, le=7 * 24 * 60.0)
    """A session ends after this long without a request (an open dashboard's WebSocket does
    not count as use), besides its absolute ``session_hours``."""
    login_attempts: int = Field(default=5, ge=1, le=1000)
    """Failed logins from one client address within ``login_window_seconds`` before that
    address's logins pause (the account itself is never locked)."""
    login_window_seconds: float = Field(default=300.0, gt=0.0, le=86_400.0)
    login_global_attempts: int = Field(default=100, ge=1, le=1_000_000)
    """Failed logins from all addresses together within the window before every address
    that has failed lately pauses too (a guess per address per window)."""
    max_upload_bytes: int = Field(default=20_000_000, ge=1_000)
    event_history: int = Field(default=10_000, ge=100)
    """Dashboard events kept for clients that reconnect and ask for what they missed."""


class LimitSettings(BaseModel):
    """What one request may cost the server: body bytes, threads, seconds, pixels, and how far
    a dashboard may fall behind. SECURITY.md (sections 4, 5, 6 and 12) gives each with its
    test."""

    json_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest body of a JSON (or form) request; more is answered 413 unread."""
    login_bytes: int = Field(default=16 * 1024, ge=1024)
    """Largest body of a login (anyone may send one, logged in or not)."""
    upload_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    """Largest body of a photo upload (multipart, every part); the sender's credentials are
    checked before a byte of it is read."""
    login_threads: int = Field(default=1, ge=1, le=8)
    """Threads that check passwords (argon2 takes ~0.2 s of one core per login): a flood of
    logins queues for these, the cameras keep the other cores."""
    login_waiting: int = Field(default=64, ge=1)
    """Logins that may wait for a password-checking thread; more are answered 503."""
    photo_threads: int = Field(default=1, ge=1, le=8)
    """Threads that decode and search uploaded photos (identify, enrolment, case photos),
    with their own face engine: never the cameras'."""
    photo_waiting: int = Field(default=8, ge=0)
    """Photo requests that may wait for a photo thread; more are answered 503."""
    photo_seconds: float = Field(default=20.0, gt=0.0, le=600.0)
    """Longest a photo request may work (decoding, detection, encoding); then 503."""
    photo_max_side: int = Field(default=1280, ge=256, le=8192)
    """Face search and case photos are shrunk to at most this many pixels on their longer side
    before faces are looked for (enrolment photos are not: their fallback chain shrinks them
    itself)."""
    ws_queue: int = Field(default=256, ge=1, le=100_000)
    """Dashboard events a WebSocket client may fall behind by before it is disconnected."""
    ws_send_seconds: float = Field(default=10.0, gt=0.0, le=600.0)
    """Longest one WebSocket send may wait for a client that does not read; then it is
    disconnected."""


class SmtpSettings(BaseModel):
    """The mail server that alert emails go through."""

    host: str | None = None
    """``None``: no email channel."""
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "OneEye <oneeye@localhost>"
    timeout: float = Field(default=10.0, gt=0.0)


class SmsSettings(BaseModel):
    """An HTTP SMS gateway; by default a Twilio-compatible form post
    (``To``, ``From``, ``Body``, HTTP basic auth)."""

    url: str | None = None
    """``None``: no SMS channel. For Twilio: ``https://api.twilio.com/2010-04-01/Accounts/
    {account}/Messages.json``."""
    username: str | None = None
    password: SecretStr | None = None
    sender: str = ""
    format: Literal["form", "json"] = "form"
    body_template: str = "OneEye alert: {person} seen at {camera} ({location}) at {time}. {link}"
    timeout: float = Field(default=10.0, gt=0.0)


class NotifySettings(BaseModel):
    """How alert notifications are delivered: retries, backoff, cooldown, links."""

    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    webhook_timeout: float = Field(default=10.0, gt=0.0)
    max_attempts: int = Field(default=20, ge=1)
    backoff_initial: float = Field(default=2.0, gt=0.0)
    backoff_max: float = Field(default=300.0, gt=0.0)
    cooldown: float = Field(default=300.0, ge=0.0)
    """Seconds: one notification per (case, camera) in this time, however many sightings."""
    link_hours: float = Field(default=24.0, gt=0.0)
    """How long a signed snapshot link in an SMS or webhook stays valid."""


class AlertSettings(BaseModel):
    """Amber Alert cases."""

    default_hours: float = Field(default=72.0, gt=0.0)
    """A case expires this long after it is filed unless the reporter sets another time."""
    retention_days: float = Field(default=30.0, ge=0.0)
    """After a case closes, its photos, templates and snapshots are deleted after this."""
    unknown_retention_hours: float = Field(default=24.0, ge=0.0)
    """Embeddings of unknown faces are kept this long, for retro-search, then deleted."""
    retro_hours: float = Field(default=24.0, ge=0.0)
    """A new case searches the unknown faces of this many past hours."""


class RetentionSettings(BaseModel):
    """How long each kind of stored data is kept (``ONEEYE_RETENTION__*``).

    A background sweep deletes what is older, in batches, with its photos. Closed Amber
    Alert cases have their own period (``ONEEYE_ALERTS__RETENTION_DAYS``), and the sightings
    a case still holds as matches are kept until that case is purged.
    """

    known_sightings_days: float = Field(default=30.0, gt=0.0, le=3660.0)
    """Sightings of enrolled people (and their snapshots)."""
    unknown_sightings_hours: float = Field(default=48.0, gt=0.0, le=87840.0)
    """Sightings of unknown faces (and their snapshots). Never below ``alerts.retro_hours``:
    a new case searches the unknown faces of that many past hours."""
    events_hours: float = Field(default=24.0, gt=0.0, le=87840.0)
    """Stored dashboard events (what ``/ws?since=`` replays), also capped in number by
    ``server.event_history``."""
    notifications_days: float = Field(default=30.0, gt=0.0, le=3660.0)
    """Sent and failed notification rows of the outbox (pending ones are kept)."""
    audit_days: float = Field(default=730.0, gt=0.0, le=36600.0)
    """Audit log rows."""
    sweep_seconds: float = Field(default=300.0, ge=1.0, le=86400.0)
    """Seconds between two retention sweeps."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    """Rows deleted per transaction, so a sweep never holds the database for long."""


class MqttSettings(BaseModel):
    """The MQTT broker connection, when ``bus`` is an ``mqtt://`` or ``mqtts://`` URL."""

    client_id: str | None = None
    """This server's identity at the broker (its persistent session); ``None``:
    ``oneeye-<role>-<hostname>-<24 random hex>``, made at the first start and kept owner-only in
    ``{data_dir}/mqtt-client-id-<role>``. Must differ between server instances and should not
    be guessable: the broker lets a connection with an id in use take its session over."""
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    """Overrides the user in the URL."""
    password: SecretStr | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False
    """TLS without checking the broker's certificate (testing only)."""
    share_group: str | None = "oneeye-servers"
    """Servers consume sightings through this shared subscription: each sighting reaches one
    of them."""
    topic_prefix: str = ""
    session_expiry: int = Field(default=7 * 24 * 3600, ge=0)
    max_payload: int = Field(default=1_000_000, ge=1_000)
    keepalive: int = Field(default=30, ge=5)
    reconnect_max: int = Field(default=30, ge=1)
    connect_timeout: float = Field(default=10.0, ge=0.0)


class PayloadSettings(BaseModel):
    """How near the receiver's clock the times in bus payloads must be (see SECURITY.md)."""

    max_future_skew: float = Field(default=120.0, ge=0.0, le=3600.0)
    """Seconds a payload's time may be ahead of this host's clock (clock drift)."""
    max_sighting_age: float = Field(default=7 * 24 * 3600.0, gt=0.0)
    """Seconds a sighting may be old when it arrives: how long an edge may queue sightings
    through an outage and still have them stored. Older ones are dropped and counted."""


class S3Settings(BaseModel):
    """An S3-compatible photo store, when ``photo_store`` is ``s3``."""

    bucket: str | None = None
    endpoint_url: str | None = None
    """E.g. ``http://minio:9000``; ``None``: AWS."""
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = ""
    create_bucket: bool = False


class ServeSettings(Settings):
    """What ``oneeye serve`` reads on top of the engine and gallery settings."""

    database_url: str | None = None
    """SQLAlchemy URL; ``None`` is SQLite at ``{data_dir}/oneeye.db``."""
    photos_dir: Path | None = None
    """Where photos and snapshots are kept; ``None`` is ``{data_dir}/photos``."""
    bus: str = "memory"
    """Event bus: ``memory`` (in-process), or a broker: ``mqtt://[user:pass@]host:port``,
    ``mqtts://...`` (TLS; see ``mqtt``)."""
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    payloads: PayloadSettings = Field(default_factory=PayloadSettings)
    photo_store: Literal["local", "s3"] = "local"
    s3: S3Settings = Field(default_factory=S3Settings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    customers: CustomerDirectorySettings = Field(default_factory=CustomerDirectorySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    public_url: str = "http://127.0.0.1:8080"
    """The address people reach this server at: links in notifications point here."""
    secret_key: SecretStr | None = None
    """Signs expiring links; ``None``: a random key made at first start and kept in
    ``{data_dir}/secret.key``."""

    @model_validator(mode="after")
    def _unknown_faces_outlive_the_retro_search(self) -> ServeSettings:
        hours = self.retention.unknown_sightings_hours
        if hours < self.alerts.retro_hours:
            raise ValueError(
                f"retention.unknown_sightings_hours ({hours:g}) must be at least "
                f"alerts.retro_hours ({self.alerts.retro_hours:g}): a new case searches the "
                "unknown faces of that many past hours"
            )
        return self

    def resolved_database_url(self) -> str:
        """The database URL, with the embedded default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'oneeye.db').resolve()}"

    def resolved_photos_dir(self) -> Path:
        """The photo folder, with the embedded default filled in."""
        return self.photos_dir if self.photos_dir is not None else self.data_dir / "photos"
