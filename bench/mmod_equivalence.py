"""OneEye's MMOD detector (``"cnn"``, ``oneeye.vision.mmod``) against dlib's own
``cnn_face_detection_model_v1``: the same boxes, and how much faster (issue 13, section 1).

    python bench/mmod_equivalence.py [--lfw ../shared/data/lfw] [--count 500]
        [--video ../shared/data/video/street_1080p.mp4] [--frames 30]
        [--reference bench/results] [--speed] [--picture]
    python bench/mmod_equivalence.py --smoke

Boxes: dlib's answers are read from ``cnn_reference_lfw.json`` and ``cnn_reference_street.json``
(``bench/cnn_reference.py``: 500 LFW images upsampled once, street frames at 1080p not
upsampled); OneEye's detector runs on the same pixels (LFW decoded by dlib as there, frames by
OpenCV) and each dlib box is matched to OneEye's best overlapping one (IoU over the union,
pixels counted inclusively). A dlib box without a match is *missing*, one of OneEye's without
a dlib box *extra*; each is listed with both sides' scores (for a missing one, OneEye's score
at that place is looked up with the threshold lowered to -1; dlib's score of an extra one is
not in the reference, only that it is at most 0).

Speed (``--speed``): dlib and OneEye (one thread) take turns on the same inputs in the same
process: 3 LFW images upsampled once and 2 street frames shrunk to 640x360, CPU seconds
(``time.process_time``) so that the machine's other load counts less. Then OneEye's cost per
megapixel of input at upsample 0 on a 1080p and a 720p frame, one thread and two (wall time,
best of 3), for planning a camera's CNN budget.

Everything is printed and written to ``bench/results/mmod_equivalence.json``;
``--picture`` also draws street frame 0 with both detectors' boxes
(``bench/results/mmod_street_boxes.png``). ``--smoke`` runs both detectors on one small
synthetic image and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import numpy.typing as npt
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oneeye.vision.mmod import Box, MmodDetector  # noqa: E402
from oneeye.vision.mmod.pyramid import tiled_layout, tiled_pyramid  # noqa: E402
from oneeye.vision.mmod.pyramid import upsample as upsample_image  # noqa: E402
from oneeye.vision.mmod.runtimes import OnnxRuntimeScores  # noqa: E402
from oneeye.vision.models import ModelPaths  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IOU_TARGET = 0.95
Image = npt.NDArray[np.uint8]
RefBox = list[float]  # [left, top, right, bottom, score]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two inclusive ``[left, top, right, bottom, ...]`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0
    inner = width * height
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inner / (area_a + area_b - inner))


def as_list(box: Box) -> RefBox:
    """A box as the reference files write one."""
    return [box.left, box.top, box.right, box.bottom, round(box.score, 6)]


def compare(
    name: str,
    image: Image,
    reference: list[RefBox],
    detector: MmodDetector,
    upsample: int,
) -> dict[str, Any]:
    """OneEye's boxes on one image against dlib's, matched greedily by IoU.

    Returns:
        ``ious`` of the matched pairs, their score differences, and the missing and extra
        boxes with both sides' scores.
    """
    mine = [as_list(b) for b in detector.detect(image, upsample)]
    pairs = sorted(
        ((iou(r, m), i, j) for i, r in enumerate(reference) for j, m in enumerate(mine)),
        reverse=True,
    )
    used_ref: set[int] = set()
    used_mine: set[int] = set()
    ious: list[float] = []
    score_diffs: list[float] = []
    low: list[dict[str, Any]] = []
    for overlap, i, j in pairs:
        if overlap <= 0 or i in used_ref or j in used_mine:
            continue
        used_ref.add(i)
        used_mine.add(j)
        ious.append(overlap)
        score_diffs.append(abs(reference[i][4] - mine[j][4]))
        if overlap < IOU_TARGET:
            low.append(
                {"image": name, "iou": round(overlap, 4), "dlib": reference[i], "oneeye": mine[j]}
            )
    missing = []
    lowered: list[RefBox] | None = None
    for i, ref in enumerate(reference):
        if i in used_ref:
            continue
        if lowered is None:
            lowered = [as_list(b) for b in detector.detect(image, upsample, -1.0)]
        near = max(lowered, key=lambda m: iou(ref, m), default=None)
        ours = near[4] if near is not None and iou(ref, near) > 0.5 else None
        missing.append({"image": name, "box": ref[:4], "dlib": ref[4], "oneeye": ours})
    extra = [
        {"image": name, "box": m[:4], "oneeye": m[4], "dlib": "<= 0 (not reported)"}
        for j, m in enumerate(mine)
        if j not in used_mine
    ]
    return {
        "ious": ious,
        "score_diffs": score_diffs,
        "low_iou": low,
        "missing": missing,
        "extra": extra,
    }


def summarise(what: str, rows: list[dict[str, Any]], images: int) -> dict[str, Any]:
    """The figures of one input set."""
    ious = [x for r in rows for x in r["ious"]]
    diffs = [x for r in rows for x in r["score_diffs"]]
    missing = [x for r in rows for x in r["missing"]]
    extra = [x for r in rows for x in r["extra"]]
    low = [x for r in rows for x in r["low_iou"]]
    dlib_boxes = len(ious) + len(missing)
    good = sum(x >= IOU_TARGET for x in ious)
    return {
        "what": what,
        "images": images,
        "dlib_boxes": dlib_boxes,
        "matched": len(ious),
        "iou_at_least_0.95": good,
        "share_iou_at_least_0.95": good / dlib_boxes if dlib_boxes else 1.0,
        "min_iou": min(ious, default=None),
        "identical_boxes": sum(x == 1.0 for x in ious),
        "max_score_diff": max(diffs, default=None),
        "low_iou": low,
        "missing": missing,
        "extra": extra,
    }


def print_summary(s: dict[str, Any]) -> None:
    """One input set's figures, then each missing or extra box."""
    print(
        f"{s['what']}: {s['images']} images, {s['dlib_boxes']} dlib boxes, "
        f"{s['iou_at_least_0.95']} with IoU >= {IOU_TARGET} "
        f"({100 * s['share_iou_at_least_0.95']:.2f}%), {s['identical_boxes']} identical, "
        f"min IoU {s['min_iou']}, max score difference {s['max_score_diff']}, "
        f"{len(s['missing'])} missing, {len(s['extra'])} extra"
    )
    for x in s["low_iou"]:
        print(f"  IoU {x['iou']} {x['image']}: dlib {x['dlib']}, oneeye {x['oneeye']}")
    for m in s["missing"]:
        print(f"  missing {m['image']} {m['box']}: dlib {m['dlib']}, oneeye {m['oneeye']}")
    for e in s["extra"]:
        print(f"  extra   {e['image']} {e['box']}: oneeye {e['oneeye']}, dlib {e['dlib']}")


