"""Corrections become training data (tile/label pairs, ignore outside corrected pixels), a
checkpoint is fine-tuned on them with lineage in its card, and quantification follows edits."""
from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import box

from lobule.inference.annotations.follow import QuantFollower
from lobule.inference.annotations.training_pairs import export_training_pairs, read_pairs
from lobule.inference.errors import InputError
from lobule.inference.liver.quantify import quantify
from lobule.inference.regions import Region
from lobule.resources.classes import IGNORE_INDEX, STEATOSIS


@pytest.fixture
def slide(demo_slide):
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as reader:
        yield reader


def test_pairs_hold_the_corrected_pixels_and_ignore_elsewhere(session, slide, tmp_path):
    with pytest.raises(InputError, match="no corrections"):
        export_training_pairs(session.labels, slide, tmp_path / "none")
    for k, x in enumerate(range(200, 2100, 300)):
        session.brush([(x, 300), (x, 2700)], 6 if k % 2 else 5, radius_um=20)
    export = export_training_pairs(session.labels, slide, tmp_path / "pairs", tile=512)
    assert not (tmp_path / "none").exists()
    manifest = json.loads((tmp_path / "pairs" / "pairs.json").read_text())
    assert export.train >= 1 and export.val >= 1 and manifest["ignore_index"] == IGNORE_INDEX
    assert export.corrected_pixels == session.labels.corrected_pixels()
    _, pairs = read_pairs(tmp_path / "pairs")
    assert len(pairs) == export.train + export.val
    for record, (image, labels) in zip(manifest["tiles"], pairs):
        x, y = record["x"], record["y"]
        assert image.shape == (512, 512, 3) and labels.shape == (512, 512)
        assert np.array_equal(labels, session.labels.read_corrections((x, y, 512, 512)))
        assert set(np.unique(labels)) <= {5, 6, IGNORE_INDEX}
        assert np.abs(image.astype(int) - slide.read_region((x, y), 0, (512, 512)).astype(int)).mean() < 1
    assert (tmp_path / "pairs" / "train" / "images").is_dir() and (tmp_path / "pairs" / "val" / "labels").is_dir()


def test_finetune_raises_agreement_and_records_lineage(session, slide, tmp_path):
    pytest.importorskip("lobule.models.train_segment")
    import torch

    from lobule.inference.annotations.finetune import FinetuneSettings, finetune
    from lobule.models.checkpoint import load_checkpoint, save_checkpoint
    from lobule.models.registry import create_model
    from lobule.resources.classes import class_table_json

    torch.manual_seed(0)
    parent = create_model("unet", num_classes=7, base_width=4, depth=2)
    card = {"name": "tiny-parent", "task": "liver-hne", "architecture": "unet",
            "arguments": {"num_classes": 7, "base_width": 4, "depth": 2}, "classes": class_table_json(),
            "input": {"mpp": 0.5, "tile_size": 512, "normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}},
            "training": {"data": ["nothing: random weights for a test"]}}
    (tmp_path / "models").mkdir()
    parent_card = save_checkpoint(parent, card, tmp_path / "models" / "tiny-parent.json")
    for y in range(1100, 1500, 100):
        session.brush([(600, y), (1400, y)], 4, radius_um=20)
    session.flood_fill((1100, 1300), 3, radius_um=60)
    pairs = export_training_pairs(session.labels, slide, tmp_path / "pairs", holdout_every=0)
    progress = []
    result = finetune(parent_card, pairs.folder, tmp_path / "models" / "tiny-ft.json",
                      FinetuneSettings(iterations=40, batch_size=2, crop=96, lr=0.05, threads=1),
                      on_progress=progress.append)
    assert progress[0].iteration == 0 and progress[-1].iteration == 40
    assert result.after["train"]["agreement"] > result.before["train"]["agreement"]
    model, new = load_checkpoint(result.card)
    assert new["lineage"]["parent"]["name"] == "tiny-parent"
    assert new["lineage"]["corrections"]["corrected_pixels"] == pairs.corrected_pixels
    assert new["metrics"]["corrections_agreement"]["after"]["train"]["pixels"] == pairs.corrected_pixels
    assert new["name"] == "tiny-ft" and new["lineage"]["created"]


def test_numbers_follow_edits_only_in_touched_regions(session):
    left = Region("left", box(0, 0, 1000, 1400))
    right = Region("right", box(1200, 0, 2200, 1400))
    session.add_regions([left, right])
    follower = QuantFollower(session)
    updates = []
    follower.updated.connect(lambda name, result: updates.append(name))
    results = follower.refresh()
    assert set(results) == {"left", "right"} and sorted(updates) == ["left", "right"]
    before = {row["id"]: row["pixels"] for row in results["left"].classes}
    right_before = results["right"]
    updates.clear()
    session.fill_polygon(box(100, 100, 300, 300), STEATOSIS)
    assert follower.stale == ["left"]
    follower.refresh()
    assert updates == ["left"] and follower.results["right"] is right_before
    after = {row["id"]: row["pixels"] for row in follower.results["left"].classes}
    assert after[STEATOSIS] == before[STEATOSIS] + int(
        (session.labels.read_model((100, 100, 200, 200)) != STEATOSIS).sum())
    again = quantify(session.labels, left)
    assert [r["pixels"] for r in again.classes] == [r["pixels"] for r in follower.results["left"].classes]
    session.undo()
    follower.refresh()
    assert {row["id"]: row["pixels"] for row in follower.results["left"].classes} == before
    session.remove_region("right")
    assert "right" not in follower.results
    follower.close()


def test_follower_thread_debounces_and_reports(session):
    import time

    session.add_regions([Region("r", box(0, 0, 600, 600))])
    follower = QuantFollower(session, debounce_s=0.05).start()
    try:
        seen = []
        follower.updated.connect(lambda name, result: seen.append(result))
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        session.brush([(100, 100), (500, 500)], STEATOSIS, radius_um=15)
        n = len(seen)
        while len(seen) == n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(seen) > n and not follower.stale
    finally:
        follower.close()
