"""DeepLabv3+ specifics: the paper's configuration, deformable branches, upsampling, backbone loading."""
from __future__ import annotations

import pytest
import torch

from lobule.models.deeplab import DeepLabV3Plus, DeformableDeepLabV3Plus
from lobule.models.deform_conv import ModulatedDeformConv2d
from lobule.core.errors import CheckpointError
from lobule.models.registry import create_model
from lobule.models.resnet import build_resnet

SMALL = {"depth": 18, "base_width": 8, "head_channels": 16}


def test_paper_configuration():
    """ResNet-50, OS16, ASPP on 2048 channels with DCNv2 at rates 6/12/18, 48-ch low-level, 7 classes."""
    model = create_model("deformable_deeplabv3plus")
    assert model.arguments == {"num_classes": 7, "depth": 50, "base_width": 64, "in_channels": 3,
                               "output_stride": 16, "head_channels": 256, "low_level_channels": 48,
                               "deformable_rates": [6, 12, 18]}
    assert model.backbone.out_channels == [256, 512, 1024, 2048] and model.backbone.strides == [4, 8, 16, 16]
    branches = [branch[0] for branch in model.aspp.branches]
    assert branches[0].kernel_size == (1, 1) and not isinstance(branches[0], ModulatedDeformConv2d)
    assert [type(b) for b in branches[1:]] == [ModulatedDeformConv2d] * 3
    assert [b.dilation for b in branches[1:]] == [(6, 6), (12, 12), (18, 18)]
    assert branches[1].weight.shape == (256, 2048, 3, 3)
    assert model.aspp.project[0].in_channels == 5 * 256 and model.aspp.project[0].out_channels == 256
    assert model.decoder.project[0].weight.shape == (48, 256, 1, 1)
    assert model.decoder.classifier.out_channels == 7


def test_plain_model_has_no_deformable_conv_and_subsets_are_selectable():
    assert DeepLabV3Plus(**SMALL).aspp.deformable_modules() == []
    model = DeformableDeepLabV3Plus(**SMALL, deformable_rates=[12])
    assert [m.dilation for m in model.aspp.deformable_modules()] == [(12, 12)]
    assert model.arguments["deformable_rates"] == [12]
    with pytest.raises(ValueError, match="not among the atrous rates"):
        DeformableDeepLabV3Plus(**SMALL, deformable_rates=[7])


def test_deformable_model_at_initialisation_is_the_plain_model_with_half_modulation():
    """Zero offsets and modulation 0.5: doubling the DCN weights reproduces the plain network."""
    plain = DeepLabV3Plus(**SMALL).eval()
    deformable = DeformableDeepLabV3Plus(**SMALL).eval()
    missing, unexpected = deformable.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(".offset_conv." in key for key in missing)
    with torch.no_grad():
        for module in deformable.aspp.deformable_modules():
            module.weight.mul_(2)
        x = torch.randn(2, 3, 64, 64)
        torch.testing.assert_close(deformable(x), plain(x), rtol=1e-4, atol=1e-4)


def test_learned_upsampling_starts_as_bilinear_interpolation():
    model = DeepLabV3Plus(**SMALL)
    logits = torch.arange(16.0).view(1, 1, 4, 4).repeat(1, 7, 1, 1)
    up = model.upsample(logits)
    expected = torch.nn.functional.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])


def test_backbone_loads_resnet_weights_and_rejects_another_depth():
    model = DeformableDeepLabV3Plus(**SMALL)
    pretrained = build_resnet(18, output_stride=32, base_width=8)  # DINO trains at OS32; shapes are the same
    with torch.no_grad():
        pretrained.conv1.weight.fill_(0.25)
    model.load_backbone_state({f"backbone.{k}": v for k, v in pretrained.state_dict().items()})
    assert torch.all(model.backbone.conv1.weight == 0.25)
    with pytest.raises(CheckpointError, match="96 unexpected"):
        model.load_backbone_state(build_resnet(34, base_width=8).state_dict())
    with pytest.raises(CheckpointError, match=r"conv1.weight has shape \(16, 3, 7, 7\)"):
        model.load_backbone_state(build_resnet(18, base_width=16).state_dict())


def test_a_meta_skeleton_has_the_real_shapes_and_a_real_build_is_initialised():
    """Checkpoint loading checks shapes on a meta-device skeleton, which skips the value
    initialisations; a model built for real still gets them (He init, zeroed last BN of each
    residual branch, the bilinear upsampling kernel)."""
    from lobule.models.aspp import bilinear_upsampling_kernel

    with torch.device("meta"):
        skeleton = create_model("deformable_deeplabv3plus", **SMALL)
    model = create_model("deformable_deeplabv3plus", **SMALL)
    assert all(t.is_meta for t in skeleton.state_dict().values())
    assert {k: t.shape for k, t in skeleton.state_dict().items()} == {k: t.shape for k, t in model.state_dict().items()}
    torch.testing.assert_close(model.upsample.weight, bilinear_upsampling_kernel(7, 2))
    assert 0.01 < float(model.backbone.conv1.weight.std()) < 1.0
    backbone = model.backbone
    stages = (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4)
    assert all(float(block.bn2.weight.abs().sum()) == 0.0 for stage in stages for block in stage)
