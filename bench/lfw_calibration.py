"""Site calibration on LFW open-set: does each watchlist's automatic threshold keep FPIR near
its 1% target at every gallery size, and what does it buy in DIR against the fixed 0.32?

``python bench/lfw_calibration.py --data ../shared/data/lfw [--cache bench/.cache]`` reuses the
features ``bench/lfw.py`` caches (OneEye's shipped "5-point + mirror" embeddings; the first run
extracts them, ~20 min of CPU). ``--smoke`` runs the same steps on synthetic people in a second.

Protocol. People are split as ``bench/lib/lfw_protocol.py`` does: the name's CRC32 even is the
*choosing* half, odd the *measuring* half. A site enrols ``size`` people with 2+ photos, drawn
at random (20 draws, seeded), one photo each (their first with a face); probes are their other
photos; strangers are every person with one photo, of the same half. The automatic threshold
sees only the enrolled photos. The method's constants (``TAIL_SHARE`` and ``SCALE`` of
:mod:`oneeye.gallery.calibration`) are chosen on the choosing half only (the pair that keeps
the mean FPIR nearest 1% at every size there), then every figure is measured on the other half
with them. The 1,680 size is every person with 2+ photos, so that gallery holds both halves'
people (one distinct draw): its strangers, and so its FPIR, are still the measuring half's only.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.extract import extract
from bench.lib.lfw_cli import lfw_options
from bench.lib.lfw_data import all_images, person_of
from bench.lib.lfw_protocol import SHIPPED, VARIANTS
from oneeye.config import DEFAULT_MARGIN, DEFAULT_THRESHOLD
from oneeye.gallery import calibration

console = Console()
Embeddings = npt.NDArray[np.float32]

TARGET = 0.01
SIZES = (50, 300, 1680)
DRAWS = 20
TAIL_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2)
SCALES = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
POWERS = (-0.4, -0.2, 0.0, 0.2, 0.4)


@dataclass(frozen=True, slots=True)
class Population:
    """One half's people: those with 2+ photos (enrollable) and the strangers."""

    several: dict[str, list[int]]
    """Person -> image rows with a face, first one first (only people whose first photo has a
    face, so each can be enrolled from it)."""
    photos: dict[str, list[int]]
    """Person -> every image row (probes without a face count as not named)."""
    strangers: list[int]
    """Image rows of the people with one photo (with a face)."""


@dataclass(frozen=True, slots=True)
class Draw:
    """One simulated site: nearest distances of its strangers and probes."""

    stranger_first: npt.NDArray[np.float64]
    stranger_second: npt.NDArray[np.float64]
    probe_first: npt.NDArray[np.float64]
    probe_second: npt.NDArray[np.float64]
    probe_correct: npt.NDArray[np.bool_]
    fits: dict[float, calibration.TailFit]
    templates: int

    def fpir(self, threshold: float, margin: float) -> float:
        """Strangers named at this operating point."""
        named = (self.stranger_first <= threshold) & (
            self.stranger_second - self.stranger_first >= margin
        )
        return float(named.mean())

    def dir(self, threshold: float, margin: float) -> float:
        """Probes named correctly at this operating point."""
        named = (
            self.probe_correct
            & (self.probe_first <= threshold)
            & (self.probe_second - self.probe_first >= margin)
        )
        return float(named.mean())


def populations(images: tuple[str, ...], embeddings: Embeddings) -> dict[str, Population]:
    """The choosing (``choose``) and measuring (``measure``) halves, and ``all`` people."""
    by_person: dict[str, list[int]] = {}
    for row, image in enumerate(images):
        by_person.setdefault(person_of(image), []).append(row)
    found = ~np.isnan(embeddings[:, 0])
    out = {}
    for half in ("choose", "measure", "all"):
        people = {
            p: rows
            for p, rows in by_person.items()
            if half == "all" or (zlib.crc32(p.encode()) % 2 == 0) == (half == "choose")
        }
        out[half] = Population(
            several={p: rows for p, rows in people.items() if len(rows) >= 2 and found[rows[0]]},
            photos=people,
            strangers=[r[0] for r in people.values() if len(r) == 1 and found[r[0]]],
        )
    return out


