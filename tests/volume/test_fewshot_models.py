"""DPCENet and the ALPNet baseline: the maths of docs/models.md, section 3, shapes, registry, training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lobule.models import fewshot as fs
from lobule.models.registry import available_models, create_model

TINY = {"depth": 18, "base_width": 4, "output_stride": 8, "feature_dim": 8}


def test_registry_names():
    assert {"dpcenet", "alpnet"} <= set(available_models())
    assert isinstance(create_model("dpcenet", **TINY), fs.DPCENet)
    assert isinstance(create_model("alpnet", **TINY), fs.ALPNet)


def test_masked_average_pooling_is_the_formula():
    torch.manual_seed(0)
    features = torch.randn(2, 5, 4, 6)
    mask = torch.zeros(2, 1, 4, 6)
    mask[0, 0, 1:3, 2:5] = 1.0
    mask[1, 0, 0, 0] = 0.5
    mask[1, 0, 3, 5] = 1.0
    proto = fs.masked_average_pooling(features, mask)
    for b in range(2):
        expected = (features[b] * mask[b]).sum((1, 2)) / mask[b].sum()
        torch.testing.assert_close(proto[b], expected)
    torch.testing.assert_close(proto[0], features[0, :, 1:3, 2:5].mean((1, 2)))
    empty = fs.masked_average_pooling(features, torch.zeros(2, 1, 4, 6))
    assert torch.equal(empty, torch.zeros(2, 5))  # eps keeps an empty mask finite


def test_cosine_maps_are_in_minus_one_one():
    torch.manual_seed(1)
    features = torch.randn(3, 16, 7, 7) * 10
    proto = torch.randn(3, 16)
    sim = fs.cosine_map(features, proto)
    assert sim.shape == (3, 7, 7)
    assert sim.min() >= -1.0 - 1e-6 and sim.max() <= 1.0 + 1e-6
    features[0, :, 2, 3] = proto[0] * 4.0
    features[1, :, 0, 0] = -proto[1]
    assert fs.cosine_map(features, proto)[0, 2, 3] == pytest.approx(1.0, abs=1e-6)
    assert fs.cosine_map(features, proto)[1, 0, 0] == pytest.approx(-1.0, abs=1e-6)


def test_fusion_weights_sum_to_one_and_mix_the_two_views():
    torch.manual_seed(2)
    fusion = fs.DynamicWeightFusion(32)
    assert fusion.w1.weight.shape == (4, 32) and fusion.w2.weight.shape == (2, 4)  # D/8
    a, b = torch.randn(5, 32, 6, 6), torch.randn(5, 32, 6, 6)
    w = fusion.weights(a, b)
    assert w.shape == (5, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    assert (w >= 0).all()
    fused = fusion(a, b)
    torch.testing.assert_close(fused, w[:, 0, None, None, None] * a + w[:, 1, None, None, None] * b)


def test_attention_maps_keep_shapes_and_follow_the_equations():
    torch.manual_seed(3)
    f = torch.randn(2, 8, 5, 4)
    spatial = fs.spatial_attention(f)
    channel = fs.channel_attention(f)
    assert spatial.shape == f.shape and channel.shape == f.shape
    v = f.flatten(2).transpose(1, 2)
    a = torch.softmax(v @ v.transpose(1, 2) / np.sqrt(8), -1)
    torch.testing.assert_close(spatial, (a @ v + v).transpose(1, 2).reshape(f.shape))
    q = f.flatten(2)
    c = torch.softmax(q @ q.transpose(1, 2) / np.sqrt(20), -1)
    torch.testing.assert_close(channel, (c @ q + q).reshape(f.shape))


def test_sqca_alpha_is_learnable_and_starts_as_identity():
    torch.manual_seed(4)
    sqca = fs.SupportQueryCrossAttention(8)
    fs_, fq = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    assert isinstance(sqca.alpha, torch.nn.Parameter) and float(sqca.alpha.detach()) == 0.0
    torch.testing.assert_close(sqca(fs_, fq), fs_)
    attention = sqca.attention(fs_, fq)
    assert attention.shape == (2, 16, 16)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 16))
    with torch.no_grad():
        sqca.alpha.fill_(0.7)
    v = sqca.w_v(fs_).flatten(2).transpose(1, 2)
    expected = fs_ + 0.7 * (attention @ v).transpose(1, 2).reshape(fs_.shape)
    torch.testing.assert_close(sqca(fs_, fq), expected)


@pytest.mark.parametrize("arch,extra", [("dpcenet", {}), ("alpnet", {"pool_window": 2})])
def test_forward_shapes_and_loss_gradients(arch, extra):
    torch.manual_seed(5)
    model = create_model(arch, **TINY, **extra)
    support, query = torch.randn(2, 3, 48, 48), torch.randn(2, 3, 48, 48)
    smask = torch.zeros(2, 48, 48)
    smask[:, 10:30, 12:34] = 1
    logits = model(support, smask, query)
    assert logits.shape == (2, 2, 48, 48)
    loss, parts = fs.episode_loss(model, support, smask, query, smask.clone())
    assert set(parts) == {"seg", "reg"} and loss.item() == pytest.approx(parts["seg"] + parts["reg"], rel=1e-5)
    loss.backward()
    if arch == "dpcenet":
        assert model.sqca[0].alpha.grad is not None
        assert model.fg_enhance[0].fusion.w1.weight.grad is not None
        assert model.bg_enhance[0].fusion.w2.weight.grad is not None


def test_dpcenet_without_modules_is_panet():
    """With SQCA and DPCE off and the zero-initialised decoder, the prediction is PANet's
    (scaled cosine to masked-average prototypes, averaged over levels)."""
    torch.manual_seed(6)
    model = create_model("dpcenet", **TINY, levels=(3,), use_sqca=False, use_dpce=False).eval()
    support, query = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    mask = torch.zeros(1, 32, 32)
    mask[:, 8:24, 8:24] = 1
    with torch.no_grad():
        logits = model(support, mask, query)
        fs_, fq = model.encode(support)[0], model.encode(query)[0]
        m = fs.resize_mask(mask, fs_.shape[-2:])
        fg = fs.cosine_map(fq, fs.masked_average_pooling(fs_, m)) * 20
        bg = fs.cosine_map(fq, fs.masked_average_pooling(fs_, 1 - m)) * 20
        expected = torch.nn.functional.interpolate(torch.stack([bg, fg], 1), size=(32, 32), mode="bilinear",
                                                   align_corners=False)
    torch.testing.assert_close(logits, expected)


def _fixed_episode(rng, batch):
    """A bright square on noise; support and query shifted copies."""
    image = np.random.default_rng(0).normal(0, 0.3, (32, 32)).astype(np.float32)
    image[8:20, 10:22] += 2.0
    mask = np.zeros((32, 32), np.float32)
    mask[8:20, 10:22] = 1
    q_img, q_mask = np.roll(image, 4, axis=1), np.roll(mask, 4, axis=1)
    ch = lambda x: np.repeat(x[None], 3, 0)  # noqa: E731
    return (np.stack([ch(image)] * batch), np.stack([mask] * batch), np.stack([ch(q_img)] * batch),
            np.stack([q_mask] * batch))


def test_training_lowers_the_loss_and_resumes(tmp_path):
    from lobule.models.train_fewshot import FewShotTrainConfig, train_fewshot

    torch.manual_seed(7)
    model = create_model("dpcenet", **TINY)
    config = FewShotTrainConfig(iterations=30, batch_size=2, lr=3e-3, optimizer="adamw", log_every=5, save_every=10)
    state = tmp_path / "run.state"
    first = train_fewshot(model, _fixed_episode, config, state, log=lambda _: None, extra={"note": "x"})
    losses = [h["loss"] for h in first["history"]]
    assert first["done"] and first["iteration"] == 30
    assert losses[-1] < 0.7 * losses[0]
    # resuming a finished state does nothing more; a longer config continues from 30
    longer = FewShotTrainConfig(**{**config.__dict__, "iterations": 35})
    resumed = train_fewshot(create_model("dpcenet", **TINY), _fixed_episode, longer, state, log=lambda _: None)
    assert resumed["iteration"] == 35 and resumed["extra"]["note"] == "x"
    assert len(resumed["history"]) == len(first["history"]) + 1
    from lobule.models.train_state import read_training_meta

    meta = read_training_meta(tmp_path / "run.state.safetensors", "few-shot")  # one file, the common format
    assert meta["iteration"] == 35 and meta["config"]["iterations"] == 35
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "run.state.safetensors"))  # no pickle anywhere
    assert any(k.startswith("optim/adamw/") for k in tensors) and "tensor/torch_rng" in tensors


def _random_episode(rng, batch):
    """:func:`_fixed_episode` shifted by a random amount (so the numpy generator matters)."""
    s, sm, q, qm = _fixed_episode(rng, batch)
    shift = int(rng.integers(0, 6))
    return s, sm, np.roll(q, shift, axis=-1), np.roll(qm, shift, axis=-1)


def test_an_interrupted_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    from lobule.core.errors import CheckpointError
    from lobule.models.train_fewshot import FewShotTrainConfig, train_fewshot

    config = FewShotTrainConfig(iterations=8, batch_size=1, lr=3e-3, lr_step=3, log_every=2, save_every=100)

    lines = []

    def run(state, iterations):
        torch.manual_seed(3)
        model = create_model("dpcenet", **TINY)
        train_fewshot(model, _random_episode, FewShotTrainConfig(**{**config.__dict__, "iterations": iterations}),
                      state, log=lines.append)
        return model

    straight = run(tmp_path / "straight.state", 8)
    run(tmp_path / "split.state", 5)
    resumed = run(tmp_path / "split.state", 8)
    assert "resumed at iteration 5" in lines
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    # a state of another trainer (here the FFA one) is refused in one line naming the file
    from lobule.models.train_ffa import STATE_KIND
    from lobule.models.train_state import save_training_state

    other = tmp_path / "ffa.state.safetensors"
    save_training_state(other, {"model": straight}, {}, {"epoch": 1}, kind=STATE_KIND)
    with pytest.raises(CheckpointError, match="belongs to the FFA CNP trainer, not the few-shot trainer") as refused:
        run(other, 9)
    assert "\n" not in str(refused.value) and "ffa.state.safetensors" in str(refused.value)
    with pytest.raises(CheckpointError, match="straight.state.safetensors: .* has shape") as refused:  # other arch
        torch.manual_seed(3)
        train_fewshot(create_model("dpcenet", **{**TINY, "feature_dim": 16}),
                      _random_episode, config, tmp_path / "straight.state", log=lambda _: None)
    assert "\n" not in str(refused.value)
