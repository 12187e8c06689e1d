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
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oneeye.cli.common import gallery_option, load_gallery, settings_of

if TYPE_CHECKING:
    import cv2

    from oneeye.types import RGBImage
    from oneeye.video.pipeline import SightingEvent

SCAN_EVERY = 12
"""``PipelineSettings().scan_every``, written out so that defining the options (and ``--help``)
does not import the pipeline (numpy, OpenCV); a test keeps the two equal."""


@click.command()
@click.argument("source")
@gallery_option
@click.option("--camera", help="Camera name in the events (default: the source).")
@click.option("--jsonl", is_flag=True, help="One JSON object per event per line.")
@click.option(
    "--annotate",
    "annotate_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the frames with boxes and names to this video (.mp4).",
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
    cooldown: float,
    pace: bool,
) -> None:
    """Watch SOURCE (a file, webcam index, rtsp:// or http:// MJPEG URL) and report sightings.

    With --jsonl, one JSON object per event: {"event": "sighting" | "sighting_update" |
    "left", "camera", "track", "person" (null when unknown), "watchlist", "distance",
    "frame", "t", "box": [top, right, bottom, left], "quality"}. Ends at the end of a file.
    """
    import numpy as np

    from oneeye.errors import SourceError
    from oneeye.video.annotate import annotate
    from oneeye.video.pipeline import CameraPipeline, PipelineSettings
    from oneeye.video.source import FrameReader
    from oneeye.vision.engine import FaceEngine

    settings = settings_of(ctx)
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
            cooldown=cooldown,
        ),
    )
    writer: cv2.VideoWriter | None = None
    last = (0, 0.0)
    with reader:
        for frame in reader:
            last = (frame.index, frame.t)
            for event in pipeline.process(frame.index, frame.t, frame.image):
                _emit_event(event, jsonl)
            if annotate_path is not None:
                picture = annotate(frame.image, pipeline.labels())
                if writer is None:
                    writer = _video_writer(annotate_path, picture, reader.fps or 25.0)
                writer.write(np.ascontiguousarray(picture[:, :, ::-1]))
    for event in pipeline.finish(*last):
        _emit_event(event, jsonl)
    pipeline.close()
    if writer is not None:
        writer.release()


def _video_writer(path: Path, first: RGBImage, fps: float) -> cv2.VideoWriter:
    import cv2

    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise click.BadParameter(f"cannot write a video to {path}", param_hint="--annotate")
    return writer


def _emit_event(event: SightingEvent, jsonl: bool) -> None:
    if jsonl:
        click.echo(json.dumps(event.as_json()))
        return
    who = event.person or "unknown"
    distance = "" if event.distance is None else f" ({event.distance:.2f})"
    click.echo(
        f"{event.t:8.2f}s {event.camera} {event.event:15s} {who}{distance} track {event.track}"
    )
