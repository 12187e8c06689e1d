"""face_recognition's README examples, run with the real face_recognition 1.3.0 and with
``oneeye.compat`` on the same inputs: the same answers, and how much faster.

    python bench/compat_examples.py [--faces ../shared/data/faces]
        [--video ../shared/data/video/street_1080p.mp4] [--frames 24] [--rounds 2]
    python bench/compat_examples.py --smoke --faces DIR   (DIR: face_recognition's test photos)

The three examples, each written once and given either module (``import face_recognition``
or ``import oneeye.compat as face_recognition``, the one line a user changes):

- **find faces**: ``load_image_file`` + ``face_locations`` on every photo in ``--faces``;
- **identify**: the known people's encodings (the first photo of each person in
  ``--faces/knn/train``), then each photo of ``--faces/knn/test``: ``face_encodings`` and
  ``compare_faces`` (tolerance 0.6) give the names, as the README's "identify faces" example;
- **video loop**: the README's faster webcam loop on the street video: every other frame
  shrunk (the README shrinks a webcam's frames to a quarter; the street video's faces are
  small, so ``--video-scale`` is a half by default: at a quarter no face is left to find), BGR
  to RGB, ``face_locations``, ``face_encodings`` at those locations, ``face_distance`` to the
  known people (Obama and Biden from ``--faces``), best match within 0.6.

Beside them, **encodings only** (not a README example): ``face_encodings`` of every photo of
``--faces`` given its boxes (found once, before the timing), the one step the two libraries
compute differently; in the three examples the HOG detector, the same dlib code in both,
costs the same.

Same answers: boxes and names equal, and the largest difference between the two libraries'
encodings of the same face. Speed: each example runs ``--rounds`` times per library, in turns
(face_recognition, then oneeye.compat, then again), after both have loaded their models; the
ratio is face_recognition's total time over oneeye.compat's, measured in the same run. The
load average is written beside it (the machine is shared). Results: printed, written to
``bench/results/compat_examples.json`` and drawn in ``compat_examples.png``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
DATA = ROOT.parent / "shared" / "data"
PICTURES = (".jpg", ".jpeg", ".png")
TOLERANCE = 0.6

Answers = list[Any]
"""What an example answered, comparable with ``==`` between the two libraries."""
Encodings = list[npt.NDArray[np.float64]]


def pictures(folder: Path) -> list[Path]:
    """The photos directly inside ``folder``, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURES and p.is_file())


def find_faces(fr: ModuleType, photos: list[Path]) -> tuple[Answers, Encodings]:
    """README, "Find faces in pictures": every face's box in every photo."""
    answers: Answers = []
    for photo in photos:
        image = fr.load_image_file(str(photo))
        answers.append(
            [photo.name, [tuple(int(v) for v in box) for box in fr.face_locations(image)]]
        )
    return answers, []


def identify(
    fr: ModuleType, known: dict[str, Path], unknown: list[Path]
) -> tuple[Answers, Encodings]:
    """README, "Identify faces in pictures": who of the known people is in each photo."""
    names: list[str] = []
    known_encodings: Encodings = []
    for name, photo in known.items():
        found = fr.face_encodings(fr.load_image_file(str(photo)))
        if found:
            names.append(name)
            known_encodings.append(found[0])
    answers: Answers = []
    encodings = list(known_encodings)
    for photo in unknown:
        image = fr.load_image_file(str(photo))
        for encoding in fr.face_encodings(image):
            encodings.append(encoding)
            matches = fr.compare_faces(known_encodings, encoding, tolerance=TOLERANCE)
            answers.append([photo.name, [n for n, m in zip(names, matches, strict=True) if m]])
    return answers, encodings


def video_loop(
    fr: ModuleType, frames: list[npt.NDArray[np.uint8]], known: dict[str, Path], scale: float
) -> tuple[Answers, Encodings]:
    """README, the faster webcam loop: every other frame, shrunk by ``scale``."""
    names: list[str] = []
    known_encodings: Encodings = []
    for name, photo in known.items():
        names.append(name)
        known_encodings.append(fr.face_encodings(fr.load_image_file(str(photo)))[0])
    answers: Answers = []
    encodings: Encodings = []
    for number, frame in enumerate(frames):
        if number % 2:
            continue
        small = cv2.resize(frame, (0, 0), fx=scale, fy=scale)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        locations = fr.face_locations(rgb)
        found = fr.face_encodings(rgb, locations)
        for location, encoding in zip(locations, found, strict=True):
            encodings.append(encoding)
            distances = fr.face_distance(known_encodings, encoding)
            best = int(np.argmin(distances))
            name = names[best] if distances[best] <= TOLERANCE else "Unknown"
            answers.append([number, tuple(int(v) for v in location), name])
    return answers, encodings


