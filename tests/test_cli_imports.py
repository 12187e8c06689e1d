"""``oneeye --help`` and each command's ``--help`` import nothing heavy (no models, no ORM,
no web framework), so the command answers at once; ``python -m oneeye.cli`` still runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from oneeye.cli import main
from oneeye.cli.watch import CNN_MS_PER_S, SCAN_EVERY
from oneeye.video.pipeline_io import PipelineSettings

HEAVY = ("numpy", "dlib", "onnxruntime", "sqlalchemy", "fastapi", "cv2", "uvicorn")

LOADED_AFTER = """
import json, sys
from oneeye.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def _run_in_a_fresh_python(*argvs: list[str]) -> dict[str, list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, json.dumps(argvs), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def test_oneeye_help_imports_nothing_heavy() -> None:
    result = _run_in_a_fresh_python(["--help"])
    assert result == {"codes": [0], "heavy": []}


@pytest.mark.parametrize(
    "command",
    [
        ["enroll"], ["identify"], ["watch"], ["serve"], ["edge"], ["users"], ["compat"],
        ["compat", "face_recognition"], ["compat", "face_detection"],
    ],
    ids=" ".join,
)  # fmt: skip
def test_a_command_s_help_imports_nothing_heavy(command: list[str]) -> None:
    result = _run_in_a_fresh_python([*command, "--help"])
    assert result == {"codes": [0], "heavy": []}


def test_the_module_runs_as_the_oneeye_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "oneeye.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: oneeye")
    assert {"enroll", "identify", "watch", "serve", "edge", "users", "compat"} <= {
        line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()
    }


def test_watch_help_shows_the_pipeline_s_own_scan_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert PipelineSettings().scan_every == SCAN_EVERY
    assert main(["watch", "--help"]) == 0
    scan_every = capsys.readouterr().out.split("--scan-every")[1].split("--detect-threads")[0]
    assert f"[default: {SCAN_EVERY};" in " ".join(scan_every.split())


def test_watch_help_shows_the_pipeline_s_own_cnn_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert PipelineSettings().cnn_ms_per_s == CNN_MS_PER_S
    assert main(["watch", "--help"]) == 0
    budget = capsys.readouterr().out.split("--cnn-ms-per-s FLOAT")[1].split("--cooldown")[0]
    assert f"[default: {CNN_MS_PER_S}" in " ".join(budget.split())


def test_the_enrolment_step_the_cli_uses_needs_no_database_or_web() -> None:
    """``oneeye enroll`` and ``identify`` import ``services.enrolment_photo``, not
    ``services.enrolment``: the ORM and the web framework stay unloaded."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; import oneeye.services.enrolment_photo; "
            "print(json.dumps([m for m in ('sqlalchemy', 'fastapi') if m in sys.modules]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
