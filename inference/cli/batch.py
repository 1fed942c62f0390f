"""``lobule batch``: a cohort of slides on Ray, each slide exported exactly as ``lobule analyze``.

``lobule batch INPUT --out DIR [--model NAME_OR_CARD|classical] [--address ADDR] [--workers N]
[--cpus-per-worker C] [--gpus-per-worker F]`` takes a folder of slides or a CSV manifest (columns
slide, case, mpp, roi, notes), writes DIR/<case>/ (summary.json, regions.csv, classes.geojson,
labels.tif), DIR/cohort.csv and DIR/cohort.html. Re-running skips cases whose provenance (slide,
model, settings) is unchanged.
"""
from __future__ import annotations

import argparse
import sys


def register(commands, train) -> None:
    from lobule.inference.cli.analyze import add_slide_model_options

    p = commands.add_parser(
        "batch",
        help="analyse a cohort of slides on Ray (this machine or a cluster)",
        description="Analyse every slide of a folder or CSV manifest (columns: slide, and optional case, mpp, "
                    "roi, notes) as `lobule analyze` does, into DIR/<case>/, and write DIR/cohort.csv and "
                    "DIR/cohort.html. Slides, region files and DIR must be at the same path on every Ray node.",
    )
    p.add_argument("input", metavar="INPUT", help="folder of slides, or CSV manifest with a header row")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (one sub-folder per case)")
    add_slide_model_options(p, readers_help="tile reader threads per worker (default: 1 on 2 cores or fewer, else 2)")
    p.add_argument("--address", metavar="ADDR",
                   help="join a running Ray cluster (HOST:PORT, or 'auto'); default: a local Ray instance "
                        "sized to this machine, stopped at the end")
    p.add_argument("--workers", type=int, metavar="N", help="workers, each holding the model once "
                   "(default: as many as the cluster's CPUs fit)")
    p.add_argument("--cpus-per-worker", type=float, metavar="C",
                   help="CPUs each worker declares (default 2, or the CPUs divided by --workers)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                   help="GPUs each worker declares, e.g. 0.5 to share one GPU between two (default 0)")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="times a worker process that dies is restarted and its slide retried (1)")
    p.add_argument("--retry-failed", action="store_true",
                   help="rerun the cases that failed before (default: skip them while their inputs are unchanged)")
    p.set_defaults(func=run_batch)


def run_batch(args: argparse.Namespace) -> int:
    from lobule.inference.batch import run_cohort
    from lobule.inference.errors import InputError
    from lobule.inference.liver.quantify import QuantSettings
    from lobule.core.errors import LobuleError

    if getattr(sys, "frozen", False):  # the PyInstaller app: Ray's servers and Python workers are not bundled
        raise LobuleError("lobule batch is not part of the desktop app: run cohorts with a Python install of "
                          "Lobule (pip install -c constraints.txt lobule; see docs/cohorts.md)")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    run = run_cohort(args.input, args.out, model=args.model, device=args.device, runtime=args.runtime,
                     settings=QuantSettings.from_strings(args.settings), address=args.address,
                     workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                     gpus_per_worker=args.gpus_per_worker, retries=args.retries, retry_failed=args.retry_failed,
                     batch_size=args.batch_size, readers=args.readers, progress=not args.quiet)
    cases = len({row["case"] for row in run.rows})
    print(f"{cases} slides: {run.analysed} analysed, {run.skipped} unchanged (skipped), {run.failed} failed; "
          f"{run.workers} workers, {run.seconds:.0f} s")
    for row in run.rows:
        if row["status"] != "ok":
            print(f"  {row['case']}: {row['status']}: {row['error']}", file=sys.stderr)
    print(f"wrote {run.out}/cohort.csv, cohort.html")
    return 1 if run.failed else 0
