"""One-shot volume segmentation speed: query slices per second, and the gain of batching queries
and of encoding the support once (as :class:`~lobule.inference.fewshot.predict.SlicePredictor` does)
against the naive loop that runs the full model (support + query) per slice. Ratios are measured in
one run on one volume.

Examples::

    python benchmarks/fewshot_segment.py                                   # CHAOS volume 1, fewshot-mri
    python benchmarks/fewshot_segment.py --model CARD.json --threads 2 --volume image.nii.gz
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_VOLUME = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chaos_t2_mri" / "image_1.nii.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default=str(DEFAULT_VOLUME))
    parser.add_argument("--model", default="fewshot-mri")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from lobule.inference.fewshot.predict import SlicePredictor
    from lobule.inference.fewshot.preprocess import normalise_volume, resize_stack
    from lobule.inference.volume import load_volume

    torch.set_num_threads(args.threads)
    volume = load_volume(args.volume)
    image = normalise_volume(volume.data, volume.modality)
    k = image.shape[2] // 2
    support = image[:, :, k]
    mask = np.zeros(support.shape, bool)
    mask[support.shape[0] // 4 : support.shape[0] // 2, support.shape[1] // 4 : support.shape[1] // 2] = True
    queries = np.moveaxis(np.delete(image, k, axis=2), 2, 0)
    predictor = SlicePredictor.from_checkpoint(args.model)

    def batched(size: int) -> float:
        predictor.batch_size = size
        start = time.perf_counter()
        predictor(support, mask, queries)
        return time.perf_counter() - start

    def naive() -> float:
        model, s_size = predictor.model, predictor.size
        s = torch.from_numpy(resize_stack(support[None], s_size))[:, None].repeat(1, 3, 1, 1)
        m = torch.from_numpy(resize_stack(mask[None].astype(np.float32), s_size) > 0.5).float()
        start = time.perf_counter()
        with torch.inference_mode():
            for plane in queries:
                q = torch.from_numpy(resize_stack(plane[None], s_size))[:, None].repeat(1, 3, 1, 1)
                model(s, m, q).softmax(1)
        return time.perf_counter() - start

    batched(8)  # warm-up
    results = {
        "naive per-slice model(support, query)": min(naive() for _ in range(args.repeats)),
        "support encoded once, batch 1": min(batched(1) for _ in range(args.repeats)),
        "support encoded once, batch 8": min(batched(8) for _ in range(args.repeats)),
    }
    n = len(queries)
    base = results["naive per-slice model(support, query)"]
    print(f"{Path(args.volume).name}: {n} query slices, model {predictor.card.get('name')} at {predictor.size}px, "
          f"{args.threads} thread(s)")
    for name, seconds in results.items():
        print(f"{name:40s} {seconds:7.2f} s  {n / seconds:7.1f} slices/s  speed-up x{base / seconds:.2f}")


if __name__ == "__main__":
    main()
