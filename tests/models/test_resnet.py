"""ResNet feature extractor: parameter counts of the published depths, stage shapes, strides."""
from __future__ import annotations

import pytest
import torch

from lobule.models.registry import create_model
from lobule.models.resnet import build_resnet

# torchvision's resnet{18,34,50,101} parameter counts minus the 1000-class fc layer
TORCHVISION_PARAMS_WITHOUT_FC = {18: 11_689_512 - 513_000, 34: 21_797_672 - 513_000,
                                 50: 25_557_032 - 2_049_000, 101: 44_549_160 - 2_049_000}


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
def test_parameter_count_matches_the_published_architecture(depth):
    model = build_resnet(depth)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS_WITHOUT_FC[depth]
    assert not any(name.startswith("fc.") for name in model.state_dict())


@pytest.mark.parametrize("output_stride, strides", [(8, [4, 8, 8, 8]), (16, [4, 8, 16, 16]), (32, [4, 8, 16, 32])])
@pytest.mark.parametrize("depth", [18, 50])
def test_stage_shapes_follow_output_stride(depth, output_stride, strides):
    model = build_resnet(depth, output_stride, base_width=8).eval()
    assert model.strides == strides
    expansion = 4 if depth == 50 else 1
    assert model.out_channels == [8 * expansion * m for m in (1, 2, 4, 8)]
    with torch.no_grad():
        features = model(torch.rand(2, 3, 64, 96))
    assert len(features) == 4
    for feature, stride, channels in zip(features, strides, model.out_channels):
        assert tuple(feature.shape) == (2, channels, 64 // stride, 96 // stride)


def test_output_stride_does_not_change_weight_shapes():
    """OS16/OS8 replace strides by dilation, so a state dict trained at OS32 loads at OS16."""
    os32 = build_resnet(18, 32, base_width=8)
    os16 = build_resnet(18, 16, base_width=8)
    os16.load_state_dict(os32.state_dict())
    conv = os16.layer4[1].conv1
    assert conv.dilation == (2, 2) and os16.layer4[0].conv1.stride == (1, 1)


def test_single_channel_input_and_registry_name():
    model = create_model("resnet", depth=18, output_stride=16, in_channels=1, base_width=4)
    features = model(torch.rand(1, 1, 32, 32))
    features[-1].sum().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.shape[1] == 1


@pytest.mark.parametrize("kwargs", [{"depth": 42}, {"depth": 18, "output_stride": 4}, {"depth": 18, "base_width": 0}])
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        build_resnet(**kwargs)
