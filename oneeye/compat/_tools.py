"""What the two command-line tools share: which files in a folder are pictures, running over
them in one or several processes, and printing the results in face_recognition's format."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import click

PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
"""The files face_recognition's tools look at in a folder (any letter case)."""

Result = tuple[list[str], str | None]
"""One picture's output lines, and why it could not be read (``None`` if it could)."""


def pictures_in_folder(folder: str) -> list[str]:
    """The pictures directly inside ``folder``, in name order.

    Args:
        folder: a directory.

    Returns:
        Their paths, ``folder`` joined with each file name.
    """
    return sorted(
        str(Path(folder) / entry.name)
        for entry in Path(folder).iterdir()
        if entry.suffix.lower() in PICTURE_SUFFIXES and entry.is_file()
    )


def pictures_to_check(image_to_check: str) -> list[str]:
    """The pictures a tool's IMAGE_TO_CHECK argument names: a folder's, or the one file."""
    if os.path.isdir(image_to_check):
        return pictures_in_folder(image_to_check)
    return [image_to_check]


def check_cpus(cpus: int) -> int:
    """The number of processes ``--cpus`` asks for (-1: one per core).

    Raises:
        click.BadParameter: ``cpus`` is 0 or below -1.
    """
    if cpus == -1:
        return os.cpu_count() or 1
    if cpus < 1:
        raise click.BadParameter("must be -1 or at least 1", param_hint="--cpus")
    return cpus


def run_on_pictures(
    pictures: list[str], processes: int, work: Callable[..., Result], *args: object
) -> list[Result]:
    """``work(picture, *args)`` for every picture, in ``processes`` processes.

    Args:
        pictures: the files.
        processes: 1 runs here; more, that many processes (each loads its own models).
        work: a module-level function (the processes import it by name).
        args: its other arguments.

    Returns:
        Each picture's result, in the order of ``pictures``.
    """
    if processes == 1 or len(pictures) < 2:
        return [work(picture, *args) for picture in pictures]
    # spawn, not fork: a forked onnxruntime or dlib thread pool can hang the child.
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(work, picture, *args) for picture in pictures]
        return [future.result() for future in futures]


def echo_results(pictures: list[str], results: list[Result]) -> bool:
    """Print each picture's lines (a problem on stderr).

    Returns:
        Whether every picture could be read.
    """
    every = True
    for picture, (lines, problem) in zip(pictures, results, strict=True):
        if problem is not None:
            every = False
            click.echo(f"WARNING: cannot read {picture}: {problem}. Ignoring file.", err=True)
        for line in lines:
            click.echo(line)
    return every
