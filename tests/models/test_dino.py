"""DINO: the student learns the objective, the teacher is the EMA of the student, centring,
schedules, multi-crop geometry, exact resumption, and ``lobule train dino`` end to end."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import skimage.data
import torch

from lobule.models.dino import DINOLoss, cosine_schedule, teacher_temperatures, update_teacher
from lobule.models.multicrop import MultiCropConfig, multi_crop, random_resized_crop
from lobule.core.errors import CheckpointError
from lobule.models.train_dino import DinoConfig, DinoTrainer, train_dino

CROPS = MultiCropConfig(global_size=32, local_size=16, local_crops=2)


def tiny_config(**overrides) -> DinoConfig:
    settings = dict(depth=18, base_width=8, out_dim=256, hidden_dim=64, bottleneck_dim=16, epochs=10, batch_size=16,
                    lr=0.05, warmup_epochs=1, momentum_teacher=0.99, crops=CROPS)
    settings.update(overrides)
    return DinoConfig(**settings)


@pytest.fixture(scope="module")
def tissue_tiles() -> torch.Tensor:
    """64 real tissue tiles, 64x64 uint8 RGB, cut from scikit-image's immunohistochemistry image."""
    image = skimage.data.immunohistochemistry()
    corners = np.random.default_rng(0).integers(0, 448, (64, 2))
    return torch.from_numpy(np.stack([image[y:y + 64, x:x + 64] for y, x in corners]))


def _losses(trainer, tiles, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return np.array([trainer.train_step(tiles[torch.randperm(len(tiles), generator=generator)[:16]])["loss"]
                     for _ in range(steps)])


def test_student_loss_falls_against_a_fixed_teacher(tissue_tiles):
    """momentum 1 freezes the teacher: the student must learn to predict its distributions."""
    losses = _losses(DinoTrainer(tiny_config(momentum_teacher=1.0), steps_per_epoch=6), tissue_tiles, 40)
    assert losses[-10:].mean() < losses[:10].mean() - 0.3, losses


def test_loss_falls_in_a_tiny_dino_run(tissue_tiles):
    """Full dynamics (EMA teacher, centring, sharpening), first 20 steps of a tiny run."""
    losses = _losses(DinoTrainer(tiny_config(), steps_per_epoch=6), tissue_tiles, 20)
    assert losses[10:].mean() < losses[:10].mean() - 0.3, losses


def test_teacher_is_the_ema_of_the_student(tissue_tiles):
    trainer = DinoTrainer(tiny_config(momentum_teacher=0.9), steps_per_epoch=4)
    for _ in range(2):  # beyond the first step, where teacher and student start equal
        before = [p.detach().clone() for p in trainer.teacher.parameters()]
        momentum = float(trainer.momentum_schedule[trainer.step])
        trainer.train_step(tissue_tiles[:16])
        for old, teacher, student in zip(before, trainer.teacher.parameters(), trainer.student.parameters()):
            torch.testing.assert_close(teacher, momentum * old + (1 - momentum) * student, rtol=0, atol=1e-6)
        assert all(p.grad is None for p in trainer.teacher.parameters())
    assert any(not torch.equal(t, s) for t, s in zip(trainer.teacher.parameters(), trainer.student.parameters()))


def test_update_teacher_formula():
    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.75 * teacher.weight.detach() + 0.25 * student.weight.detach()
    update_teacher(student, teacher, 0.75)
    torch.testing.assert_close(teacher.weight.detach(), expected)


def test_loss_centring_and_sharpening():
    loss = DINOLoss(4, teacher_temperatures(0.04, 0.04, 0, 1), student_temp=0.1, centre_momentum=0.9)
    teacher = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])  # two global views, batch 1
    student = torch.zeros(3, 4)  # three student views
    value = loss(student, teacher, n_views=3, epoch=0)
    assert value.item() == pytest.approx(math.log(4))  # uniform student: H(P_t, P_s) = log K for any P_t
    torch.testing.assert_close(loss.centre, 0.1 * teacher.mean(0, keepdim=True))
    assert loss.last_teacher_entropy < 1e-6  # temperature 0.04 makes the teacher one-hot


def test_schedules():
    lr = cosine_schedule(1.0, 0.0, epochs=4, steps_per_epoch=5, warmup_epochs=1)
    assert len(lr) == 20 and lr[0] == 0 and lr[4] == 1 and lr[5] == 1 and lr[-1] > 0 and np.all(np.diff(lr[5:]) < 0)
    momentum = cosine_schedule(0.996, 1.0, epochs=2, steps_per_epoch=50)
    assert momentum[0] == 0.996 and momentum[-1] == pytest.approx(1.0, abs=1e-6)
    assert list(teacher_temperatures(0.02, 0.04, 3, 5)) == pytest.approx([0.02, 0.03, 0.04, 0.04, 0.04])
    assert DinoConfig().peak_lr == pytest.approx(2.5e-4)  # 5e-4 at batch 128 (DINO's linear scaling)


