"""Fixtures of the liver-model training tests: one torch thread, a tiny checkpoint, synthetic tiles."""
from __future__ import annotations

import numpy as np
import pytest

#: a DeepLabv3+ small enough to train a few steps in a test (ResNet-18 at 1/16 width)
TINY_ARGUMENTS = {"num_classes": 7, "depth": 18, "base_width": 4, "head_channels": 8, "low_level_channels": 8}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    import torch

    torch.manual_seed(0)


@pytest.fixture
def tiny_arguments() -> dict:
    return dict(TINY_ARGUMENTS)


def synthetic_tile(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An H&E-like tile: pink parenchyma, white round droplets (class 1), dark purple nuclei (2)."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (225, 150, 195)
    labels = np.full((size, size), 4, np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(4):
        cy, cx, r = rng.integers(12, size - 12), rng.integers(12, size - 12), rng.integers(5, 10)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[disc] = (240, 238, 240)
        labels[disc] = 1
    for _ in range(6):
        cy, cx = rng.integers(4, size - 4), rng.integers(4, size - 4)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
        image[disc] = (70, 40, 120)
        labels[disc] = 2
    noise = rng.integers(-6, 7, size=image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), labels


@pytest.fixture
def tiles() -> list[tuple[np.ndarray, np.ndarray]]:
    return [synthetic_tile(96, seed) for seed in range(4)]


@pytest.fixture
def tiny_card(tmp_path, tiny_arguments):
    """A saved, untrained tiny deeplabv3plus checkpoint (card path) at 0.5 um/px."""
    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model
    from lobule.resources.classes import class_table_json

    model = create_model("deeplabv3plus", **tiny_arguments)
    card = {"name": "tiny", "task": "liver-hne", "architecture": "deeplabv3plus", "arguments": tiny_arguments,
            "classes": class_table_json(),
            "input": {"mpp": 0.5, "tile_size": 64, "channels": 3,
                      "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}}
    return save_checkpoint(model.eval(), card, tmp_path / "tiny.json")
