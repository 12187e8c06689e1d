"""bench/gallery_scale.py --smoke: every path of the gallery benchmark runs, on a tiny gallery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_times_every_index_and_checks_accuracy(tmp_path: Path) -> None:
    output = tmp_path / "gallery_scale.json"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gallery_scale.py"), "--smoke", "--output", output],
        check=True,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        timeout=120,
    )
    document = json.loads(output.read_text())
    assert document["settings"]["smoke"] is True
    [result] = document["results"]
    assert result["templates"] == 3000
    assert result["top1_agrees_with_reference"] == "4/4"
    assert result["batch20_ms"]["runs"] == 2
    approximate = result["ivf"]
    assert approximate["parameters"]["lists"] > 0
    assert approximate["accuracy"]["members"]["probes"] == 20
    # The faiss comparison ran (faiss-cpu is a dependency): both its indexes, timed and scored.
    faiss = result["faiss"]
    assert set(faiss["batch20_ms"]) == {"faiss_flat", "faiss_ivf"}
    recall = faiss["recall_at_1_vs_exact"]["members"]
    assert recall["faiss_flat"] == 1.0
    assert set(recall) == {"oneeye_ivf", "faiss_flat", "faiss_ivf"}
    assert faiss["ratios"]["exact_vs_flat_batch20"] > 0
