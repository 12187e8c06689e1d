"""LFW benchmark: the standard 10-fold verification protocol, open-set identification, and
encoding throughput, for OneEye and (``--reference``) face_recognition 1.3.0 in the same run.

Every pair of ``pairs.txt`` is scored: an image where no face is found gives its pairs an
infinite distance ("different person"), which is an error for a same-person pair. Thresholds
are chosen on 9 folds and tested on the 10th. Open-set: the gallery holds one photo of each
person with 2+ photos; probes are their other photos (should be named) and every photo of the
people with one photo (should be "unknown"); the shipped threshold is chosen on one half of the
people and measured on the other half.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from bench.lib import throughput
from bench.lib.extract import FeatureSet, extract
from bench.lib.lfw_data import LfwPairs, all_images, person_of, read_pairs
from bench.lib.metrics import (
    OpenSetScores,
    Verification,
    open_set_rates,
    roc,
    tar_at_far,
    threshold_for_fpir,
    verify_10_fold,
)
from oneeye.gallery import GalleryIndex
from oneeye.types import UNKNOWN, Template

logger = logging.getLogger(__name__)
console = Console()

Embeddings = npt.NDArray[np.float32]
FAR_POINT = 1e-3
FPIR_TARGET = 0.01


def _unit(vectors: npt.NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _mean_of(views: npt.NDArray[np.float32], which: list[int]) -> Embeddings:
    return _unit(_unit(views[:, which]).mean(axis=1))


VARIANTS: dict[str, Callable[[npt.NDArray[np.float32]], Embeddings]] = {
    "5-point": lambda v: _unit(v[:, 0]),
    "5-point + mirror": lambda v: _mean_of(v, [0, 1]),
    "68-point + mirror": lambda v: _mean_of(v, [2, 3]),
    "5+68-point + mirrors": lambda v: _mean_of(v, [0, 1, 2, 3]),
}
"""How OneEye's raw views become one embedding; the first rows of the "what was tried" table."""

SHIPPED = "5-point + mirror"
"""The combination FaceEngine ships (EngineSettings defaults)."""


def pair_distances(embeddings: npt.NDArray[np.float32], pairs: LfwPairs) -> npt.NDArray[np.float64]:
    """Euclidean distance of every pair; +inf where either image has no face."""
    diff = embeddings[pairs.first].astype(np.float64) - embeddings[pairs.second]
    distances = np.linalg.norm(diff, axis=1)
    return np.where(np.isnan(distances), np.inf, distances)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the verification table."""

    name: str
    result: Verification
    tar: float
    distances: npt.NDArray[np.float64]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mean_accuracy": self.result.mean,
            "std": self.result.std,
            "errors": self.result.errors,
            "fold_accuracy": list(self.result.fold_accuracy),
            "fold_threshold": list(self.result.fold_threshold),
            "tar_at_far_0.1%": self.tar,
        }


def verification_row(name: str, embeddings: Embeddings, pairs: LfwPairs) -> Row:
    """Score one way of embedding faces on all 6,000 pairs."""
    distances = pair_distances(embeddings, pairs)
    result = verify_10_fold(distances, pairs.same, pairs.fold)
    tar, _ = tar_at_far(distances, pairs.same, FAR_POINT)
    return Row(name, result, tar, distances)


def centred_row(name: str, embeddings: Embeddings, pairs: LfwPairs) -> Row:
    """Score normalisation by centring: subtract the mean embedding of the 9 training folds'
    images (fitted per fold, never on the test fold), renormalise, then threshold."""
    fold_distances = []
    for k in range(int(pairs.fold.max()) + 1):
        train = pairs.fold != k
        used = np.unique(np.concatenate([pairs.first[train], pairs.second[train]]))
        usable = used[~np.isnan(embeddings[used, 0])]
        centre = embeddings[usable].mean(axis=0)
        fold_distances.append(pair_distances(_unit(embeddings - centre), pairs))
    rows = np.stack(fold_distances)
    result = verify_10_fold(rows, pairs.same, pairs.fold)
    distances = rows[0]
    tar, _ = tar_at_far(distances, pairs.same, FAR_POINT)
    return Row(name, result, tar, distances)


def cohort_row(name: str, embeddings: Embeddings, pairs: LfwPairs, top: int = 50) -> Row:
    """Adaptive score normalisation: each image's similarity to its ``top`` nearest images of
    the 9 training folds (the cohort) gives a mean and spread; a pair's cosine similarity is
    z-scored against both images' and averaged. Fitted per fold, never on the test fold."""
    used = np.unique(np.concatenate([pairs.first, pairs.second]))
    rows = []
    for k in range(int(pairs.fold.max()) + 1):
        train = pairs.fold != k
        cohort = np.unique(np.concatenate([pairs.first[train], pairs.second[train]]))
        similarity = embeddings[used] @ embeddings[cohort].T
        similarity[used[:, None] == cohort[None, :]] = -1.0  # an image is not its own cohort
        nearest = np.sort(similarity, axis=1)[:, -top:]
        mean = np.zeros(len(embeddings))
        spread = np.ones(len(embeddings))
        mean[used], spread[used] = nearest.mean(axis=1), nearest.std(axis=1)
        cosine = (embeddings[pairs.first] * embeddings[pairs.second]).sum(axis=1)
        z = ((cosine - mean[pairs.first]) / spread[pairs.first]) + (
            (cosine - mean[pairs.second]) / spread[pairs.second]
        )
        rows.append(-z / 2.0)
    per_fold = np.stack(rows)
    result = verify_10_fold(per_fold, pairs.same, pairs.fold)
    tar, _ = tar_at_far(per_fold[0], pairs.same, FAR_POINT)
    return Row(name, result, tar, per_fold[0])


