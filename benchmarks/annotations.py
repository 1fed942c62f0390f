"""Benchmark of editing a class map: strokes, undo and redo stay fast as the history grows, and a
killed session's work comes back. Ratios are measured in one run.

For each class map (the demo slide's classical analysis when present, else a colour-rule map of
the demo slide; and a synthetic 16384 x 16384 map written chunk by chunk):

- 1,000 brush strokes (5 points, radius 4-12 um, random classes, every 10th an eraser), then
  1,000 undos and 1,000 redos; the median time per step of each block of 100 and the ratio of the
  last block to the second (history length must not matter: ratio ~1; the first block of strokes
  is cheaper because the corrections layer is still empty there);
- the same with a 64 KiB memory budget, so that nearly every step is spilled to disk;
- history memory / disk bytes, unsaved-chunk memory, and the save time;
- a kill test: a child process paints, autosaves, is killed with SIGKILL; reopening offers its
  work back and recovering gives the same corrections.

Usage::

    python benchmarks/annotations.py [--strokes 1000] [--size 16384]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def synthetic_store(path: Path, size: int):
    """A size x size class map with blobs of every class, written 1024 px at a time."""
    from lobule.inference.labelstore import LabelStoreWriter
    from lobule.resources.classes import class_table_json

    attrs = {"mpp": 0.5, "scale": 1.0, "slide": {"name": "synthetic", "dimensions": [size, size]},
             "model": {"name": "synthetic"}, "classes": class_table_json()}
    with LabelStoreWriter(path, (size, size), 1024, attrs) as writer:
        yy, xx = np.mgrid[0:1024, 0:1024]
        for y in range(0, size, 1024):
            for x in range(0, size, 1024):
                labels = ((np.sin((xx + x) / 37.0) + np.cos((yy + y) / 23.0)) * 2 + 3.5).astype(np.uint8) % 7
                writer.write(SimpleNamespace(core=(x, y, 1024, 1024)), labels)
        return writer.commit()


def demo_store(tmp: Path):
    from lobule.inference.labelstore import find_store, store_from_array
    from lobule.inference.slide import open_slide
    from lobule.resources import DEMO_SLIDE

    store = find_store(DEMO_SLIDE, "classical")
    if store is not None:
        return store, "demo slide, classical analysis"
    with open_slide(DEMO_SLIDE) as slide:
        w, h = slide.dimensions
        rgb = slide.read_region((0, 0), 0, (w, h)).astype(np.float32)
    grey = rgb.mean(axis=2)
    labels = np.where(grey > 220, 0, np.where(grey < 120, 2, 4)).astype(np.uint8)
    return store_from_array(tmp / "demo.zarr", labels, mpp=0.499,
                            attrs={"slide": {"dimensions": [w, h]}}), "demo slide, colour-rule map"


def blocks(times: list[float], n: int = 100) -> list[float]:
    """Median ms/step of each block of ``n`` steps (medians: the machine is shared, and a mean
    follows whoever else is running)."""
    return [float(np.median(times[k : k + n])) * 1e3 for k in range(0, len(times) - n + 1, n)]


def run_history(store, folder: Path, strokes: int, memory_budget: int, label: str) -> None:
    from lobule.inference.annotations import AnnotationSession
    from lobule.resources import DEMO_SLIDE

    session = AnnotationSession.open(DEMO_SLIDE, store, folder=folder, autosave_s=None,
                                     memory_budget=memory_budget, slide_size=(store.shape[1], store.shape[0]))
    rng = np.random.default_rng(0)
    h, w = store.shape
    timings = {"stroke": [], "undo": [], "redo": []}
    last = None
    for i in range(strokes):
        if i % 10 == 9 and last is not None:
            pts, value = last, 255
        else:
            pts = rng.uniform([0, 0], [w * store.scale, h * store.scale]) + np.cumsum(rng.normal(0, 15, (5, 2)), 0)
            value = int(rng.choice([1, 2, 3, 4, 5, 6]))
        t = time.perf_counter()
        session.brush(pts, value, radius_um=float(rng.uniform(4, 12)))
        timings["stroke"].append(time.perf_counter() - t)
        last = pts
    steps = len(session.history)
    memory, disk = session.history.memory_bytes, session.history.disk_bytes
    for which in ("undo", "redo"):
        for _ in range(steps):
            t = time.perf_counter()
            getattr(session, which)()
            timings[which].append(time.perf_counter() - t)
    unsaved = session.labels.memory_bytes
    t = time.perf_counter()
    session.save()
    save_s = time.perf_counter() - t
    print(f"  {label}: {steps} steps held, {session.history.dropped} dropped; history {memory / 2**20:.2f} MiB in "
          f"memory, {disk / 2**20:.2f} MiB on disk; unsaved chunks {unsaved / 2**20:.2f} MiB; save {save_s:.2f} s")
    for name, values in timings.items():
        medians = blocks(values)
        print(f"    {name:6s} ms/step per 100 steps: {' '.join(f'{m:5.2f}' for m in medians)}; last / second "
              f"block {medians[-1] / medians[1]:.2f}")
    session.close(save=False)


KILL_CHILD = r"""
import sys, threading, time
import numpy as np
from lobule.inference.labelstore import LabelStore
from lobule.inference.annotations import AnnotationSession
store = LabelStore.open(sys.argv[1])
s = AnnotationSession.open(sys.argv[3], store, folder=sys.argv[2], autosave_s=0.5,
                           slide_size=(store.shape[1], store.shape[0]))
