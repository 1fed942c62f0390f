"""LadderNet and Enhance LadderNet as docs/models.md, section 2 describes them."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lobule.models.cbam import CBAM, ChannelAttention
from lobule.core.errors import UnknownModelError
from lobule.models.laddernet import EnhanceLadderNet, LadderNet, SharedResidualBlock, VGGBlock
from lobule.models.registry import available_models, create_model


def test_shared_residual_block_has_one_weight_tensor_used_twice():
    block = SharedResidualBlock(8, dropout=0.0)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1
    params = dict(block.named_parameters())
    assert set(params) == {"conv.weight", "conv.bias"}
    assert params["conv.weight"].shape == (8, 8, 3, 3)
    assert convs[0].stride == (1, 1)
    calls = []
    convs[0].register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1, 8, 16, 16)
    out = block(x)
    assert len(calls) == 2
    # y = relu(x + W*(relu(W*x))) with the same W twice
    w, b = params["conv.weight"], params["conv.bias"]
    expected = torch.relu(x + nn.functional.conv2d(torch.relu(nn.functional.conv2d(x, w, b, padding=1)), w, b, padding=1))
    torch.testing.assert_close(out, expected)


def test_dropout_sits_between_the_two_convolutions():
    block = SharedResidualBlock(4, dropout=0.5)
    order = []
    for name, module in block.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: order.append(name))
    block.train()
    block(torch.randn(1, 4, 8, 8))
    assert order == ["conv", "drop", "conv"]


@pytest.mark.parametrize("name", ["laddernet", "enhance_laddernet"])
def test_no_batch_norm_and_shapes(name):
    model = create_model(name, base_width=2)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    for h, w in [(48, 48), (96, 64)]:
        out = model(torch.randn(2, 1, h, w))
        assert out.shape == (2, 2, h, w)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.randn(1, 1, 50, 48))


@pytest.mark.parametrize("name", ["laddernet", "enhance_laddernet"])
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, base_width=2)
    logits = model(torch.randn(2, 1, 48, 48))
    nn.functional.cross_entropy(logits, torch.randint(0, 2, (2, 48, 48))).backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0


def test_paper_widths_cbam_position_and_upsampling():
    model = EnhanceLadderNet()  # the paper's defaults
    assert model.inconv.kernel_size == (3, 3)
    vgg = model.first_encoder.blocks
    assert [b.conv2.out_channels for b in vgg] == [64, 128, 256, 512]
    assert all(isinstance(b, VGGBlock) and b.conv1.out_channels == b.conv2.out_channels for b in vgg)
    attention = model.first_encoder.attention
    assert all(isinstance(a, CBAM) for a in attention)
    assert [a.channel.fc1.out_features for a in attention] == [8, 16, 32, 64]  # C / 8
    # the second U-Net has neither VGG blocks nor CBAM
    second = [model.second_inconv, model.second_encoder, model.second_bottom, model.second_decoder]
    for part in second:
        assert not any(isinstance(m, (VGGBlock, CBAM)) for m in part.modules())
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 8
    assert all(u.kernel_size == (3, 3) and u.stride == (2, 2) and u.padding == (1, 1) for u in ups)


def test_reduction_ratio_is_a_constructor_argument():
    model = EnhanceLadderNet(base_width=16, reduction_ratio=4)
    assert [a.channel.fc1.out_features for a in model.first_encoder.attention] == [4, 8, 16, 32]
    without = EnhanceLadderNet(base_width=16, use_cbam=False)
    assert not any(isinstance(m, CBAM) for m in without.modules())


def test_plain_laddernet_has_no_vgg_or_cbam_and_shares_weights():
    model = LadderNet(base_width=8)
    assert not any(isinstance(m, (VGGBlock, CBAM)) for m in model.modules())
    blocks = [m for m in model.modules() if isinstance(m, SharedResidualBlock)]
    assert len(blocks) == 4 + 1 + 4 + 1 + 4 + 1 + 4  # enc, bottom, dec of both U-Nets + second inconv


def test_channel_attention_uses_average_pool_and_two_fc():
    attention = ChannelAttention(16, reduction=8)
    assert [type(m) for m in attention.children()] == [nn.Linear, nn.Linear]
    x = torch.rand(1, 16, 4, 4)
    weights = torch.sigmoid(attention.fc2(torch.relu(attention.fc1(x.mean(dim=(2, 3))))))
    torch.testing.assert_close(attention(x), x * weights[:, :, None, None])


def test_registry_names():
    names = available_models()
    assert {"laddernet", "enhance_laddernet"} <= set(names)
    assert isinstance(create_model("enhance_laddernet", base_width=2), EnhanceLadderNet)
    with pytest.raises(UnknownModelError, match="enhance_laddernet"):
        create_model("enhanced_ladder")
