"""``oneeye watch``: recognise faces in one video source and print the sightings.

It runs the same ``CameraPipeline`` as the server's and an edge's cameras, but not their
``video.worker.CameraWorker``: the worker is a background thread that drops late frames, keeps
a reconnecting status and hands events to a bus and a photo store, while this command is a
plain synchronous loop over every frame its reader gives that prints each event (and may write
an annotated video of every frame), with no bus, no photo store and no database, ending when
the source ends.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from oneeye.cli.common import gallery_option, load_gallery, settings_of, stderr

if TYPE_CHECKING:
    import cv2
    from rich.console import Console

    from oneeye.types import RGBImage
    from oneeye.video.pipeline_io import SightingEvent

SCAN_EVERY = 12
"""``PipelineSettings().scan_every``, written out so that defining the options (and ``--help``)
does not import the pipeline (numpy, OpenCV); a test keeps the two equal."""

CNN_MS_PER_S = 100.0
"""``oneeye.video.pipeline_io.CNN_MS_PER_S``, written out for the same reason; the same test
keeps the two equal."""


@click.command()
@click.argument("source")
@gallery_option
@click.option("--camera", help="Camera name in the events (default: the source).")
@click.option("--jsonl", is_flag=True, help="One JSON object per event per line.")
@click.option(
    "--annotate",
    "annotate_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the frames with boxes and names to this video, in a codec browsers play: "
    ".webm (VP9, else VP8) or .mp4 (H.264, when this OpenCV has it).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show frames, fps and sightings so far while a file plays (default: on a terminal, "
    "unless JSON lines go to that terminal too).",
)
@click.option("--min-face", type=click.IntRange(8, 4096), default=40, show_default=True)
@click.option("--detect-every", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option(
    "--scan-every",
    type=click.IntRange(1, 1000),
    default=SCAN_EVERY,
    show_default=True,
    help="Scan the whole frame every Nth frame (between, only near faces and where it changed).",
)
@click.option(
    "--detect-threads",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Detector threads for this camera (for a camera with cores to itself).",
)
@click.option(
    "--detector",
    type=click.Choice(["hog", "cnn", "auto"]),
    default="hog",
    show_default=True,
    help="hog: fast, frontal faces; cnn: the MMOD CNN everywhere (turned and dim faces, many "
    "times the cost); auto: hog, plus CNN time where hog misses, within --cnn-ms-per-s.",
)
@click.option(
    "--cnn-ms-per-s",
    type=click.FloatRange(0.0, 1000.0),
    default=CNN_MS_PER_S,
    show_default=True,
    help="auto: CPU milliseconds of CNN per second of video.",
)
@click.option("--cooldown", type=click.FloatRange(0.0), default=30.0, show_default=True)
@click.option("--pace", is_flag=True, help="Play a file at its own frame rate, as if live.")
@click.pass_context
def watch(
    ctx: click.Context,
    source: str,
    gallery_dir: Path,
    camera: str | None,
    jsonl: bool,
    annotate_path: Path | None,
    min_face: int,
    detect_every: int,
    scan_every: int,
    detect_threads: int,
    detector: Literal["hog", "cnn", "auto"],
    cnn_ms_per_s: float,
    cooldown: float,
    pace: bool,
    progress: bool | None,
) -> None:
    """Watch SOURCE (a file, webcam index, rtsp:// or http:// MJPEG URL) and report sightings.

    With --jsonl, one JSON object per event: {"event": "sighting" | "sighting_update" |
    "left", "camera", "track", "person" (null when unknown), "watchlist", "distance",
    "frame", "t", "box": [top, right, bottom, left], "quality"}. Ends at the end of a file.
    """
    import numpy as np

    from oneeye.errors import SourceError
    from oneeye.video.annotate import VideoWriteError, annotate, check_browser_video
    from oneeye.video.pipeline import CameraPipeline
    from oneeye.video.pipeline_io import PipelineSettings
    from oneeye.video.source import FrameReader
    from oneeye.vision.engine import FaceEngine

    settings = settings_of(ctx)
    if annotate_path is not None:
        try:
            check_browser_video(annotate_path)
        except VideoWriteError as exc:
            raise click.BadParameter(str(exc), param_hint="--annotate") from exc
    gallery = load_gallery(gallery_dir, settings, must_exist=True)
    try:
        reader = FrameReader(source, pace=pace)
    except SourceError as exc:
        raise click.BadParameter(str(exc), param_hint="SOURCE") from exc
    engine = FaceEngine(settings.engine)
    pipeline = CameraPipeline(
        camera or reader.name,
        engine,
        gallery,
        PipelineSettings(
            min_face_px=min_face,
            detect_every=detect_every,
            scan_every=scan_every,
            detect_threads=detect_threads,
            detector=detector,
            cnn_ms_per_s=cnn_ms_per_s,
            cooldown=cooldown,
            real_time=reader.is_live or (pace and bool(reader.fps)),
        ),
    )
    writer: cv2.VideoWriter | None = None
    last = (0, 0.0)
    shown = show_progress(
        progress,
        live=reader.is_live,
        jsonl=jsonl,
        stdout_terminal=sys.stdout.isatty(),
        stderr_terminal=stderr().is_terminal,
    )
    meter = WatchProgress(stderr(), frame_count(source) if shown else 0, enabled=shown)
    try:
        with reader, meter:
            for frame in reader:
                last = (frame.index, frame.t)
                for event in pipeline.process(frame.index, frame.t, frame.image):
                    _emit_event(event, jsonl)
                    meter.event(event.event)
                meter.frame()
                if annotate_path is not None:
                    picture = annotate(frame.image, pipeline.labels())
                    if writer is None:
                        writer = _video_writer(annotate_path, picture, reader.fps or 25.0)
                    writer.write(np.ascontiguousarray(picture[:, :, ::-1]))
    finally:
        if writer is not None:
            writer.release()
    for event in pipeline.finish(*last):
        _emit_event(event, jsonl)
    pipeline.close()


def _video_writer(path: Path, first: RGBImage, fps: float) -> cv2.VideoWriter:
    from oneeye.video.annotate import VideoWriteError, open_browser_video

    height, width = first.shape[:2]
    try:
        writer, _ = open_browser_video(path, width, height, fps)
    except VideoWriteError as exc:
        raise click.BadParameter(str(exc), param_hint="--annotate") from exc
    return writer


def show_progress(
    asked: bool | None, *, live: bool, jsonl: bool, stdout_terminal: bool, stderr_terminal: bool
) -> bool:
    """Whether ``watch`` shows its progress line: as ``--progress``/``--no-progress`` ask;
    by default for a file (a live source has no end to measure against) when stderr is a
    terminal, unless JSON lines go to that terminal too (the two would interleave)."""
    if asked is not None:
        return asked and not live
    return not live and stderr_terminal and not (jsonl and stdout_terminal)


def frame_count(source: str) -> int:
    """A video file's frame count as its container states it (0 when unknown)."""
    import cv2

    capture = cv2.VideoCapture(source)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()


class WatchProgress:
    """The progress line of ``oneeye watch`` on a file: frames done of all, frames per
    second, sightings so far (on stderr; stdout carries the events)."""

    def __init__(self, console: Console, total: int, *, enabled: bool = True) -> None:
        """Show the line on ``console`` for a file of ``total`` frames (0: unknown), unless
        not ``enabled`` (then every call does nothing)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.enabled = enabled
        self.sightings = 0
        self.frames = 0
        self._started = time.monotonic()
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames {task.fields[fps]:5.1f} fps {task.fields[sightings]} sightings"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self._task = self._progress.add_task("watching", total=total or None, fps=0.0, sightings=0)

    def __enter__(self) -> WatchProgress:
        """Start drawing."""
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Draw the final line and stop."""
        self._update()
        self._progress.stop()

    def frame(self) -> None:
        """One more frame processed."""
        self.frames += 1
        if self.enabled and self.frames % 5 == 0:
            self._update()

    def event(self, kind: str) -> None:
        """An event was printed (``sighting`` ones are counted)."""
        if kind == "sighting":
            self.sightings += 1

    def _update(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(
            self._task,
            completed=self.frames,
            fps=self.frames / elapsed,
            sightings=self.sightings,
        )


def _emit_event(event: SightingEvent, jsonl: bool) -> None:
    if jsonl:
        click.echo(json.dumps(event.as_json()))
        return
    who = event.person or "unknown"
    distance = "" if event.distance is None else f" ({event.distance:.2f})"
    click.echo(
        f"{event.t:8.2f}s {event.camera} {event.event:15s} {who}{distance} track {event.track}"
    )
