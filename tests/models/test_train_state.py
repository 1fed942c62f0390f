"""The one resumable training-state format: modules, optimizers, extra tensors, meta, trainer kind."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lobule.core.errors import CheckpointError
from lobule.models.train_state import load_training_state, read_training_meta, save_training_state


def _trained():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_with_extra_tensors_numpy_meta_and_kind(tmp_path):
    model, optimizer = _trained()
    path = tmp_path / "s.safetensors"
    rng = torch.get_rng_state()
    meta = {"epoch": np.int64(3), "loss": np.float32(0.5), "numpy_rng": np.random.default_rng(1).bit_generator.state}
    save_training_state(path, {"model": model}, {"adam": optimizer}, meta, tensors={"torch_rng": rng}, kind="a")
    assert not list(tmp_path.glob("*.part"))  # atomic: no temporary file left
    assert read_training_meta(path, "a")["epoch"] == 3

    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    tensors = {}
    loaded = load_training_state(path, {"model": fresh}, {"adam": fresh_opt}, tensors=tensors, kind="a")
    assert loaded["loss"] == 0.5 and loaded["numpy_rng"] == meta["numpy_rng"]
    torch.testing.assert_close(tensors["torch_rng"], rng)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    torch.testing.assert_close(fresh_opt.state_dict()["state"][0]["exp_avg"],
                               optimizer.state_dict()["state"][0]["exp_avg"])

    with pytest.raises(CheckpointError, match="s.safetensors belongs to the a trainer, not the b trainer"):
        load_training_state(path, {"model": fresh}, {"adam": fresh_opt}, kind="b")
    legacy = tmp_path / "legacy.safetensors"  # states written before kinds: the module check decides
    save_training_state(legacy, {"model": model}, {}, {})
    load_training_state(legacy, {"model": fresh}, {}, kind="b")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain))
    with pytest.raises(CheckpointError, match="plain.safetensors is not a Lobule training state"):
        read_training_meta(plain)
