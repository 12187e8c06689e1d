"""The ``oneeye`` command. The only place in OneEye that exits the process.

Exit codes: 0 success, 1 the work ran but something failed (a photo refused, a file
unreadable), 2 bad arguments (one line on stderr).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import SQLAlchemyError

from oneeye import __version__
from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings, Settings
from oneeye.edge_app import EdgeRuntime
from oneeye.errors import OneEyeError, SourceError
from oneeye.gallery import GalleryIndex
from oneeye.gallery.ivf import IvfParameters
from oneeye.redact import install_query_redaction
from oneeye.services.auth import KEY_ROLES, ROLES, AuthService, UserError
from oneeye.services.edge.runtime import EdgeSettings, parse_camera
from oneeye.store.db import Database, DatabaseError
from oneeye.types import RGBImage, Template
from oneeye.video.annotate import annotate
from oneeye.video.pipeline import CameraPipeline, PipelineSettings, SightingEvent
from oneeye.video.source import FrameReader
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
GALLERY_FILE = "gallery.npz"
DEFAULT_WATCHLIST = "default"
PRIVATE_UMASK = 0o077
"""``serve`` and ``edge`` create every file owner-only, even ones a library makes (the data
they keep is biometric)."""

stderr = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True, slots=True)
class EnrolmentPhoto:
    """One photo to enrol and whose face it shows."""

    path: Path
    person: str


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def enrolment_photos(path: Path, name: str | None) -> list[EnrolmentPhoto]:
    """The photos under ``path`` and who they show (face_recognition's folder convention).

    Args:
        path: a photo, or a folder with one sub-folder of photos per person (the sub-folder's
            name is the person); photos directly in the folder are named by ``name`` or, without
            it, by their file name.
        name: the person's name for a single photo or loose photos.

    Returns:
        The photos, sorted.
    """
    if path.is_file():
        return [EnrolmentPhoto(path, name or path.stem)]
    photos = [EnrolmentPhoto(p, name or p.stem) for p in _images_in(path)]
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        photos.extend(EnrolmentPhoto(p, folder.name) for p in _images_in(folder))
    return photos


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )


def _report_progress(progress: Progress, what: str, done: int, total: int) -> None:
    """Without a terminal the bar is not drawn: say how far we are in a line every 5%."""
    step = max(1, total // 20)
    if not progress.console.is_terminal and (done % step == 0 or done == total):
        progress.console.print(f"{what} {done}/{total}", highlight=False)


def _load_gallery(folder: Path, settings: Settings, *, must_exist: bool) -> GalleryIndex:
    file = folder / GALLERY_FILE
    if file.exists():
        return GalleryIndex.load(file, ivf=IvfParameters.from_settings(settings.gallery))
    if must_exist:
        raise click.BadParameter(
            f"no gallery in {folder} (enrol someone first)", param_hint="--gallery"
        )
    return GalleryIndex.from_settings(settings.gallery)


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oneeye")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """OneEye: self-hosted, real-time face identification."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO: webhook tokens, account ids in the bank
    # API's paths. OneEye's own lines name the host only.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    ctx.obj = Settings()


gallery_option = click.option(
    "--gallery",
    "gallery_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding the gallery.",
)


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@gallery_option
@click.option("--name", help="Person's name for a single photo (default: the file name).")
@click.option("--watchlist", default=DEFAULT_WATCHLIST, show_default=True)
@click.pass_context
def enroll(
    ctx: click.Context, path: Path, gallery_dir: Path, name: str | None, watchlist: str
) -> None:
    """Enrol the faces in PATH: a photo, or a folder with one sub-folder per person.

    Each photo must show exactly one usable face; a photo that cannot be used is reported with
    its reason and the rest go on. Enrolling the same photo again replaces its template.
    """
    settings = _settings(ctx)
    photos = enrolment_photos(path, name)
    if not photos:
        raise click.BadParameter(f"no photos found in {path}", param_hint="PATH")
    gallery = _load_gallery(gallery_dir, settings, must_exist=False)
    engine = FaceEngine(settings.engine)
    templates: list[Template] = []
    refused: list[tuple[Path, str]] = []
    with _progress() as progress:
        task = progress.add_task("enrolling", total=len(photos))
        for photo in photos:
            try:
                image = load_image(photo.path, max_pixels=settings.engine.max_pixels)
                face = engine.enrolment_face(image)
            except OneEyeError as exc:
                reason = _reason(photo.path, exc)
                refused.append((photo.path, reason))
                stderr.print(f"[yellow]refused[/] {photo.path}: {reason}", highlight=False)
            else:
                templates.append(
                    Template(
                        id=f"{watchlist}:{photo.person}:{photo.path.name}",
                        person=photo.person,
                        watchlist=watchlist,
                        embedding=face.embedding,
                        quality=face.quality.score,
                    )
                )
            progress.advance(task)
            _report_progress(progress, "photos done:", len(templates) + len(refused), len(photos))
    for template in templates:
        if template.id in gallery:
            gallery.replace(template)
        else:
            gallery.add(template)
    gallery_dir.mkdir(parents=True, exist_ok=True)
    gallery.save(gallery_dir / GALLERY_FILE)
    people = len({t.person for t in templates})
    stderr.print(
        f"enrolled {len(templates)} photo(s) of {people} person(s) into watchlist "
        f"{watchlist!r}; refused {len(refused)}; gallery now holds {len(gallery)} template(s)",
        highlight=False,
    )
    for reason, count in Counter(r.split(";")[0] for _, r in refused).most_common():
        stderr.print(f"  {count} x {reason}", highlight=False)
    if refused:
        ctx.exit(1)


def _reason(path: Path, error: OneEyeError) -> str:
    """The error's message without the file name the caller prints anyway."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _identify_targets(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from _images_in(path)
        else:
            yield path


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@gallery_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of CSV.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 2.0, min_open=True),
    help="Accept matches up to this distance (default: each watchlist's threshold).",
)
@click.option(
    "--margin",
    type=click.FloatRange(0.0, 2.0, max_open=True),
    help="A match must be this much nearer than the next person (default: the gallery's).",
)
@click.pass_context
def identify(
    ctx: click.Context,
    paths: tuple[Path, ...],
    gallery_dir: Path,
    as_json: bool,
    threshold: float | None,
    margin: float | None,
) -> None:
    """Say who is in each photo: one line per face.

    CSV columns: file,person,distance,top,right,bottom,left. ``unknown_person`` is a face
    nobody enrolled is close enough to; ``no_persons_found`` a photo without a face.
    """
    settings = _settings(ctx)
    gallery = _load_gallery(gallery_dir, settings, must_exist=True)
    if threshold is not None:
        for watchlist in gallery.watchlists():
            gallery.set_threshold(watchlist, threshold)
    if margin is not None:
        gallery.set_margin(margin)
    engine = FaceEngine(settings.engine)
    failed = False
    for path in _identify_targets(paths):
        try:
            image = load_image(path, max_pixels=settings.engine.max_pixels)
        except OneEyeError as exc:
            stderr.print(f"{path}: {_reason(path, exc)}", highlight=False)
            failed = True
            continue
        faces = engine.faces(image, fallback=True)
        if not faces:
            _emit(
                as_json,
                str(path),
                person="no_persons_found",
                watchlist=None,
                distance=None,
                box=None,
            )
            continue
        for face, answer in zip(
            faces, gallery.identify_batch([f.embedding for f in faces], k=1), strict=True
        ):
            nearest = answer.match or (answer.candidates[0] if answer.candidates else None)
            _emit(
                as_json,
                str(path),
                person=answer.match.person if answer.match else "unknown_person",
                watchlist=answer.match.watchlist if answer.match else None,
                distance=nearest.distance if nearest else None,
                box=face.box.as_tuple(),
            )
    if failed:
        ctx.exit(1)


def _emit(
    as_json: bool,
    file: str,
    *,
    person: str,
    watchlist: str | None,
    distance: float | None,
    box: tuple[int, int, int, int] | None,
) -> None:
    if as_json:
        record = {
            "file": file,
            "person": person,
            "watchlist": watchlist,
            "distance": None if distance is None else round(distance, 4),
            "box": list(box) if box else None,
        }
        click.echo(json.dumps(record))
        return
    cells = [file, person, "" if distance is None else f"{distance:.4f}"]
    cells.extend(str(v) for v in box) if box else cells.extend([""] * 4)
    click.echo(",".join(cells))


@cli.command()
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
    default=PipelineSettings().scan_every,
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
    settings = _settings(ctx)
    gallery = _load_gallery(gallery_dir, settings, must_exist=True)
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


class SettingError(click.ClickException):
    """A setting OneEye cannot start with (a bad value, a database it cannot open): exit 2."""

    exit_code = 2


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve_settings(data_dir: Path | None, **server: object) -> ServeSettings:
    """The server's settings from the environment, with the command line's options on top."""
    settings = ServeSettings() if data_dir is None else ServeSettings(data_dir=data_dir)
    changes = {k: v for k, v in server.items() if v is not None}
    if changes:
        settings.server = settings.server.model_validate(settings.server.model_dump() | changes)
    return settings


def announce_first_admin(credential: str) -> None:
    """Print the first admin's one-time credential to stdout, once, so nobody misses it.

    Args:
        credential: ``"name:password"`` as ``AuthService.ensure_admin`` returns it.
    """
    name, password = credential.split(":", 1)
    rule = "=" * 72
    click.echo(
        f"{rule}\n"
        "OneEye created its first admin. Log in with this one-time password;\n"
        "it is shown only now and never again (reset it with `oneeye users reset-password`).\n"
        f"  username: {name}\n"
        f"  password: {password}\n"
        f"{rule}"
    )


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where OneEye keeps its database and photos (default: ONEEYE_DATA_DIR or ./data).",
)


@cli.command()
@click.option("--host", help="Address to listen on (default: ONEEYE_SERVER__HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on (default: ONEEYE_SERVER__PORT or 8080).",
)
@data_dir_option
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the OneEye server: web API and dashboard, camera workers, all in one process.

    The first start creates an admin and prints its one-time password. Settings come from
    ONEEYE_ environment variables (ONEEYE_DATABASE_URL for PostgreSQL); Ctrl-C stops cleanly.
    """
    settings = _serve_settings(data_dir, host=host, port=port)
    os.umask(PRIVATE_UMASK)
    try:
        app = OneEyeApp(settings, announce=announce_first_admin)
    except (OneEyeError, SQLAlchemyError) as exc:
        raise SettingError(f"cannot start: {_one_line(exc)}") from exc
    config = uvicorn_config(app.web, settings)
    install_query_redaction()  # after uvicorn's Config, which sets up its loggers
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again; both end
    # up here as KeyboardInterrupt so the parts stop in order and the exit is clean.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    app.start()
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        app.stop()
        signal.signal(signal.SIGTERM, previous)


@cli.command()
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
    "--pace/--no-pace", default=True, show_default=True, help="Play files at their frame rate."
)
@click.option("--loop", is_flag=True, help="Play files again when they end (demos).")
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
    pace: bool,
    loop: bool,
    data_dir: Path | None,
) -> None:
    """Run an edge: recognise faces on this host's cameras and report to the central server.

    The gallery comes from the server (with the API key) and stays in step over the broker;
    sightings go to the broker (queued on disk while it or the server is unreachable), snapshots
    to the server. Engine, gallery and MQTT settings (TLS, credentials, topic prefix) come from
    the same ONEEYE_ variables as `oneeye serve`. Ctrl-C stops cleanly.
    """
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
        )
    except OneEyeError as exc:
        raise click.BadParameter(str(exc)) from exc
    os.umask(PRIVATE_UMASK)
    install_query_redaction()
    engine = FaceEngine(settings.engine)
    runtime = EdgeRuntime(edge_settings, engine, GalleryIndex.from_settings(settings.gallery))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        runtime.start()
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        runtime.stop()
        signal.signal(signal.SIGTERM, previous)


