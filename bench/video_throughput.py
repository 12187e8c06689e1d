"""Video throughput at equal recall: OneEye's camera pipeline against face_recognition's own
video loop and the original system's loop, on the same frames, in one run.

    python bench/video_throughput.py [--video ../shared/data/video/street_1080p.mp4]
        [--lfw ../shared/data/lfw/images] [--people 8] [--strangers 8]
        [--reference-stride 1] [--skip-street] [--skip-clips] [--plot-only]
        [--cnn-reference bench/results/cnn_reference_street.json] [--cnn-ms-per-s 100]
        [--results bench/results] [--smoke]

Inputs: the real street video (1080p, nobody labelled) and two clips made from LFW people
(``bench.lib.clips``) at 720p and 1080p, where who is in view is known.

Loops, as their authors wrote them:
- face_recognition's example loop: ``face_locations`` + ``face_encodings`` on every frame at
  full size, and each face named after the nearest known face within 0.6 (``face_distance``);
  on the labelled clips also scored as if it named faces only within 0.408, its threshold for
  naming few strangers (same run, same answers);
- the original system's loop: the same on every other frame at a quarter of the size;
- OneEye's pipeline with one detector thread, and with two (``hog``, the default detector);
- on the street video also OneEye with ``auto`` (HOG, plus CNN time where HOG misses, within
  ``--cnn-ms-per-s``; one detector thread), in the same run as ``hog``.

Recall on the street video, where nobody is labelled: the people face_recognition's loop
finds (its detections linked frame to frame) and keeps in view for at least 1 s; a loop found
such a person when one of its boxes is on them, and OneEye sighted them when a track on them
gave a sighting. On the labelled clips: visits found (any answer on the face, named or
unknown), enrolled visits named, and wrong names, all scored by ``bench.lib.clips.score``.

Turned and dim faces (issue 13): on the street video, the people dlib's own MMOD CNN finds
(``bench/cnn_reference.py``'s answers, read from ``--cnn-reference``: computed offline, upsample
0, so faces from about 80 px) linked frame to frame the same way and in view for at least 1 s;
each loop's share of them, scored as above (``cnn_people`` in each loop's figures). Only the
frames the reference holds count, for the people as for the loops' boxes.
Frames/s are wall-clock over the frames each loop processed (``--reference-stride`` N runs
the references on every Nth frame only, for quick runs); cores used = CPU seconds / wall
seconds. Results: ``bench/results/video_throughput.json`` and ``.png``, and
``video_throughput_turned.png`` (the share of dlib's CNN's people per loop).

``--smoke``: every loop and every scoring path on one small labelled clip (one person, one
stranger, 480x360 at 10 fps, ``--reference-stride 3``), which also stands in for the street
video (written out as a video and decoded again) with its true face boxes standing in for
dlib's CNN reference. Results go to a temporary folder, or ``--results`` when given; never
bench/results. The test suite runs it so the script cannot rot between real runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.clips import Claim, LabelledClip, claims_from, lfw_clip, score
from oneeye.gallery import GalleryIndex
from oneeye.types import CameraDetector, Detection, FaceBox, RGBImage
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings
from oneeye.video.track import FaceTracker
from oneeye.vision.engine import FaceEngine

TOLERANCE = 0.6
"""face_recognition's default: a known face within this distance is a match."""
STREET_FPS = 25.0
OPEN_SET_TOLERANCE = 0.408
"""face_recognition's threshold for naming few strangers, chosen on LFW's open-set test the
way OneEye's was (BENCHMARKS.md): at 0.6 it names 93% of LFW's strangers as someone."""


