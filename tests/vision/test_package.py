"""Importing the vision package stays cheap: the heavy libraries load with the modules that
use them, so ``oneeye --help`` and the web layer import without them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("dlib", "cv2", "onnxruntime", "onnx")


@pytest.mark.parametrize("module", ["oneeye.vision", "oneeye.vision.resnet"])
def test_importing_loads_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.split() == []
