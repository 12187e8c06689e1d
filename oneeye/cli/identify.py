"""``oneeye identify``: say who is in photos, against a gallery folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click

from oneeye.cli.common import gallery_option, images_in, load_gallery, reason, settings_of, stderr


def _identify_targets(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from images_in(path)
        else:
            yield path


@click.command()
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
    from oneeye.errors import OneEyeError
    from oneeye.services.enrolment_photo import decode_photo
    from oneeye.vision.engine import FaceEngine

    settings = settings_of(ctx)
    gallery = load_gallery(gallery_dir, settings, must_exist=True)
    if threshold is not None:
        for watchlist in gallery.watchlists():
            gallery.set_threshold(watchlist, threshold)
    if margin is not None:
        gallery.set_margin(margin)
    engine = FaceEngine(settings.engine)
    failed = False
    for path in _identify_targets(paths):
        try:
            image = decode_photo(path, max_pixels=settings.engine.max_pixels)
        except OneEyeError as exc:
            stderr().print(f"{path}: {reason(path, exc)}", highlight=False)
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
