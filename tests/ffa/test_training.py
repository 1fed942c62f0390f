"""The training loop: patch sampling, early stopping on validation AUC-ROC, resumable state."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lobule.models.errors import CheckpointError
from lobule.models.registry import create_model
from lobule.models.train_ffa import FFATrainConfig, PatchSampler, train_cnp


def _data():
    rng = np.random.default_rng(0)
    images = [rng.random((64, 80), dtype=np.float32) for _ in range(2)]
    masks = [im > 0.7 for im in images]
    regions = [np.zeros(im.shape, bool) for im in images]
    for region in regions:
        region[20:40, 30:50] = True
    return images, masks, regions


def test_patch_sampler_shapes_targets_and_region():
    images, masks, regions = _data()
    sampler = PatchSampler(images, masks, regions, 48, np.random.default_rng(1))
    xs, ys = sampler.sample(32)
    assert xs.shape == (32, 1, 48, 48) and xs.dtype == np.float32
    assert ys.shape == (32, 48, 48) and ys.dtype == np.int64
    # targets follow the image through the flips: CNP where the patch value > 0.7
    np.testing.assert_array_equal(ys == 1, xs[:, 0] > 0.7)
    strong = PatchSampler(images, masks, regions, 48, np.random.default_rng(1), augment="dihedral+gamma")
    xs, ys = strong.sample(64)
    assert 0.0 <= xs.min() and xs.max() <= 1.0
    assert ((xs[:, 0] > 0.7) == (ys == 1)).mean() > 0.9  # gamma moves values near 0.7 only
    with pytest.raises(ValueError, match="augment must be one of"):
        PatchSampler(images, masks, regions, 48, np.random.default_rng(1), augment="mixup")
    with pytest.raises(ValueError, match="smaller than"):
        PatchSampler([np.zeros((40, 40), np.float32)], [np.zeros((40, 40), bool)], [np.ones((40, 40), bool)], 48,
                     np.random.default_rng(0))


def test_early_stop_after_patience_epochs_without_gain(tmp_path):
    images, masks, regions = _data()
    torch.manual_seed(0)
    model = create_model("laddernet", base_width=2)
    aucs = iter([0.6, 0.7, 0.65, 0.7, 0.69, 0.9])
    config = FFATrainConfig(batch_size=2, patches_per_epoch=2, lr=1e-3, patience=3, max_epochs=20)
    result = train_cnp(model, images, masks, regions, lambda m: {"auc_roc": next(aucs)}, config, tmp_path,
                       log=lambda line: None)
    assert result.stopped == "early_stop"
    assert (result.epochs_run, result.best_epoch, result.best_auc) == (5, 2, 0.7)
    best = json.loads((tmp_path / "state.json").read_text())
    assert best["best_epoch"] == 2 and [h["val_auc_roc"] for h in best["history"]] == [0.6, 0.7, 0.65, 0.7, 0.69]
    for key, value in model.state_dict().items():  # the model holds the best epoch's weights
        torch.testing.assert_close(value, result.best_state[key])


def test_resume_continues_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    images, masks, regions = _data()
    config = FFATrainConfig(batch_size=2, patches_per_epoch=4, lr=1e-3, patience=10, max_epochs=2)

    counters = {}  # one rising validation AUC per training folder, kept across the interruption

    def run(workdir, epochs, resume=False):
        torch.manual_seed(0)
        model = create_model("laddernet", base_width=2, dropout=0.0)
        cfg = FFATrainConfig(**{**config.__dict__, "max_epochs": epochs})
        counter = counters.setdefault(workdir, iter(range(1, 100)))
        return model, train_cnp(model, images, masks, regions, lambda m: {"auc_roc": next(counter) / 100}, cfg,
                                workdir, resume=resume, log=lambda line: None, identity={"a": 1})

    straight, _ = run(tmp_path / "straight", 2)
    run(tmp_path / "split", 1)
    resumed, result = run(tmp_path / "split", 2, resume=True)
    assert result.epochs_run == 2
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run(tmp_path / "empty", 1, resume=True)
