"""``oneeye enroll``: enrol photos into a gallery folder (no server, no database)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oneeye.cli.common import (
    GALLERY_FILE,
    gallery_option,
    images_in,
    load_gallery,
    reason,
    settings_of,
    stderr,
)

if TYPE_CHECKING:
    from rich.progress import Progress

DEFAULT_WATCHLIST = "default"


@dataclass(frozen=True, slots=True)
class EnrolmentPhoto:
    """One photo to enrol and whose face it shows."""

    path: Path
    person: str


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
    photos = [EnrolmentPhoto(p, name or p.stem) for p in images_in(path)]
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        photos.extend(EnrolmentPhoto(p, folder.name) for p in images_in(folder))
    return photos


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr(),
        transient=True,
    )


def _report_progress(progress: Progress, what: str, done: int, total: int) -> None:
    """Without a terminal the bar is not drawn: say how far we are in a line every 5%."""
    step = max(1, total // 20)
    if not progress.console.is_terminal and (done % step == 0 or done == total):
        progress.console.print(f"{what} {done}/{total}", highlight=False)


@click.command()
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
    from oneeye.errors import OneEyeError
    from oneeye.services.enrolment_photo import read_enrolment_face
    from oneeye.types import Template
    from oneeye.vision.engine import FaceEngine

    settings = settings_of(ctx)
    photos = enrolment_photos(path, name)
    if not photos:
        raise click.BadParameter(f"no photos found in {path}", param_hint="PATH")
    gallery = load_gallery(gallery_dir, settings, must_exist=False)
    engine = FaceEngine(settings.engine)
    templates: list[Template] = []
    refused: list[tuple[Path, str]] = []
    with _progress() as progress:
        task = progress.add_task("enrolling", total=len(photos))
        for photo in photos:
            try:
                face = read_enrolment_face(engine, photo.path).face
            except OneEyeError as exc:
                why = reason(photo.path, exc)
                refused.append((photo.path, why))
                stderr().print(f"[yellow]refused[/] {photo.path}: {why}", highlight=False)
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
    stderr().print(
        f"enrolled {len(templates)} photo(s) of {people} person(s) into watchlist "
        f"{watchlist!r}; refused {len(refused)}; gallery now holds {len(gallery)} template(s)",
        highlight=False,
    )
    for why, count in Counter(r.split(";")[0] for _, r in refused).most_common():
        stderr().print(f"  {count} x {why}", highlight=False)
    if refused:
        ctx.exit(1)
