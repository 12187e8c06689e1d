"""What a ResNet backend is (``Backend``), and the input normalisation they all share."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from oneeye.vision.resnet.model import FloatArray, InputLayer


def normalise(chips: npt.NDArray[np.uint8], input_layer: InputLayer) -> FloatArray:
    """dlib's ``input_rgb_image_sized``: ``(pixel - mean) / 256`` in float32, NHWC."""
    means = np.asarray(input_layer.means, dtype=np.float32)
    out = chips.astype(np.float32)
    out -= means
    out *= np.float32(1 / 256)
    return out


class Backend(ABC):
    """Runs the network on normalised NHWC float32 chips, giving (N, outputs)."""

    @abstractmethod
    def run(self, batch: FloatArray) -> FloatArray:
        """The descriptors of a batch.

        Args:
            batch: (N, rows, cols, 3) float32 chips, already through ``normalise``.

        Returns:
            (N, outputs) float32 descriptors.
        """
