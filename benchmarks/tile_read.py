"""Tile-read speed: Lobule's reader against bare OpenSlide and tiffslide.

Reads the same 512x512 level-0 regions (random positions inside the tissue, fixed seed) of
(a) the bundled demo slide (Aperio SVS, one level, 240 px JPEG tiles) and (b) a large
pyramidal TIFF written by this script (60000x40000 px, 256 px JPEG tiles, levels down to
<= 1024 px), with each reader, and prints the time per region and the ratios, measured in one
run. Each reader opens the slide anew and reads every position once, so OpenSlide's tile
cache does not help; the OS file cache is warm (all readers read the file once first).

Usage::

    python benchmarks/tile_read.py [--regions 300] [--big BENCH.tif] [--rounds 3]

Target (issue 2): ours at least as fast as the faster backend (ratio ours/best <= 1.0).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tempfile
from pathlib import Path

import numpy as np

BIG_SIZE = (60000, 40000)
TILE = 256


def write_big_tiff(path: Path, size=BIG_SIZE, quality: int = 80) -> None:
    """Write the large pyramidal TIFF quickly: every level is assembled from a pool of 48
    tissue tiles rendered once at that level's downsample (background tiles outside the
    elliptical tissue are white), JPEG-encoded by tifffile."""
    import tifffile

    from lobule.inference.slide.synthetic import render_he

    width, height = size
    rng = np.random.default_rng(0)
    levels = [(width, height, 1.0)]
    while max(levels[-1][:2]) > 1024:
        w, h, d = levels[-1]
        levels.append(((w + 1) // 2, (h + 1) // 2, d * 2))
    blank = np.full((TILE, TILE, 3), 244, np.uint8)

    def tiles(w, h, ds):
        pool = [
            render_he((int(x), int(y)), (TILE, TILE), ds, size, seed=3)
            for x, y in zip(rng.uniform(0.3, 0.6, 48) * width, rng.uniform(0.3, 0.6, 48) * height)
        ]
        for ty in range(0, h, TILE):
            for tx in range(0, w, TILE):
                cx, cy = (tx + TILE / 2) * ds, (ty + TILE / 2) * ds
                inside = ((cx - width / 2) / (width * 0.44)) ** 2 + ((cy - height / 2) / (height * 0.44)) ** 2 < 1
                yield pool[(tx * 7919 + ty * 104729) // TILE % len(pool)] if inside else blank

    tmp = path.with_suffix(".partial.tif")
    with tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        for index, (w, h, ds) in enumerate(levels):
            ppcm = 1e4 / (0.25 * ds)
            tif.write(
                tiles(w, h, ds),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                subfiletype=1 if index else 0,
                resolution=(ppcm, ppcm),
                resolutionunit="CENTIMETER",
                metadata=None,
                maxworkers=os.cpu_count(),
            )
    os.replace(tmp, path)


def positions(size, count, seed=1):
    """``count`` level-0 (x, y) corners of 512x512 regions inside the central tissue."""
    width, height = size
    rng = np.random.default_rng(seed)
    xs = rng.integers(int(width * 0.2), int(width * 0.8) - 512, count)
    ys = rng.integers(int(height * 0.2), int(height * 0.8) - 512, count)
    return list(zip(xs.tolist(), ys.tolist()))


def readers(path: Path):
    """name -> (open(), read(handle, xy)) for the three readers compared."""
    import openslide
    import tiffslide

    from lobule.inference.slide import open_slide

    def uncached():
        """Our reader with its decoded-tile cache off (every read decodes its tiles)."""
        slide = open_slide(path)
        if getattr(slide, "_tiles", None) is not None:
            slide._tiles.cache_bytes = 0
        return slide

    return {
        "lobule": (lambda: open_slide(path), lambda s, xy: s.read_region(xy, 0, (512, 512))),
        "lobule-nocache": (uncached, lambda s, xy: s.read_region(xy, 0, (512, 512))),
        "openslide": (lambda: openslide.OpenSlide(str(path)), lambda s, xy: s.read_region(xy, 0, (512, 512))),
        "tiffslide": (
            lambda: tiffslide.TiffSlide(str(path)),
            lambda s, xy: s.read_region(xy, 0, (512, 512), as_array=True),
        ),
    }


def bench(path: Path, count: int, rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of the mean seconds per 512x512 read, per reader; every round
    uses new positions (shared by all readers) and fresh handles; reader order rotates."""
    with open(path, "rb") as handle:  # warm the OS cache for everyone
        while handle.read(1 << 24):
            pass
    funcs = readers(path)
    with funcs["lobule"][0]() as slide:
        size = slide.dimensions
    times: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for r in range(rounds):
        coords = positions(size, count, seed=100 + r)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            opener, read = funcs[name]
            handle = opener()
            read(handle, (size[0] // 2, size[1] // 2))  # first-read setup outside the timing
            start = time.perf_counter()
            for xy in coords:
                read(handle, xy)
            times[name].append((time.perf_counter() - start) / count)
            handle.close()
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, result: dict[str, float]) -> None:
    best_backend = min(result["openslide"], result["tiffslide"])
    print(f"\n{title}")
    for name, seconds in result.items():
        print(f"  {name:15s} {seconds * 1e3:7.2f} ms / 512x512 read")
    for ours in ("lobule", "lobule-nocache"):
        print(
            f"  ratio {ours}/openslide = {result[ours] / result['openslide']:.2f}, "
            f"/tiffslide = {result[ours] / result['tiffslide']:.2f}, "
            f"/faster backend = {result[ours] / best_backend:.2f} (target <= 1.00)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=300, help="512x512 reads per reader per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=Path, default=Path(tempfile.gettempdir()) / "lobule_bench_60k.tif", help="large TIFF (written if absent)")
    args = parser.parse_args(argv)

    from lobule.resources import DEMO_SLIDE

    if not args.big.exists():
        start = time.perf_counter()
        write_big_tiff(args.big)
        print(f"wrote {args.big} ({args.big.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s")
    report(f"demo slide {DEMO_SLIDE.name} (2220x2967, 1 level)", bench(DEMO_SLIDE, args.regions, args.rounds))
    report(f"large pyramidal TIFF {args.big.name} (60000x40000)", bench(args.big, args.regions, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
