"""Every benchmark that can run small does, so none rots between the runs that fill
BENCHMARKS.md: each is started as its users start it (``python bench/NAME.py --smoke``).

Not here: ``video_throughput.py`` (its reference loops need face_recognition, not a test
dependency; ``compat_examples.py``, which needs it too, is skipped without it),
``edge_faults.py --faults`` (its pauses take minutes) and ``gallery_ivf_headtohead.py`` (it
loads the home-made index from git history). ``gallery_scale.py --smoke`` runs in
``test_gallery_scale.py``. The edge benchmarks need the test broker and PostgreSQL, as the other
``mqtt`` and ``postgres`` tests do.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL

REPO = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> str:
    """Run ``bench/<script>`` from the repository root; its stdout (fails on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_cnn_reference(tmp_path: Path) -> None:
    out = run_bench("cnn_reference.py", "smoke", "--out", str(tmp_path / "ref.json"))
    assert "1 inputs, 0 faces" in out
    assert (tmp_path / "ref.json").exists()


def test_gallery_ivf_headtohead() -> None:
    """Needs the git history holding the home-made index (a clone has it; an exported tree
    does not, and then there is nothing to compare faiss with)."""
    held = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", "8203e8c^{commit}"],
        capture_output=True,
        check=False,
    )
    if held.returncode != 0:
        pytest.skip("this checkout has no git history with the home-made index (8203e8c)")
    out = run_bench("gallery_ivf_headtohead.py", "--smoke")
    assert '"homemade_over_faiss"' in out
    assert "bench/results left as it was" in out


def test_mmod_equivalence() -> None:
    out = run_bench("mmod_equivalence.py", "--smoke")
    assert "smoke: 1 images" in out
    assert "0 missing, 0 extra" in out


def test_camera_registry() -> None:
    out = run_bench("camera_registry.py", "--smoke")
    assert "us/check" in out


@pytest.mark.slow
def test_resnet_speed() -> None:
    out = run_bench("resnet_speed.py", "--smoke")
    assert "dlib" in out
    assert "left as it was" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("video_accuracy.py", ["recall_named"], id="video_accuracy"),
        pytest.param(
            "video_accuracy.py --conditions dark,turned --light off,lift",
            ["dark       lift", "turned     off"],
            id="video_accuracy_conditions",
        ),
        pytest.param(
            "video_feedback.py",
            ["recall_named", "templates from sightings     1"],
            id="video_feedback",
        ),
        pytest.param("video_cameras.py", ["1 camera(s): total"], id="video_cameras"),
        pytest.param("alert_latency.py", ["missing: identified"], id="alert_latency"),
        pytest.param("alert_delivery.py", ["(b) outage", "left as it was"], id="alert_delivery"),
        pytest.param(
            "arrival_latency.py",
            ["enrolled 2 customers", "2 WebSocket clients connected"],
            id="arrival_latency",
        ),
    ],
)
def test_benchmark_on_lfw_images(tiny_lfw: Path, script: str, expected: list[str]) -> None:
    """The benchmarks that read faces from a folder of LFW images (``--lfw``)."""
    name, *options = script.split()
    out = run_bench(name, *options, "--smoke", "--lfw", str(tiny_lfw / "images"))
    for text in expected:
        assert text in out


@pytest.mark.slow
def test_lfw(tiny_lfw: Path) -> None:
    out = run_bench("lfw.py", "--smoke", "--data", str(tiny_lfw))
    assert "LFW verification" in out
    assert "a site with 2 enrolled" in " ".join(out.split())


@pytest.mark.slow
def test_lfw_open_set_study(tiny_lfw: Path) -> None:
    out = run_bench("lfw_open_set_study.py", "--smoke", "--data", str(tiny_lfw))
    assert "LFW open-set, all 4 gallery people" in " ".join(out.split())
    assert "enrolment jitter 8+8" in out


@pytest.mark.mqtt
@pytest.mark.postgres
def test_edge_propagation(broker_url: str, postgres_url: str) -> None:
    # postgres_url: PostgreSQL answers (the script makes a schema of its own in it).
    out = run_bench(
        "edge_propagation.py", "--smoke", "--broker", broker_url, "--postgres", POSTGRES_URL
    )
    assert '"edges": 1, "enrolments": 2' in out
    assert "left as it was" in out


@pytest.mark.mqtt
@pytest.mark.postgres
def test_edge_faults_throughput(broker_url: str, postgres_url: str) -> None:
    # The script runs a Mosquitto of its own; broker_url only says one can run here.
    out = run_bench("edge_faults.py", "--smoke", "--postgres", POSTGRES_URL)
    assert '"generated": 20' in out
    assert "nothing written" in out


def test_lfw_calibration() -> None:
    out = " ".join(run_bench("lfw_calibration.py", "--smoke").split())
    assert "chosen on the choosing half" in out
    assert "Site calibration" in out
    assert "smoke run done" in out


def test_library_pages() -> None:
    out = run_bench("library_pages.py", "--smoke")
    assert "enrolled 200 customers" in out
    assert "search by account id" in out


def test_history_page() -> None:
    out = run_bench("history_page.py", "--smoke")
    assert "filled 2000 sightings" in out
    assert "CSV export, 10,000 rows" in out
    assert "nothing written" in out


@pytest.mark.slow
def test_compat_examples(face_photos: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("face_recognition") is None:
        pytest.skip("face_recognition (the benchmark's reference) is not installed")
    out = run_bench(
        "compat_examples.py",
        "--smoke",
        "--faces",
        str(face_photos),
        "--out",
        str(tmp_path / "c.json"),
    )
    for example in ("find faces", "identify", "video loop"):
        line = next(row for row in out.splitlines() if row.startswith(example))
        assert " yes (" in line, out
    assert (tmp_path / "c.png").exists()
