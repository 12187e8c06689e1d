"""What lifts LFW open-set identification from one enrolment photo (issue 13).

    python bench/lfw_open_set_study.py --data ../shared/data/lfw [--cache bench/.cache]
        [--workers 1] [--smoke]

Reuses ``bench/lfw.py``'s extracted features (``bench/.cache``; the first extraction of all
13,233 images costs ~20 min of CPU) and, for a random 600 of the 1,680 gallery people, encodes
their enrolment photo again with jitter (``bench.lib.extract.EnrolmentJitterExtractor``: the
5-point chip, its mirror and 8 jittered copies of each, as ``embed_chips`` makes them).

Methods, each with its parameters and threshold chosen on the choose half of the people
(CRC32 of the name even, FPIR 0.8% there) and measured on the other half (``bench.lib.
open_set_study``):

- the shipped rule: threshold + margin over the second-nearest person (margins 0-0.08);
- a ratio rule: the nearest at most r times the second-nearest's distance;
- gallery-cohort normalisation: each person's score shifted by how near their own nearest
  gallery neighbours are (a crowded part of face space needs a nearer face), with the margin;
- enrolment-side jitter (on the 600-person gallery, paired with the plain enrolment on the
  same gallery): the template averages 2 + 2n views of the one photo, n = 2, 4, 8.

Results: ``bench/results/lfw_open_set_study.json`` and ``lfw_open_set_study.png``.
``--smoke`` runs it on a tiny LFW-shaped folder (the tests make one) in a temporary folder.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.extract import ENROL_JITTERS, extract
from bench.lib.lfw_cli import lfw_options, smoke_folders
from bench.lib.lfw_data import all_images
from bench.lib.metrics import open_set_rates
from bench.lib.open_set_study import (
    SUBSET_PEOPLE,
    Embeddings,
    Method,
    Outcome,
    best_of,
    cohort_means,
    distances,
    gallery_images,
    protocol,
    score,
    subset,
    subset_people,
    unit,
)
from oneeye.config import DEFAULT_MARGIN, DEFAULT_THRESHOLD

console = Console()

MARGINS = (0.0, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08)
RATIOS = (0.80, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96)
COHORT_WEIGHTS = (0.5, 1.0, 1.5)
JITTER_COUNTS = (2, 4, 8)


def shipped_embeddings(views: npt.NDArray[np.float32]) -> Embeddings:
    """The shipped embedding from the extractor's views: 5-point chip and its mirror."""
    return unit(unit(views[:, [0, 1]]).mean(axis=1))


def enrolment_embeddings(views: npt.NDArray[np.float32], jitters: int) -> Embeddings:
    """An enrolment template with ``jitters`` jittered copies of the chip and of its mirror
    (``EnrolmentJitterExtractor``'s views: chip, mirror, then ENROL_JITTERS of each)."""
    which = [0, 1, *range(2, 2 + jitters), *range(2 + ENROL_JITTERS, 2 + ENROL_JITTERS + jitters)]
    return unit(unit(views[:, which]).mean(axis=1))


def margin_family(name: str, cohort: float = 0.0) -> list[Method]:
    return [Method(name, "margin", m, cohort) for m in MARGINS]


def fixed_point(
    d: npt.NDArray[np.float32], truth: npt.NDArray[np.intp], choose: npt.NDArray[np.bool_]
) -> dict[str, float]:
    """DIR and FPIR at the shipped threshold and margin, unchanged (measure half and all)."""
    scores = score(d, truth, Method("fixed", "margin", DEFAULT_MARGIN))
    dir_, fpir = open_set_rates(subset(scores, ~choose), DEFAULT_THRESHOLD)
    dir_all, fpir_all = open_set_rates(scores, DEFAULT_THRESHOLD)
    return {"dir": dir_, "fpir": fpir, "dir_all": dir_all, "fpir_all": fpir_all}