@dataclass
class Run:
    """What one loop did on one input."""

    frames: int
    seconds: float
    cpu_seconds: float
    claims: list[Claim]
    sightings: list[Claim] = field(default_factory=list)
    tracks: list[list[tuple[int, FaceBox]]] = field(default_factory=list)
    """OneEye only: per frame, the live tracks (id, box)."""
    sighted_tracks: set[int] = field(default_factory=set)
    first_sighting: dict[int, int] = field(default_factory=dict)
    """OneEye only: track id -> frame of its first sighting."""
    nearest: list[tuple[Claim, float]] = field(default_factory=list)
    """References only: each face with the nearest known person and the distance."""

    def at(self, tolerance: float) -> list[Claim]:
        """A reference's answers had it named faces only within ``tolerance``."""
        return [
            Claim(c.frame, c.box, c.person if distance <= tolerance else None)
            for c, distance in self.nearest
        ]

    def figures(self) -> dict[str, float]:
        """Frames/s and cores used."""
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_second": self.frames / self.seconds,
            "cores_used": self.cpu_seconds / self.seconds,
        }


def decode(path: Path) -> tuple[list[RGBImage], float]:
    """Every frame of a video, RGB, and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    frames: list[RGBImage] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame[:, :, ::-1], dtype=np.uint8))
    capture.release()
    return frames, fps


def cpu_seconds() -> float:
    """CPU seconds of this process and its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def now() -> str:
    """The time, UTC, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def progress(label: str, done: int, total: int) -> None:
    """One line per tenth of the work."""
    if total and (done == total or done % max(1, total // 10) == 0):
        print(f"  {label}: {done}/{total} frames", file=sys.stderr, flush=True)


def box_of(location: tuple[int, int, int, int], scale: float = 1.0) -> FaceBox:
    top, right, bottom, left = (round(v * scale) for v in location)
    return FaceBox(top=top, right=right, bottom=bottom, left=left)


def reference_loop(
    frames: list[RGBImage],
    known: list[Any],
    names: list[str],
    *,
    stride: int,
    quarter: bool,
    label: str,
) -> Run:
    """face_recognition's loop (full size, every ``stride``-th frame) or the original's
    (``quarter``: every other frame at 1/4 size)."""
    import face_recognition  # noqa: PLC0415 - benchmark-only reference

    step = 2 if quarter else stride
    chosen = list(range(0, len(frames), step))
    claims: list[Claim] = []
    nearest: list[tuple[Claim, float]] = []
    wall, cpu = time.perf_counter(), cpu_seconds()
    for done, index in enumerate(chosen, start=1):
        frame = frames[index]
        image = cv2.resize(frame, (0, 0), fx=0.25, fy=0.25) if quarter else frame
        locations = face_recognition.face_locations(image)
        encodings = face_recognition.face_encodings(image, locations)
        for location, encoding in zip(locations, encodings, strict=True):
            box = box_of(location, 4.0 if quarter else 1.0)
            person, distance = None, float("inf")
            if known:
                distances = face_recognition.face_distance(known, encoding)
                best = int(np.argmin(distances))
                distance = float(distances[best])
                nearest.append((Claim(index, box, names[best]), distance))
                if distance <= TOLERANCE:
                    person = names[best]
            claims.append(Claim(index, box, person))
        progress(label, done, len(chosen))
    seconds, used = time.perf_counter() - wall, cpu_seconds() - cpu
    return Run(len(chosen), seconds, used, claims, nearest=nearest)


def oneeye_loop(
    frames: list[RGBImage],
    fps: float,
    engine: FaceEngine,
    gallery: GalleryIndex,
    settings: PipelineSettings,
    stats: dict[str, int] | None = None,
) -> Run:
    """OneEye's pipeline on every frame; claims are its sighting and sighting_update events.
    ``stats`` (if given) receives the pipeline's counts: detection rounds, whole scans, CNN
    detections and crops."""
    pipeline = CameraPipeline("bench", engine, gallery, settings)
    claims: list[Claim] = []
    sightings: list[Claim] = []
    tracks: list[list[tuple[int, FaceBox]]] = []
    sighted: set[int] = set()
    first: dict[int, int] = {}
    wall, cpu = time.perf_counter(), cpu_seconds()
    for index, frame in enumerate(frames):
        events = pipeline.process(index, index / fps, frame)
        if index == len(frames) - 1:
            events += pipeline.finish(index, index / fps)
        said, sighted_now = claims_from(events)
        claims += said
        sightings += sighted_now
        for event in events:
            if event.event == "sighting":
                sighted.add(event.track)
                first.setdefault(event.track, event.frame)
        tracks.append([(track.id, track.box) for track in pipeline.tracks])
    seconds, used = time.perf_counter() - wall, cpu_seconds() - cpu
    pipeline.close()
    if stats is not None:
        stats.update(pipeline.counts())
    return Run(len(frames), seconds, used, claims, sightings, tracks, sighted, first_sighting=first)


def street_people(reference: Run, fps: float) -> list[list[tuple[int, FaceBox]]]:
    """The reference's detections linked into people; those in view for at least 1 s."""
    tracker = FaceTracker(max_missed=3)
    by_frame: dict[int, list[FaceBox]] = {}
    for claim in reference.claims:
        by_frame.setdefault(claim.frame, []).append(claim.box)
    people: dict[int, list[tuple[int, FaceBox]]] = {}
    for index in sorted(by_frame):
        detections = [Detection(box, 1.0, "reference") for box in by_frame[index]]
        for track in tracker.update(index, detections):
            if track.last_frame == index:
                people.setdefault(track.id, []).append((index, track.box))
    return [seen for seen in people.values() if seen[-1][0] - seen[0][0] + 1 >= fps]


