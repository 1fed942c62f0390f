"""Forward throughput of the liver segmentation models at 512x512, and the cost of deformable ASPP.

Measures tiles/s of inference (``torch.inference_mode``, eval mode) for each model and batch size;
on CUDA also under bf16 / fp16 autocast and with channels_last. For the DeepLab models it measures,
in a separate pass with timing hooks, the share of the forward time spent in ASPP and in its
DCNv2 layers (on CUDA the hooks synchronise, so that pass is not used for throughput). The
plain DeepLabv3+ runs in the same process, so the deformable / plain ratio is measured in one run.

Examples::

    python benchmarks/model_forward.py --threads 2                      # CPU: batch 1, 2, 4
    python benchmarks/model_forward.py --device cuda --batch-sizes 1 2 4 8 16 32
    python benchmarks/model_forward.py --models deformable_deeplabv3plus --depth 18 --base-width 16
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext

import torch

from lobule.models.registry import create_model

DEFAULT_MODELS = ("deformable_deeplabv3plus", "deeplabv3plus", "unet")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, depth: int, base_width: int) -> torch.nn.Module:
    if name == "unet":
        return create_model(name, base_width=base_width)
    return create_model(name, depth=depth, base_width=base_width)


def time_forward(model, x, repeats: int, warmup: int, autocast_dtype) -> float:
    """Median seconds of one forward of batch ``x``."""
    device = x.device
    context = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext())
    times = []
    with torch.inference_mode(), context:
        for i in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def aspp_share(model, x, repeats: int, autocast_dtype) -> tuple[float, float]:
    """(share of forward time in ASPP, share in its DCNv2 layers), by forward hooks."""
    device = x.device
    spent = {"aspp": 0.0, "dcn": 0.0}
    starts: dict[int, float] = {}
    handles = []

    def pre(module, _inputs):
        _sync(device)
        starts[id(module)] = time.perf_counter()

    def post_for(key):
        def post(module, _inputs, _output):
            _sync(device)
            spent[key] += time.perf_counter() - starts[id(module)]
        return post

    handles.append(model.aspp.register_forward_pre_hook(pre))
    handles.append(model.aspp.register_forward_hook(post_for("aspp")))
    for layer in model.aspp.deformable_modules():
        handles.append(layer.register_forward_pre_hook(pre))
        handles.append(layer.register_forward_hook(post_for("dcn")))
    context = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext())
    total = 0.0
    try:
        with torch.inference_mode(), context:
            model(x)  # warm-up
            spent.update(aspp=0.0, dcn=0.0)
            for _ in range(repeats):
                _sync(device)
                start = time.perf_counter()
                model(x)
                _sync(device)
                total += time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    return spent["aspp"] / total, spent["dcn"] / total


def aspp_alone(device: torch.device, args) -> dict:
    """Deformable vs plain ASPP on the stride-16 features of one tile, timed in alternation
    (so that load from other processes affects both alike); median of 7 (CPU) / 50 (CUDA)."""
    torch.manual_seed(0)
    deformable = build("deformable_deeplabv3plus", args.depth, args.base_width).aspp.eval().to(device)
    plain = build("deeplabv3plus", args.depth, args.base_width).aspp.eval().to(device)
    channels = deformable.branches[0][0].in_channels
    x = torch.randn(1, channels, args.size // 16, args.size // 16, device=device)
    times: dict[str, list[float]] = {"deformable": [], "plain": []}
    with torch.inference_mode():
        for i in range(1 + (50 if device.type == "cuda" else 7)):
            for key, module in (("deformable", deformable), ("plain", plain)):
                _sync(device)
                start = time.perf_counter()
                module(x)
                _sync(device)
                if i:
                    times[key].append(time.perf_counter() - start)
    median = {key: sorted(v)[len(v) // 2] for key, v in times.items()}
    print(f"ASPP alone on {device.type}, input {tuple(x.shape)}: deformable {1000 * median['deformable']:.1f} ms, "
          f"plain {1000 * median['plain']:.1f} ms, ratio {median['deformable'] / median['plain']:.2f}")
    return {"aspp_alone": device.type, "deformable_ms": 1000 * median["deformable"],
            "plain_ms": 1000 * median["plain"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (auto: both where CUDA is present)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--depth", type=int, default=50, help="ResNet depth of the DeepLab models (50, the paper's)")
    parser.add_argument("--base-width", type=int, default=64, help="network width (64, the paper's)")
    parser.add_argument("--size", type=int, default=512, help="tile side in pixels (512)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="default: 1 2 4 on CPU, 1 2 4 8 16 32 on CUDA")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per setting (CPU 2, CUDA 10)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (2; the machine may be shared)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    rows = []
    print(f"torch {torch.__version__}, {args.threads} CPU threads, tile {args.size}x{args.size}, "
          f"ResNet-{args.depth} width {args.base_width}")
    header = f"{'model':<26} {'device':<6} {'precision':<9} {'layout':<13} {'batch':>5} {'tiles/s':>8} " \
             f"{'ms/tile':>8} {'ASPP %':>7} {'DCN %':>6}"
    print(header)
    for device_name in devices:
        device = torch.device(device_name)
        cuda = device.type == "cuda"
        batches = args.batch_sizes or ([1, 2, 4, 8, 16, 32] if cuda else [1, 2, 4])
        repeats = args.repeats or (10 if cuda else 2)
        variants = [("fp32", None, False)]
        if cuda:
            variants += [("bf16", torch.bfloat16, False), ("fp16", torch.float16, False),
                         ("bf16", torch.bfloat16, True), ("fp16", torch.float16, True)]
        if cuda:
            torch.backends.cudnn.benchmark = True
        for name in args.models:
            torch.manual_seed(0)
            model = build(name, args.depth, args.base_width).eval().to(device)
            for precision, dtype, channels_last in variants:
                model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
                for batch in batches:
                    x = torch.randn(batch, 3, args.size, args.size, device=device)
                    if channels_last:
                        x = x.to(memory_format=torch.channels_last)
                    try:
                        seconds = time_forward(model, x, repeats, 1, dtype)
                        share = aspp_share(model, x, max(1, repeats // 2), dtype) if hasattr(model, "aspp") else None
                    except torch.OutOfMemoryError:
                        print(f"{name:<26} {device_name:<6} {precision:<9} batch {batch}: out of memory")
                        torch.cuda.empty_cache()
                        break
                    row = {"model": name, "device": device_name, "precision": precision,
                           "layout": "channels_last" if channels_last else "contiguous", "batch": batch,
                           "tiles_per_s": batch / seconds, "ms_per_tile": 1000 * seconds / batch,
                           "aspp_share": share[0] if share else None, "dcn_share": share[1] if share else None}
                    rows.append(row)
                    aspp = f"{100 * share[0]:7.1f} {100 * share[1]:6.1f}" if share else f"{'-':>7} {'-':>6}"
                    print(f"{name:<26} {device_name:<6} {precision:<9} {row['layout']:<13} {batch:>5} "
                          f"{row['tiles_per_s']:8.2f} {row['ms_per_tile']:8.1f} {aspp}", flush=True)
            del model
            if cuda:
                torch.cuda.empty_cache()
    # deformable / plain ratios measured in this run
    for row in rows:
        if row["model"] != "deformable_deeplabv3plus":
            continue
        plain = [r for r in rows if r["model"] == "deeplabv3plus" and
                 all(r[k] == row[k] for k in ("device", "precision", "layout", "batch"))]
        if plain:
            print(f"deformable/plain time ratio {row['device']} {row['precision']} {row['layout']} batch "
                  f"{row['batch']}: {plain[0]['tiles_per_s'] / row['tiles_per_s']:.2f}")
    if {"deformable_deeplabv3plus", "deeplabv3plus"} <= set(args.models):
        for device_name in devices:
            rows.append(aspp_alone(torch.device(device_name), args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