def run(
    data_dir: Path,
    results_dir: Path,
    cache_dir: Path,
    workers: int,
    jitter_people: int = SUBSET_PEOPLE,
) -> dict[str, Any]:
    """The whole study; prints its tables, writes JSON and PNG, returns the results."""
    started = time.perf_counter()
    images_dir = data_dir / "images"
    everything = all_images(images_dir)
    views = extract("oneeye", images_dir, everything, cache_dir, workers).views
    shipped = shipped_embeddings(views)
    results: dict[str, Any] = {"images": len(everything)}

    # The whole 1,680-person gallery: rules and cohort normalisation on the shipped features.
    full = protocol(everything)
    column = {p: i for i, p in enumerate(full.gallery_person)}
    truth = np.array([column.get(p, -1) for p in full.probe_person], dtype=np.intp)
    gallery = shipped[full.gallery]
    d = distances(shipped[full.probes], gallery)
    cohort = cohort_means(gallery)
    families: dict[str, list[Method]] = {
        "shipped rule: threshold + margin": margin_family("margin"),
        "threshold + ratio": [Method("ratio", "ratio", r) for r in RATIOS],
    }
    for weight in COHORT_WEIGHTS:
        families[f"cohort-shifted (x{weight:g}) + margin"] = margin_family("cohort", weight)
    full_rows: dict[str, Outcome] = {}
    everything_tried: list[dict[str, object]] = []
    for name, methods in families.items():
        best, tried = best_of(d, truth, full.choose, methods, cohort)
        full_rows[name] = best
        everything_tried += [{"family": name, **o.as_dict()} for o in tried]
    results["full_gallery"] = {
        "gallery_people": len(full.gallery),
        "probes": len(full.probes),
        "best_per_family": {k: v.as_dict() for k, v in full_rows.items()},
        "fixed_shipped_point": fixed_point(d, truth, full.choose),
        "everything_tried": everything_tried,
    }
    print_table(f"LFW open-set, all {len(full.gallery):,} gallery people", full_rows)

    # A random 600 of them (or --jitter-people), enrolled with jitter, paired with the plain
    # enrolment.
    people = subset_people(everything, jitter_people)
    enrol_views = extract(
        "oneeye-enrol-jitter", images_dir, gallery_images(everything, people), cache_dir, workers
    ).views
    part = protocol(everything, set(people))
    assert part.gallery_person == people
    column = {p: i for i, p in enumerate(part.gallery_person)}
    truth = np.array([column.get(p, -1) for p in part.probe_person], dtype=np.intp)
    probes = shipped[part.probes]
    templates: dict[str, Embeddings] = {"plain (shipped)": shipped[part.gallery]}
    np.testing.assert_allclose(  # the extractor's plain views are the cached ones
        np.nan_to_num(enrolment_embeddings(enrol_views, 0)),
        np.nan_to_num(templates["plain (shipped)"]),
        atol=1e-4,
    )
    for n in JITTER_COUNTS:
        templates[f"enrolment jitter {n}+{n} ({2 + 2 * n} views)"] = enrolment_embeddings(
            enrol_views, n
        )
    part_rows: dict[str, Outcome] = {}
    fixed: dict[str, dict[str, float]] = {}
    for name, template in templates.items():
        dd = distances(probes, template)
        part_rows[name], _ = best_of(dd, truth, part.choose, margin_family(name))
        fixed[name] = fixed_point(dd, truth, part.choose)
        weight = 1.0
        part_rows[f"{name}, cohort-shifted (x{weight:g})"], _ = best_of(
            dd, truth, part.choose, margin_family(name, weight), cohort_means(template)
        )
    results["subset_gallery"] = {
        "gallery_people": len(part.gallery),
        "probes": len(part.probes),
        "best_per_template": {k: v.as_dict() for k, v in part_rows.items()},
        "fixed_shipped_point": fixed,
    }
    print_table(f"LFW open-set, a random {len(part.gallery)} gallery people", part_rows)
    for name, point in fixed.items():
        console.print(
            f"at the shipped 0.32 / margin 0.05, {name}: DIR {point['dir']:.2%}, "
            f"FPIR {point['fpir']:.2%} (measure half)"
        )
    results["seconds"] = time.perf_counter() - started
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "lfw_open_set_study.json").write_text(json.dumps(results, indent=2))
    plot({**full_rows, **{f"{len(people)}: {k}": v for k, v in part_rows.items()}}, results_dir)
    return results


def print_table(title: str, rows: dict[str, Outcome]) -> None:
    table = Table(title=title)
    for column in ("method", "chosen", "threshold", "DIR choose", "DIR", "FPIR", "DIR all"):
        table.add_column(column)
    for name, o in rows.items():
        table.add_row(
            name,
            f"{o.method.rule} {o.method.value:g}",
            f"{o.threshold:.3f}",
            f"{o.choose_dir:.2%}",
            f"{o.dir:.2%}",
            f"{o.fpir:.2%}",
            f"{o.dir_all:.2%}",
        )
    console.print(table)


def plot(rows: dict[str, Outcome], results_dir: Path) -> None:
    """DIR on the measure half of every method's best, FPIR written on each bar."""
    import matplotlib  # noqa: PLC0415 - the bench extra; only benchmarks draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(rows)
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
    values = [rows[n].dir for n in names]
    bars = axes.barh(range(len(names)), values, color="steelblue")
    for bar, name in zip(bars, names, strict=True):
        axes.text(
            bar.get_width() + 0.005,
            bar.get_y() + bar.get_height() / 2,
            f"{rows[name].dir:.1%} at FPIR {rows[name].fpir:.2%}",
            va="center",
            fontsize=8,
        )
    axes.axvline(0.80, color="red", linestyle="--", linewidth=1, label="target DIR 80%")
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0.0, 1.0), xlabel="DIR, measure half (chosen on the other half)")
    axes.set_title("LFW open-set identification from one photo: what each method gives")
    axes.legend(loc="lower right", fontsize=8)
    figure.savefig(results_dir / "lfw_open_set_study.png", dpi=120, bbox_inches="tight")
    plt.close(figure)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@lfw_options(workers=1)
@click.option(
    "--jitter-people",
    type=click.IntRange(1),
    default=SUBSET_PEOPLE,
    show_default=True,
    help="Gallery people enrolled with jitter too (at random; 1680 or more: all of them).",
)
@click.option("--smoke", is_flag=True, help="A tiny run to see the script works; writes nothing.")
def main(
    data_dir: Path,
    results_dir: Path,
    cache_dir: Path,
    workers: int,
    jitter_people: int,
    smoke: bool,
) -> None:
    """What lifts LFW open-set identification from one enrolment photo."""
    if smoke:
        with smoke_folders() as (scratch_results, scratch_cache):
            run(data_dir, scratch_results, scratch_cache, 1)
        return
    run(data_dir, results_dir, cache_dir, workers, jitter_people)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