@cli.group()
@data_dir_option
@click.pass_context
def users(ctx: click.Context, data_dir: Path | None) -> None:
    """Manage who can log in, and API keys; needs only the database (the server may run)."""
    settings = _serve_settings(data_dir)
    try:
        db = Database(settings.resolved_database_url())
        db.migrate()
    except (DatabaseError, SQLAlchemyError) as exc:
        raise SettingError(f"cannot open the database: {_one_line(exc)}") from exc
    ctx.call_on_close(db.close)
    ctx.obj = AuthService.from_settings(db, settings.server)


def _auth(ctx: click.Context) -> AuthService:
    auth = ctx.obj
    assert isinstance(auth, AuthService)
    return auth


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.BadParameter("no password on standard input", param_hint="--password-stdin")
        return line
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    assert isinstance(password, str)
    return password


def _user_change(action: Callable[[], object]) -> None:
    try:
        action()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
role_option = click.option(
    "--role", type=click.Choice(ROLES), required=True, help="What they may see and do."
)


@users.command("add")
@click.argument("name")
@role_option
@password_stdin_option
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a user NAME with a role; asks for the password (at least 10 characters)."""
    password = _new_password(password_stdin)
    _user_change(lambda: _auth(ctx).create_user(name, password, role, actor="system:cli"))
    click.echo(f"added {role} {name}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List the users: name, role, whether they may log in, when they were added."""
    for user in _auth(ctx).users():
        state = "active" if user.active else "inactive"
        click.echo(f"{user.username}\t{user.role}\t{state}\t{user.created_at:%Y-%m-%d %H:%M}")


