"""The LFW data set and its standard verification protocol (``pairs.txt``: 10 folds of 300
same-person and 300 different-person pairs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FOLDS = 10


@dataclass(frozen=True, slots=True)
class LfwPairs:
    """All pairs of the protocol, as parallel arrays over pairs."""

    images: tuple[str, ...]
    """Distinct image paths relative to the images folder, sorted."""
    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    same: npt.NDArray[np.bool_]
    fold: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.same)


def image_path(name: str, number: int) -> str:
    """``Name/Name_0001.jpg`` for person ``Name``, photo 1."""
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(pairs_file: Path) -> LfwPairs:
    """Parse ``pairs.txt``.

    Args:
        pairs_file: the standard file: a header ``folds n`` then, per fold, ``n`` lines
            ``name a b`` (same person) and ``n`` lines ``name1 a name2 b`` (different).

    Returns:
        The pairs.

    Raises:
        ValueError: the file does not have the announced number of well-formed lines.
    """
    lines = pairs_file.read_text().split("\n")
    folds, per_fold = (int(x) for x in lines[0].split())
    body = [line.split() for line in lines[1:] if line.strip()]
    if len(body) != folds * per_fold * 2:
        raise ValueError(f"{pairs_file}: expected {folds * per_fold * 2} pairs, got {len(body)}")
    left: list[str] = []
    right: list[str] = []
    same: list[bool] = []
    fold: list[int] = []
    for index, cells in enumerate(body):
        if len(cells) == 3:
            left.append(image_path(cells[0], int(cells[1])))
            right.append(image_path(cells[0], int(cells[2])))
            same.append(True)
        elif len(cells) == 4:
            left.append(image_path(cells[0], int(cells[1])))
            right.append(image_path(cells[2], int(cells[3])))
            same.append(False)
        else:
            raise ValueError(f"{pairs_file}: line {index + 2} is not a pair: {cells}")
        fold.append(index // (per_fold * 2))
    images = tuple(sorted(set(left) | set(right)))
    position = {name: i for i, name in enumerate(images)}
    return LfwPairs(
        images=images,
        first=np.array([position[p] for p in left], dtype=np.int64),
        second=np.array([position[p] for p in right], dtype=np.int64),
        same=np.array(same, dtype=np.bool_),
        fold=np.array(fold, dtype=np.int64),
    )


def all_images(images_dir: Path) -> list[str]:
    """Every image of the data set, ``Name/Name_0001.jpg``, sorted."""
    return sorted(
        f"{person.name}/{photo.name}"
        for person in images_dir.iterdir()
        if person.is_dir()
        for photo in person.iterdir()
        if photo.suffix.lower() == ".jpg"
    )


def person_of(image: str) -> str:
    """The person a relative image path shows."""
    return image.split("/", 1)[0]


def union(*lists: Iterable[str]) -> list[str]:
    """Sorted union of image lists."""
    return sorted(set().union(*lists))
