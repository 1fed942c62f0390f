"""Start a segmentation model from a pretrained backbone checkpoint (e.g. ``lobule train dino``).

A backbone checkpoint is an ordinary card (:mod:`lobule.models.checkpoint`) with task
``"backbone"`` and architecture ``"resnet"``; its weights are a :class:`lobule.models.resnet.ResNet`
state dict. Segmentation models that have a ResNet backbone expose ``load_backbone_state``
(DeepLabv3+, deformable DeepLabv3+); their own state-dict keys for it start with ``backbone.``.
"""
from __future__ import annotations

import os
from typing import Any

from lobule.models.checkpoint import load_checkpoint
from lobule.core.errors import CheckpointError

BACKBONE_TASK = "backbone"


def load_pretrained_backbone(model, card: str | os.PathLike) -> dict[str, Any]:
    """Copy a backbone checkpoint's ResNet weights into ``model.backbone``.

    Parameters
    ----------
    model : a segmentation ``nn.Module`` with ``load_backbone_state`` (e.g. ``deformable_deeplabv3plus``).
        Its backbone must have the checkpoint's depth, width and input channels; the output
        stride may differ (it changes no weight shape).
    card : a backbone card path (``.json``) or an installed model name.

    Returns
    -------
    The backbone's card (with ``"path"``), to record as lineage in the new model's card.

    Raises
    ------
    CheckpointError
        If the card is not a backbone checkpoint, its weights fail the checks of
        :func:`lobule.models.checkpoint.load_checkpoint`, the model has no ResNet backbone, or the
        backbone's depth / width differ (the message names the first differing tensor).
    UnknownModelError
        If ``card`` names no installed model.
    """
    backbone, backbone_card = load_checkpoint(card)
    if backbone_card.get("task") != BACKBONE_TASK:
        raise CheckpointError(f"{backbone_card['name']} is a {backbone_card.get('task')!r} checkpoint, "
                              f"not a {BACKBONE_TASK!r} one")
    if not hasattr(model, "load_backbone_state"):
        raise CheckpointError(f"{type(model).__name__} has no ResNet backbone to load {backbone_card['name']} into")
    model.load_backbone_state(backbone.state_dict())
    return backbone_card
