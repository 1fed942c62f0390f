"""Does fine-tuning on corrections raise agreement on the corrected areas? Measured on the demo slide.

Steps (all through the headless annotation API the Slide tab uses):

1. The class map of the demo slide by the classical colour-phase labeller (``lobule analyze
   --model classical``; reused from the analysis folder when it is there).
2. A *parent* model: a small U-Net trained by the segmentation trainer on 512 px tiles of the
   demo slide against the classical labels (a stand-in for the shipped liver model, which is not
   there yet; sizes and iterations in the output).
3. Corrections, simulated as a pathologist who disagrees with two systematic calls of the model:
   every connected "heterochromatic" (6) area is flood-filled as parenchyma (4), and every
   connected "inflammatory nuclei" (3) area as normal nuclei (2) (flood fill bounded at 60 um,
   seeds at the classical map's components); one undo step per fill, saved like a user's session.
4. Training pairs (every 5th tile held out), fine-tuning from the parent, and agreement on the
   corrected pixels before/after, on training tiles and on held-out tiles; plus how much of the
   *uncorrected* pixels of the held-out tiles keep the parent's class (stability elsewhere).

Usage::

    python benchmarks/annotations_finetune.py --work WORK [--parent-iterations 600] [--iterations 300]

CPU, one thread (``--threads``); about 10-15 minutes on one core.
"""
from __future__ import annotations

import argparse
import json
import time
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "lobule-finetune-bench"))
    parser.add_argument("--parent-iterations", type=int, default=600)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    from lobule.inference.annotations import AnnotationSession
    from lobule.inference.annotations.edits import read_rgb
    from lobule.inference.annotations.finetune import FinetuneSettings, finetune, predict_tiles
    from lobule.inference.annotations.training_pairs import export_training_pairs, read_pairs
    from lobule.inference.labelstore import find_store
    from lobule.models.checkpoint import load_checkpoint, save_checkpoint
    from lobule.models.train_segment import SegmentTrainConfig, train_segmentation
    from lobule.resources import DEMO_SLIDE
    from lobule.resources.classes import class_table_json
    from lobule.inference.slide import open_slide

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store = find_store(DEMO_SLIDE, "classical")
    if store is None:
        import subprocess

        subprocess.run(["lobule", "analyze", str(DEMO_SLIDE), "--out", str(work / "analysis"), "--model",
                        "classical", "--quiet"], check=True)
        store = find_store(DEMO_SLIDE, "classical")
    print(f"class map: {store} ({time.perf_counter() - t0:.0f} s)", flush=True)

    slide = open_slide(DEMO_SLIDE)
    height, width = store.shape
    tiles = []
    for y in range(0, height - 255, 512):
        for x in range(0, width - 255, 512):
            labels = store.read_labels((x, y, 512, 512))
            if (labels != 0).mean() > 0.3:
                tiles.append((read_rgb(slide, (x, y, min(512, width - x), min(512, height - y)), store.scale),
                              labels[: min(512, height - y), : min(512, width - x)]))
    parent_card = work / "models" / "demo-parent.json"
    mean, std = (0.70, 0.55, 0.70), (0.15, 0.20, 0.15)
    if not parent_card.is_file():
        config = SegmentTrainConfig(arch="unet", arguments={"num_classes": 7, "base_width": 8, "depth": 3},
                                    iterations=args.parent_iterations, batch_size=4, crop_size=256, lr=0.05,
                                    mean=mean, std=std, threads=args.threads, scale_range=(1.0, 1.0))
        t1 = time.perf_counter()
        result = train_segmentation(config, tiles, work / "parent-state.safetensors",
                                    log=lambda line: print("parent", line, flush=True), log_every=50)
        card = {"name": "demo-parent", "task": "liver-hne", "architecture": "unet",
                "arguments": config.arguments, "classes": class_table_json(),
                "input": {"mpp": store.mpp, "tile_size": 512, "normalisation": {"mean": list(mean), "std": list(std)}},
                "training": {"data": [f"{len(tiles)} tiles of the demo slide, classical colour-phase labels"],
                             "notes": ["benchmark parent, not a shipped model"],
                             "seconds": round(time.perf_counter() - t1)}}
        parent_card.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(result.model, card, parent_card)
    print(f"parent: {parent_card} ({len(tiles)} tiles)", flush=True)

    folder = work / "annotations"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    session = AnnotationSession.open(DEMO_SLIDE, store, folder=folder, autosave_s=None)
    model_map = store.read_labels((0, 0, width, height))
    fills = 0
    for source, target in ((6, 4), (3, 2)):
        n, comp, stats, centroids = cv2.connectedComponentsWithStats((model_map == source).astype(np.uint8), 4)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < 12:
                continue
            ys, xs = np.nonzero(comp[stats[k, 1]: stats[k, 1] + stats[k, 3], stats[k, 0]: stats[k, 0] + stats[k, 2]] == k)
            sx, sy = xs[0] + stats[k, 0], ys[0] + stats[k, 1]
            if session.labels.read_labels((int(sx), int(sy), 1, 1))[0, 0] != source:
                continue
            session.flood_fill(((sx + 0.5) * store.scale, (sy + 0.5) * store.scale), target, radius_um=60)
            fills += 1
    session.save()
    print(f"corrections: {fills} flood fills, {session.labels.corrected_pixels()} corrected pixels", flush=True)
    pairs = export_training_pairs(session.labels, slide, work / "pairs")
    print(f"pairs: {pairs.train} train / {pairs.val} held-out tiles", flush=True)

    t2 = time.perf_counter()
    result = finetune(parent_card, pairs.folder, work / "models" / "demo-finetuned.json",
                      FinetuneSettings(iterations=args.iterations, threads=args.threads),
                      on_log=lambda line: print("finetune", line, flush=True))
    finetune_s = time.perf_counter() - t2
    parent_model, parent = load_checkpoint(parent_card)
    new_model, new = load_checkpoint(result.card)
    _, val = read_pairs(pairs.folder, "val")
    stable = None
    if val:
        images = [p[0] for p in val]
        old = predict_tiles(parent_model, parent, images)
        now = predict_tiles(new_model, new, images)
        keep = [p[1] == 255 for p in val]
        stable = float(sum(((o == n) & k).sum() for o, n, k in zip(old, now, keep)) / sum(k.sum() for k in keep))
    report = {"before": result.before, "after": result.after, "finetune_seconds": round(finetune_s, 1),
              "uncorrected_val_pixels_keeping_parent_class": stable, "fills": fills,
              "corrected_pixels": pairs.corrected_pixels, "train_tiles": pairs.train, "val_tiles": pairs.val,
              "lineage": new["lineage"]}
    (work / "report.json").write_text(json.dumps(report, indent=1))
    for split in ("train", "val"):
        if split in result.before:
            b, a = result.before[split], result.after[split]
            print(f"{split}: agreement on corrected pixels {b['agreement']:.3f} -> {a['agreement']:.3f} "
                  f"({b['pixels']} px); mean IoU {b['mean_iou']:.3f} -> {a['mean_iou']:.3f}")
    if stable is not None:
        print(f"held-out tiles, uncorrected pixels keeping the parent's class: {stable:.3f}")
    print(f"fine-tuning {finetune_s:.0f} s; card {result.card}")
    session.close()
    slide.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
