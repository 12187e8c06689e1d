"""FaceEngine: the one facade the rest of OneEye uses to find and encode faces.

It owns the models (loaded in the constructor, the CNN detector on the first enrolment), picks the
detection scale from the smallest face worth finding, and for enrolment photos runs a fallback
chain so a usable photo is not refused: HOG at a scale fit for the photo, HOG at the configured
smallest face, HOG upsampled once more, then the CNN detector. Photos searched for faces (face
search, case photos) take only the first two steps: the last two cost seconds and gigabytes on
a large photo, and only an enrolment is worth that.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from oneeye.config import EngineSettings
from oneeye.errors import FaceError, TimeLimitError
from oneeye.types import Detection, Face, RGBImage
from oneeye.vision.detectors import FaceDetector, ScalePlan, make_detector, plan_scale
from oneeye.vision.detectors.cnn import CnnDetector
from oneeye.vision.detectors.hog import HogDetector
from oneeye.vision.encode import ChipEmbedder, DlibChipEmbedder, FaceAligner, embed_chips
from oneeye.vision.models import ModelPaths
from oneeye.vision.quality import face_quality
from oneeye.vision.resnet import ResNetEmbedder

logger = logging.getLogger(__name__)

ENROL_MIN_FACE_PX = 40
"""A face smaller than this is refused for enrolment: too little detail for a template."""
BACKGROUND_FACE_RATIO = 0.4
"""In an enrolment photo, faces smaller than this fraction of the largest one are background."""
CNN_MAX_SIDE = 1280
"""The CNN detector runs on enrolment photos shrunk to at most this many pixels per side."""
HOG_MAX_WORK_PIXELS = 8_000_000
"""An enrolment stage's HOG never looks at more pixels than this (after its resize and
upsampling): a 2048-pixel blank photo upsampled twice was 67 megapixels, minutes and gigabytes.
A face too small to be found within it is too small for a template anyway."""
CNN_MAX_WORK_PIXELS = 300_000
"""The same for the CNN stage, whose memory is about 300 bytes per pixel it looks at (its tiled
pyramid is 3.7 times the image, about 80 bytes a pyramid pixel) and whose time is about 0.4 CPU
seconds per megapixel (``"cnn"``; dlib's own, ``"cnn-dlib"``, about 17 times that). An LFW
photo (250x250, upsampled once) is 250,000 pixels: the fallback keeps what it was measured on."""


def bounded(plan: ScalePlan, image: RGBImage, max_pixels: int) -> ScalePlan:
    """``plan``, shrunk where it would present more than ``max_pixels`` to the detector.

    Args:
        plan: the scale a stage would use.
        image: the photo.
        max_pixels: the most pixels the detector may look at (after resize and upsampling).

    Returns:
        The same plan, or one of a smaller overall scale whose working image fits. A plan
        that would shrink the photo only to double it again loses those doublings instead:
        the same pixels, without the detail the shrinking would throw away.
    """
    height, width = image.shape[:2]
    scale = plan.factor * 2**plan.upsample
    work = height * width * scale * scale
    if work <= max_pixels:
        return plan
    scale *= math.sqrt(max_pixels / work)
    upsample = min(plan.upsample, max(0, math.ceil(math.log2(scale) - 1e-9)))
    return ScalePlan(scale / 2**upsample, upsample)


class Deadline:
    """When work on one uploaded photo must stop: after ``seconds``, or as soon as the one who
    asked for it has gone (``cancel``, from another thread).

    It is checked between the steps of the work (decoding, each detection stage, encoding): a
    step that started runs to its end, so each step must be bounded by itself (photos are
    shrunk before they are searched).
    """

    def __init__(self, seconds: float | None = None) -> None:
        """A deadline ``seconds`` from now (``None``: no time limit, only cancellation)."""
        self.seconds = seconds
        self._until = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop the work at its next check (the client left)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise ``TimeLimitError`` if the work must stop now."""
        if self._cancelled.is_set():
            raise TimeLimitError("the photo was given up: the request was cancelled")
        if self._until is not None and time.monotonic() > self._until:
            raise TimeLimitError(
                f"the photo took longer than {self.seconds:g} s to search and was given up"
            )


def _same_scale(a: ScalePlan, b: ScalePlan) -> bool:
    return a.upsample == b.upsample and math.isclose(a.factor, b.factor, rel_tol=1e-9)


def _check(deadline: Deadline | None) -> None:
    if deadline is not None:
        deadline.check()


@dataclass(frozen=True, slots=True)
class DetectionStage:
    """One step of the enrolment fallback chain."""

    detector: str
    plan: ScalePlan


class FaceEngine:
    """Finds, aligns, encodes and rates faces.

    Thread-safe: dlib's models are not re-entrant, so calls are serialised per engine; run one
    engine per worker thread or process for parallelism.
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        models: ModelPaths | None = None,
        embedder: ChipEmbedder | None = None,
    ) -> None:
        """Load the models.

        Args:
            settings: engine settings; defaults if ``None``.
            models: where the model files are; the installed models package if ``None``.
            embedder: the ResNet backend; the one ``settings.embedder`` names if ``None``.
        """
        self.settings = settings or EngineSettings()
        self.models = models or ModelPaths.locate()
        # The primary detector now; others (the enrolment chain's) on first need.
        self._detectors: dict[str, FaceDetector] = {self.settings.detector: self.new_detector()}
        self._aligner = FaceAligner(self.models, self.settings.alignment)
        self._embedder = embedder or self._make_embedder()
        self._lock = threading.RLock()

    def _make_embedder(self) -> ChipEmbedder:
        choice = self.settings.embedder
        if choice == "dlib":
            return DlibChipEmbedder(str(self.models.resnet))
        return ResNetEmbedder(self.models.resnet, choice, num_threads=self.settings.threads)

    @property
    def embedder(self) -> ChipEmbedder:
        """The ResNet backend turning aligned chips into raw descriptors."""
        return self._embedder

    def _detector(self, name: str) -> FaceDetector:
        """The engine's own detector called ``name`` (made on first need; used under the lock)."""
        detector = self._detectors.get(name)
        if detector is None:
            detector = make_detector(name, self.models, num_threads=self.settings.threads)
            self._detectors[name] = detector
        return detector

    def new_detector(self) -> FaceDetector:
        """A primary detector of this engine's kind that is the caller's own.

        A camera scans its frames with its own detectors, in its own threads, without taking
        the engine's lock (dlib's detectors are not shared between threads).
        """
        return make_detector(self.settings.detector, self.models)

    def detect(self, image: RGBImage, min_face_px: int | None = None) -> list[Detection]:
        """Find faces with the primary detector, one pass.

        Args:
            image: (H, W, 3) uint8 RGB.
            min_face_px: smallest face worth finding; the configured value if ``None``.

        Returns:
            Detections, most confident first.
        """
        with self._lock:
            detector = self._detector(self.settings.detector)
            return detector.detect(image, min_face_px or self.settings.min_face_px)

    def enrolment_stages(self, image: RGBImage) -> list[DetectionStage]:
        """The fallback chain for a photo of this size (first stage that finds a face wins).

        Args:
            image: the photo.

        Returns:
            The stages in order.
        """
        shorter = min(image.shape[:2])
        configured = self.settings.min_face_px
        # A profile photo's face fills a good part of it: look for faces >= 1/8 of the
        # shorter side first, which lets a 12-megapixel phone photo be searched shrunk.
        quick = max(configured, shorter // 8)
        hog_plans = [plan_scale(quick, HogDetector.window_px)]
        if quick > configured:
            hog_plans.append(plan_scale(configured, HogDetector.window_px))
        finest = plan_scale(configured, HogDetector.window_px)
        hog_plans.append(ScalePlan(finest.factor, finest.upsample + 1))
        stages: list[DetectionStage] = []
        for plan in hog_plans:
            stage = DetectionStage(HogDetector.name, bounded(plan, image, HOG_MAX_WORK_PIXELS))
            if not any(_same_scale(stage.plan, s.plan) for s in stages):
                stages.append(stage)  # on a large photo the bound can make two stages one
        if self.settings.fallback:
            shrink = min(1.0, CNN_MAX_SIDE / max(image.shape[:2]))
            with self._lock:  # the window is the model file's: the CNN loads on first need
                window = self._detector(CnnDetector.name).window_px
            cnn_plan = plan_scale(max(1, round(configured * shrink)), window)
            cnn_plan = ScalePlan(cnn_plan.factor * shrink, cnn_plan.upsample)
            stages.append(
                DetectionStage(CnnDetector.name, bounded(cnn_plan, image, CNN_MAX_WORK_PIXELS))
            )
        return stages if self.settings.fallback else stages[:1]

    def search_stages(self, image: RGBImage) -> list[DetectionStage]:
        """The stages for a photo searched rather than enrolled (face search, case photos):
        HOG at a scale fit for the photo, then at the configured smallest face; never the
        upsampled HOG or the CNN, whose cost grows with the photo (gigabytes on a large one).

        Args:
            image: the photo (already shrunk to a sane size by the caller).

        Returns:
            The stages in order.
        """
        shorter = min(image.shape[:2])
        configured = self.settings.min_face_px
        quick = max(configured, shorter // 8)
        stages = [DetectionStage(HogDetector.name, plan_scale(quick, HogDetector.window_px))]
        if quick > configured:
            stages.append(
                DetectionStage(HogDetector.name, plan_scale(configured, HogDetector.window_px))
            )
        return stages

    def detect_with_fallback(
        self, image: RGBImage, *, thorough: bool = True, deadline: Deadline | None = None
    ) -> list[Detection]:
        """Find faces in a still photo, trying harder stage by stage until one finds a face.

        Args:
            image: (H, W, 3) uint8 RGB.
            thorough: the enrolment chain (``enrolment_stages``); ``False``: only the cheap
                stages (``search_stages``).
            deadline: checked before each stage (``TimeLimitError`` when it has passed).

        Returns:
            Detections from the first stage that found any; each names its stage in
            ``detector`` (``hog``, ``hog-up2``, ``cnn``...). Empty if no stage found one.
        """
        stages = self.enrolment_stages(image) if thorough else self.search_stages(image)
        with self._lock:
            for stage in stages:
                _check(deadline)
                found = self._detector(stage.detector).detect_at(image, stage.plan)
                if found:
                    return found
            return []

    def encode(
        self,
        image: RGBImage,
        detections: Sequence[Detection],
        *,
        deadline: Deadline | None = None,
        extra_jitter: int = 0,
    ) -> list[Face]:
        """Align, encode and rate the given detections (one batch).

        Args:
            image: the image they were found in.
            detections: the faces to encode.
            deadline: checked before the work starts.
            extra_jitter: jittered views per chip on top of the engine's ``jitter`` setting
                (enrolment asks for ``enrol_jitter`` more); >= 0.

        Returns:
            One ``Face`` per detection, in the same order.

        Raises:
            ValueError: ``extra_jitter`` is negative.
        """
        if extra_jitter < 0:
            raise ValueError(f"extra_jitter must be >= 0, got {extra_jitter}")
        if not detections:
            return []
        _check(deadline)
        with self._lock:
            aligned = self._aligner.align(image, [d.box for d in detections])
            embeddings = embed_chips(
                self._embedder,
                aligned.chip_sets,
                mirror=self.settings.mirror,
                jitter=self.settings.jitter + extra_jitter,
            )
        return [
            Face(
                box=detection.box,
                embedding=embedding,
                quality=face_quality(detection.box, points, chip),
                detector=detection.detector,
                landmarks=points,
            )
            for detection, embedding, points, chip in zip(
                detections, embeddings, aligned.landmarks, aligned.chip_sets[0], strict=True
            )
        ]

    def faces(
        self,
        image: RGBImage,
        *,
        min_face_px: int | None = None,
        fallback: bool = False,
        thorough: bool = True,
        deadline: Deadline | None = None,
    ) -> list[Face]:
        """Every face in an image, encoded.

        Args:
            image: (H, W, 3) uint8 RGB.
            min_face_px: smallest face worth finding (single pass only).
            fallback: try stage by stage (``detect_with_fallback``) instead of one pass.
            thorough: with ``fallback``, the whole enrolment chain; ``False``: cheap stages.
            deadline: checked between the steps (``TimeLimitError`` when it has passed).

        Returns:
            The faces, most confident detection first.
        """
        if fallback:
            found = self.detect_with_fallback(image, thorough=thorough, deadline=deadline)
        else:
            _check(deadline)
            found = self.detect(image, min_face_px)
        return self.encode(image, found, deadline=deadline)

    def enrolment_face(
        self, image: RGBImage, *, thorough: bool = True, deadline: Deadline | None = None
    ) -> Face:
        """The one usable face of an enrolment photo.

        Faces much smaller than the largest (a poster, a passer-by) are ignored. The face is
        encoded with ``enrol_jitter`` more jittered views than a camera frame's (the template
        is made once, so it can afford them).

        Args:
            image: (H, W, 3) uint8 RGB.
            thorough: the whole fallback chain; ``False``: the cheap stages only (photos
                anyone may send, such as a case's).
            deadline: checked between the steps (``TimeLimitError`` when it has passed).

        Returns:
            The face.

        Raises:
            FaceError: no face, several faces of similar size, or a face too small to enrol.
            TimeLimitError: ``deadline`` passed or was cancelled.
        """
        found = self.detect_with_fallback(image, thorough=thorough, deadline=deadline)
        if not found:
            height, width = image.shape[:2]
            raise FaceError(f"no face found in the {width}x{height} photo", problem="no_face")
        largest = max(d.box.size for d in found)
        main = [d for d in found if d.box.size >= BACKGROUND_FACE_RATIO * largest]
        if len(main) > 1:
            raise FaceError(
                f"found {len(main)} faces; an enrolment photo must show exactly one person",
                problem="several_faces",
            )
        if main[0].box.size < ENROL_MIN_FACE_PX:
            raise FaceError(
                f"the face is only {main[0].box.size} pixels wide; "
                f"enrolment needs at least {ENROL_MIN_FACE_PX}",
                problem="small_face",
            )
        return self.encode(image, main, deadline=deadline, extra_jitter=self.settings.enrol_jitter)[
            0
        ]