def encodings_only(
    fr: ModuleType, images: list[tuple[npt.NDArray[np.uint8], list[Any]]]
) -> tuple[Answers, Encodings]:
    """``face_encodings`` at known boxes: the step where the two libraries differ."""
    encodings: Encodings = []
    for image, boxes in images:
        encodings.extend(fr.face_encodings(image, boxes))
    return [len(encodings)], encodings


def read_frames(video: Path, count: int) -> list[npt.NDArray[np.uint8]]:
    """The first ``count`` frames of ``video``, BGR as OpenCV gives them."""
    capture = cv2.VideoCapture(str(video))
    frames: list[npt.NDArray[np.uint8]] = []
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(np.asarray(frame, dtype=np.uint8))
    finally:
        capture.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {video}")
    return frames


def largest_difference(a: Encodings, b: Encodings) -> float | None:
    """The largest absolute difference between paired encodings (``None``: none to pair)."""
    if not a or len(a) != len(b):
        return None
    return float(
        max(np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(a, b, strict=True))
    )


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def commit() -> str:
    """The checkout's commit (short), or ``unknown``."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=DATA / "faces", help="photos")
    parser.add_argument(
        "--video", type=Path, default=DATA / "video" / "street_1080p.mp4", help="the video"
    )
    parser.add_argument("--frames", type=int, default=24, help="frames of the video")
    parser.add_argument(
        "--video-scale", type=float, default=0.5, help="video frames are shrunk by this"
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs per library and example")
    parser.add_argument("--out", type=Path, default=RESULTS / "compat_examples.json")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run on face_recognition's test photos (--faces): a few photos at half size, "
        "no video (frames are the photos), one round, results written only to --out",
    )
    args = parser.parse_args(argv)
    if args.smoke and args.out == RESULTS / "compat_examples.json":
        parser.error("--smoke needs --out (the smoke run does not overwrite the results)")
    return args


def halved(folder: Path, names: tuple[str, ...]) -> Path:
    """Half-size copies of ``folder``'s photos ``names`` in a temporary folder (removed at
    exit): the smoke run checks the paths, and the test photos are up to 2,204 px high."""
    copies = Path(tempfile.mkdtemp(prefix="compat_examples_smoke_"))
    atexit.register(shutil.rmtree, copies, ignore_errors=True)
    for name in names:
        image = cv2.imread(str(folder / name))
        if image is None:
            raise SystemExit(f"cannot read {folder / name}")
        cv2.imwrite(str(copies / name), cv2.resize(image, (0, 0), fx=0.5, fy=0.5))
    return copies


def inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The photos, people and frames each example runs on."""
    faces: Path = args.faces
    if args.smoke:
        faces = halved(faces, ("obama.jpg", "biden.jpg", "obama2.jpg"))
        photos = [faces / "obama.jpg", faces / "biden.jpg"]
        known = {"obama": faces / "obama.jpg", "biden": faces / "biden.jpg"}
        unknown = [faces / "obama2.jpg"]
        frames = [cv2.imread(str(faces / "obama2.jpg"))] * 2
        return {"photos": photos, "known": known, "unknown": unknown, "frames": frames}
    train = faces / "knn" / "train"
    known = {
        person.name: pictures(person)[0] for person in sorted(train.iterdir()) if person.is_dir()
    }
    return {
        "photos": pictures(faces),
        "known": known,
        "unknown": pictures(faces / "knn" / "test"),
        "frames": read_frames(args.video, args.frames),
        "video_known": {"obama": faces / "obama.jpg", "biden": faces / "biden.jpg"},
    }