def _jitter_rows(
    images_dir: Path,
    pairs: LfwPairs,
    pair_images: list[int],
    ours_views: npt.NDArray[np.float32],
    cache_dir: Path,
    workers: int,
) -> list[Row]:
    jitter = extract("oneeye-jitter", images_dir, list(pairs.images), cache_dir, workers).views
    plain = _unit(ours_views[pair_images])
    jittered = _unit(jitter)
    return [
        verification_row("OneEye 5-point, 8 jitters + 8 mirrored", _unit(jittered.mean(1)), pairs),
        verification_row(
            "OneEye 5+68-point + mirrors + 16 jitters",
            _unit(np.concatenate([jittered, plain], axis=1).mean(axis=1)),
            pairs,
        ),
    ]


def open_set(
    images: tuple[str, ...], embeddings: Embeddings, margin: float = 0.0
) -> tuple[OpenSetScores, npt.NDArray[np.bool_]]:
    """Nearest-person scores for every probe, and which probes are in the "choose" half.

    Args:
        images: every LFW image (relative paths, sorted).
        embeddings: their embeddings (NaN rows for no face).
        margin: also require the second-nearest person to be at least this much farther.

    Returns:
        The scores, and a mask of probes whose person falls in the half used to choose the
        threshold (the other half is where it is measured).
    """
    people: dict[str, list[int]] = {}
    for index, image in enumerate(images):
        people.setdefault(person_of(image), []).append(index)
    gallery_idx = [rows[0] for rows in people.values() if len(rows) >= 2]
    gallery_person = np.array([person_of(images[i]) for i in gallery_idx])
    gallery = embeddings[gallery_idx]
    usable = ~np.isnan(gallery[:, 0])
    gallery, gallery_person = gallery[usable], gallery_person[usable]
    in_gallery = set(gallery_idx)
    probes = [i for i in range(len(images)) if i not in in_gallery]
    probe_person = np.array([person_of(images[i]) for i in probes])
    mated = np.array([len(people[p]) >= 2 for p in probe_person])
    vectors = embeddings[probes]
    nearest = np.full(len(probes), np.inf)
    correct = np.zeros(len(probes), dtype=np.bool_)
    accepted = np.ones(len(probes), dtype=np.bool_)
    g = gallery.astype(np.float32)
    for start in range(0, len(probes), 1024):
        block = vectors[start : start + 1024]
        ok = ~np.isnan(block[:, 0])
        d2 = (block[ok] ** 2).sum(1)[:, None] + (g**2).sum(1)[None, :] - 2.0 * block[ok] @ g.T
        d = np.sqrt(np.maximum(d2, 0.0))
        order = np.argsort(d, axis=1)[:, :2]
        rows = np.flatnonzero(ok) + start
        nearest[rows] = d[np.arange(len(d)), order[:, 0]]
        correct[rows] = gallery_person[order[:, 0]] == probe_person[rows]
        if margin > 0.0:
            second = d[np.arange(len(d)), order[:, 1]]
            accepted[rows] = (second - nearest[rows]) >= margin
    choose = np.array([zlib.crc32(p.encode()) % 2 == 0 for p in probe_person])
    return OpenSetScores(nearest, correct, mated, accepted), choose