def street_recall(
    people: list[list[tuple[int, FaceBox]]], run: Run, fps: float = STREET_FPS
) -> dict[str, Any]:
    """How many of the people a loop found, and (OneEye) tracked and sighted, and how long
    after the reference first found each one OneEye's sighting came (seconds, at ``fps``)."""
    boxes: dict[int, list[FaceBox]] = {}
    for claim in run.claims:
        boxes.setdefault(claim.frame, []).append(claim.box)
    found = tracked = sighted = 0
    delays: list[float] = []
    for seen in people:
        if run.tracks:
            on_them = {
                track_id
                for index, box in seen
                for track_id, other in run.tracks[index]
                if box.iou(other) >= 0.3
            }
            tracked += bool(on_them)
            sighted += bool(on_them & run.sighted_tracks)
            firsts = [run.first_sighting[t] for t in on_them if t in run.first_sighting]
            if firsts:
                delays.append((min(firsts) - seen[0][0]) / fps)
        else:
            found += any(
                box.iou(other) >= 0.3 for index, box in seen for other in boxes.get(index, [])
            )
    if run.tracks:
        return {
            "people": len(people),
            "tracked": tracked,
            "sighted": sighted,
            "sighting_after_reference_s": [round(d, 2) for d in delays],
        }
    return {"people": len(people), "found": found}


def cnn_reference_people(path: Path, fps: float) -> tuple[list[list[tuple[int, FaceBox]]], int]:
    """dlib's CNN's boxes (``bench/cnn_reference.py``) linked into people as
    :func:`street_people` links face_recognition's; those in view for at least 1 s, and the
    number of leading frames the reference holds (a run still being written holds fewer)."""
    items = json.loads(path.read_text())["items"]
    frames = 0
    while f"frame_{frames:04d}" in items:
        frames += 1
    claims = [
        Claim(index, FaceBox(top=top, right=right, bottom=bottom, left=left), None)
        for index in range(frames)
        for left, top, right, bottom, _ in items[f"frame_{index:04d}"]["detections"]
    ]
    return street_people(Run(frames, 1.0, 0.0, claims), fps), frames


def within(run: Run, frames: int) -> Run:
    """A loop's answers on the first ``frames`` frames only (its speed figures unchanged)."""
    return Run(
        run.frames,
        run.seconds,
        run.cpu_seconds,
        [c for c in run.claims if c.frame < frames],
        tracks=run.tracks[:frames],
        sighted_tracks={t for t, first in run.first_sighting.items() if first < frames},
        first_sighting={t: first for t, first in run.first_sighting.items() if first < frames},
    )


