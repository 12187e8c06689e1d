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
        _folder_option(
            "--data",
            DATA_DIR,
            exists=data_must_exist,
            help_text="LFW folder with images/ (and pairs.txt for bench/lfw.py).",
        ),
        _folder_option("--results", RESULTS_DIR),
        _folder_option(
            "--cache",
            CACHE_DIR,
            help_text=(
                "Extracted features are kept here between runs (shared by the LFW benchmarks)."
            ),
        ),
        click.option("--workers", type=click.IntRange(1, 64), default=workers, show_default=True),
    )

    def add(command: Command) -> Command:
        for option in reversed(options):  # as stacked decorators apply: the lowest first
            command = option(command)
        return command

    return add


def _folder_option(
    flag: str, default: Path, *, exists: bool = False, help_text: str | None = None
) -> Callable[[Command], Command]:
    """A folder option ``--name``, passed to the command as ``name_dir``."""
    return click.option(
        flag,
        f"{flag.removeprefix('--')}_dir",
        type=click.Path(exists=exists, file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help_text,
    )


@contextmanager
def smoke_folders() -> Iterator[tuple[Path, Path]]:
    """A results and a cache folder for a ``--smoke`` run, removed with all they hold on exit.

    Yields:
        ``(results_dir, cache_dir)``, neither created yet.
    """
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch) / "results", Path(scratch) / "cache"
