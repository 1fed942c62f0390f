"""The training loop: patch sampling, early stopping on validation AUC-ROC, resumable state."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lobule.core.errors import CheckpointError
from lobule.models.registry import create_model
from lobule.models.train_ffa import IGNORE, FFATrainConfig, PatchSampler, class_weights, train_cnp
from lobule.models.train_state import read_training_meta


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
    # targets follow the image through the flips: CNP where the patch value > 0.7; pixels outside
    # the region (the field of view in training) are ignored by the loss
    counted = ys != IGNORE
    assert counted.any() and (~counted).any()
    np.testing.assert_array_equal(ys[counted] == 1, xs[:, 0][counted] > 0.7)
    strong = PatchSampler(images, masks, regions, 48, np.random.default_rng(1), augment="dihedral+gamma")
    xs, ys = strong.sample(64)
    assert 0.0 <= xs.min() and xs.max() <= 1.0
    counted = ys != IGNORE
    assert ((xs[:, 0] > 0.7) == (ys == 1))[counted].mean() > 0.9  # gamma moves values near 0.7 only
    with pytest.raises(ValueError, match="augment must be one of"):
        PatchSampler(images, masks, regions, 48, np.random.default_rng(1), augment="mixup")
    with pytest.raises(ValueError, match="smaller than"):
        PatchSampler([np.zeros((40, 40), np.float32)], [np.zeros((40, 40), bool)], [np.ones((40, 40), bool)], 48,
                     np.random.default_rng(0))


def test_angio_augmentation_rotates_image_and_target_together():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:96, :96]
    image = ((np.sin(xx / 5.0) * np.cos(yy / 7.0) + 1) / 2).astype(np.float32)  # smooth: rotation keeps it
    mask = image > 0.5
    region = (yy - 48) ** 2 + (xx - 48) ** 2 < 44**2
    sampler = PatchSampler([image], [mask], [region], 48, rng, augment="angio")
    xs, ys = sampler.sample(64)
    assert xs.shape == (64, 1, 48, 48) and 0.0 <= xs.min() and xs.max() <= 1.0
    counted = ys != IGNORE
    assert counted.mean() > 0.5 and (~counted).any()  # corners beyond the field are not counted
    # contrast/brightness/gamma are monotonic per patch: the target still splits each patch's values
    # (a target rotated differently from its image would break this in most patches)
    agree = [x[c & (y == 1)].min() >= np.percentile(x[c & (y == 0)], 50)
             for x, y, c in zip(xs[:, 0], ys, counted) if (y[c] == 1).sum() > 20 and (y[c] == 0).sum() > 20]
    assert len(agree) > 10 and np.mean(agree) > 0.9


def test_class_weights_balance_the_pixels_inside_the_regions():
    mask = np.zeros((10, 10), bool)
    mask[:2] = True  # 20 % CNP
    region = np.ones((10, 10), bool)
    region[5:] = False  # inside: 20 CNP of 50 pixels
    weights = class_weights([mask], [region])
    np.testing.assert_allclose(weights, [50 / 60, 50 / 40])
    np.testing.assert_allclose(class_weights([np.zeros((4, 4), bool)], [np.ones((4, 4), bool)]), [1, 1])


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
    best = read_training_meta(tmp_path / "state.safetensors", "FFA CNP")
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
    with pytest.raises(CheckpointError, match="other settings") as refused:
        counters[tmp_path / "split"] = iter(range(1, 100))
        torch.manual_seed(0)
        train_cnp(create_model("laddernet", base_width=2, dropout=0.0), images, masks, regions,
                  lambda m: {"auc_roc": 0.5}, FFATrainConfig(**{**config.__dict__, "max_epochs": 3}),
                  tmp_path / "split", resume=True, log=lambda line: None, identity={"a": 2})
    assert "\n" not in str(refused.value) and "split" in str(refused.value)


def test_a_state_of_the_few_shot_trainer_is_refused_in_one_line(tmp_path):
    from lobule.models.train_fewshot import STATE_KIND
    from lobule.models.train_state import save_training_state

    images, masks, regions = _data()
    model = create_model("laddernet", base_width=2)
    save_training_state(tmp_path / "state.safetensors", {"model": model}, {}, {"identity": {}}, kind=STATE_KIND)
    with pytest.raises(CheckpointError, match="few-shot trainer, not the FFA CNP trainer") as refused:
        train_cnp(model, images, masks, regions, lambda m: {"auc_roc": 0.5}, FFATrainConfig(max_epochs=1),
                  tmp_path, resume=True, log=lambda line: None)
    assert "\n" not in str(refused.value) and "state.safetensors" in str(refused.value)