@users.command("reset-password")
@click.argument("name")
@password_stdin_option
@click.pass_context
def users_reset_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give user NAME a new password (asked for) and end their sessions."""
    auth = _auth(ctx)
    _user_change(lambda: auth.user_named(name))
    password = _new_password(password_stdin)
    _user_change(lambda: auth.set_password(name, password, actor="system:cli"))
    click.echo(f"new password set for {name}; their sessions have ended")


@users.command("api-key")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(KEY_ROLES),
    required=True,
    help="What it may see and do; edge: a camera host's key (gallery, its cameras, snapshots).",
)
@click.option(
    "--edge",
    "edge_id",
    default=None,
    help="With --role edge (required there): the edge's id, also its broker user name.",
)
@click.pass_context
def users_api_key(ctx: click.Context, name: str, role: str, edge_id: str | None) -> None:
    """Create an API key called NAME with a role and print it, once.

    Machines send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    """
    created: list[str] = []
    _user_change(
        lambda: created.append(
            _auth(ctx).create_api_key(name, role, edge_id=edge_id, actor="system:cli")[1]
        )
    )
    click.echo(created[0])
    stderr.print(f"API key {name!r} ({role}) created; it is shown only this once.", highlight=False)


def uvicorn_config(web: FastAPI, settings: ServeSettings) -> uvicorn.Config:
    """How uvicorn serves the web app: ``X-Forwarded-For`` is believed only from the proxies
    ``ONEEYE_SERVER__TRUSTED_PROXIES`` names (uvicorn would trust 127.0.0.1 by default, so a
    local process could choose the address the login throttle counts)."""
    proxies = settings.server.trusted_proxies
    return uvicorn.Config(
        web,
        host=settings.server.host,
        port=settings.server.port,
        log_level=logging.getLevelName(min(logging.getLogger().level, logging.INFO)).lower(),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies) if proxies else [],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad arguments give one line on stderr and exit code 2.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    try:
        result = cli.main(args=argv, prog_name="oneeye", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"oneeye: error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("oneeye: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"oneeye: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except ValidationError as exc:
        problems = "; ".join(
            f"ONEEYE_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        click.echo(f"oneeye: error: bad setting: {problems}", err=True)
        return 2
    except OneEyeError as exc:
        click.echo(f"oneeye: error: {exc}", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
