"""Light normalisation for dark frames: what the detector scans and what the ResNet encodes.

A camera in a dim room delivers frames whose faces sit in the bottom few grey levels, where
HOG's gradients drown in sensor noise and the ResNet sees a face unlike the enrolment photo.
A frame whose mean level is below ``DARK_LEVEL`` is brightened before detection (``lift``: a
gamma curve that brings the mean up to ``TARGET_LEVEL``; ``clahe``: contrast-limited adaptive
histogram equalisation) and, if asked, before encoding. Frames lit well enough are passed on
untouched, so a lit camera pays only for measuring the level.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import RGBImage

LightMode = Literal["off", "lift", "clahe"]
"""``off``: frames as they come; ``lift``: a gamma lift of dark frames; ``clahe``: adaptive
histogram equalisation of dark frames."""
LIGHT_MODES: tuple[str, ...] = get_args(LightMode)

DARK_LEVEL = 60.0
"""A frame whose mean grey level (0-255) is below this is dark (the plain clips' frames are at
about 100, a dim room's at 15-30)."""
TARGET_LEVEL = 110.0
"""``lift`` brings a dark frame's mean grey level up to about this."""
MAX_GAMMA_LIFT = 4.0
"""``lift`` bends at most this much (1/gamma): a black frame is not stretched into noise."""
CLAHE_CLIP = 3.0
"""``clahe``'s contrast limit (OpenCV's ``clipLimit``)."""
CLAHE_TILES = 8
"""``clahe``'s tile grid per side."""
LEVEL_STEP = 8
"""The level is measured on every ``LEVEL_STEP``-th pixel of every ``LEVEL_STEP``-th row."""


def mean_level(grey: npt.NDArray[np.uint8]) -> float:
    """A frame's mean grey level, measured on a sparse grid of its pixels.

    Args:
        grey: (H, W) uint8.

    Returns:
        The mean, 0-255.
    """
    return float(grey[::LEVEL_STEP, ::LEVEL_STEP].mean())


def lift_table(level: float) -> npt.NDArray[np.uint8]:
    """The 256-entry gamma curve that brings a frame of mean ``level`` to ``TARGET_LEVEL``.

    Args:
        level: the frame's mean grey level (0-255).

    Returns:
        The lookup table (identity for a frame at or above the target).
    """
    ramp = np.arange(256, dtype=np.float64) / 255.0
    if level >= TARGET_LEVEL:
        return np.arange(256, dtype=np.uint8)
    # mean(x ** g) ~ mean(x) ** g for a frame whose levels are not spread far: solve for g.
    gamma = math.log(TARGET_LEVEL / 255.0) / math.log(max(level, 1.0) / 255.0)
    gamma = max(gamma, 1.0 / MAX_GAMMA_LIFT)
    return np.clip(np.rint(255.0 * ramp**gamma), 0, 255).astype(np.uint8)


class LightNormaliser:
    """Brightens dark frames for one camera (holds its CLAHE object: one per camera loop)."""

    def __init__(self, mode: LightMode = "off", dark_level: float = DARK_LEVEL) -> None:
        """Choose the normalisation.

        Args:
            mode: see ``LightMode``.
            dark_level: frames with a mean grey level below this are normalised.

        Raises:
            ValueError: an unknown mode, or a dark level outside 0-255.
        """
        if mode not in LIGHT_MODES:
            raise ValueError(f"light mode must be one of {', '.join(LIGHT_MODES)}, got {mode!r}")
        if not 0.0 <= dark_level <= 255.0:
            raise ValueError(f"dark_level must be within 0-255, got {dark_level}")
        self.mode = mode
        self.dark_level = dark_level
        self._clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES,) * 2)

    def is_dark(self, grey: npt.NDArray[np.uint8]) -> bool:
        """Whether this normaliser changes the frame (its mode is on and the frame is dark).

        Args:
            grey: (H, W) uint8.

        Returns:
            ``True`` when :meth:`grey` and :meth:`image` would change it.
        """
        return self.mode != "off" and mean_level(grey) < self.dark_level

    def grey(self, grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The grey frame the detector should scan.

        Args:
            grey: (H, W) uint8.

        Returns:
            ``grey`` itself when it is not dark (or the mode is ``off``), else a new array.
        """
        if not self.is_dark(grey):
            return grey
        if self.mode == "clahe":
            return np.asarray(self._clahe.apply(grey), dtype=np.uint8)
        return np.asarray(cv2.LUT(grey, lift_table(mean_level(grey))), dtype=np.uint8)

    def image(self, image: RGBImage, grey: npt.NDArray[np.uint8]) -> RGBImage:
        """The colour frame the faces should be encoded from.

        Args:
            image: (H, W, 3) uint8 RGB.
            grey: the same frame in grey (sets the level; it is measured once per frame).

        Returns:
            ``image`` itself when it is not dark (or the mode is ``off``), else a new array:
            under ``lift`` each channel through the same curve; under ``clahe`` the lightness
            equalised and the colour kept.
        """
        if not self.is_dark(grey):
            return image
        if self.mode == "clahe":
            lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
            lab[:, :, 0] = self._clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
            return np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), dtype=np.uint8)
        return np.asarray(cv2.LUT(image, lift_table(mean_level(grey))), dtype=np.uint8)
