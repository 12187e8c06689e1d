"""What the command groups share: options, settings, the gallery folder and error types.

Every module of ``oneeye.cli`` stays cheap to import: what loads numpy, dlib, onnxruntime,
SQLAlchemy or FastAPI is imported inside the command that uses it, so ``oneeye --help`` (and a
mistyped option) answers at once instead of after seconds of model and ORM imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from oneeye.config import ServeSettings, Settings
    from oneeye.errors import OneEyeError
    from oneeye.gallery import GalleryIndex

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
GALLERY_FILE = "gallery.npz"
PRIVATE_UMASK = 0o077
"""``serve`` and ``edge`` create every file owner-only, even ones a library makes (the data
they keep is biometric)."""


@cache
def stderr() -> Console:
    """The console for progress and messages to people (stdout carries the results)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


class SettingError(click.ClickException):
    """A setting OneEye cannot start with (a bad value, a database it cannot open): exit 2."""

    exit_code = 2


class LazyChoice(click.Choice[str]):
    """A choice whose values live in a module too heavy to import for ``--help`` of another
    command (the roles, beside the ORM): they are loaded when first parsed or shown."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        """Choose from what ``load()`` returns, calling it at most once."""
        self._load = load
        self._loaded: tuple[str, ...] | None = None
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        """The values, loaded on first use."""
        if self._loaded is None:
            self._loaded = tuple(self._load())
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """Ignored: ``click.Choice.__init__`` sets the (empty) values before they are loaded."""


def images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted (by suffix, not by content)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def settings_of(ctx: click.Context) -> Settings:
    """The settings the ``oneeye`` group read from the environment."""
    from oneeye.config import Settings

    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def load_gallery(folder: Path, settings: Settings, *, must_exist: bool) -> GalleryIndex:
    """The gallery kept in ``folder``; an empty one if there is none yet, unless
    ``must_exist`` (then a usage error on ``--gallery``)."""
    from oneeye.gallery import GalleryIndex
    from oneeye.gallery.ivf import IvfParameters

    file = folder / GALLERY_FILE
    if file.exists():
        return GalleryIndex.load(file, ivf=IvfParameters.from_settings(settings.gallery))
    if must_exist:
        raise click.BadParameter(
            f"no gallery in {folder} (enrol someone first)", param_hint="--gallery"
        )
    return GalleryIndex.from_settings(settings.gallery)


def reason(path: Path, error: OneEyeError) -> str:
    """The error's message without the file name the caller prints anyway."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def one_line(error: Exception) -> str:
    """An error's message on one line."""
    return " ".join(str(error).split())


def interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop as Ctrl-C does, so the parts stop in order."""
    raise KeyboardInterrupt


def serve_settings(data_dir: Path | None, **server: object) -> ServeSettings:
    """The server's settings from the environment, with the command line's options on top."""
    from oneeye.config import ServeSettings

    settings = ServeSettings() if data_dir is None else ServeSettings(data_dir=data_dir)
    changes = {k: v for k, v in server.items() if v is not None}
    if changes:
        settings.server = settings.server.model_validate(settings.server.model_dump() | changes)
    return settings


gallery_option = click.option(
    "--gallery",
    "gallery_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding the gallery.",
)

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where OneEye keeps its database and photos (default: ONEEYE_DATA_DIR or ./data).",
)
