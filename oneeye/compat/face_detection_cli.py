"""face_recognition's ``face_detection`` tool: one line ``file,top,right,bottom,left`` per face.

Also ``oneeye compat face_detection``. Importing this module loads nothing heavy; the work
imports ``oneeye.compat.api`` when it starts.
"""

from __future__ import annotations

import click

from oneeye.compat._tools import (
    Result,
    check_cpus,
    echo_results,
    pictures_to_check,
    run_on_pictures,
)


def _faces_in(image_to_check: str, model: str) -> Result:
    """The output lines for one picture, or the reason it could not be read."""
    from oneeye.compat import api
    from oneeye.errors import ImageError

    try:
        image = api.load_image_file(image_to_check)
    except ImageError as exc:
        return [], str(exc)
    locations = api.face_locations(image, number_of_times_to_upsample=0, model=model)
    lines = [
        f"{image_to_check},{top},{right},{bottom},{left}" for top, right, bottom, left in locations
    ]
    return lines, None


@click.command(name="face_detection")
@click.argument("image_to_check")
@click.option(
    "--cpus",
    default=1,
    help='number of CPU cores to use in parallel. -1 means "use all in system"',
)
@click.option(
    "--model",
    default="hog",
    type=click.Choice(["hog", "cnn"]),
    help='Which face detection model to use. Options are "hog" or "cnn".',
)
@click.pass_context
def main(ctx: click.Context, image_to_check: str, cpus: int, model: str) -> None:
    """Print the location of every face in IMAGE_TO_CHECK (a picture, or a folder of them),
    one line file,top,right,bottom,left per face, as face_recognition's face_detection does."""
    processes = check_cpus(cpus)
    pictures = pictures_to_check(image_to_check)
    if not echo_results(pictures, run_on_pictures(pictures, processes, _faces_in, model)):
        ctx.exit(1)
