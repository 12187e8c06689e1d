"""``oneeye edge``: recognise faces on this host's cameras and report to the central server."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from pathlib import Path
from typing import Literal

import click

from oneeye.cli.common import PRIVATE_UMASK, data_dir_option, interrupt

logger = logging.getLogger(__name__)


@click.command()
@click.option(
    "--server",
    "server_url",
    required=True,
    help="The central server, e.g. https://oneeye.bank:8080.",
)
@click.option(
    "--api-key",
    envvar="ONEEYE_EDGE_API_KEY",
    required=True,
    help="This edge's API key (role edge; `oneeye users api-key NAME --role edge`). "
    "Better from ONEEYE_EDGE_API_KEY than on the command line.",
)
@click.option(
    "--bus",
    "bus_url",
    envvar="ONEEYE_BUS",
    required=True,
    help="The MQTT broker: mqtt://[user:pass@]host:port or mqtts://... (default: ONEEYE_BUS).",
)
@click.option(
    "--camera",
    "cameras",
    multiple=True,
    required=True,
    metavar="ID=SOURCE",
    help="A camera of this edge: an id and a webcam index, a file, or an RTSP/HTTP URL. Repeat.",
)
@click.option("--edge-id", help="This edge's name (default: the host name).")
@click.option("--detect-every", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--min-face-px", type=click.IntRange(8, 4096), default=40, show_default=True)
@click.option(
    "--scan-every",
    type=click.IntRange(1, 1000),
    default=None,
    help="Scan for newcomers every Nth frame [default: ONEEYE_VIDEO__SCAN_EVERY, or 12].",
)
@click.option(
    "--detect-threads",
    type=click.IntRange(1, 16),
    default=None,
    help="Detector threads per camera [default: ONEEYE_VIDEO__DETECT_THREADS, or 1].",
)
@click.option(
    "--detector",
    type=click.Choice(["hog", "cnn", "auto"]),
    default=None,
    help="How the cameras look for faces: hog, cnn, or auto (hog plus CNN time where hog "
    "misses) [default: ONEEYE_VIDEO__DETECTOR, or hog].",
)
@click.option(
    "--pace/--no-pace", default=True, show_default=True, help="Play files at their frame rate."
)
@click.option("--loop", is_flag=True, help="Play files again when they end (demos).")
@click.option(
    "--ops-address",
    envvar="ONEEYE_EDGE_OPS_ADDRESS",
    metavar="HOST:PORT",
    help="Serve /healthz, /readyz and /metrics here (no credentials: use loopback or a "
    "management network). Default: ONEEYE_EDGE_OPS_ADDRESS, else not served.",
)
@data_dir_option
def edge(
    server_url: str,
    api_key: str,
    bus_url: str,
    cameras: tuple[str, ...],
    edge_id: str | None,
    detect_every: int,
    min_face_px: int,
    scan_every: int | None,
    detect_threads: int | None,
    detector: Literal["hog", "cnn", "auto"] | None,
    pace: bool,
    loop: bool,
    ops_address: str | None,
    data_dir: Path | None,
) -> None:
    """Run an edge: recognise faces on this host's cameras and report to the central server.

    The gallery comes from the server (with the API key) and stays in step over the broker;
    sightings go to the broker (queued on disk while it or the server is unreachable), snapshots
    to the server. Engine, gallery and MQTT settings (TLS, credentials, topic prefix) come from
    the same ONEEYE_ variables as `oneeye serve`. Ctrl-C stops cleanly.
    """
    from oneeye.config import ServeSettings
    from oneeye.edge_app import EdgeRuntime
    from oneeye.errors import OneEyeError
    from oneeye.gallery import GalleryIndex
    from oneeye.redact import install_query_redaction
    from oneeye.services.edge.runtime import EdgeSettings, parse_camera
    from oneeye.vision.engine import FaceEngine

    settings = ServeSettings() if data_dir is None else ServeSettings(data_dir=data_dir)
    name = edge_id or re.sub(r"[^a-z0-9_-]", "-", socket.gethostname().lower())[:64]
    try:
        configs = tuple(
            parse_camera(
                spec,
                detect_every=detect_every,
                min_face_px=min_face_px,
                scan_every=scan_every or settings.video.scan_every,
                detect_threads=detect_threads or settings.video.detect_threads,
                light=settings.video.light,
                light_encode=settings.video.light_encode,
                detector=detector or settings.video.detector,
                cnn_ms_per_s=settings.video.cnn_ms_per_s,
                pace=pace,
                loop=loop,
            )
            for spec in cameras
        )
        edge_settings = EdgeSettings(
            edge_id=name,
            server_url=server_url,
            api_key=api_key,
            bus_url=bus_url,
            cameras=configs,
            data_dir=settings.data_dir,
            mqtt=settings.mqtt,
            ops_address=ops_address,
        )
    except OneEyeError as exc:
        raise click.BadParameter(str(exc)) from exc
    os.umask(PRIVATE_UMASK)
    install_query_redaction()
    engine = FaceEngine(settings.engine)
    try:
        runtime = EdgeRuntime(edge_settings, engine, GalleryIndex.from_settings(settings.gallery))
    except OneEyeError as exc:  # the ops address cannot be bound
        raise click.BadParameter(str(exc), param_hint="--ops-address") from exc
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        runtime.start()
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        runtime.stop()
        signal.signal(signal.SIGTERM, previous)