def compare(results: dict[str, Any], reference: str = "face_recognition") -> None:
    """Each loop's frames/s as a ratio to face_recognition's, same input, same run."""
    base = results[reference]["frames_per_second"]
    for figures in results.values():
        if isinstance(figures, dict) and "frames_per_second" in figures:
            figures["ratio_vs_face_recognition"] = figures["frames_per_second"] / base


def oneeye_settings(
    min_face: int, threads: int, detector: CameraDetector = "hog", cnn_ms_per_s: float = 100.0
) -> PipelineSettings:
    return PipelineSettings(
        min_face_px=min_face,
        detect_threads=threads,
        cooldown=5.0,
        detector=detector,
        cnn_ms_per_s=cnn_ms_per_s,
    )


def run_street(args: argparse.Namespace, engine: FaceEngine) -> dict[str, Any]:
    frames, fps = decode(args.video)
    height, width = frames[0].shape[:2]
    print(f"{args.video}: {len(frames)} frames {width}x{height} at {fps:g} fps", flush=True)
    reference = reference_loop(
        frames, [], [], stride=args.reference_stride, quarter=False, label="face_recognition"
    )
    people = street_people(reference, fps)
    cnn_people: list[list[tuple[int, FaceBox]]] = []
    cnn_frames = 0
    if args.cnn_reference.exists():
        cnn_people, cnn_frames = cnn_reference_people(args.cnn_reference, fps)
        print(
            f"dlib's CNN reference: {cnn_frames} frames, {len(cnn_people)} people in view 1 s",
            flush=True,
        )
    original = reference_loop(frames, [], [], stride=1, quarter=True, label="original")
    out: dict[str, Any] = {"size": [width, height], "frames": len(frames), "fps": fps}
    runs: dict[str, Run] = {"face_recognition": reference, "original": original}
    out["face_recognition"] = reference.figures() | street_recall(people, reference, fps)
    out["original"] = original.figures() | street_recall(people, original, fps)
    loops: list[tuple[str, int, CameraDetector]] = [
        ("oneeye_1_thread", 1, "hog"),
        ("oneeye_auto_1_thread", 1, "auto"),
        ("oneeye_2_thread", 2, "hog"),
    ]
    for name, threads, detector in loops:
        settings = oneeye_settings(args.street_min_face, threads, detector, args.cnn_ms_per_s)
        pipeline_stats: dict[str, int] = {}
        run = oneeye_loop(frames, fps, engine, GalleryIndex(), settings, pipeline_stats)
        runs[name] = run
        out[name] = run.figures() | street_recall(people, run, fps) | pipeline_stats
        print(f"  {name}: {out[name]['frames_per_second']:.2f} frames/s", flush=True)
    if cnn_people:
        for name, run in runs.items():
            out[name]["cnn_people"] = street_recall(cnn_people, within(run, cnn_frames), fps)
        out["cnn_reference_frames"] = cnn_frames
        out["cnn_ms_per_s"] = args.cnn_ms_per_s
    out["min_face_px"] = args.street_min_face
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    compare(out)
    return out


