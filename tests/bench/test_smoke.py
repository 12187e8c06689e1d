"""Every benchmark that can run small does, so none rots between the runs that fill
BENCHMARKS.md: each is started as its users start it (``python bench/NAME.py --smoke``).

Not here: ``edge_faults.py --faults``: even shortened (``--smoke --faults``) it takes about
50 s, two server starts and 13 s of deliberate waiting. What it found (sightings dropped after a
broker restart) is tested in ``tests/test_edge.py`` on a broker of the test's own.
``gallery_scale.py --smoke`` runs in ``test_gallery_scale.py``. ``gallery_ivf_headtohead.py``
is skipped in a checkout without the git history holding the home-made index, and
``compat_examples.py`` and ``video_throughput.py`` without face_recognition (their reference;
``scripts/test.sh`` installs it). The edge benchmarks need the test broker and PostgreSQL, as
the other ``mqtt`` and ``postgres`` tests do. :func:`test_every_benchmark_has_a_smoke_run`
keeps the list whole.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    assert re.search(r"openvino (int8|bf16|f32) rounding on 1 images", out)


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
            "video_accuracy.py --conditions normal --play live",
            ["normal     off live  "],
            id="video_accuracy_live",
        ),
        pytest.param(
            "video_feedback.py",
            ["recall_named", "templates from sightings     1"],
            id="video_feedback",
        ),
        pytest.param("video_cameras.py", ["1 camera(s): total"], id="video_cameras"),
        pytest.param(
            "mmod_crops.py",
            [
                "(shipped) [",
                "32 shapes kept",
                "(before)",
                "onnxruntime float32, steps of 16 px [f32]:",
                "ms CPU a look",
            ],
            id="mmod_crops",
        ),
        pytest.param(
            "video_cameras.py --paced --detectors auto --scan-behind on,off",
            [
                "auto paced: 1 camera(s): total",
                "most dropped",
                "frames behind",
                "ms per second of video",
                "auto paced, no scan behind: 1 camera(s)",
            ],
            id="video_cameras_paced",
        ),
        pytest.param("alert_latency.py", ["missing: identified"], id="alert_latency"),
        pytest.param(
            "alert_delivery.py",
            ["(b) outage", "'delivered': 2, 'duplicated': 0, 'lost': 0", "left as it was"],
            id="alert_delivery",
        ),
        pytest.param(
            "arrival_latency.py",
            [
                "enrolled 2 customers",
                "2 WebSocket clients connected",
                '"arrivals": 2,',
                '"wrong_arrivals": 0,',
                '"arrivals_delivered_to_every_client": 4,',
            ],
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
@pytest.mark.slow
def test_cluster_failover(broker_url: str, postgres_url: str) -> None:
    # Three server starts and two edges: about a minute on a busy two-core machine.
    out = run_bench(
        "cluster_failover.py", "--smoke", "--broker", broker_url, "--postgres", POSTGRES_URL
    )
    assert '"lost": 0' in out
    assert '"enrolments_through": {\n    "A": 1,\n    "B": 3' in out
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


def test_gallery_watchlists(tmp_path: Path) -> None:
    output = tmp_path / "watchlists.json"
    out = json.loads(run_bench("gallery_watchlists.py", "--smoke", "--output", str(output)))
    assert json.loads(output.read_text()) == out
    assert (out["size"], out["turns"], out["smoke"]) == (2000, 3, True)
    galleries = {"one-watchlist", "two-watchlists", "forced"}
    for figure in ("identify_ms_median", "identify_batch20_ms_median"):
        assert set(out[figure]) == galleries
        assert all(0 < milliseconds < 10_000 for milliseconds in out[figure].values())


SPEED_LOOPS = ("face_recognition", "original", "oneeye_1_thread", "oneeye_2_thread")


def check_speed(figures: dict[str, Any], loop: str, frames: int, stride: int) -> None:
    """A loop's speed figures are there and could be true of ``frames`` frames (the references
    see fewer: the original's loop every other one, face_recognition's every ``stride``-th,
    --smoke's ``--reference-stride``)."""
    row = figures[loop]
    seen = {"face_recognition": -(-frames // stride), "original": (frames + 1) // 2}
    expected = seen.get(loop, frames)
    assert row["frames"] == expected, (loop, row)
    assert 0 < row["frames_per_second"] < 10_000, (loop, row)
    assert 0 < row["cores_used"] <= (os.cpu_count() or 1) + 0.5, (loop, row)
    assert row["ratio_vs_face_recognition"] > 0, (loop, row)


@pytest.mark.slow
def test_video_throughput(tiny_lfw: Path, tmp_path: Path) -> None:
    """Every loop on a small clip, which stands in for the street video too."""
    if importlib.util.find_spec("face_recognition") is None:
        pytest.skip("face_recognition (the benchmark's reference) is not installed")
    images = str(tiny_lfw / "images")
    out = run_bench("video_throughput.py", "--smoke", "--lfw", images, "--results", str(tmp_path))
    assert "bench/results left as it was" in out
    assert "dlib's CNN's people" in out
    results = json.loads((tmp_path / "video_throughput.json").read_text())
    assert results["smoke"] is True
    stride = results["reference_stride"]
    assert stride > 1
    assert set(results["inputs"]) == {"street_smoke", "labelled_smoke"}
    street, clip = results["inputs"]["street_smoke"], results["inputs"]["labelled_smoke"]

    # The street path: the clip written out and decoded again, every frame.
    assert street["size"] == clip["size"] == [480, 360]
    assert street["frames"] == clip["frames"] > 10
    for loop in (*SPEED_LOOPS, "oneeye_auto_1_thread"):
        check_speed(street, loop, street["frames"], stride)
    people = street["face_recognition"]["people"]
    assert people >= 1, street  # the clip's faces are 100 px: face_recognition finds them
    assert street["face_recognition"]["found"] == people  # its own people, by definition
    for loop in ("oneeye_1_thread", "oneeye_auto_1_thread", "oneeye_2_thread"):
        row = street[loop]
        assert row["people"] == people
        assert row["sighted"] <= row["tracked"] <= people, (loop, row)
        assert row["sighted"] >= 1, (loop, row)
        assert len(row["sighting_after_reference_s"]) == row["sighted"]
        # The clip's true boxes stand in for dlib's CNN: each walk in view 1 s is a person.
        cnn = row["cnn_people"]
        assert cnn["people"] == clip["oneeye_1_thread"]["visits"], (loop, cnn)
        assert 1 <= cnn["sighted"] <= cnn["people"], (loop, cnn)
    assert street["cnn_reference_frames"] == street["frames"]
    assert street["oneeye_auto_1_thread"]["whole_scans"] >= 1

    # The labelled path: one enrolled person and one stranger walk through.
    for loop in SPEED_LOOPS:
        check_speed(clip, loop, clip["frames"], stride)
    assert clip["reference_enrolled"] == 1
    for loop in (*SPEED_LOOPS, "face_recognition_open_set"):
        row = clip[loop]
        assert (row["visits"], row["visits_enrolled"]) == (2, 1), (loop, row)
        # The original's loop looks at a quarter of the size: 25 px faces, too small for HOG.
        least = 0 if loop == "original" else 1
        assert least <= row["found"] <= row["visits"], (loop, row)
        assert row["named"] <= row["visits_enrolled"], (loop, row)
    assert clip["oneeye_1_thread"]["named"] == 1, clip["oneeye_1_thread"]
    for picture in ("video_throughput.png", "video_throughput_turned.png"):
        assert (tmp_path / picture).stat().st_size > 1000


def test_every_benchmark_has_a_smoke_run() -> None:
    """Each ``bench/*.py`` is started by a test here (by its file name, as a string)."""
    tests = " ".join(path.read_text() for path in (REPO / "tests" / "bench").glob("test_*.py"))
    scripts = sorted(p.name for p in (REPO / "bench").glob("*.py") if p.name != "__init__.py")
    assert len(scripts) > 20
    missing = [name for name in scripts if f'"{name}"' not in tests]
    assert not missing, f"benchmarks without a smoke run in tests/bench: {missing}"
