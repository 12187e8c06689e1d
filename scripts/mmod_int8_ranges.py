"""Measure the MMOD detector's int8 input ranges (``oneeye.vision.mmod.quantise``) on
face_recognition 1.3.0's test photos, and print them as ``INT8_RANGES`` holds them.

    python scripts/mmod_int8_ranges.py ~/.cache/oneeye-tests/face_recognition-1.3.0-test_images

(the tests fetch that folder from PyPI; ``tests/vision/mmod/test_quantise.py`` checks the
shipped ranges against a new measurement).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from oneeye.vision.images import load_image
from oneeye.vision.mmod.quantise import (
    CALIBRATION_PHOTOS,
    calibration_tensors,
    measure_ranges,
    network_digest,
)
from oneeye.vision.mmod.reader import read_mmod_model
from oneeye.vision.mmod.runtimes import OnnxResizer, read_network
from oneeye.vision.models import ModelPaths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path, help="the folder of face_recognition's test photos")
    args = parser.parse_args()
    model = read_mmod_model(ModelPaths.locate().cnn_detector)
    openvino = importlib.import_module("openvino")
    core = openvino.Core()
    network = read_network(core, model)
    photos = [load_image(args.photos / name) for name in CALIBRATION_PHOTOS]
    tensors = calibration_tensors(model, photos, OnnxResizer(1).resize)
    ranges = measure_ranges(core, network, tensors)
    print(f"    # {len(tensors)} pyramid tensors")
    print(f'    "{network_digest(model)}": (')
    for low, high in ranges:
        print(f"        ({low:.4f}, {high:.4f}),")
    print("    ),")


if __name__ == "__main__":
    main()
