"""The machine's busy share of its cores, read from ``/proc/stat`` (a file written here, and
the real one)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from oneeye.video import cores as cores_module
from oneeye.video.cores import CoreLoad


def write_stat(path: Path, user: int, nice: int, system: int, idle: int, iowait: int) -> None:
    path.write_text(
        f"cpu  {user} {nice} {system} {idle} {iowait} 0 0 0 0 0\n"
        f"cpu0 {user} {nice} {system} {idle} {iowait} 0 0 0 0 0\nintr 1 2 3\n"
    )


def test_the_busy_share_counts_low_priority_work_and_not_waiting_for_disks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cores_module, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(cores_module, "SMOOTH_SECONDS", 1e-9)  # no smoothing: each reading
    stat = tmp_path / "stat"
    load = CoreLoad(stat)
    write_stat(stat, 100, 0, 0, 100, 0)
    assert load.busy_share() is None  # one reading: nothing to compare yet
    write_stat(stat, 150, 30, 20, 200, 0)  # +100 busy (user, nice, system), +100 idle
    assert load.busy_share() == pytest.approx(0.5)
    write_stat(stat, 150, 30, 20, 260, 40)  # +60 idle, +40 waiting for disks: all idle
    assert load.busy_share() == pytest.approx(0.0)


def test_readings_are_smoothed_and_not_read_too_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stat = tmp_path / "stat"
    load = CoreLoad(stat)
    monkeypatch.setattr(cores_module, "SAMPLE_SECONDS", 0.0)
    write_stat(stat, 0, 0, 0, 0, 0)
    load.busy_share()
    write_stat(stat, 100, 0, 0, 0, 0)
    assert load.busy_share() == pytest.approx(1.0)
    write_stat(stat, 100, 0, 0, 100, 0)  # all idle since, a moment later: barely moves
    share = load.busy_share()
    assert share is not None
    assert 0.9 < share < 1.0
    monkeypatch.setattr(cores_module, "SAMPLE_SECONDS", 60.0)
    write_stat(stat, 100, 0, 0, 10_000, 0)
    assert load.busy_share() == share  # read again only after SAMPLE_SECONDS


def test_an_unreadable_stat_is_unknown(tmp_path: Path) -> None:
    assert CoreLoad(tmp_path / "missing").busy_share() is None
    garbled = tmp_path / "garbled"
    garbled.write_text("not a stat file\n")
    assert CoreLoad(garbled).busy_share() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_the_real_cores_get_busier_with_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores_module, "SAMPLE_SECONDS", 0.05)
    monkeypatch.setattr(cores_module, "SMOOTH_SECONDS", 0.05)
    load = CoreLoad()
    load.busy_share()
    time.sleep(0.3)
    before = load.busy_share()
    assert before is not None
    assert 0.0 <= before <= 1.0
    stop = threading.Event()
    a = np.random.default_rng(0).random((400, 400))

    def burn() -> None:
        while not stop.is_set():
            a @ a  # BLAS releases the GIL: both cores busy

    workers = [threading.Thread(target=burn) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        during = load.busy_share()
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert during is not None
    assert during > 0.6, (before, during)
