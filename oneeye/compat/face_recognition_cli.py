"""face_recognition's ``face_recognition`` tool: who, of the people in a folder of known
faces (one picture each, named after them), is in each picture to check.

One line per face: ``file,name`` for each known person within the tolerance (or
``unknown_person``), ``file,no_persons_found`` for a picture without a face; with
``--show-distance true``, the distance as a third column (``None`` where there is none).
Also ``oneeye compat face_recognition``. Importing this module loads nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from oneeye.compat._tools import (
    Result,
    check_cpus,
    echo_results,
    pictures_in_folder,
    pictures_to_check,
    run_on_pictures,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BIG_PICTURE_PX = 1600
"""A picture to check is shrunk to this many pixels on its longer side first, as
face_recognition's tool does (so things run a little faster)."""


def _known_people(folder: str) -> tuple[list[str], list[npt.NDArray[np.float64]], bool]:
    """The names and encodings of the known people, and whether every picture was read."""
    from oneeye.compat import api
    from oneeye.errors import ImageError

    names: list[str] = []
    encodings: list[npt.NDArray[np.float64]] = []
    every = True
    for picture in pictures_in_folder(folder):
        try:
            found = api.face_encodings(api.load_image_file(picture))
        except ImageError as exc:
            click.echo(f"WARNING: cannot read {picture}: {exc}. Ignoring file.", err=True)
            every = False
            continue
        if len(found) > 1:
            click.echo(
                f"WARNING: More than one face found in {picture}. Only considering the first face."
            )
        if not found:
            click.echo(f"WARNING: No faces found in {picture}. Ignoring file.")
            continue
        names.append(Path(picture).stem)
        encodings.append(found[0])
    return names, encodings, every


def _who_is_in(
    image_to_check: str,
    names: list[str],
    encodings: list[npt.NDArray[np.float64]],
    tolerance: float,
    show_distance: bool,
) -> Result:
    """The output lines for one picture, or the reason it could not be read."""
    import numpy as np
    from PIL import Image

    from oneeye.compat import api
    from oneeye.errors import ImageError

    try:
        image = api.load_image_file(image_to_check)
    except ImageError as exc:
        return [], str(exc)
    if max(image.shape) > BIG_PICTURE_PX:
        picture = Image.fromarray(image)
        picture.thumbnail((BIG_PICTURE_PX, BIG_PICTURE_PX), Image.Resampling.LANCZOS)
        image = np.asarray(picture, dtype=np.uint8)

    def line(name: str, distance: float | None) -> str:
        return (
            f"{image_to_check},{name},{distance}" if show_distance else f"{image_to_check},{name}"
        )

    lines: list[str] = []
    for encoding in api.face_encodings(image):
        distances = api.face_distance(encodings, encoding)
        matches = [
            line(name, float(distance))
            for name, distance in zip(names, distances, strict=True)
            if distance <= tolerance
        ]
        lines.extend(matches or [line("unknown_person", None)])
    return (lines or [line("no_persons_found", None)]), None


@click.command(name="face_recognition")
@click.argument("known_people_folder")
@click.argument("image_to_check")
@click.option(
    "--cpus",
    default=1,
    help="number of CPU cores to use in parallel (can speed up processing lots of images). "
    '-1 means "use all in system"',
)
@click.option(
    "--tolerance",
    default=0.6,
    help="Tolerance for face comparisons. Default is 0.6. Lower this if you get multiple "
    "matches for the same person.",
)
@click.option(
    "--show-distance",
    default=False,
    type=bool,
    help="Output face distance. Useful for tweaking tolerance setting.",
)
@click.pass_context
def main(
    ctx: click.Context,
    known_people_folder: str,
    image_to_check: str,
    cpus: int,
    tolerance: float,
    show_distance: bool,
) -> None:
    """Say who, of the people pictured in KNOWN_PEOPLE_FOLDER (one picture each, named after
    them), is in IMAGE_TO_CHECK (a picture, or a folder of them), as face_recognition's
    face_recognition tool does."""
    processes = check_cpus(cpus)
    names, encodings, every = _known_people(known_people_folder)
    pictures = pictures_to_check(image_to_check)
    results = run_on_pictures(
        pictures, processes, _who_is_in, names, encodings, tolerance, show_distance
    )
    if not echo_results(pictures, results) or not every:
        ctx.exit(1)
