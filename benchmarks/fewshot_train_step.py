"""Few-shot training speed: seconds per episode (forward, both losses, backward, SGD step) of
DPCENet at a given ResNet depth and slice size, wall and CPU time, and the days the paper's recipe
(100,000 iterations, batch 1, 256x256, ResNet-101) would take at that rate. Random episodes: the
speed does not depend on the pixels.

Examples::

    nice -n 10 python benchmarks/fewshot_train_step.py                        # ResNet-101, 256 px
    nice -n 10 python benchmarks/fewshot_train_step.py --depth 50 --threads 2
    python benchmarks/fewshot_train_step.py --depth 18 --base-width 16 --size 128 --iterations 10
"""
from __future__ import annotations

import argparse
import time

import numpy as np

PAPER_ITERATIONS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, choices=(18, 34, 50, 101), default=101)
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--feature-dim", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=4, help="timed steps; the first is reported apart (warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from lobule.models.fewshot import episode_loss
    from lobule.models.registry import create_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("dpcenet", depth=args.depth, base_width=args.base_width, output_stride=8,
                         feature_dim=args.feature_dim).to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    size = args.size
    mask = torch.zeros(1, size, size, device=args.device)
    mask[:, size // 4 : size // 2, size // 4 : size // 2] = 1
    walls, cpus = [], []
    for step in range(args.iterations):
        support, query = (torch.randn(1, 3, size, size, device=args.device) for _ in range(2))
        wall, cpu = time.perf_counter(), time.process_time()
        loss, _ = episode_loss(model, support, mask, query, mask.clone(), align=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if args.device != "cpu":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        print(f"step {step}: wall {walls[-1]:.2f} s, CPU {cpus[-1]:.2f} s (all threads)", flush=True)
    rest = slice(1, None) if len(walls) > 1 else slice(None)
    wall, cpu = float(np.median(walls[rest])), float(np.median(cpus[rest]))
    print(f"ResNet-{args.depth} width {args.base_width}, {size}x{size}, {args.threads} thread(s): "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU per iteration; {PAPER_ITERATIONS} iterations = "
          f"{PAPER_ITERATIONS * wall / 86400:.1f} days wall at this rate "
          f"({PAPER_ITERATIONS * cpu / args.threads / 86400:.1f} days on {args.threads} idle cores)")


if __name__ == "__main__":
    main()