def _subset(scores: OpenSetScores, mask: npt.NDArray[np.bool_]) -> OpenSetScores:
    return OpenSetScores(
        scores.nearest_distance[mask],
        scores.correct[mask],
        scores.mated[mask],
        scores.accepted[mask],
    )


def detector_summary(features: FeatureSet, subset: list[int]) -> dict[str, int]:
    """How many images each detector stage answered (``none``: no face at all)."""
    return dict(Counter(features.stages[i] for i in subset).most_common())


def main(
    data_dir: Path,
    results_dir: Path,
    cache_dir: Path,
    workers: int = 2,
    reference: bool = True,
    jitter_study: bool = False,
    speed_check: bool | None = None,
    site: tuple[int, int] = (299, 1000),
) -> dict[str, Any]:
    """Run the benchmark, print its tables and write ``lfw.json`` and PNG curves.

    Args:
        data_dir: the LFW folder (``images/`` and ``pairs.txt``).
        results_dir: where results go.
        cache_dir: where extracted features are cached between runs.
        workers: worker processes for extraction.
        reference: also run face_recognition 1.3.0.
        jitter_study: also score jittered views (16 more encodings per pair image; slow).
        speed_check: measure encoding throughput against face_recognition (it must be installed);
            ``None`` does so when ``reference`` is on. The speed check encodes 200 faces, so
            it can run without re-extracting the reference's features of every image.
        site: enrolled people and strangers of the simulated site (a smoke run on a tiny
            LFW-shaped folder makes it small).

    Returns:
        The results written to ``lfw.json``.
    """
    images_dir = data_dir / "images"
    pairs = read_pairs(data_dir / "pairs.txt")
    everything = all_images(images_dir)
    index = {name: i for i, name in enumerate(everything)}
    pair_images = [index[name] for name in pairs.images]
    remap = np.array(pair_images)
    pairs_all = LfwPairs(
        images=tuple(everything),
        first=remap[pairs.first],
        second=remap[pairs.second],
        same=pairs.same,
        fold=pairs.fold,
    )
    started = time.perf_counter()
    methods = ["oneeye"] + (["reference"] if reference else [])
    features = {m: extract(m, images_dir, everything, cache_dir, workers) for m in methods}
    results: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "workers": workers},
        "pairs": len(pairs),
        "pair_images": len(pair_images),
        "all_images": len(everything),
    }
    rows: list[Row] = []
    ours_views = features["oneeye"].views
    for name, combine in VARIANTS.items():
        label = f"OneEye {name}" + (" (shipped)" if name == SHIPPED else "")
        rows.append(verification_row(label, combine(ours_views), pairs_all))
    shipped = VARIANTS[SHIPPED](ours_views)
    rows.append(centred_row(f"OneEye {SHIPPED}, centred", shipped, pairs_all))
    rows.append(cohort_row(f"OneEye {SHIPPED}, cohort-normalised", shipped, pairs_all))
    if jitter_study:
        rows.extend(_jitter_rows(images_dir, pairs, pair_images, ours_views, cache_dir, workers))
    if reference:
        ref = features["reference"].views[:, 0]
        rows.insert(0, verification_row("face_recognition 1.3.0", ref, pairs_all))
    table = Table(title="LFW verification, 6,000 pairs, 10-fold")
    for column in ("method", "accuracy", "± std", "errors", "TAR@FAR=0.1%"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            f"{row.result.mean:.2%}",
            f"{row.result.std:.2%}",
            str(row.result.errors),
            f"{row.tar:.2%}",
        )
    console.print(table)
    results["verification"] = [row.as_dict() for row in rows]
    detectors = {m: detector_summary(features[m], pair_images) for m in methods}
    results["detector_stages_pair_images"] = detectors
    console.print(f"detector stages on the {len(pair_images)} pair images: {detectors}")
    for m in methods:
        f = features[m]
        seconds = f.detect_seconds[pair_images] + f.encode_seconds[pair_images]
        results.setdefault("ms_per_image", {})[m] = {
            "cpu_total": float(seconds.mean() * 1000),
            "cpu_detect": float(f.detect_seconds[pair_images].mean() * 1000),
            "cpu_encode": float(f.encode_seconds[pair_images].mean() * 1000),
        }
    console.print(f"CPU ms per image: {results['ms_per_image']}")
    _plot_roc(rows, pairs.same, results_dir / "lfw_roc.png")
    results["open_set"] = _open_set_section(everything, features, shipped, results_dir, site)
    if reference if speed_check is None else speed_check:
        sample = [pairs.images[i] for i in range(0, len(pairs.images), len(pairs.images) // 200)]
        speed = throughput.measure(images_dir, sample)
        results["encoding_throughput"] = {
            "faces": speed.faces,
            "oneeye_faces_per_cpu_second": speed.oneeye_faces_per_cpu_second,
            "reference_faces_per_cpu_second": speed.reference_faces_per_cpu_second,
            "ratio": speed.ratio,
            "backend": speed.backend,
            "views_per_face": speed.views_per_face,
        }
        console.print(
            f"encoding throughput, one core: OneEye {speed.oneeye_faces_per_cpu_second:.1f} "
            f"faces/s ({speed.views_per_face} views per face, {speed.backend}) vs "
            f"face_recognition {speed.reference_faces_per_cpu_second:.1f} faces/s: "
            f"ratio {speed.ratio:.2f}"
        )
    results["seconds"] = time.perf_counter() - started
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "lfw.json").write_text(json.dumps(results, indent=2))
    return results


MARGINS = (0.0, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08)
FPIR_CHOICE = 0.008
"""The threshold is chosen for this FPIR on the "choose" half, below the 1% target, because
the measured FPIR of another set of strangers scatters around the chosen one."""


def choose_operating_point(
    images: tuple[str, ...], embeddings: Embeddings
) -> tuple[float, float, dict[float, tuple[OpenSetScores, npt.NDArray[np.bool_]]]]:
    """Choose margin and threshold on the choose half: the pair with the highest DIR at
    ``FPIR_CHOICE`` there. The other half is never looked at.

    Returns:
        ``(margin, threshold, scores by margin)``.
    """
    by_margin = {margin: open_set(images, embeddings, margin) for margin in MARGINS}
    best = (-1.0, 0.0, 0.0)
    for margin, (scores, choose) in by_margin.items():
        threshold = threshold_for_fpir(_subset(scores, choose), FPIR_CHOICE)
        dir_, _ = open_set_rates(_subset(scores, choose), threshold)
        if dir_ > best[0]:
            best = (dir_, margin, threshold)
    return best[1], best[2], by_margin


def _name(
    probes: Embeddings, gallery: Embeddings, threshold: float, margin: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Nearest gallery row of each probe, and whether it is accepted (threshold and margin)."""
    d = np.sqrt(np.maximum(2.0 - 2.0 * probes @ gallery.T, 0.0))
    order = np.argsort(d, axis=1)[:, :2]
    first = d[np.arange(len(probes)), order[:, 0]]
    second = d[np.arange(len(probes)), order[:, 1]]
    return order[:, 0], (first <= threshold) & (second - first >= margin)


def simulate_deployment(
    images: tuple[str, ...],
    embeddings: Embeddings,
    threshold: float,
    margin: float,
    enrolled: int = 299,
    strangers: int = 1000,
    draws: int = 20,
) -> dict[str, float]:
    """DIR and FPIR of a site with ``enrolled`` people and ``strangers`` walking past, drawn at
    random (seeded) from the people of the measure half only, at a fixed operating point.

    Returns:
        Mean DIR, mean FPIR and the worst draw's FPIR.
    """
    people: dict[str, list[int]] = {}
    for index, image in enumerate(images):
        person = person_of(image)
        if zlib.crc32(person.encode()) % 2 == 1:
            people.setdefault(person, []).append(index)
    several = [p for p, rows in people.items() if len(rows) >= 2]
    single = [p for p, rows in people.items() if len(rows) == 1]
    rng = np.random.default_rng(0)
    results = []
    for _ in range(draws):
        chosen = [several[i] for i in rng.choice(len(several), enrolled, replace=False)]
        gallery = embeddings[[people[p][0] for p in chosen]]
        probes = [(row, p) for p in chosen for row in people[p][1:]]
        walkers = [people[single[i]][0] for i in rng.choice(len(single), strangers, replace=False)]

        who, accepted = _name(embeddings[[row for row, _ in probes]], gallery, threshold, margin)
        truth = np.array([chosen.index(p) for _, p in probes])
        _, false_named = _name(embeddings[walkers], gallery, threshold, margin)
        results.append((float(np.mean(accepted & (who == truth))), float(np.mean(false_named))))
    table = np.array(results)
    return {
        "enrolled": enrolled,
        "strangers": strangers,
        "draws": draws,
        "dir": float(table[:, 0].mean()),
        "fpir": float(table[:, 1].mean()),
        "fpir_worst_draw": float(table[:, 1].max()),
    }


def through_gallery(
    images: tuple[str, ...], embeddings: Embeddings, threshold: float, margin: float
) -> tuple[float, float]:
    """DIR and FPIR over all probes, decided by the shipped ``GalleryIndex.identify``."""
    people: dict[str, list[int]] = {}
    for index, image in enumerate(images):
        people.setdefault(person_of(image), []).append(index)
    gallery = GalleryIndex(default_threshold=threshold, margin=margin)
    enrolled = {rows[0] for rows in people.values() if len(rows) >= 2}
    gallery.add_many(
        Template(
            id=images[i], person=person_of(images[i]), watchlist="lfw", embedding=embeddings[i]
        )
        for i in sorted(enrolled)
    )
    probes = [i for i in range(len(images)) if i not in enrolled]
    answers = gallery.identify_batch(embeddings[probes], k=1)
    mated = np.array([len(people[person_of(images[i])]) >= 2 for i in probes])
    named = np.array([a.person for a in answers])
    truth = np.array([person_of(images[i]) for i in probes])
    dir_ = float(np.mean(named[mated] == truth[mated]))
    fpir = float(np.mean(named[~mated] != UNKNOWN))
    return dir_, fpir


def _curve(scores: OpenSetScores) -> npt.NDArray[np.float64]:
    thresholds = np.unique(scores.nearest_distance[np.isfinite(scores.nearest_distance)])
    picks = thresholds[np.linspace(0, len(thresholds) - 1, 400).astype(int)]
    return np.array([open_set_rates(scores, float(t)) for t in picks])


def _open_set_section(
    everything: list[str],
    features: dict[str, FeatureSet],
    shipped: Embeddings,
    results_dir: Path,
    site_size: tuple[int, int] = (299, 1000),
) -> dict[str, Any]:
    images = tuple(everything)
    margin, threshold, by_margin = choose_operating_point(images, shipped)
    out: dict[str, Any] = {
        "gallery": "first photo of each of the 1,680 people with 2+ photos",
        "probes": "their other photos (mated) + every photo of the 4,069 people with one",
        "choice": f"margin and threshold with the best DIR at FPIR {FPIR_CHOICE:.1%} on the "
        "people whose name's CRC32 is even; measured on the others",
        "shipped": {"threshold": threshold, "margin": margin},
    }
    rows: dict[str, tuple[OpenSetScores, npt.NDArray[np.bool_], float]] = {}
    plain, choose = by_margin[0.0]
    rows[f"OneEye {SHIPPED}, threshold only"] = (
        plain,
        choose,
        threshold_for_fpir(_subset(plain, choose), FPIR_CHOICE),
    )
    scores, choose = by_margin[margin]
    rows[f"OneEye {SHIPPED}, margin {margin:.2f} (shipped)"] = (scores, choose, threshold)
    if "reference" in features:
        ref_scores, ref_choose = open_set(images, features["reference"].views[:, 0])
        rows["face_recognition 1.3.0"] = (
            ref_scores,
            ref_choose,
            threshold_for_fpir(_subset(ref_scores, ref_choose), FPIR_CHOICE),
        )
        rows["face_recognition 1.3.0 at its tolerance 0.6"] = (ref_scores, ref_choose, 0.6)
    table = Table(
        title="LFW open-set identification: chosen on half the people, measured on the rest"
    )
    for column in ("method", "threshold", "DIR", "FPIR", "DIR (all)", "FPIR (all)"):
        table.add_column(column)
    curves = {}
    for name, (scores, choose, t) in rows.items():
        dir_, fpir = open_set_rates(_subset(scores, ~choose), t)
        dir_all, fpir_all = open_set_rates(scores, t)
        out[name] = {
            "threshold": t,
            "dir": dir_,
            "fpir": fpir,
            "dir_all": dir_all,
            "fpir_all": fpir_all,
        }
        table.add_row(
            name, f"{t:.3f}", f"{dir_:.2%}", f"{fpir:.2%}", f"{dir_all:.2%}", f"{fpir_all:.2%}"
        )
        if "tolerance" not in name:
            curves[name] = _curve(scores)
    console.print(table)
    gallery_dir, gallery_fpir = through_gallery(images, shipped, threshold, margin)
    out["shipped_through_gallery_index"] = {"dir_all": gallery_dir, "fpir_all": gallery_fpir}
    console.print(
        f"the same, decided by GalleryIndex.identify: DIR {gallery_dir:.2%}, "
        f"FPIR {gallery_fpir:.2%} (all probes)"
    )
    enrolled, strangers = site_size
    site = simulate_deployment(images, shipped, threshold, margin, enrolled, strangers)
    out[f"site_{enrolled}_enrolled_{strangers}_strangers"] = site
    console.print(
        f"a site with {enrolled} enrolled and {strangers:,} strangers ({site['draws']} random "
        f"draws from the measure half): DIR {site['dir']:.2%}, FPIR {site['fpir']:.2%} "
        f"(worst draw {site['fpir_worst_draw']:.2%})"
    )
    _plot_open_set(curves, results_dir / "lfw_open_set.png")
    return out


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - the bench extra; only benchmarks draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _save(plt: Any, figure: Any, axes: Any, path: Path) -> None:
    """Grid, legend, write the PNG, free the figure."""
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def _plot_roc(rows: list[Row], same: npt.NDArray[np.bool_], path: Path) -> None:
    """ROC curves (TAR against FAR, log scale) of every verification row."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 5.5))
    for row in rows:
        far, tar, _ = roc(row.distances, same)
        axes.plot(np.maximum(far, 1e-4), tar, label=f"{row.name} ({row.result.mean:.2%})")
    axes.axvline(FAR_POINT, color="grey", linestyle=":", linewidth=1)
    axes.set(
        xscale="log",
        xlim=(1e-4, 1.0),
        ylim=(0.8, 1.0),
        xlabel="false accept rate",
        ylabel="true accept rate",
        title="LFW verification ROC (6,000 pairs)",
    )
    _save(plt, figure, axes, path)


def _plot_open_set(curves: dict[str, npt.NDArray[np.float64]], path: Path) -> None:
    """Rank-1 identification rate against false-positive identification rate."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 5.5))
    for name, curve in curves.items():
        axes.plot(np.maximum(curve[:, 1], 1e-4), curve[:, 0], label=name)
    axes.axvline(FPIR_TARGET, color="red", linestyle="--", linewidth=1, label="FPIR 1%")
    axes.set(
        xscale="log",
        xlim=(1e-4, 1.0),
        ylim=(0.0, 1.0),
        xlabel="strangers named as someone (FPIR)",
        ylabel="enrolled people named correctly (rank-1 DIR)",
        title="LFW open-set identification",
    )
    _save(plt, figure, axes, path)