def progress() -> Progress:
    """A progress bar for long loops."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


def lfw_image(lfw: Path, name: str) -> Image:
    """An LFW image decoded as ``bench/cnn_reference.py`` decodes it (dlib's loader)."""
    return np.asarray(dlib.load_rgb_image(str(lfw / "images" / name)))


def video_frames(video: Path, count: int) -> Iterator[tuple[str, Image]]:
    """The first ``count`` frames of a video in RGB, named as the reference names them."""
    capture = cv2.VideoCapture(str(video))
    try:
        for index in range(count):
            ok, bgr = capture.read()
            if not ok:
                return
            yield f"frame_{index:04d}", np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()


def run_lfw(args: argparse.Namespace, detector: MmodDetector) -> dict[str, Any]:
    """Equivalence on the LFW reference."""
    ref = json.loads((args.reference / "cnn_reference_lfw.json").read_text())
    items = list(ref["items"].items())[: args.count]
    rows = []
    with progress() as bar:
        task = bar.add_task("LFW", total=len(items))
        for name, item in items:
            image = lfw_image(args.lfw, name)
            rows.append(compare(name, image, item["detections"], detector, ref["upsample"]))
            bar.advance(task)
    return summarise(f"LFW (upsample {ref['upsample']})", rows, len(items))


def run_street(args: argparse.Namespace, detector: MmodDetector) -> dict[str, Any]:
    """Equivalence on the street video's reference frames."""
    ref = json.loads((args.reference / "cnn_reference_street.json").read_text())
    wanted = min(args.frames, len(ref["items"]))
    rows = []
    with progress() as bar:
        task = bar.add_task("street", total=wanted)
        for name, frame in video_frames(args.video, wanted):
            item = ref["items"][name]
            rows.append(compare(name, frame, item["detections"], detector, ref["upsample"]))
            bar.advance(task)
    return summarise(f"street 1080p (upsample {ref['upsample']})", rows, len(rows))


DLIB_TURNS = 2
"""Runs of dlib per input in the speed turns (OneEye's: 3); the best of them counts."""


def cpu_seconds(call: Any) -> float:
    """CPU seconds of this process spent in ``call()``."""
    start = time.process_time()
    call()
    return time.process_time() - start


def run_speed(args: argparse.Namespace, paths: ModelPaths) -> dict[str, Any]:
    """dlib and OneEye in turns on the same inputs, one thread; then cost per megapixel."""
    reference = dlib.cnn_face_detection_model_v1(str(paths.cnn_detector))
    one = MmodDetector(paths.cnn_detector, args.backend, num_threads=1)
    # float32 onnxruntime in the same turns, when the shipped backend is another one
    plain = (
        MmodDetector(paths.cnn_detector, "onnxruntime", num_threads=1)
        if one.backend != "onnxruntime"
        else None
    )
    # bfloat16 in the same turns, when the shipped precision is int8
    half = (
        MmodDetector(paths.cnn_detector, "openvino", num_threads=1, precision="bf16")
        if one.precision == "int8"
        else None
    )
    ref = json.loads((args.reference / "cnn_reference_lfw.json").read_text())
    inputs: list[tuple[str, Image, int]] = [
        (name, lfw_image(args.lfw, name), 1) for name in list(ref["items"])[:3]
    ]
    for name, frame in list(video_frames(args.video, 2)):
        small: Image = np.ascontiguousarray(
            cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
        inputs.append((f"{name} 640x360", small, 0))
    for warm in (one, plain, half):  # warm-up: the runtimes plan their kernels on the first run
        if warm is not None:
            warm.detect(inputs[0][1], 1)
    rows: list[dict[str, Any]] = []
    for name, image, upsample in inputs:
        # The best of 2 for dlib too (1.3-1.8 s a run): one slow run would flatter the ratio.
        dlib_s = min(
            cpu_seconds(lambda image=image, upsample=upsample: reference(image, upsample))
            for _ in range(DLIB_TURNS)
        )
        ours = min(
            cpu_seconds(lambda image=image, upsample=upsample: one.detect(image, upsample))
            for _ in range(3)
        )
        row = {
            "input": name,
            "size": f"{image.shape[1]}x{image.shape[0]}",
            "upsample": upsample,
            "dlib_cpu_s": round(dlib_s, 4),
            "oneeye_cpu_s": round(ours, 4),
            "speedup": round(dlib_s / ours, 1),
            "load_average": os.getloadavg()[0],
        }
        if plain is not None:
            fp32 = min(
                cpu_seconds(lambda image=image, upsample=upsample: plain.detect(image, upsample))
                for _ in range(3)
            )
            row |= {
                "onnxruntime_cpu_s": round(fp32, 4),
                "onnxruntime_speedup": round(dlib_s / fp32, 1),
            }
        if half is not None:
            bf16 = min(
                cpu_seconds(lambda image=image, upsample=upsample: half.detect(image, upsample))
                for _ in range(3)
            )
            row |= {"bf16_cpu_s": round(bf16, 4), "bf16_speedup": round(dlib_s / bf16, 1)}
        rows.append(row)
        print(
            f"  {name} ({row['size']}, upsample {upsample}): dlib {dlib_s:.3f} s, "
            f"oneeye ({one.backend} {one.precision}) {ours:.4f} s CPU: {dlib_s / ours:.1f}x"
            + (f"; onnxruntime {row['onnxruntime_cpu_s']:.4f} s" if plain else "")
            + (f"; bf16 {row['bf16_cpu_s']:.4f} s" if half else "")
            + f" (load {row['load_average']:.1f})"
        )
    total = sum(r["dlib_cpu_s"] for r in rows) / sum(r["oneeye_cpu_s"] for r in rows)
    print(
        f"speed: {total:.1f}x dlib's on one core over these inputs ({one.backend} {one.precision})"
    )
    out: dict[str, Any] = {
        "backend": one.backend,
        "precision": one.precision,
        "turns": rows,
        "speedup_total": round(total, 1),
    }
    if half is not None:
        bf16_total = sum(r["dlib_cpu_s"] for r in rows) / sum(r["bf16_cpu_s"] for r in rows)
        print(f"  OpenVINO bfloat16 in the same turns: {bf16_total:.1f}x")
        out["bf16_speedup_total"] = round(bf16_total, 1)
    if plain is not None:
        fp32_total = sum(r["dlib_cpu_s"] for r in rows) / sum(r["onnxruntime_cpu_s"] for r in rows)
        print(f"  onnxruntime float32 in the same turns: {fp32_total:.1f}x")
        out["onnxruntime_speedup_total"] = round(fp32_total, 1)
    return out | {"per_megapixel": per_megapixel(args)}


def per_megapixel(args: argparse.Namespace) -> list[dict[str, Any]]:
    """OneEye's milliseconds per megapixel of input at upsample 0, by size and threads: CPU
    (what a core budget needs) and wall (what a frame waits; meaningful on a quiet machine)."""
    ((_, frame),) = list(video_frames(args.video, 1))
    small: Image = np.asarray(
        cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    sizes: dict[str, Image] = {"1080p": frame, "720p": small}
    paths = ModelPaths.locate()
    rows = []
    for threads in (1, 2):
        detector = MmodDetector(paths.cnn_detector, args.backend, num_threads=threads)
        detector.detect(sizes["720p"], 0)
        for label, pixels in sizes.items():
            image = np.ascontiguousarray(pixels)
            wall, cpu = np.inf, np.inf
            for _ in range(3):
                start, start_cpu = time.perf_counter(), time.process_time()
                detector.detect(image, 0)
                wall = min(wall, time.perf_counter() - start)
                cpu = min(cpu, time.process_time() - start_cpu)
            mp = image.shape[0] * image.shape[1] / 1e6
            rows.append(
                {
                    "input": label,
                    "threads": threads,
                    "cpu_ms": round(1000 * cpu, 1),
                    "cpu_ms_per_mp": round(1000 * cpu / mp, 1),
                    "wall_ms": round(1000 * wall, 1),
                    "wall_ms_per_mp": round(1000 * wall / mp, 1),
                    "load_average": os.getloadavg()[0],
                }
            )
            print(
                f"  {label}, {threads} thread(s): {1000 * cpu / mp:.0f} CPU ms and "
                f"{1000 * wall / mp:.0f} wall ms per megapixel "
                f"(load {rows[-1]['load_average']:.1f})"
            )
    return rows


def rounding(args: argparse.Namespace, detector: MmodDetector) -> dict[str, Any]:
    """How far an approximate backend's raw scores are from float32's, on every cell of the
    first LFW images and street frames: what the backend's confirmation ``margin`` must cover."""
    if not detector._backend.approximate:
        return {}
    ref = json.loads((args.reference / "cnn_reference_lfw.json").read_text())
    images: list[tuple[Image, int]] = [
        (lfw_image(args.lfw, name), 1) for name in list(ref["items"])[: args.rounding]
    ]
    images += [(frame, 0) for _, frame in video_frames(args.video, max(1, args.rounding // 10))]
    return rounding_on(detector, images)


def rounding_on(detector: MmodDetector, images: list[tuple[Image, int]]) -> dict[str, Any]:
    """``rounding`` on the given images (each with its upsampling); printed."""
    exact = OnnxRuntimeScores(detector.model, 1)
    margin = detector._backend.margin
    worst, worst_near, near_cells, cells, under = 0.0, 0.0, 0, 0, 0.0
    for image, upsample in images:
        work = image
        for _ in range(upsample):
            work = upsample_image(work)
        pyramid = detector.model.input
        layout = tiled_layout(work.shape[0], work.shape[1], pyramid.padding, pyramid.outer_padding)
        tensor = tiled_pyramid(work, pyramid.means, layout)
        fast = detector._backend.run(tensor)
        true = exact.run(tensor)
        diff = np.abs(fast - true)
        near = true > -margin  # the cells that could pass the threshold
        worst = max(worst, float(diff.max()))
        worst_near = max(worst_near, float(diff[near].max(initial=0.0)))
        near_cells += int(near.sum())
        # What the margin must cover: how far below a passing cell's exact score its fast one fell.
        under = max(under, float((true - fast)[true > 0.0].max(initial=0.0)))
        cells += diff.size
    out = {
        "images": len(images),
        "cells": cells,
        "largest_difference": round(worst, 4),
        "largest_difference_near_threshold": round(worst_near, 4),
        "cells_near_threshold": near_cells,
        "largest_underscore_of_a_passing_cell": round(under, 4),
        "confirm_margin": margin,
        "precision": detector.precision,
    }
    print(
        f"{detector.backend} {detector.precision} rounding on {len(images)} images "
        f"({cells} cells): largest score difference from float32 {worst:.4f}, "
        f"{worst_near:.4f} within {margin} of the threshold (the margin re-scored exactly); "
        f"a passing cell scored at most {under:.4f} low"
    )
    return out


def picture(args: argparse.Namespace, detector: MmodDetector, out: Path) -> None:
    """Street frame 0 with dlib's boxes (green, thick) and OneEye's (magenta, thin)."""
    ref = json.loads((args.reference / "cnn_reference_street.json").read_text())
    ((name, frame),) = list(video_frames(args.video, 1))
    canvas = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for box in ref["items"][name]["detections"]:
        cv2.rectangle(canvas, (box[0], box[1]), (box[2], box[3]), (0, 200, 0), 6)
    for b in detector.detect(frame, ref["upsample"]):
        cv2.rectangle(canvas, (b.left, b.top), (b.right, b.bottom), (255, 0, 255), 2)
    cv2.putText(canvas, "dlib (green)  OneEye (magenta)", (30, 60), 0, 1.6, (255, 255, 255), 3)
    crop = canvas[300:1080, 0:1400]  # the part with the faces, kept small for the repository
    cv2.imwrite(str(out), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"picture: {out}")


def smoke(paths: ModelPaths) -> int:
    """Both detectors on one small synthetic image: the script's parts run."""
    rng = np.random.default_rng(13)
    noise = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    image: Image = np.asarray(cv2.GaussianBlur(noise, (0, 0), 3), dtype=np.uint8)
    reference = dlib.cnn_face_detection_model_v1(str(paths.cnn_detector))
    dlib_boxes = [
        [d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence]
        for d in reference(image, 1)
    ]
    detector = MmodDetector(paths.cnn_detector, num_threads=1)
    s = summarise("smoke", [compare("smoke", image, dlib_boxes, detector, 1)], 1)
    print_summary(s)
    # The rounding study on OpenVINO (int8 or bfloat16 where the CPU has it, else float32).
    rounding_on(MmodDetector(paths.cnn_detector, "openvino", num_threads=1), [(image, 1)])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    parser.add_argument(
        "--video", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "street_1080p.mp4"
    )
    parser.add_argument("--reference", type=Path, default=RESULTS)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--backend", default="auto", help="the MmodDetector backend (auto: the fastest here)"
    )
    parser.add_argument(
        "--rounding",
        type=int,
        default=100,
        help="LFW images (and a tenth as many frames) "
        "on which to compare an approximate backend's raw scores with float32's; 0: skip",
    )
    parser.add_argument("--skip-boxes", action="store_true", help="only --speed / --picture")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--picture", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "mmod_equivalence.json")
    args = parser.parse_args(argv)
    paths = ModelPaths.locate()
    if args.smoke:
        return smoke(paths)

    detector = MmodDetector(paths.cnn_detector, args.backend, num_threads=args.threads)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    doc: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc.update(
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "backend": detector.backend,
            "precision": detector.precision,
            "dlib": dlib.__version__,
            "load_average_start": os.getloadavg(),
        }
    )
    if not args.skip_boxes:
        for key, run in (("lfw", run_lfw), ("street", run_street)):
            summary = run(args, detector)
            print_summary(summary)
            doc[key] = summary
    if args.rounding:
        doc["rounding"] = rounding(args, detector)
    if args.speed:
        print("speed, one core, dlib and OneEye in turns:")
        doc["speed"] = run_speed(args, paths)
    if args.picture:
        picture(args, detector, RESULTS / "mmod_street_boxes.png")
    doc["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