def examples(
    data: dict[str, Any], scale: float
) -> dict[str, Callable[[ModuleType], tuple[Answers, Encodings]]]:
    """Each example as a function of the face_recognition module it is given."""
    video_known = data.get("video_known", data["known"])
    return {
        "find faces": lambda fr: find_faces(fr, data["photos"]),
        "identify": lambda fr: identify(fr, data["known"], data["unknown"]),
        "video loop": lambda fr: video_loop(fr, data["frames"], video_known, scale),
        "encodings only": lambda fr: encodings_only(fr, data["boxed"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the examples with both libraries; print and write the figures.

    Returns:
        0.
    """
    args = parse_args(argv)
    import face_recognition  # noqa: PLC0415 - benchmark-only reference (loads its models)

    from oneeye import compat  # noqa: PLC0415 - the one line a user changes

    libraries = {"face_recognition": face_recognition, "oneeye.compat": compat}
    data = inputs(args)
    images = [compat.load_image_file(str(photo)) for photo in data["photos"]]
    data["boxed"] = [(image, compat.face_locations(image)) for image in images]
    runs = examples(data, 0.25 if args.smoke else args.video_scale)
    rounds = 1 if args.smoke else args.rounds
    warm = data["photos"][0]
    for library in libraries.values():  # both load their models before anything is timed
        library.face_encodings(library.load_image_file(str(warm)))
    load_before = load_average()
    seconds = {name: dict.fromkeys(libraries, 0.0) for name in runs}
    answers: dict[str, dict[str, tuple[Answers, Encodings]]] = {name: {} for name in runs}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("examples", total=len(runs) * rounds * len(libraries))
        for name, run in runs.items():
            for _ in range(rounds):
                for library_name, library in libraries.items():
                    progress.update(task, description=f"{name}: {library_name}")
                    started = time.perf_counter()
                    answers[name][library_name] = run(library)
                    seconds[name][library_name] += time.perf_counter() - started
                    progress.advance(task)
    out: dict[str, Any] = {
        "command": "python bench/compat_examples.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "rounds": rounds,
        "examples": {},
    }
    header = ("example", "face_recognition s", "oneeye.compat s", "ratio")
    print(f"{header[0]:<14} {header[1]:>19} {header[2]:>16} {header[3]:>6}  same answers")
    for name in runs:
        reference, dropin = answers[name]["face_recognition"], answers[name]["oneeye.compat"]
        same = reference[0] == dropin[0]
        figures: dict[str, Any] = {
            "face_recognition_seconds": round(seconds[name]["face_recognition"] / rounds, 3),
            "oneeye_compat_seconds": round(seconds[name]["oneeye.compat"] / rounds, 3),
            "speed_ratio": round(
                seconds[name]["face_recognition"] / seconds[name]["oneeye.compat"], 2
            ),
            "same_answers": same,
            "answers": len(reference[0]),
            "largest_encoding_difference": largest_difference(reference[1], dropin[1]),
        }
        if not same:
            figures["differences"] = [
                [a, b] for a, b in zip(reference[0], dropin[0], strict=False) if a != b
            ][:20]
        out["examples"][name] = figures
        print(
            f"{name:<14} {figures['face_recognition_seconds']:>19.2f} "
            f"{figures['oneeye_compat_seconds']:>16.2f} {figures['speed_ratio']:>5.2f}x  "
            f"{'yes' if same else 'NO'} ({figures['answers']} answers; largest encoding "
            f"difference {figures['largest_encoding_difference']})"
        )
    print(f"load average before {load_before}, after {out['load_average_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    draw(out, args.out.with_suffix(".png"))
    print(f"written: {args.out} and {args.out.with_suffix('.png')}")
    return 0


def draw(out: dict[str, Any], path: Path) -> None:
    """A bar per example: seconds per run for each library, the ratio above."""
    import matplotlib  # noqa: PLC0415 - only when drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(out["examples"])
    x = np.arange(len(names))
    reference = [out["examples"][n]["face_recognition_seconds"] for n in names]
    dropin = [out["examples"][n]["oneeye_compat_seconds"] for n in names]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.bar(x - 0.2, reference, 0.4, label="face_recognition 1.3.0")
    axes.bar(x + 0.2, dropin, 0.4, label="oneeye.compat")
    for i, name in enumerate(names):
        ratio = out["examples"][name]["speed_ratio"]
        axes.annotate(
            f"{ratio:.1f}x", (x[i], max(reference[i], dropin[i])), ha="center", va="bottom"
        )
    axes.set_xticks(x, names)
    axes.set_ylabel("seconds per run")
    axes.set_title(f"face_recognition's README examples (load {out['load_average_before'][0]})")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
