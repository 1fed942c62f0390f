"""The training loop: ignore label, loss falls, resumable state, the card it writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lobule.core.errors import CheckpointError
from lobule.models.segment_augment import AugmentSettings, augment_sample, hed_jitter
from lobule.models.train_segment import (SegmentTrainConfig, masked_cross_entropy, poly_lr, soft_dice_loss,
                                         train_segmentation)


def test_ignored_pixels_do_not_count_in_the_loss():
    logits = torch.randn(2, 7, 4, 4, requires_grad=True)
    labels = torch.randint(0, 7, (2, 4, 4))
    labels[0, :2] = 255
    loss = masked_cross_entropy(logits, labels)
    keep = labels != 255
    expected = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.all(logits.grad[0, :, :2] == 0) and logits.grad[0, :, 2:].abs().sum() > 0


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 7, 3, 3, requires_grad=True)
    loss = masked_cross_entropy(logits, torch.full((1, 3, 3), 255))
    assert loss.item() == 0.0
    loss.backward()


def test_soft_dice_loss_scores_the_droplet_class_and_skips_ignored_pixels():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2] = 1
    perfect = torch.zeros(1, 7, 4, 4)
    perfect[:, 1] = torch.where(labels == 1, 20.0, -20.0)  # class 1 where labelled 1, class 0 elsewhere
    perfect[:, 0] = -perfect[:, 1]
    assert soft_dice_loss(perfect, labels, 1).item() == pytest.approx(0.0, abs=1e-6)
    # predicting class 1 on the 8 background pixels too: Dice = (2*8 + 1) / (16 + 8 + 1)
    everywhere = torch.zeros(1, 7, 4, 4)
    everywhere[:, 1] = 20.0
    assert soft_dice_loss(everywhere, labels, 1).item() == pytest.approx(1 - 17 / 25, abs=1e-4)
    # the same false positives under the ignore label do not count
    ignored = labels.clone()
    ignored[0, 2:] = 255
    assert soft_dice_loss(everywhere, ignored, 1).item() == pytest.approx(0.0, abs=1e-4)
    logits = everywhere.clone().requires_grad_(True)
    soft_dice_loss(logits, ignored, 1).backward()
    assert torch.all(logits.grad[0, :, 2:] == 0)


def test_poly_learning_rate():
    assert poly_lr(0.01, 0, 100) == 0.01
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(0.01, 100, 100) == 0.0


def test_augmentations_keep_image_and_labels_aligned(tiles):
    image, labels = tiles[0]
    rng = np.random.default_rng(0)
    for _ in range(5):
        img, lab = augment_sample(image, labels, 64, AugmentSettings(hed_sigma=0, brightness=0, contrast=0), rng)
        assert img.shape == (64, 64, 3) and lab.shape == (64, 64)
        white = img.min(axis=2) > 230  # droplets are the only white pixels of the synthetic tile
        assert (lab[white] == 1).mean() > 0.9
    jittered = hed_jitter(image, 0.05, np.random.default_rng(1))
    assert jittered.dtype == np.uint8 and 0 < np.abs(jittered.astype(int) - image).mean() < 25


def test_a_tiny_run_lowers_the_loss_and_resumes(tmp_path, tiles, tiny_arguments):
    config = SegmentTrainConfig(arch="deeplabv3plus", arguments=tiny_arguments, iterations=40, batch_size=4,
                                crop_size=64, lr=0.05, scale_range=(1.0, 1.0), hed_sigma=0.0)
    state = tmp_path / "state.safetensors"
    lines = []
    stop_at = {"n": 0}

    def stop():
        stop_at["n"] += 1
        return stop_at["n"] > 20  # interrupt after 20 iterations

    first = train_segmentation(config, tiles, state, log=lines.append, log_every=5, save_every=10, stop=stop)
    assert first.iterations == 20 and state.is_file()
    assert any(line.startswith("iter 5/40 loss ") and "img/s" in line for line in lines)
    second = train_segmentation(config, tiles, state, log=lines.append, log_every=5, save_every=10)
    assert second.resumed_from == 20 and second.iterations == 40
    losses = [h["loss"] for h in second.history]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    other = SegmentTrainConfig(arch="deeplabv3plus", arguments=tiny_arguments, iterations=41, batch_size=4,
                               crop_size=64)
    with pytest.raises(CheckpointError, match="iterations"):
        train_segmentation(other, tiles, state, log=lines.append)


def test_cli_trains_and_writes_a_loadable_card(tmp_path, tiles, tiny_arguments, capsys):
    from lobule.inference.cli import run
    from lobule.inference.liver.segdata import write_png
    from lobule.models.checkpoint import load_checkpoint

    data = tmp_path / "data"
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    for i, (image, labels) in enumerate(tiles):
        write_png(data / "images" / f"t{i}.png", image)
        write_png(data / "labels" / f"t{i}.png", labels)
    image, labels = tiles[0]
    write_png(tmp_path / "held.png", image)
    write_png(tmp_path / "held_mask.png", (labels == 1).astype(np.uint8))
    (data / "heldout.json").write_text(json.dumps({"format": "lobule-evalset/1", "items": [
        {"name": "held", "image": str(tmp_path / "held.png"), "mask": str(tmp_path / "held_mask.png"), "mpp": 0.5,
         "kind": "droplets", "positive": [1]}]}))
    card_path = tmp_path / "run" / "tiny-liver.json"
    command = ["train", "segment", str(data), "--work", str(tmp_path / "run"),
               "--out", str(card_path), "--arch", "deeplabv3plus", "--depth", "18", "--base-width", "4",
               "--head-channels", "8", "--arg", "low_level_channels=8", "--iterations", "6", "--batch", "2",
               "--crop", "64", "--device", "cpu", "--threads", "1", "--log-every", "3", "--note", "test run"]
    code = run(command)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "iter 6/6 loss" in out.out
    model, card = load_checkpoint(card_path)
    assert card["task"] == "liver-hne" and card["arguments"]["base_width"] == 4
    assert card["input"]["mpp"] == 0.5 and card["weights"]["dtype"] == "float16"
    assert card["training"]["compute"]["iterations"] == 6 and card["training"]["notes"] == ["test run"]
    assert "train segment" in card["training"]["commands"][0]
    assert [i["name"] for i in card["training"]["data"]["images"]] == ["t0", "t1", "t2", "t3"]
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7, 64, 64)
    metrics = card["metrics"]
    assert set(metrics["comparison"]) == {"tiny-liver", "classical"}
    assert metrics["comparison"]["classical"]["lipid_droplets_dice"] > 0.9
    assert set(metrics["summary"]) == {"lipid_droplets_iou", "lipid_droplets_dice", "measured_on"}
    assert json.loads(card_path.read_text())["weights"]["sha256"] == card["weights"]["sha256"]


def test_init_and_backbone_cards_start_the_run(tmp_path, tiles, tiny_arguments, tiny_card, capsys):
    from lobule.inference.cli import run
    from lobule.inference.liver.segdata import write_png
    from lobule.models.checkpoint import load_checkpoint, save_checkpoint
    from lobule.models.resnet import ResNet

    backbone = ResNet(depth=18, base_width=4)
    torch.nn.init.constant_(backbone.conv1.weight, 0.125)
    backbone_card = save_checkpoint(backbone, {"name": "tiny-dino", "task": "backbone", "architecture": "resnet",
                                               "arguments": {"depth": 18, "base_width": 4}}, tmp_path / "dino.json")
    data = tmp_path / "data"
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    write_png(data / "images" / "t.png", tiles[0][0])
    write_png(data / "labels" / "t.png", tiles[0][1])
    out = tmp_path / "run" / "m.json"
    code = run(["train", "segment", str(data), "--work", str(tmp_path / "run"), "--out", str(out), "--arch",
                "deeplabv3plus", "--depth", "18", "--base-width", "4", "--head-channels", "8", "--arg",
                "low_level_channels=8", "--iterations", "1", "--batch", "1", "--crop", "32", "--lr", "0",
                "--device", "cpu", "--init", str(tiny_card), "--backbone", str(backbone_card)])
    assert code == 0, capsys.readouterr().err
    model, card = load_checkpoint(out)
    assert card["lineage"]["init"]["name"] == "tiny" and card["lineage"]["backbone"]["name"] == "tiny-dino"
    # lr 0: the weights are what the cards gave (the backbone loaded after --init)
    assert torch.allclose(model.backbone.conv1.weight, torch.full_like(model.backbone.conv1.weight, 0.125), atol=1e-3)
    parent, _ = load_checkpoint(tiny_card)
    assert torch.allclose(model.decoder.classifier.weight, parent.decoder.classifier.weight, atol=1e-3)
