"""Benchmark of ``lobule batch``: slides per hour against the number of Ray workers, and the
per-slide overhead of Ray against plain ``lobule analyze``.

On a cohort of synthetic pyramidal TIFFs (or a folder of your slides) it measures, each in one
run on this machine:

- plain: the analysis function of ``lobule analyze`` called slide after slide in one process with
  the model loaded once (the floor);
- cli: ``lobule analyze`` as a subprocess per slide (interpreter start and model load each time,
  what a shell loop over slides costs);
- ray-N: ``run_cohort`` on a fresh local Ray instance with N workers of ``--cpus-per-worker``
  CPUs; the Ray start-up is reported apart from the cohort wall time.

It prints a table of seconds per slide and slides per hour, the ratio of each to ``plain`` and
the Ray overhead per slide ((ray-1 cohort time - plain time) / slides), then one JSON line.

Usage::

    python benchmarks/cohort.py                                  # 6 slides 2048x1536, colour model, workers 1 2
    python benchmarks/cohort.py --slides 8 --size 4096x3072 --model classical
    python benchmarks/cohort.py --folder /data/cohort --model liver-hne --workers 1 2 4

Models: ``colour`` (a vectorised colour-threshold labeller defined here: the pipeline's own cost),
``classical``, or an installed checkpoint name / card path.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def colour_classes(image, mpp):
    """(H, W, 3) uint8 -> (H, W) uint8 class ids by colour thresholds (cheap; no learning)."""
    import numpy as np

    r, g, b = (image[..., k].astype(np.int16) for k in range(3))
    out = np.full(image.shape[:2], 4, np.uint8)
    out[(r > 200) & (g > 200) & (b > 200)] = 1
    out[(r < 160) & (g < 120) & (b > 110)] = 2
    out[(r > 235) & (g > 235) & (b > 235)] = 0
    return out


def make_predictor(model: str, device: str):
    from lobule.inference.engine import FunctionPredictor, load_predictor

    if model == "colour":
        return FunctionPredictor(colour_classes, name="colour", mpp=0.5, tile_size=1024, margin=64)
    return load_predictor(model, device)


def make_cohort(folder: Path, count: int, size: tuple[int, int]) -> Path:
    from lobule.inference.slide.synthetic import write_pyramid_tiff

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        write_pyramid_tiff(folder / f"slide-{k:02d}.tif", size=size, mpp=0.5, seed=k)
    return folder


def plain(slides: list[Path], out: Path, model: str, device: str) -> float:
    from lobule.inference.analysis_service import analyze_to_folder

    predictor = make_predictor(model, device)
    t0 = time.perf_counter()
    for slide in slides:
        analyze_to_folder(slide, out / slide.stem, predictor=predictor)
    return time.perf_counter() - t0


def cli(slides: list[Path], out: Path, model: str, device: str) -> float | None:
    if model == "colour":
        return None  # the CLI cannot load the benchmark's own labeller
    t0 = time.perf_counter()
    for slide in slides:
        subprocess.run(["lobule", "analyze", str(slide), "--out", str(out / slide.stem), "--model", model,
                        "--device", device, "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - t0


def ray_run(folder: Path, out: Path, model: str, device: str, workers: int, cpus: float) -> tuple[float, float]:
    """(Ray start-up seconds, cohort seconds) on a fresh local instance."""
    import ray

    from lobule.inference.batch import run_cohort
    from lobule.inference.batch.runner import init_local_ray

    temp = tempfile.mkdtemp(prefix="lobule-bench-ray-")
    t0 = time.perf_counter()
    init_local_ray(os.cpu_count() or 1, temp)
    started = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        run_cohort(folder, out, load=functools.partial(make_predictor, model, device), workers=workers,
                   cpus_per_worker=cpus)
        return started, time.perf_counter() - t1
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, help="a folder of slides (default: synthetic TIFFs)")
    parser.add_argument("--slides", type=int, default=6, help="synthetic slides (6)")
    parser.add_argument("--size", default="2048x1536", help="synthetic slide size WxH (2048x1536)")
    parser.add_argument("--model", default="colour")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--skip-cli", action="store_true", help="skip the lobule analyze subprocess loop")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lobule-bench-cohort-"))
    try:
        if args.folder:
            folder = args.folder
        else:
            width, height = (int(v) for v in args.size.lower().split("x"))
            folder = make_cohort(work / "slides", args.slides, (width, height))
        from lobule.inference.batch import read_cohort

        slides = [item.slide for item in read_cohort(folder)]
        n = len(slides)
        results = {"slides": n, "model": args.model, "cpus": os.cpu_count(),
                   "plain_s": plain(slides, work / "plain", args.model, args.device)}
        if not args.skip_cli:
            results["cli_s"] = cli(slides, work / "cli", args.model, args.device)
        print(f"plain: {results['plain_s']:.1f} s for {n} slides", flush=True)
        for workers in args.workers:
            started, wall = ray_run(folder, work / f"ray-{workers}", args.model, args.device, workers,
                                    args.cpus_per_worker)
            results[f"ray{workers}_startup_s"] = started
            results[f"ray{workers}_s"] = wall
            print(f"ray-{workers}: start-up {started:.1f} s, cohort {wall:.1f} s", flush=True)
        print(f"{n} slides, model {args.model}, {os.cpu_count()} CPUs")
        print(f"{'run':<10}{'s/slide':>10}{'slides/h':>10}{'vs plain':>10}")
        base = results["plain_s"]
        rows = [("plain", base), ("cli", results.get("cli_s"))]
        rows += [(f"ray-{w}", results[f"ray{w}_s"]) for w in args.workers]
        for name, seconds in rows:
            if seconds is None:
                continue
            print(f"{name:<10}{seconds / n:>10.2f}{3600 * n / seconds:>10.0f}{base / seconds:>10.2f}")
        if 1 in args.workers:
            results["ray_overhead_s_per_slide"] = (results["ray1_s"] - base) / n
            print(f"Ray overhead per slide (ray-1 - plain): {results['ray_overhead_s_per_slide']:.2f} s; "
                  f"Ray start-up {results['ray1_startup_s']:.1f} s once per run")
        print(json.dumps(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
