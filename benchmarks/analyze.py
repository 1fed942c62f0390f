"""Benchmark of the whole-slide analysis (``lobule analyze``'s pipeline), ratios measured in one run.

For each slide (the bundled demo slide and synthetic pyramidal TIFFs of two sizes) and model:

- bare model tiles/s: tiles already in memory, ``predictor.predict`` on batches of the engine's
  batch size (the ceiling the engine can reach);
- end-to-end tiles/s: tissue detection + reader threads + batches + stitching into the zarr
  store + display pyramid + commit (``analyze_slide``), and the ratio to the bare rate
  (target >= 0.85 on CPU);
- the time split read / preprocess / infer / stitch (thread-seconds) / quantify / export;
- peak resident memory of the process (each case runs in its own subprocess), which should not
  grow with the slide size.

Usage::

    python benchmarks/analyze.py                      # demo (small deformable DeepLabv3+) + 2 synthetic sizes
    python benchmarks/analyze.py --demo-model liver-hne --device cuda
    python benchmarks/analyze.py --sizes 8192x6144 32768x24576 --synthetic-model tiny

Models: an installed checkpoint name or card path, ``classical``, ``deformable-small`` (the
deformable DeepLabv3+ architecture, ResNet-18 width 16, random weights: the speed of the shipped
architecture family without trained weights) or ``deformable-full`` (ResNet-50 width 64, the
paper's size), ``tiny`` (a 2-layer conv net, random weights: noisy maps), ``colour`` (a
vectorised colour-threshold labeller: cheap, with the structure of a real class map; it
measures the pipeline's own overhead and memory on large slides).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def colour_classes(image, mpp):
    """A cheap deterministic stand-in labeller with realistic output structure on H&E-like
    images: white -> background (0), dark purple -> normal nuclei (2), the rest -> parenchyma
    (4), white holes surrounded by tissue stay 0 (no droplet logic)."""
    import numpy as np

    rgb = image.astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    out = np.full(image.shape[:2], 4, np.uint8)
    out[(r < 160) & (b > g + 30)] = 2
    out[(r > 225) & (g > 225) & (b > 225)] = 0
    return out


def build_predictor(name: str, device: str, runtime: str = "torch"):
    from lobule.inference.engine import (
        FunctionPredictor,
        TorchPredictor,
        classical_predictor,
        load_predictor,
        select_device,
    )

    if name == "classical":
        return classical_predictor()
    if name == "colour":
        return FunctionPredictor(colour_classes, name="colour", mpp=0.5, tile_size=512, margin=64)
    if name in ("deformable-small", "deformable-full", "tiny"):
        import torch

        from lobule.models.registry import create_model

        torch.manual_seed(0)
        if name == "tiny":
            model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(16, 7, 3, padding=1))
        else:
            kw = {"depth": 18, "base_width": 16} if name == "deformable-small" else {"depth": 50, "base_width": 64}
            model = create_model("deformable_deeplabv3plus", **kw)
        return TorchPredictor(model, name=name, mpp=0.5, tile_size=512, margin=64,
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), device=select_device(device))
    return load_predictor(name, device, runtime)


def run_case(case: dict) -> dict:
    """One measurement (runs in a fresh subprocess)."""
    import numpy as np

    from lobule.inference.engine import analyze_slide, choose_batch_size
    from lobule.inference.export import export_analysis
    from lobule.inference.liver.quantify import QuantSettings, quantify
    from lobule.inference.regions import Region
    from lobule.inference.slide import open_slide
    from lobule.inference.tiling import make_grid, read_tile
    from lobule.inference.tissue import detect_tissue

    work = Path(case["work"])
    import torch

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    predictor = build_predictor(case["model"], case["device"], case.get("runtime", "torch"))
    batch = case.get("batch_size") or choose_batch_size(predictor)
    with open_slide(case["slide"]) as slide:
        mpp = float(np.mean(slide.mpp))
        # bare model rate on tiles already in memory
        tissue = detect_tissue(slide)
        grid = make_grid(slide.dimensions, mpp, predictor.mpp, predictor.tile_size, predictor.margin, tissue)
        count = min(case["bare_tiles"], len(grid.tiles))
        count -= count % batch if count > batch else 0
        tiles = np.stack([read_tile(slide, grid, t) for t in grid.tiles[:count]])
        predictor.predict(tiles[: min(batch, count)])  # warm-up (allocations, kernels)
        t0 = time.perf_counter()
        for i in range(0, count, batch):
            predictor.predict(tiles[i : i + batch])
        bare = count / (time.perf_counter() - t0)
        del tiles
        # end to end
        t0 = time.perf_counter()
        result = analyze_slide(slide, predictor, work / "labels.zarr", batch_size=batch, readers=case["readers"])
        analyze_s = time.perf_counter() - t0
        stats = result.stats
        region = Region("tissue", result.tissue.geometry())
        t0 = time.perf_counter()
        measured = quantify(result.store, region, QuantSettings())
        quantify_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_analysis(work / "export", store=result.store, regions=[region], results=[measured],
                        settings=QuantSettings(), slide={"name": Path(case["slide"]).name},
                        model=predictor.describe(), tissue=result.tissue, run=stats.as_dict())
        export_s = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "slide": Path(case["slide"]).name, "dimensions": list(slide.dimensions),
        "model": predictor.name + ("/" + predictor.runtime["runtime"] if hasattr(predictor, "runtime") else ""),
        "device": predictor.device, "batch_size": batch, "tiles": stats.tiles, "cells": grid.cell_count,
        "bare_tiles_per_s": bare, "pipeline_tiles_per_s": stats.tiles / stats.wall,
        "end_to_end_tiles_per_s": stats.tiles / analyze_s,
        "ratio_pipeline": stats.tiles / stats.wall / bare, "ratio_end_to_end": stats.tiles / analyze_s / bare,
        "seconds": {"analyze": analyze_s, "run_wall": stats.wall, "read": stats.read,
                    "preprocess": stats.preprocess, "infer": stats.infer, "stitch": stats.stitch,
                    "wait_for_tiles": stats.wait, "tissue_and_pyramid": analyze_s - stats.wall,
                    "quantify": quantify_s, "export": export_s},
        "peak_rss_mib": peak_kib / 1024,
    }


def _child(case: dict) -> dict:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise SystemExit(f"case failed: {case}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-model", default="deformable-small")
    parser.add_argument("--synthetic-model", default="colour")
    parser.add_argument("--sizes", nargs="*", default=["8192x6144", "24576x18432"], help="synthetic slides WxH")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--runtime", default="torch", help="model runtime of checkpoint models (auto, torch, "
                        "torch-bf16, openvino)")
    parser.add_argument("--threads", type=int, help="torch / OpenVINO threads (default: torch's)")
    parser.add_argument("--bare-tiles", type=int, default=16)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return

    from lobule.inference.slide.synthetic import write_pyramid_tiff
    from lobule.resources import DEMO_SLIDE

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lobule-bench-") as tmp:
        tmp = Path(tmp)
        cases = []
        if not args.no_demo:
            cases.append((DEMO_SLIDE, args.demo_model))
        for size in args.sizes:
            w, h = (int(v) for v in size.lower().split("x"))
            path = tmp / f"synthetic-{w}x{h}.tif"
            t0 = time.perf_counter()
            write_pyramid_tiff(path, size=(w, h), mpp=0.5)
            print(f"wrote {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            cases.append((path, args.synthetic_model))
        for index, (slide, model) in enumerate(cases):
            work = tmp / f"case{index}"
            work.mkdir()
            case = {"slide": str(slide), "model": model, "device": args.device, "batch_size": args.batch_size,
                    "readers": args.readers, "runtime": args.runtime, "threads": args.threads, "bare_tiles": args.bare_tiles, "work": str(work)}
            row = _child(case)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(f"{'slide':32} {'model':18} {'dev':4} {'tiles':>6} {'bare t/s':>9} {'e2e t/s':>8} {'ratio':>6} "
          f"{'pipe':>6} {'read':>6} {'prep':>6} {'infer':>7} {'stitch':>6} {'tis+pyr':>7} {'quant':>6} "
          f"{'export':>6} {'peakMiB':>8}")
    for r in rows:
        s = r["seconds"]
        print(f"{r['slide'][:32]:32} {r['model'][:18]:18} {r['device'][:4]:4} {r['tiles']:6d} "
              f"{r['bare_tiles_per_s']:9.2f} {r['end_to_end_tiles_per_s']:8.2f} {r['ratio_end_to_end']:6.2f} "
              f"{r['ratio_pipeline']:6.2f} {s['read']:6.1f} {s['preprocess']:6.1f} {s['infer']:7.1f} "
              f"{s['stitch']:6.1f} {s['tissue_and_pyramid']:7.1f} {s['quantify']:6.1f} {s['export']:6.1f} "
              f"{r['peak_rss_mib']:8.0f}")
    print(f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("ratio = end-to-end tiles/s (tissue + read + infer + stitch + pyramid) / bare model tiles/s; "
          "pipe = the tile pipeline alone; read/prep/stitch are thread-seconds, overlapping inference")


if __name__ == "__main__":
    main()