def _nearest_two(
    queries: Embeddings, gallery: Embeddings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    d = np.sqrt(np.maximum(2.0 - 2.0 * (queries @ gallery.T).astype(np.float64), 0.0))
    order = np.argsort(d, axis=1)[:, :2]
    rows = np.arange(len(queries))
    return d[rows, order[:, 0]], d[rows, order[:, 1]], order[:, 0]


def simulate(
    embeddings: Embeddings,
    enrolled_people: list[str],
    enrol_from: Population,
    strangers_from: Population,
    tail_shares: tuple[float, ...],
) -> Draw:
    """One site: enrol ``enrolled_people`` (first photo each), fit the calibration's tail at
    every share, and score the probes and the strangers."""
    gallery = embeddings[[enrol_from.several[p][0] for p in enrolled_people]]
    probes = [(row, i) for i, p in enumerate(enrolled_people) for row in enrol_from.photos[p][1:]]
    probe_rows = np.array([row for row, _ in probes])
    probe_vectors = np.nan_to_num(embeddings[probe_rows], nan=0.0)  # no face: never named
    first, second, nearest = _nearest_two(probe_vectors, gallery)
    found = ~np.isnan(embeddings[probe_rows, 0])
    first = np.where(found, first, np.inf)
    s_first, s_second, _ = _nearest_two(embeddings[strangers_from.strangers], gallery)
    distances = calibration.non_mate_distances(gallery, enrolled_people)
    return Draw(
        stranger_first=s_first,
        stranger_second=s_second,
        probe_first=first,
        probe_second=second,
        probe_correct=nearest == np.array([i for _, i in probes]),
        fits={share: calibration.fit_tail(distances, share) for share in tail_shares},
        templates=len(enrolled_people),
    )


def draws_for(
    embeddings: Embeddings,
    pops: dict[str, Population],
    half: str,
    size: int,
    draws: int,
    tail_shares: tuple[float, ...],
) -> list[Draw]:
    """``draws`` sites of ``size`` people whose strangers come from ``half``."""
    pool = pops[half] if size <= len(pops[half].several) else pops["all"]
    names = sorted(pool.several)
    rng = np.random.default_rng(zlib.crc32(f"{half}-{size}".encode()))
    distinct = 1 if size >= len(names) else draws
    out = []
    for _ in range(distinct):
        chosen = [names[i] for i in np.sort(rng.choice(len(names), min(size, len(names)), False))]
        out.append(simulate(embeddings, chosen, pool, pops[half], tail_shares))
    return out


@dataclass(frozen=True, slots=True)
class Constants:
    """The method's constants: ``TAIL_SHARE``, ``SCALE`` and ``SIZE_POWER``."""

    share: float
    scale: float
    power: float

    def threshold(self, draw: Draw, margin: float) -> tuple[float, str]:
        """The automatic threshold of ``draw``'s site with these constants."""
        scale = calibration.correction(draw.templates, self.scale, self.power)
        fit = draw.fits[self.share]
        return calibration.threshold_for(fit, draw.templates, TARGET, margin, scale)


def choose_constants(
    by_size: dict[int, list[Draw]], margin: float
) -> tuple[Constants, list[dict[str, float]]]:
    """The constants whose mean FPIR is nearest the target at the worst size (in ratio), on
    the choosing half's draws.

    Returns:
        The constants, and every triple's worst log ratio.
    """
    tried = []
    best = (math.inf, Constants(TAIL_SHARES[0], SCALES[0], POWERS[0]))
    for share in TAIL_SHARES:
        for scale in SCALES:
            for power in POWERS:
                constants = Constants(share, scale, power)
                worst = 0.0
                for draws in by_size.values():
                    fpir = np.mean(
                        [d.fpir(constants.threshold(d, margin)[0], margin) for d in draws]
                    )
                    worst = max(worst, abs(math.log(max(float(fpir), 1e-5) / TARGET)))
                tried.append(
                    {"tail_share": share, "scale": scale, "size_power": power, "worst": worst}
                )
                if worst < best[0]:
                    best = (worst, constants)
    return best[1], tried


def measure(draws: list[Draw], constants: Constants, margin: float, fixed: float) -> dict[str, Any]:
    """FPIR and DIR of the automatic threshold and of the fixed one over ``draws``."""
    autos = [constants.threshold(d, margin) for d in draws]
    auto_fpir = [d.fpir(t, margin) for d, (t, _) in zip(draws, autos, strict=True)]
    auto_dir = [d.dir(t, margin) for d, (t, _) in zip(draws, autos, strict=True)]
    return {
        "draws": len(draws),
        "strangers": len(draws[0].stranger_first),
        "probes": len(draws[0].probe_first),
        "auto_threshold_mean": float(np.mean([t for t, _ in autos])),
        "auto_threshold_range": [min(t for t, _ in autos), max(t for t, _ in autos)],
        "auto_methods": sorted({m for _, m in autos}),
        "auto_fpir": float(np.mean(auto_fpir)),
        "auto_fpir_range": [float(min(auto_fpir)), float(max(auto_fpir))],
        "auto_dir": float(np.mean(auto_dir)),
        "fixed_threshold": fixed,
        "fixed_fpir": float(np.mean([d.fpir(fixed, margin) for d in draws])),
        "fixed_dir": float(np.mean([d.dir(fixed, margin) for d in draws])),
    }


def _plot(
    measured: dict[int, list[Draw]],
    rows: dict[int, dict[str, Any]],
    constants: Constants,
    margin: float,
    path: Path,
) -> None:
    import matplotlib  # noqa: PLC0415 - the bench extra; only benchmarks draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, len(measured), figsize=(5.0 * len(measured), 4.2))
    axes = np.atleast_1d(axes)
    grid = np.arange(0.22, 0.5, 0.004)
    for ax, (size, draws) in zip(axes, measured.items(), strict=True):
        expected = np.mean(
            [
                calibration.expected_fpir(
                    d.fits[constants.share],
                    d.templates,
                    grid,
                    margin,
                    calibration.correction(d.templates, constants.scale, constants.power),
                )
                for d in draws
            ],
            axis=0,
        )
        actual = np.mean([[d.fpir(t, margin) for t in grid] for d in draws], axis=0)
        ax.plot(grid, np.maximum(expected, 1e-4), label="expected (model, enrolled faces only)")
        ax.plot(grid, np.maximum(actual, 1e-4), label="measured (strangers, other half)")
        ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
        row = rows[size]
        ax.axvline(
            row["auto_threshold_mean"],
            color="green",
            linestyle="--",
            linewidth=1,
            label=f"auto {row['auto_threshold_mean']:.3f}",
        )
        ax.axvline(
            row["fixed_threshold"],
            color="red",
            linestyle="--",
            linewidth=1,
            label=f"fixed {row['fixed_threshold']:.2f}",
        )
        ax.set(
            yscale="log",
            ylim=(1e-4, 0.5),
            xlabel="threshold",
            ylabel="strangers named (FPIR)",
            title=f"{size:,} enrolled",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def synthetic(people: int, rng: np.random.Generator) -> tuple[tuple[str, ...], Embeddings]:
    """LFW-shaped fake data for ``--smoke``: people of 1-3 photos around their own centre."""
    images, vectors = [], []
    for p in range(people):
        centre = rng.normal(size=128)
        centre /= np.linalg.norm(centre)
        for k in range(1 if p % 2 else 3):
            v = centre + rng.normal(scale=0.02, size=128)
            vectors.append(v / np.linalg.norm(v))
            images.append(f"p{p:04d}/p{p:04d}_{k + 1:04d}.jpg")
    return tuple(images), np.asarray(vectors, dtype=np.float32)


def run(
    images: tuple[str, ...],
    embeddings: Embeddings,
    sizes: tuple[int, ...],
    draws: int,
    results_dir: Path | None,
) -> dict[str, Any]:
    """Choose the constants on one half, measure on the other, print and write the figures."""
    margin, fixed = DEFAULT_MARGIN, DEFAULT_THRESHOLD
    pops = populations(images, embeddings)
    chosen: dict[int, list[Draw]] = {}
    measured: dict[int, list[Draw]] = {}
    with Progress(console=console) as progress:
        task = progress.add_task("sites", total=2 * len(sizes))
        for size in sizes:
            chosen[size] = draws_for(embeddings, pops, "choose", size, draws, TAIL_SHARES)
            progress.advance(task)
            measured[size] = draws_for(embeddings, pops, "measure", size, draws, TAIL_SHARES)
            progress.advance(task)
    constants, tried = choose_constants(chosen, margin)
    console.print(
        f"chosen on the choosing half: TAIL_SHARE {constants.share}, SCALE {constants.scale}, "
        f"SIZE_POWER {constants.power}"
    )
    rows = {size: measure(measured[size], constants, margin, fixed) for size in sizes}
    on_choose = {size: measure(chosen[size], constants, margin, fixed) for size in sizes}
    table = Table(
        title=f"Site calibration, target FPIR {TARGET:.0%}, margin {margin} (measuring half)"
    )
    for column in (
        "enrolled",
        "draws",
        "auto threshold",
        "FPIR auto",
        "FPIR range",
        "DIR auto",
        f"FPIR {fixed}",
        f"DIR {fixed}",
    ):
        table.add_column(column)
    for size, row in rows.items():
        low, high = row["auto_threshold_range"]
        table.add_row(
            f"{size:,}",
            str(row["draws"]),
            f"{row['auto_threshold_mean']:.3f} ({low:.3f}-{high:.3f})",
            f"{row['auto_fpir']:.2%}",
            f"{row['auto_fpir_range'][0]:.2%}-{row['auto_fpir_range'][1]:.2%}",
            f"{row['auto_dir']:.2%}",
            f"{row['fixed_fpir']:.2%}",
            f"{row['fixed_dir']:.2%}",
        )
    console.print(table)
    result: dict[str, Any] = {
        "target_fpir": TARGET,
        "margin": margin,
        "chosen": {
            "tail_share": constants.share,
            "scale": constants.scale,
            "size_power": constants.power,
            "tried": tried,
        },
        "measuring_half": {str(s): r for s, r in rows.items()},
        "choosing_half": {str(s): r for s, r in on_choose.items()},
    }
    console.print(json.dumps({"chosen": result["chosen"] | {"tried": len(tried)}}))
    if results_dir is not None:
        _plot(measured, rows, constants, margin, results_dir / "lfw_calibration.png")
        (results_dir / "lfw_calibration.json").write_text(json.dumps(result, indent=2))
    return result


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@lfw_options(workers=2, data_must_exist=False)
@click.option("--draws", type=click.IntRange(1, 1000), default=DRAWS, show_default=True)
@click.option("--smoke", is_flag=True, help="Synthetic people, tiny sizes; writes nothing.")
def main(
    data_dir: Path, results_dir: Path, cache_dir: Path, workers: int, draws: int, smoke: bool
) -> None:
    """Site calibration on LFW open-set: FPIR and DIR of the automatic threshold by size."""
    started = time.perf_counter()
    if smoke:
        images, embeddings = synthetic(160, np.random.default_rng(0))
        run(images, embeddings, (12, 30), 2, None)
        console.print(f"smoke run done in {time.perf_counter() - started:.1f} s")
        return
    if not (data_dir / "images").is_dir():
        raise click.BadParameter(f"{data_dir} has no images/", param_hint="--data")
    everything = all_images(data_dir / "images")
    features = extract("oneeye", data_dir / "images", everything, cache_dir, workers)
    embeddings = VARIANTS[SHIPPED](features.views)
    result = run(tuple(everything), embeddings, SIZES, draws, results_dir)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    result["run"] = {
        "seconds": time.perf_counter() - started,
        "commit": commit,
        "load_average": load,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (results_dir / "lfw_calibration.json").write_text(json.dumps(result, indent=2))
    console.print(f"written to {results_dir}/lfw_calibration.json and .png; load {load}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
