"""The command-line set-up the LFW benchmarks share (``bench/lfw.py``, ``lfw_calibration.py``,
``lfw_open_set_study.py``): where LFW is, where results go, the feature cache they all read
(so one extraction serves the three), and the throw-away folders a ``--smoke`` run writes to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])

DATA_DIR = Path("../shared/data/lfw")
RESULTS_DIR = Path("bench/results")
CACHE_DIR = Path("bench/.cache")


def lfw_options(*, workers: int, data_must_exist: bool = True) -> Callable[[Command], Command]:
    """The options ``--data``, ``--results``, ``--cache`` and ``--workers``, in that order,
    passed to the command as ``data_dir``, ``results_dir``, ``cache_dir`` and ``workers``.

    Args:
        workers: the default number of extraction processes.
        data_must_exist: whether click refuses a ``--data`` folder that does not exist (off for
            a benchmark whose ``--smoke`` run reads no LFW folder at all).

    Returns:
        A decorator for a click command, placed where the four options would stand.
    """
    options = (
        click.option(
            "--data",
            "data_dir",
            type=click.Path(exists=data_must_exist, file_okay=False, path_type=Path),
            default=DATA_DIR,
            show_default=True,
            help="LFW folder with images/ (and pairs.txt for bench/lfw.py).",
        ),
        click.option(
            "--results",
            "results_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=RESULTS_DIR,
            show_default=True,
        ),
        click.option(
            "--cache",
            "cache_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=CACHE_DIR,
            show_default=True,
            help="Extracted features are kept here between runs (shared by the LFW benchmarks).",
        ),
        click.option("--workers", type=click.IntRange(1, 64), default=workers, show_default=True),
    )

    def add(command: Command) -> Command:
        for option in reversed(options):  # as stacked decorators apply: the lowest first
            command = option(command)
        return command

    return add


@contextmanager
def smoke_folders() -> Iterator[tuple[Path, Path]]:
    """A results and a cache folder for a ``--smoke`` run, removed with all they hold on exit.

    Yields:
        ``(results_dir, cache_dir)``, neither created yet.
    """
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch) / "results", Path(scratch) / "cache"
