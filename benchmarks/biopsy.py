"""Minutes per slide for a realistic needle biopsy, per model and runtime.

Builds (in a temporary folder, never kept) a pyramidal TIFF of about 20 mm^2 of liver tissue at
0.5 um/px: a curved core 1 mm wide and 20 mm long with rounded ends, filled with real liver H&E
tiles (the Polito steatosis tiles in ../shared/data/steatosis_polito, 416 x 416 px, taken to be
at about 0.5 um/px judging by nucleus size; randomly flipped and rotated), white glass around
it, tiled JPEG levels like a scanner's. Then, in one run:

- the tissue mask and tile grid ``lobule analyze`` would use (the number of 512 px tiles);
- for each model (the bundled liver model, the paper-size deformable DeepLabv3+ with random
  weights) and each runtime this machine runs: tiles/s of ``predict()`` on tiles of this slide,
  and the minutes per slide that gives (tiles / rate);
- with ``--full``: one whole ``analyze_slide`` run (tissue, read, predict, stitch, pyramid) of
  the bundled model with ``--full-runtime``, measured.

Usage::

    python benchmarks/biopsy.py                         # estimate from measured tiles/s
    python benchmarks/biopsy.py --full --full-runtime auto
    python benchmarks/biopsy.py --data ../shared/data --models bundled --rounds 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

MPP = 0.5
LENGTH_MM, WIDTH_MM = 20.0, 1.0


def biopsy_mask(shape: tuple[int, int], mpp: float = MPP) -> np.ndarray:
    """(H, W) bool: a gently curved core ``WIDTH_MM`` wide, ``LENGTH_MM`` long, rounded ends."""
    h, w = shape
    px = 1000.0 / mpp
    length, radius = LENGTH_MM * px, WIDTH_MM * px / 2
    x0 = (w - length) / 2
    xs = np.linspace(x0 + radius, x0 + length - radius, 400)
    ys = h / 2 + 0.12 * h * np.sin(2 * np.pi * (xs - x0) / length)
    mask = np.zeros(shape, np.uint8)
    points = np.stack([xs, ys], axis=1).round().astype(np.int32)
    cv2.polylines(mask, [points], False, 1, thickness=int(2 * radius), lineType=cv2.LINE_8)
    for x, y in (points[0], points[-1]):
        cv2.circle(mask, (int(x), int(y)), int(radius), 1, -1)
    return mask.astype(bool)


def build_biopsy(data: Path, path: Path, seed: int = 0) -> tuple[Path, float]:
    """Write the biopsy TIFF; returns (path, tissue area in mm^2)."""
    import tifffile

    images = sorted((data / "steatosis_polito").glob("*/image.png"))
    if not images:
        raise SystemExit(f"no Polito tiles under {data / 'steatosis_polito'}")
    rng = np.random.default_rng(seed)
    px = 1000.0 / MPP
    w, h = int(LENGTH_MM * px + 2000), int(WIDTH_MM * px * 1.6 + 2000)
    mask = biopsy_mask((h, w))
    canvas = np.full((h, w, 3), 244, np.uint8)
    side = 416
    cache: dict[int, np.ndarray] = {}
    for y in range(0, h, side):
        for x in range(0, w, side):
            if not mask[y: y + side, x: x + side].any():
                continue
            index = int(rng.integers(len(images)))
            if index not in cache:
                cache[index] = cv2.cvtColor(cv2.imread(str(images[index])), cv2.COLOR_BGR2RGB)
            tile = np.rot90(cache[index], int(rng.integers(4)))
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            part = canvas[y: y + side, x: x + side]
            inside = mask[y: y + side, x: x + side]
            part[inside] = tile[: part.shape[0], : part.shape[1]][inside]
    area = float(mask.sum()) * (MPP / 1000.0) ** 2
    levels = [canvas]
    while max(levels[-1].shape[:2]) > 1024:
        prev = levels[-1]
        levels.append(cv2.resize(prev, ((prev.shape[1] + 1) // 2, (prev.shape[0] + 1) // 2),
                                 interpolation=cv2.INTER_AREA))
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for index, level in enumerate(levels):
            ppcm = 1e4 / (MPP * 2**index)
            tif.write(level, tile=(256, 256), photometric="rgb", compression="jpeg",
                      compressionargs={"level": 90}, subfiletype=1 if index else 0, metadata=None,
                      resolution=(ppcm, ppcm), resolutionunit="CENTIMETER")
    return path, area


def predictors(which: str):
    """[(runtime label, predictor)] of a model for each runtime this machine runs."""
    from lobule.inference.engine import TorchPredictor
    from lobule.inference.engine import runtime as rt

    sys.path.insert(0, str(Path(__file__).parent))
    from runtime import build_model

    model, mean, std = build_model(which)
    out = []
    names = ["torch"] + (["torch-bf16"] if rt.cpu_has_native_bf16() else []) + \
            (["openvino"] if rt.openvino_available() else [])
    for name in names:
        forward, info = rt.build_forward(model, mean=mean, std=std, tile_size=512, mpp=MPP, runtime=name)
        out.append((f"{info['runtime']} {info['precision']}",
                    TorchPredictor(model, name=which, mpp=MPP, tile_size=512, margin=64, forward=forward,
                                   runtime=info)))
    return out


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "LOBULE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")),
        help="the shared real data folder (default $LOBULE_SHARED_DATA or ../shared/data)")
    parser.add_argument("--models", nargs="+", default=["bundled", "paper"], choices=["bundled", "paper"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=8, help="biopsy tiles timed per runtime and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also one whole analyze_slide run (bundled model)")
    parser.add_argument("--full-runtime", default="auto")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from lobule.inference.engine import analyze_slide, load_predictor
    from lobule.inference.slide import open_slide
    from lobule.inference.tiling import make_grid, read_tile
    from lobule.inference.tissue import detect_tissue

    with tempfile.TemporaryDirectory(prefix="lobule-biopsy-") as tmp:
        t0 = time.perf_counter()
        path, area = build_biopsy(args.data, Path(tmp) / "biopsy.tif")
        print(f"biopsy slide: {area:.1f} mm^2 of tissue at {MPP} um/px, built in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        with open_slide(path) as slide:
            tissue = detect_tissue(slide)
            grid = make_grid(slide.dimensions, MPP, MPP, 512, 64, tissue)
            count = len(grid.tiles)
            step = max(1, count // args.tiles)
            sample = np.stack([read_tile(slide, grid, t) for t in grid.tiles[::step][: args.tiles]])
            print(f"biopsy {slide.dimensions[0]} x {slide.dimensions[1]} px at {MPP} um/px, {area:.1f} mm^2 of "
                  f"tissue, {count} tiles of 512 px (core 384) in the tissue mask, {args.threads} threads, "
                  f"load average {os.getloadavg()[0]:.1f}")
            print(f"{'model':<9} {'runtime':<18} {'tiles/s':>8} {'min/slide (predict)':>20}", flush=True)
            for which in args.models:
                preds = predictors(which)
                for _, predictor in preds:
                    predictor.predict(sample[:4])  # warm-up
                times = {label: [] for label, _ in preds}
                for _ in range(args.rounds):
                    for label, predictor in preds:
                        start = time.perf_counter()
                        for i in range(0, len(sample), 4):
                            predictor.predict(sample[i: i + 4])
                        times[label].append((time.perf_counter() - start) / len(sample))
                for label, _ in preds:
                    per_tile = sorted(times[label])[len(times[label]) // 2]
                    print(f"{which:<9} {label:<18} {1.0 / per_tile:8.2f} {count * per_tile / 60.0:20.1f}", flush=True)
                del preds
            if args.full:
                predictor = load_predictor("liver-hne", "cpu", args.full_runtime)
                t0 = time.perf_counter()
                result = analyze_slide(slide, predictor, Path(tmp) / "labels.zarr")
                wall = time.perf_counter() - t0
                print(f"full analyze_slide, bundled model, {predictor.runtime['runtime']} "
                      f"{predictor.runtime['precision']}: {result.stats.tiles} tiles in {wall / 60:.1f} min "
                      f"({result.stats.tiles / wall:.2f} tiles/s end to end)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print("paper = deformable DeepLabv3+ ResNet-50 width 64, ASPP 256 (random weights); min/slide (predict) = "
          "tiles / measured predict() rate on this slide's tiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