def test_full_crop_is_the_tile_up_to_flips_and_quarter_turns():
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(12):
        crop = random_resized_crop(image, 8, (1.0, 1.0), generator, ratio=(1.0, 1.0))
        variants = {}
        for k in range(4):
            for flip in (False, True):
                rotated = torch.rot90(image, k, dims=(2, 3))
                variants[(k, flip)] = rotated.flip(3) if flip else rotated
        for n in range(2):
            match = [key for key, v in variants.items() if torch.allclose(crop[n], v[n], atol=1e-4)]
            assert len(match) == 1
            seen.add(match[0])
    assert len(seen) >= 5  # several of the 8 symmetries occur


def test_multi_crop_views():
    tiles = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    views = multi_crop(tiles, CROPS, torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(3, 3, 32, 32)] * 2 + [(3, 3, 16, 16)] * 2
    again = multi_crop(tiles, CROPS, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(views, again))
    lowest = (0 - max(CROPS.mean)) / min(CROPS.std)
    assert all(torch.isfinite(v).all() and v.min() >= lowest - 1e-4 for v in views)


class _Tiles(torch.utils.data.Dataset):
    def __init__(self, tiles):
        self.tiles = tiles.numpy()

    def __len__(self):
        return len(self.tiles)

    def __getitem__(self, i):
        return self.tiles[i]


def test_interrupted_run_resumes_exactly(tmp_path, tissue_tiles):
    config = tiny_config(epochs=2, batch_size=8, lr=0.01)
    data = _Tiles(tissue_tiles[:24])  # 3 steps per epoch, 6 in all
    train_dino(config, data, tmp_path / "full.json", tmp_path / "full.state", log=lambda _: None)
    train_dino(config, data, tmp_path / "part.json", tmp_path / "part.state", log=lambda _: None, max_steps=4)
    lines = []
    train_dino(config, data, tmp_path / "part.json", tmp_path / "part.state", log=lines.append)
    assert lines[0].startswith("resumed from") and "at step 4" in lines[0]
    from safetensors.torch import load_file
    full, part = load_file(tmp_path / "full.state"), load_file(tmp_path / "part.state")
    assert set(full) == set(part)
    for key in full:
        torch.testing.assert_close(part[key], full[key], rtol=0, atol=1e-6, msg=key)
    card = json.loads((tmp_path / "part.json").read_text())
    assert card["task"] == "backbone" and card["architecture"] == "resnet"
    assert card["training"]["steps_done"] == 6 and card["arguments"]["depth"] == 18
    # a state of another trainer in the DINO state's place is refused by its kind, before loading
    from lobule.models.train_state import save_training_state

    other = save_training_state(tmp_path / "other.state", {"model": torch.nn.Linear(2, 2)}, {}, {"iteration": 1},
                                kind="segmentation")
    with pytest.raises(CheckpointError, match="other.state belongs to the segmentation trainer, not the DINO"):
        DinoTrainer(config, steps_per_epoch=3).load_state(other)


def test_train_dino_command_end_to_end(tmp_path, monkeypatch, capsys):
    """Tiles from a folder of images -> backbone card -> a DeepLabv3+ starts from it; ``lobule models`` lists it."""
    import cv2

    from lobule.inference.cli import run
    from lobule.models.pretrained import load_pretrained_backbone
    from lobule.models.registry import create_model

    images = tmp_path / "images"
    images.mkdir()
    image = skimage.data.immunohistochemistry()
    for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0)]):
        cv2.imwrite(str(images / f"tile{i}.png"), cv2.cvtColor(image[y:y + 256, x:x + 256], cv2.COLOR_RGB2BGR))
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "models" / "dino-tiny.json"
    out.parent.mkdir()
    argv = ["train", "dino", "--tiles", str(images), "--out", str(out), "--tile-size", "64", "--min-tissue", "0",
            "--depth", "18", "--base-width", "4", "--out-dim", "32", "--hidden-dim", "16", "--bottleneck-dim", "8",
            "--epochs", "1", "--batch-size", "16", "--global-size", "32", "--local-size", "16", "--local-crops", "2",
            "--device", "cpu", "--log-every", "1"]
    assert run(argv) == 0
    printed = capsys.readouterr().out
    assert "48 tiles of 64 px from 3 file(s)" in printed and "teacher entropy" in printed
    card = json.loads(out.read_text())
    assert card["task"] == "backbone" and card["training"]["steps_done"] == 3
    assert card["training"]["commands"][0].startswith("lobule train dino --tiles ")
    assert [s["tiles"] for s in card["training"]["data"]] == [16, 16, 16]
    model = create_model("deformable_deeplabv3plus", depth=18, base_width=4, head_channels=8)
    assert load_pretrained_backbone(model, out)["name"] == "dino-tiny"
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(out.parent))
    assert run(["models"]) == 0
    assert "dino-tiny" in capsys.readouterr().out
    assert run(["train", "dino", "--tiles", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"lobule: error: no such file or folder: {tmp_path / 'nope'}"
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((128, 128, 3), 245, np.uint8))  # blank glass: no tissue tiles
    assert run(["train", "dino", "--tiles", str(glass), "--out", str(out), "--tile-size", "64"]) == 2
    assert "no tissue tiles found" in capsys.readouterr().err
