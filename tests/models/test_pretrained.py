"""Segmentation models start from a backbone checkpoint (the output of ``lobule train dino``)."""
from __future__ import annotations

import pytest
import torch

from lobule.models.checkpoint import save_checkpoint
from lobule.core.errors import CheckpointError
from lobule.models.pretrained import load_pretrained_backbone
from lobule.models.registry import create_model
from lobule.models.resnet import build_resnet


def _backbone_card(tmp_path, task="backbone", **kwargs):
    backbone = build_resnet(**{"depth": 18, "base_width": 8, "output_stride": 32, **kwargs})
    with torch.no_grad():
        for p in backbone.parameters():
            p.normal_()
    card = {"name": "dino-tiny", "task": task, "architecture": "resnet", "arguments": backbone.arguments}
    return backbone, save_checkpoint(backbone, card, tmp_path / "dino-tiny.json", dtype="float32")


def test_deeplab_starts_from_backbone_checkpoint(tmp_path):
    backbone, card_path = _backbone_card(tmp_path)
    model = create_model("deformable_deeplabv3plus", depth=18, base_width=8, head_channels=16)
    card = load_pretrained_backbone(model, card_path)
    assert card["name"] == "dino-tiny" and card["weights"]["sha256"]
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], tensor), key
    assert model.backbone.output_stride == 16  # the segmentation model keeps its own output stride


def test_wrong_task_depth_or_architecture_is_a_clear_error(tmp_path):
    _, card_path = _backbone_card(tmp_path, task="liver-hne")
    model = create_model("deeplabv3plus", depth=18, base_width=8, head_channels=16)
    with pytest.raises(CheckpointError, match="is a 'liver-hne' checkpoint, not a 'backbone' one"):
        load_pretrained_backbone(model, card_path)
    _, card_path = _backbone_card(tmp_path, depth=34)
    with pytest.raises(CheckpointError, match="do not fit ResNet-18"):
        load_pretrained_backbone(model, card_path)
    with pytest.raises(CheckpointError, match="UNet has no ResNet backbone"):
        load_pretrained_backbone(create_model("unet", base_width=4, depth=2), card_path)
