"""face_recognition 1.3.0's own test suite, run against ``oneeye.compat`` with only its three
import lines rewritten (``tests/compat/conftest.py``): each of its tests is one test here.

The six tests of private functions that return dlib's own objects (``api._raw_face_locations``
and the like) cannot pass by design: ``oneeye.compat`` offers face_recognition's public API,
and no dlib object leaves ``oneeye.vision``. They must fail for exactly that reason (the
private function is absent), which is checked; the README lists them. The facts they check
(the same boxes and landmarks) are checked by the public tests beside them.
"""

from __future__ import annotations

import importlib.util
import sys
import unittest
from pathlib import Path
from types import ModuleType

import pytest

from tests.compat.conftest import rewritten

PRIVATE_DLIB_OBJECTS = {
    "test_raw_face_locations": "_raw_face_locations",
    "test_cnn_raw_face_locations": "_raw_face_locations",
    "test_raw_face_locations_32bit_image": "_raw_face_locations",
    "test_cnn_raw_face_locations_32bit_image": "_raw_face_locations",
    "test_raw_face_locations_batched": "_raw_face_locations_batched",
    "test_raw_face_landmarks": "_raw_face_landmarks",
}
"""The suite's tests of private functions returning dlib objects, and the function each calls."""

PUBLIC = [
    "test_load_image_file",
    "test_load_image_file_32bit",
    "test_face_locations",
    "test_cnn_face_locations",
    "test_partial_face_locations",
    "test_batched_face_locations",
    "test_face_landmarks",
    "test_face_landmarks_small_model",
    "test_face_encodings",
    "test_face_encodings_large_model",
    "test_face_distance",
    "test_face_distance_empty_lists",
    "test_compare_faces",
    "test_compare_faces_empty_lists",
    "test_command_line_interface_options",
    "test_command_line_interface",
    "test_command_line_interface_big_image",
    "test_command_line_interface_tolerance",
    "test_command_line_interface_show_distance",
    "test_fd_command_line_interface_options",
    "test_fd_command_line_interface",
    "test_fd_command_line_interface_folder",
    "test_fd_command_line_interface_hog_model",
    "test_fd_command_line_interface_cnn_model",
]
"""Every other test of the suite: each must pass."""

SUITE_CLASS = "Test_face_recognition"

pytestmark = pytest.mark.slow


def _load(path: Path) -> ModuleType:
    name = "face_recognition_1_3_0_suite"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run(path: Path, test: str) -> unittest.TestResult:
    """Run one of the suite's tests; its result."""
    case = getattr(_load(path), SUITE_CLASS)(test)
    result = unittest.TestResult()
    case.run(result)
    return result


def _problems(result: unittest.TestResult) -> str:
    return "\n".join(trace for _, trace in result.failures + result.errors)


def test_the_suite_is_face_recognition_s_with_only_its_imports_changed(
    face_recognition_suite: Path,
) -> None:
    original = (face_recognition_suite.parent / "original_test_face_recognition.py").read_text()
    assert "from face_recognition import api" in original
    assert face_recognition_suite.read_text() == rewritten(original)
    changed = [
        (before, after)
        for before, after in zip(
            original.splitlines(), face_recognition_suite.read_text().splitlines(), strict=True
        )
        if before != after
    ]
    assert [after for _, after in changed] == [
        "from oneeye.compat import api",
        "from oneeye.compat import face_recognition_cli",
        "from oneeye.compat import face_detection_cli",
    ]


def test_every_test_of_the_suite_is_run_here(face_recognition_suite: Path) -> None:
    suite = unittest.TestLoader().getTestCaseNames(
        getattr(_load(face_recognition_suite), SUITE_CLASS)
    )
    assert sorted(suite) == sorted([*PUBLIC, *PRIVATE_DLIB_OBJECTS])


@pytest.mark.parametrize("test", PUBLIC)
def test_face_recognition_s_own_test_passes(face_recognition_suite: Path, test: str) -> None:
    result = _run(face_recognition_suite, test)
    assert result.wasSuccessful(), _problems(result)
    assert result.testsRun == 1


@pytest.mark.parametrize(("test", "private"), PRIVATE_DLIB_OBJECTS.items())
def test_a_test_of_a_private_dlib_object_fails_for_that_reason_only(
    face_recognition_suite: Path, test: str, private: str
) -> None:
    result = _run(face_recognition_suite, test)
    assert not result.failures
    assert len(result.errors) == 1
    trace = result.errors[0][1]
    assert f"AttributeError: module 'oneeye.compat.api' has no attribute '{private}'" in trace
