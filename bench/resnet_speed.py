"""Speed of dlib's face descriptor against OneEye's re-implementation, backend by backend.

Measures ms per 150x150 chip for dlib's ``compute_face_descriptor`` and for every
``ResNetEmbedder`` backend that loads, at batch 1 and batch 16, with one and with two threads,
all on the same chips in the same run, and checks that each backend's descriptors equal
dlib's. Each thread count runs in its own process, because BLAS (the numpy backend) reads
its thread count from the environment when it starts.

Usage:
    python bench/resnet_speed.py [--images DIR] [--repeats N] [--threads 1 2] [--smoke]

With ``--images`` the chips are the faces found in the photos of DIR (HOG detector, 5-point
landmarks, ``get_face_chip(size=150, padding=0.25)``); without, synthetic chips. Results go
to ``bench/results/resnet_speed.json``. ``--smoke`` runs one round of 2 chips at one thread and
writes nothing (the test suite runs it so the script keeps working).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BATCH = 16
RESULTS = Path(__file__).resolve().parent / "results" / "resnet_speed.json"

Chips = npt.NDArray[np.uint8]


def synthetic_chips(count: int) -> Chips:
    """Noise chips: dlib's and our cost do not depend on what the pixels show."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, 150, 150, 3), dtype=np.uint8)


def face_chips(folder: Path, count: int) -> tuple[Chips, list[str]]:
    """Aligned chips of the faces found in the photos of ``folder``, repeated up to ``count``."""
    import dlib  # noqa: PLC0415 - only the worker process needs dlib
    from PIL import Image  # noqa: PLC0415

    from oneeye.vision.models import ModelPaths  # noqa: PLC0415

    paths = ModelPaths.locate()
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(paths.landmarks_5))
    chips: list[Chips] = []
    names: list[str] = []
    for photo in sorted(folder.iterdir()):
        try:
            image = np.asarray(Image.open(photo).convert("RGB"))
        except OSError:
            continue
        for i, box in enumerate(detector(image, 1)):
            shape = landmarks(image, box)
            chips.append(np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
            names.append(f"{photo.name}#{i}")
    if not chips:
        raise SystemExit(f"no faces found in {folder}")
    faces = np.stack(chips)
    return np.resize(faces, (count, *faces.shape[1:])), names


def time_per_chip(run: Callable[[Chips], object], chips: Chips, batch: int, repeats: int) -> float:
    """Median over ``repeats`` rounds of the ms per chip to run all chips in batches."""
    run(chips[:batch])  # warm-up: first-call allocations and lazy initialisation
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(chips), batch):
            run(chips[i : i + batch])
        rounds.append((time.perf_counter() - start) / len(chips) * 1e3)
    return statistics.median(rounds)


def worker(threads: int, images: Path | None, repeats: int, batch: int = BATCH) -> dict[str, Any]:
    """Measure dlib and every backend at one thread count (this process's BLAS setting), on
    ``batch`` chips, one at a time and all at once."""
    import dlib  # noqa: PLC0415

    from oneeye.vision.models import ModelPaths  # noqa: PLC0415
    from oneeye.vision.resnet import BACKENDS, ResNetEmbedder  # noqa: PLC0415

    if images is None:
        chips, names = synthetic_chips(batch), ["noise"]
    else:
        chips, names = face_chips(images, batch)
    model = ModelPaths.locate().resnet
    recognizer = dlib.face_recognition_model_v1(str(model))

    def dlib_run(batch: Chips) -> object:
        if len(batch) == 1:
            return recognizer.compute_face_descriptor(batch[0])
        return recognizer.compute_face_descriptor(list(batch))

    reference = np.array([np.array(recognizer.compute_face_descriptor(c)) for c in chips])
    result: dict[str, Any] = {
        "threads": threads,
        "chips": names,
        "dlib": {f"batch_{b}_ms": time_per_chip(dlib_run, chips, b, repeats) for b in (1, batch)},
    }
    for backend in BACKENDS:
        try:
            embedder = ResNetEmbedder(model, backend, num_threads=threads)
        except Exception as exc:  # a backend that does not load is reported, not fatal
            result[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        diff = float(np.abs(embedder.embed(chips) - reference).max())
        timings = {
            f"batch_{b}_ms": time_per_chip(embedder.embed, chips, b, repeats) for b in (1, batch)
        }
        speedup = {
            f"batch_{b}_speedup": result["dlib"][f"batch_{b}_ms"] / timings[f"batch_{b}_ms"]
            for b in (1, batch)
        }
        result[backend] = {"max_abs_diff_vs_dlib": diff, **timings, **speedup}
    return result


def versions() -> dict[str, str]:
    """Versions of what is measured."""
    import cv2  # noqa: PLC0415
    import dlib  # noqa: PLC0415

    found = {"numpy": np.__version__, "dlib": dlib.__version__, "opencv": cv2.__version__}
    try:
        found["onnxruntime"] = str(importlib.import_module("onnxruntime").__version__)
    except ImportError:
        found["onnxruntime"] = "not installed"
    return found


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    """Run one worker per thread count, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of face photos to take chips from")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--smoke", action="store_true", help="one quick round; writes nothing")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.threads, args.batch = 1, [1], 2

    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.images, args.repeats, args.batch)))
        return

    load_before = os.getloadavg()
    runs = []
    for threads in args.threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        command = [
            sys.executable,
            __file__,
            "--worker",
            str(threads),
            "--repeats",
            str(args.repeats),
            "--batch",
            str(args.batch),
        ]
        if args.images is not None:
            command += ["--images", str(args.images)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))

    big = args.batch
    header = ("threads", "backend", "batch 1", f"batch {big}", f"x dlib 1/{big}", "max diff")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 12, 9, 9, 11, 9), strict=True)))
    for run in runs:
        for name in ("dlib", "onnxruntime", "opencv", "numpy"):
            row = run.get(name)
            if row is None:
                continue
            if "error" in row:
                print(f"{run['threads']:>7} {name:>12}  {row['error']}")
                continue
            ratio = (
                f"{row['batch_1_speedup']:4.1f}/{row[f'batch_{big}_speedup']:4.1f}"
                if "batch_1_speedup" in row
                else ""
            )
            diff = f"{row['max_abs_diff_vs_dlib']:.1e}" if "max_abs_diff_vs_dlib" in row else ""
            print(
                f"{run['threads']:>7} {name:>12} {row['batch_1_ms']:7.1f}ms "
                f"{row[f'batch_{big}_ms']:7.1f}ms {ratio:>11} {diff:>9}"
            )

    if args.smoke:
        print(f"smoke run: {RESULTS} left as it was")
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "what": "ms per 150x150 chip: dlib compute_face_descriptor vs oneeye ResNetEmbedder",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_before_after": [load_before, os.getloadavg()],
        "chips": "synthetic noise" if args.images is None else str(args.images),
        "versions": versions(),
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