rng = np.random.default_rng(1)
h, w = store.shape
for i in range(200):
    s.brush(rng.uniform([0, 0], [w * store.scale, h * store.scale], size=(4, 2)), int(rng.integers(1, 7)), 15)
while s.autosaver.pending or not s.journal.segments():
    time.sleep(0.05)
np.save(sys.argv[4], s.labels.read_corrections((0, 0, w, h)))
print("READY", flush=True)
time.sleep(600)
"""


def run_kill(store, folder: Path, tmp: Path) -> None:
    from lobule.inference.annotations import AnnotationSession
    from lobule.resources import DEMO_SLIDE

    expected = tmp / "expected.npy"
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(store.path), str(folder), str(DEMO_SLIDE),
                              str(expected)], stdout=subprocess.PIPE, text=True)
    ready = child.stdout.readline().strip() == "READY"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    t = time.perf_counter()
    session = AnnotationSession.open(DEMO_SLIDE, store, folder=folder, autosave_s=None,
                                     slide_size=(store.shape[1], store.shape[0]))
    offered = session.recovery
    session.recover()
    recover_s = time.perf_counter() - t
    h, w = store.shape
    same = np.array_equal(session.labels.read_corrections((0, 0, w, h)), np.load(expected))
    print(f"  kill test: child ready {ready}, killed (SIGKILL); reopening offered: "
          f"{offered.summary() if offered else None}; recovered identical corrections: {same} "
          f"(open + recover {recover_s:.2f} s)")
    session.close(save=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=1000)
    parser.add_argument("--size", type=int, default=16384)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store, name = demo_store(tmp)
        t = time.perf_counter()
        big = synthetic_store(tmp / "big.zarr", args.size)
        print(f"synthetic {args.size} x {args.size} map written in {time.perf_counter() - t:.1f} s")
        for store_, label in ((store, name), (big, f"synthetic {args.size} x {args.size}")):
            print(f"{label} ({store_.shape[1]} x {store_.shape[0]} label px, {store_.level_count} levels):")
            run_history(store_, tmp / f"a-{id(store_)}", args.strokes, 256 * 2**20, "budget 256 MiB")
            run_history(store_, tmp / f"b-{id(store_)}", args.strokes, 64 * 2**10, "budget 64 KiB (spills)")
        print("recovery after a kill:")
        run_kill(store, tmp / "kill", tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