def run_clip(
    clip: LabelledClip, engine: FaceEngine, min_face: int, stride: int, name: str
) -> dict[str, Any]:
    import face_recognition  # noqa: PLC0415 - benchmark-only reference

    known, names = [], []
    for person, photo in clip.enrolment_photos.items():
        found = face_recognition.face_encodings(photo)
        if found:
            known.append(found[0])
            names.append(person)
    width, height = clip.size
    out: dict[str, Any] = {
        "size": [width, height],
        "frames": len(clip.frames),
        "fps": clip.fps,
        "min_face_px": min_face,
        "reference_enrolled": len(known),
    }
    reference = reference_loop(
        clip.frames, known, names, stride=stride, quarter=False, label=f"{name} face_recognition"
    )
    out["face_recognition"] = reference.figures() | score(clip, reference.claims)
    out["face_recognition_open_set"] = reference.figures() | score(
        clip, reference.at(OPEN_SET_TOLERANCE)
    )
    original = reference_loop(
        clip.frames, known, names, stride=1, quarter=True, label=f"{name} original"
    )
    out["original"] = original.figures() | score(clip, original.claims)
    gallery = GalleryIndex()
    for template in clip.templates:
        gallery.add(template)
    for threads in (1, 2):
        run = oneeye_loop(
            clip.frames, clip.fps, engine, gallery, oneeye_settings(min_face, threads)
        )
        out[f"oneeye_{threads}_thread"] = run.figures() | score(clip, run.claims, run.sightings)
    compare(out)
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    """Frames/s per loop per input, log scale, ratios written on OneEye's bars."""
    import matplotlib  # noqa: PLC0415 - benchmark-only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    inputs = list(results["inputs"])
    loops = ["face_recognition", "original", "oneeye_1_thread", "oneeye_2_thread"]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.2
    for number, loop in enumerate(loops):
        values = [results["inputs"][name][loop]["frames_per_second"] for name in inputs]
        xs = [i + (number - 1.5) * width for i in range(len(inputs))]
        bars = axes.bar(xs, values, width, label=loop.replace("_", " "))
        if loop.startswith("oneeye"):
            for bar, name in zip(bars, inputs, strict=True):
                ratio = results["inputs"][name][loop]["ratio_vs_face_recognition"]
                axes.annotate(
                    f"{ratio:.0f}x",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    axes.axhline(25, color="grey", linestyle=":", linewidth=1)
    axes.text(-0.45, 26.5, "real time (25 frames/s)", fontsize=8, ha="left", va="bottom")
    axes.set_yscale("log")
    axes.set_xticks(range(len(inputs)), [name.replace("_", " ") for name in inputs])
    axes.set_ylabel("frames processed per second")
    axes.set_title("Video throughput: every loop on the same frames, one run per input")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


TURNED_LOOPS = ("face_recognition", "original", "oneeye_1_thread", "oneeye_auto_1_thread")


def plot_turned(street: dict[str, Any], path: Path) -> None:
    """The share of dlib's CNN's people each loop sighted (OneEye) or found (the references),
    with its frames/s as a ratio to face_recognition's written on each bar."""
    import matplotlib  # noqa: PLC0415 - benchmark-only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    loops = [loop for loop in TURNED_LOOPS if "cnn_people" in street.get(loop, {})]
    shares = []
    for loop in loops:
        people = street[loop]["cnn_people"]
        hit = people.get("sighted", people.get("found", 0))
        shares.append(100.0 * hit / max(1, people["people"]))
    figure, axes = plt.subplots(figsize=(7, 4))
    bars = axes.bar([loop.replace("_", " ") for loop in loops], shares, color="tab:blue")
    for bar, loop in zip(bars, loops, strict=True):
        ratio = street[loop]["ratio_vs_face_recognition"]
        axes.annotate(
            f"{ratio:.0f}x frames/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.axhline(90, color="grey", linestyle=":", linewidth=1)
    axes.set_ylim(0, 110)
    axes.set_ylabel("% of dlib's CNN's people (in view >= 1 s)")
    axes.set_title(
        f"Street video: people dlib's CNN finds, {street['cnn_reference_frames']} frames; "
        "sighted (OneEye) or found",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


RESULTS = Path("bench/results")
"""Where a real run's figures go (relative to the repository root, where it runs)."""


def street_of(results: dict[str, Any]) -> dict[str, Any]:
    """The street input's figures (the first input scored on dlib's CNN's people), or {}."""
    return next((v for v in results["inputs"].values() if "cnn_reference_frames" in v), {})


def save(results: dict[str, Any], folder: Path) -> None:
    """The table on stdout; ``video_throughput.json`` and the pictures in ``folder``."""
    report(results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "video_throughput.json").write_text(json.dumps(results, indent=2))
    if results["inputs"]:
        plot(results, folder / "video_throughput.png")
    street = street_of(results)
    if street:
        plot_turned(street, folder / "video_throughput_turned.png")


def write_video(clip: LabelledClip, path: Path) -> Path:
    """The clip's frames as a Motion-JPEG video (what :func:`decode` reads back)."""
    width, height = clip.size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), clip.fps, clip.size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write a {width}x{height} Motion-JPEG video to {path}")
    for frame in clip.frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path


def write_truth_reference(clip: LabelledClip, path: Path) -> Path:
    """The clip's true face boxes in ``bench/cnn_reference.py``'s format, as if dlib's CNN
    had found every face and nothing else."""
    items = {
        f"frame_{index:04d}": {
            "shape": list(clip.frames[index].shape[:2]),
            "seconds": 0.0,
            "detections": [
                [face.box[3], face.box[0], face.box[1], face.box[2], 1.0] for face in faces
            ],
        }
        for index, faces in enumerate(clip.truth)
    }
    path.write_text(json.dumps({"source": "smoke: the clip's truth", "items": items}))
    return path


SMOKE_MIN_FACE = 60
"""--smoke's smallest face (its faces are 100 px high)."""


def run_smoke(args: argparse.Namespace, engine: FaceEngine, folder: Path) -> None:
    """Every loop and every scoring path on one small labelled clip, which also stands in for
    the street video; results in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = lfw_clip(
        engine,
        args.lfw,
        people=1,
        strangers=1,
        width=480,
        height=360,
        fps=10.0,
        face_px=(100, 100),
    )
    print(f"smoke clip: {len(clip.frames)} frames 480x360, {len(clip.visits)} visits", flush=True)
    args.video = write_video(clip, folder / "smoke_street.avi")
    args.cnn_reference = write_truth_reference(clip, folder / "smoke_cnn_reference.json")
    args.street_min_face = SMOKE_MIN_FACE
    args.reference_stride = 3  # face_recognition's full-size loop is most of the run's time
    results: dict[str, Any] = {
        "cpu": os.cpu_count(),
        "reference_stride": args.reference_stride,
        "smoke": True,
        "inputs": {"street_smoke": run_street(args, engine) | {"measured_at": now()}},
    }
    results["inputs"]["labelled_smoke"] = run_clip(
        clip, engine, SMOKE_MIN_FACE, args.reference_stride, "labelled_smoke"
    ) | {"measured_at": now()}
    save(results, folder)
    print(f"\nsmoke run done: results in {folder}; bench/results left as it was", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=Path("../shared/data/video/street_1080p.mp4"))
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--strangers", type=int, default=8)
    parser.add_argument("--reference-stride", type=int, default=1)
    parser.add_argument("--street-min-face", type=int, default=40)
    parser.add_argument(
        "--cnn-reference", type=Path, default=Path("bench/results/cnn_reference_street.json")
    )
    parser.add_argument("--cnn-ms-per-s", type=float, default=100.0)
    parser.add_argument("--skip-street", action="store_true")
    parser.add_argument("--skip-clips", action="store_true")
    parser.add_argument(
        "--results", type=Path, default=None, help="default bench/results (--smoke: a temp folder)"
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw the picture from the saved results"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="every loop on a small clip (seconds), for tests"
    )
    args = parser.parse_args()
    if args.reference_stride < 1:
        parser.error("--reference-stride must be at least 1")
    if args.smoke and args.plot_only:
        parser.error("--smoke and --plot-only do not go together")
    if args.smoke:
        if args.results is not None and args.results.resolve() == RESULTS.resolve():
            parser.error(f"--smoke writes elsewhere than {RESULTS} (its results are no figures)")
        engine = FaceEngine()
        if args.results is not None:
            run_smoke(args, engine, args.results)
            return
        with tempfile.TemporaryDirectory(prefix="video_throughput_smoke_") as folder:
            run_smoke(args, engine, Path(folder))
        return
    results_folder: Path = args.results or RESULTS
    if args.plot_only:
        saved = json.loads((results_folder / "video_throughput.json").read_text())
        report(saved)
        plot(saved, results_folder / "video_throughput.png")
        street = street_of(saved)
        if street:
            plot_turned(street, results_folder / "video_throughput_turned.png")
        return

    engine = FaceEngine()
    saved_path = results_folder / "video_throughput.json"
    results: dict[str, Any] = {
        "cpu": os.cpu_count(),
        "reference_stride": args.reference_stride,
        # An input measured alone (--skip-street or --skip-clips) replaces its own entry;
        # each entry's ratios come from one run (measured_at).
        "inputs": json.loads(saved_path.read_text())["inputs"] if saved_path.exists() else {},
    }
    if not args.skip_street:
        results["inputs"]["street_1080p"] = run_street(args, engine) | {"measured_at": now()}
    clips: list[tuple[str, int, int, tuple[int, int], int]] = [
        ("labelled_720p", 1280, 720, (90, 130), 72),
        ("labelled_1080p", 1920, 1080, (60, 140), 48),
    ]
    for name, width, height, faces, min_face in [] if args.skip_clips else clips:
        clip = lfw_clip(
            engine,
            args.lfw,
            people=args.people,
            strangers=args.strangers,
            width=width,
            height=height,
            face_px=faces,
        )
        print(
            f"{name}: {len(clip.frames)} frames {width}x{height}, {len(clip.visits)} visits, "
            f"faces {faces[0]}-{faces[1]} px",
            flush=True,
        )
        results["inputs"][name] = run_clip(clip, engine, min_face, args.reference_stride, name) | {
            "measured_at": now()
        }
        del clip
    save(results, results_folder)


LOOPS = (
    "face_recognition",
    "face_recognition_open_set",
    "original",
    "oneeye_1_thread",
    "oneeye_auto_1_thread",
    "oneeye_2_thread",
)


def report(results: dict[str, Any]) -> None:
    """The table, one line per loop per input."""
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("frames/s", lambda r: f"{r['frames_per_second']:8.2f}"),
        ("ratio", lambda r: f"{r['ratio_vs_face_recognition']:6.1f}x"),
        ("cores", lambda r: f"{r['cores_used']:5.2f}"),
        ("recall", recall_text),
    ]
    for name, figures in results["inputs"].items():
        print(f"\n{name} ({figures['size'][0]}x{figures['size'][1]}, {figures['frames']} frames)")
        for loop in LOOPS:
            if loop not in figures:
                continue
            row = figures[loop]
            print(f"  {loop:20s} " + "  ".join(f"{title} {fmt(row)}" for title, fmt in columns))
            if "cnn_people" in row:
                print(f"  {'':20s} dlib's CNN's {recall_text(row['cnn_people'])}")


def recall_text(row: dict[str, Any]) -> str:
    if "people" in row:
        if "sighted" in row:
            delays = row.get("sighting_after_reference_s", [])
            return (
                f"people {row['people']}: tracked {row['tracked']}, sighted {row['sighted']}, "
                f"sighting after the reference's first detection {delays} s"
            )
        return f"people {row['people']}: found {row['found']}"
    text = (
        f"found {row['found']}/{row['visits']}, named {row['named']}/{row['visits_enrolled']}, "
        f"wrong names {row['wrong_names']}"
    )
    if row.get("first_named_p95") is not None:
        text += f", named after p95 {row['first_named_p95']:.2f} s"
    if row.get("sightings_per_named_visit") is not None:
        text += f", sightings/visit {row['sightings_per_named_visit']:.2f}"
    return text


if __name__ == "__main__":
    main()
