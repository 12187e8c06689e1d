"""What a camera pipeline is told and what it says: :class:`PipelineSettings` (how hard one
camera works, and when a track counts as who) and :class:`SightingEvent` (what the pipeline
says about a track). Value types only; the loop itself is :mod:`oneeye.video.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from oneeye.types import CAMERA_DETECTORS, CameraDetector, Embedding, RGBImage
from oneeye.vision.light import LIGHT_MODES, LightMode

__all__ = ["CNN_MS_PER_S", "EventKind", "PipelineSettings", "SightingEvent"]

EventKind = Literal["sighting", "sighting_update", "left"]

CNN_MS_PER_S = 100.0
"""``auto``'s default CNN budget: 100 ms of CPU per second of video, a tenth of a core. Chosen
from the machine, not from a video: eight 720p cameras on two cores (issue 13's aim) have
250 ms of CPU per camera per second, of which HOG's look near tracked faces, the motion scans
and the encodings take the larger part; the CNN gets what is left with a margin. At the ONNX
MMOD detector's cost this buys a few lost-face crops and a few motion tiles every second; at
dlib's own CNN (10x slower or more) it still buys the lost-face crops."""


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """How hard one camera works, and when a track counts as who."""

    detect_every: int = 3
    """Look for faces on every Nth frame (around tracked faces and where the frame changed);
    the tracker fills the frames between."""
    scan_every: int = 12
    """Scan every Nth frame (and at once on motion while nobody is tracked) for faces that came
    in while the rest of the scene moved too: where the frame changed since the previous scan,
    or all of it (see ``whole_every``)."""
    whole_every: int = 4
    """Every Nth scan looks at the whole frame; the others only where it changed since the
    previous scan (a face can only have come where something changed; the whole look is for
    a still face that turned to the camera, which changes little)."""
    detect_threads: int = 1
    """Detector threads for this camera (dlib's HOG releases the GIL): more than one cuts
    whole scans into strips run at once, for a camera that has cores to itself."""
    min_face_px: int = 40
    """Smallest face worth finding: sets the detection scale."""
    detector: CameraDetector = "hog"
    """``hog``, ``cnn`` or ``auto`` (see ``oneeye.video.pipeline``)."""
    cnn_ms_per_s: float = CNN_MS_PER_S
    """``auto``: CPU milliseconds of CNN per second of video (see ``CNN_MS_PER_S``)."""
    real_time: bool = False
    """The frames come at the video's own pace and must be kept up with (a live camera, a
    paced file): ``auto`` then spends its CNN budget only while the camera has time to spare
    (``oneeye.video.assist.REAL_TIME_SHARE``). ``False``: every frame is worth the time it
    takes (a file read as fast as it decodes), and the budget is spent whatever the clock."""
    scan_behind: bool = True
    """With ``real_time`` (and one detector thread): scans run behind the frames, on a thread
    of their own at the lowest priority, so no frame waits for one (``oneeye.video.scan``,
    ``ScanBehind``); what a scan finds is looked for again on the frame the camera has reached
    when it ends. ``False``: each scan runs on the frame it is due on, in the camera's thread."""
    min_quality: float = 0.25
    """Faces below this quality score are tracked but not trusted for identity."""
    recheck_every: int = 1
    """While undecided, encode a track again every this many detection rounds."""
    max_samples: int = 8
    """Encodings per track at most while deciding."""
    update_every: int = 10
    """After the decision, encode again every this many detection rounds, looking for a
    nearer match or a better snapshot."""
    min_votes: float = 1.0
    """Quality-weighted votes a person needs (see TrackVote)."""
    unknown_after: int = 4
    """Trusted samples without a confirmed person after which the track is ``unknown``."""
    fuse_after: int | None = 3
    """Trusted samples after which their quality-weighted mean embedding is identified too,
    and decides on the watchlists that accept it (see TrackVote); ``None``: per-frame votes
    only."""
    decide_within: float = 0.5
    """Seconds after a track's first encoding by which it is decided: a face not trusted
    enough to name (turned away, blurred) by then is an ``unknown`` sighting, and is still
    looked at, at the slower rate of a decided track, in case it becomes someone."""
    max_missed: int = 4
    """Detection rounds without the face after which its track ends."""
    cooldown: float = 30.0
    """Seconds after a person was last seen on this camera before a new visit counts."""
    light: LightMode = "off"
    """How a dark frame (mean grey level below ``oneeye.vision.light.DARK_LEVEL``) is
    brightened before the detector scans it (see ``oneeye.vision.light``)."""
    light_encode: bool = False
    """Brighten a dark frame the same way before its faces are encoded, too."""

    def __post_init__(self) -> None:
        for name in (
            "detect_every",
            "scan_every",
            "whole_every",
            "detect_threads",
            "min_face_px",
            "recheck_every",
            "max_samples",
            "update_every",
            "unknown_after",
            "max_missed",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PipelineSettings.{name} must be an int >= 1, got {value!r}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ValueError(
                f"PipelineSettings.min_quality must be in [0, 1], got {self.min_quality}"
            )
        if self.fuse_after is not None and (
            isinstance(self.fuse_after, bool)
            or not isinstance(self.fuse_after, int)
            or self.fuse_after < 1
        ):
            raise ValueError(
                f"PipelineSettings.fuse_after must be an int >= 1 or None, got {self.fuse_after!r}"
            )
        if self.light not in LIGHT_MODES:
            raise ValueError(
                f"PipelineSettings.light must be one of {', '.join(LIGHT_MODES)}, "
                f"got {self.light!r}"
            )
        if self.detector not in CAMERA_DETECTORS:
            raise ValueError(
                f"PipelineSettings.detector must be one of {', '.join(CAMERA_DETECTORS)}, "
                f"got {self.detector!r}"
            )
        if not 0.0 <= self.cnn_ms_per_s <= 1000.0:
            raise ValueError(
                f"PipelineSettings.cnn_ms_per_s must be in [0, 1000], got {self.cnn_ms_per_s}"
            )
        if self.cooldown < 0 or self.min_votes <= 0 or self.decide_within < 0:
            raise ValueError(
                "PipelineSettings.cooldown and decide_within must be >= 0 and min_votes > 0"
            )


@dataclass(frozen=True, slots=True)
class SightingEvent:
    """What the pipeline says about a track. ``person`` is ``None`` for an unknown face."""

    event: EventKind
    camera: str
    track: int
    person: str | None
    watchlist: str | None
    distance: float | None
    frame: int
    """Index of the frame that caused the event (for ``sighting``: the one that confirmed it)."""
    t: float
    """Seconds into the source of that frame."""
    box: tuple[int, int, int, int]
    quality: float | None
    snapshot: RGBImage | None = field(default=None, repr=False, compare=False)
    embedding: Embedding | None = field(default=None, repr=False, compare=False)
    """An unknown face's ``sighting``: the embedding the pipeline judged it by (the track's
    fused embedding once it has one, else the frame's; kept with the sighting for searching
    the past, so no one encodes the face again); else ``None``."""
    companion: bool = False
    """The same track's sighting on another watchlist than its primary answer's (one per
    watchlist: its ``sighting`` and ``left``)."""

    def as_json(self) -> dict[str, object]:
        """The JSON-lines record of ``oneeye watch`` (no snapshot)."""
        return {
            "event": self.event,
            "camera": self.camera,
            "track": self.track,
            "person": self.person,
            "watchlist": self.watchlist,
            "distance": None if self.distance is None else round(self.distance, 4),
            "frame": self.frame,
            "t": round(self.t, 3),
            "box": list(self.box),
            "quality": None if self.quality is None else round(self.quality, 3),
            "companion": self.companion,
        }
