"""LFW benchmark: 10-fold verification, open-set identification and encoding throughput.

``python bench/lfw.py --data ../shared/data/lfw [--workers 2] [--no-reference]``; the
protocol is in ``bench/lib/lfw_protocol.py``. ``--smoke --data DIR`` runs the protocol on a
tiny LFW-shaped folder (the tests make one), without face_recognition, with a small simulated
site, and keeps its results and cache in a temporary folder.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib import lfw_protocol
from bench.lib.lfw_cli import lfw_options, smoke_folders


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@lfw_options(workers=2)
@click.option(
    "--reference/--no-reference",
    default=True,
    show_default=True,
    help="Also run face_recognition 1.3.0 (pip install --no-deps face_recognition==1.3.0).",
)
@click.option("--jitter-study", is_flag=True, help="Also score jittered views (slow).")
@click.option(
    "--speed/--no-speed",
    default=None,
    help="Encoding throughput against face_recognition (default: with --reference).",
)
@click.option("--smoke", is_flag=True, help="A tiny run to see the script works; writes nothing.")
def lfw(
    data_dir: Path,
    results_dir: Path,
    cache_dir: Path,
    workers: int,
    reference: bool,
    jitter_study: bool,
    speed: bool | None,
    smoke: bool,
) -> None:
    """LFW: 10-fold verification, open-set identification and encoding throughput."""
    if not (data_dir / "pairs.txt").is_file() or not (data_dir / "images").is_dir():
        raise click.BadParameter(f"{data_dir} has no pairs.txt and images/", param_hint="--data")
    if smoke:
        with smoke_folders() as (scratch_results, scratch_cache):
            lfw_protocol.main(
                data_dir,
                scratch_results,
                scratch_cache,
                workers=1,
                reference=False,
                speed_check=False,
                site=(2, 2),
            )
        return
    lfw_protocol.main(
        data_dir,
        results_dir,
        cache_dir,
        workers=workers,
        reference=reference,
        jitter_study=jitter_study,
        speed_check=speed,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lfw()
