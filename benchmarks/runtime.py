"""Tiles/s of each model runtime against PyTorch fp32 eager, and the pixels whose class changes.

In one run, on real H&E tiles of the bundled demo slide (512 x 512 at 0.5 um/px, batch 4), for
the bundled liver model and for a paper-size deformable DeepLabv3+ (ResNet-50, width 64, ASPP
256, random weights: its speed, not its maps), each runtime this machine can run:

- torch fp32 eager (the reference), torch channels_last,
- torch bf16 autocast (only where the CPU has native bf16: AVX512-BF16 or AMX),
- OpenVINO f32 (``INFERENCE_PRECISION_HINT=f32``) and OpenVINO bf16 (native bf16 only),

timed in alternating rounds (so load from other processes affects all alike), the median per
runtime, its ratio to fp32 eager, and the share of pixels whose class differs from fp32.

Usage::

    python benchmarks/runtime.py                   # both models, 2 threads, 3 rounds
    python benchmarks/runtime.py --models bundled --rounds 5 --threads 4
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lobule.inference.engine import runtime as rt


def build_model(which: str):
    """(model, mean, std) of ``bundled`` (the installed liver-hne) or ``paper`` (random weights)."""
    if which == "bundled":
        from lobule.models.checkpoint import load_checkpoint

        model, card = load_checkpoint("liver-hne")
        norm = card["input"]["normalisation"]
        return model, norm["mean"], norm["std"]
    from lobule.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("deformable_deeplabv3plus", depth=50, base_width=64, head_channels=256).eval()
    return model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def runtimes_for(model, mean, std, folder: Path, log) -> list[tuple[str, object]]:
    """[(label, forward)] of every runtime this machine runs, the fp32 reference first."""
    import copy

    out = [("torch fp32 eager", rt.TorchForward(model, mean, std))]
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)

    class ChannelsLast(rt.TorchForward):
        def __call__(self, tiles):
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(tiles)).permute(0, 3, 1, 2).float()
                x = torch.addcmul(self.bias, x, self.scale).contiguous(memory_format=torch.channels_last)
                return self.model(x).float()

    out.append(("torch channels_last", ChannelsLast(last, mean, std)))
    native = rt.cpu_has_native_bf16()
    if native:
        out.append(("torch bf16 autocast", rt.TorchForward(model, mean, std, bf16=True)))
    if rt.openvino_available():
        t0 = time.perf_counter()
        xml = rt.export_openvino(model, mean, std, 512, folder / "openvino")
        log(f"  OpenVINO conversion {time.perf_counter() - t0:.0f} s")
        out.append(("openvino f32", rt.OpenVinoForward(xml, "f32")))
        if native:
            out.append(("openvino bf16", rt.OpenVinoForward(xml, "bf16")))
    return out


def measure(forwards, tiles: np.ndarray, batch: int, rounds: int) -> list[dict]:
    """Median seconds per batch of each forward (alternating rounds after one warm-up each)."""
    batches = [tiles[i: i + batch] for i in range(0, len(tiles) - batch + 1, batch)]
    times = {label: [] for label, _ in forwards}
    logits = {}
    for label, forward in forwards:
        logits[label] = torch.cat([forward(b) for b in batches])  # warm-up and the maps
    for _ in range(rounds):
        for label, forward in forwards:
            start = time.perf_counter()
            for b in batches:
                forward(b)
            times[label].append((time.perf_counter() - start) / (len(batches) * batch))
    reference = logits[forwards[0][0]]
    rows = []
    for label, _ in forwards:
        per_tile = sorted(times[label])[len(times[label]) // 2]
        rows.append({"runtime": label, "tiles_per_s": 1.0 / per_tile,
                     "changed": rt.pixels_changed(reference, logits[label])})
    base = rows[0]["tiles_per_s"]
    for row in rows:
        row["ratio"] = row["tiles_per_s"] / base
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["bundled", "paper"], choices=["bundled", "paper"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tiles", type=int, default=8, help="demo-slide tiles per round (a multiple of --batch)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(text):
        print(text, file=sys.stderr, flush=True)

    tiles = rt.demo_tiles(512, 0.5, args.tiles)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {rt.cpu_has_native_bf16()}, "
          f"{len(tiles)} demo-slide tiles 512x512, batch {args.batch}, {args.rounds} rounds")
    print(f"{'model':<10} {'runtime':<22} {'tiles/s':>8} {'vs fp32':>8} {'pixels changed':>15}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lobule-runtime-bench-") as tmp:
        for which in args.models:
            log(f"{which}: building runtimes")
            model, mean, std = build_model(which)
            forwards = runtimes_for(model, mean, std, Path(tmp) / which, log)
            for row in measure(forwards, tiles, args.batch, args.rounds):
                print(f"{which:<10} {row['runtime']:<22} {row['tiles_per_s']:8.2f} {row['ratio']:7.2f}x "
                      f"{100 * row['changed']:14.3f}%", flush=True)
            del forwards
    print("paper = deformable DeepLabv3+ ResNet-50 width 64, ASPP 256, random weights (pixels changed of "
          "random weights say little: measure bf16 agreement on trained weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
