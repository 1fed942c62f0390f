"""DeepLabv3+ and the liver paper's deformable DeepLabv3+ for seven-class liver H&E segmentation.

Registry names:

- ``"deformable_deeplabv3plus"`` (:class:`DeformableDeepLabV3Plus`): the liver paper's model
  (docs/models.md, section 1): ResNet stages 1-4 at output stride 16, ASPP with DCNv2 branches,
  DeepLabv3+ decoder.
- ``"deeplabv3plus"`` (:class:`DeepLabV3Plus`): the same network with ordinary atrous convs, the
  paper's baseline (Chen et al., "Encoder-Decoder with Atrous Separable Convolution", ECCV 2018).

Layout (input 512x512 RGB in the paper)::

    image -> ResNet (C2 stride 4, C5 stride 16) -> ASPP(C5) -> 256 ch, stride 16
          -> bilinear x4 -> concat with 1x1(C2) -> 48 ch (low-level projection)
          -> two 3x3 convs (256 ch) -> 1x1 classifier -> stride-4 logits
          -> learned x2 upsampling (transposed conv, bilinear init) -> bilinear to input size

Choices where the paper is silent (documented as docs/models.md asks):

- Deformable branches, default the three 3x3 atrous branches (rates 6, 12, 18): they are the
  only ASPP convs with a spatial sampling grid to deform (a deformable 1x1 conv could only
  shift one tap; the image-pooling branch is global), and the paper's stated aim is "dynamic
  receptive-field adjustment" of the multi-scale atrous context. Each keeps its rate as the
  dilation of its regular grid, so a deformable branch starts where the plain one samples.
  Choose a subset with ``deformable_rates`` (e.g. ``[6]``) for ablations.
- "Learned upsampling and bilinear interpolation" at the end: a 4x4 stride-2 transposed conv on
  the class logits, initialised to bilinear interpolation (FCN, Long et al. 2015), then bilinear
  resizing to the input size (x2 at output stride 16).
- No ImageNet weights: the backbone starts random or from a DINO checkpoint
  (:func:`lobule.models.pretrained.load_pretrained_backbone`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lobule.models.aspp import ASPP, bilinear_upsampling_kernel, resize_to
from lobule.core.errors import CheckpointError
from lobule.models.registry import register_model
from lobule.models.resnet import ResNet

DEFAULT_ATROUS_RATES = (6, 12, 18)


class DeepLabDecoder(nn.Module):
    """DeepLabv3+ decoder: fuse the upsampled ASPP output with projected stride-4 features.

    Parameters
    ----------
    low_level_in : channels of C2. low_level_channels : 48 (Chen et al. 2018, section 4.1).
    aspp_channels : channels of the ASPP output. channels : width of the two 3x3 refine convs.
    num_classes : outputs of the 1x1 classifier.
    """

    def __init__(self, low_level_in: int, aspp_channels: int, num_classes: int, low_level_channels: int = 48,
                 channels: int = 256) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(low_level_in, low_level_channels, 1, bias=False),
                                     nn.BatchNorm2d(low_level_channels), nn.ReLU(inplace=True))
        self.refine = nn.Sequential(
            nn.Conv2d(aspp_channels + low_level_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, aspp: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        """(N, aspp_channels, h16, w16), (N, C2, h4, w4) -> (N, num_classes, h4, w4) logits."""
        low = self.project(low_level)
        up = resize_to(aspp, tuple(low.shape[2:]))
        return self.classifier(self.refine(torch.cat([up, low], dim=1)))


@register_model("deeplabv3plus")
class DeepLabV3Plus(nn.Module):
    """DeepLabv3+ with a ResNet backbone (plain ASPP). See the module docstring for the layout.

    Parameters
    ----------
    num_classes : output classes (7 liver classes, ``lobule.resources.classes``).
    depth : ResNet depth, 18/34/50/101 (50 in the paper).
    base_width : ResNet stem width (64 in the paper; smaller for CPU training).
    in_channels : input channels (3, RGB).
    output_stride : 16 (paper) or 8; the atrous rates are doubled at 8 (DeepLabv3, section 4.1).
    head_channels : width of ASPP and decoder (256 in the paper).
    low_level_channels : width of the stride-4 projection (48).

    Attributes
    ----------
    backbone : :class:`lobule.models.resnet.ResNet`; its weights are the ``backbone.*`` keys of
        the state dict (see :meth:`load_backbone_state`).
    arguments : the constructor keyword arguments, JSON-serialisable (for checkpoint cards).
    """

    def __init__(self, num_classes: int = 7, depth: int = 50, base_width: int = 64, in_channels: int = 3,
                 output_stride: int = 16, head_channels: int = 256, low_level_channels: int = 48) -> None:
        super().__init__()
        self._build(num_classes, depth, base_width, in_channels, output_stride, head_channels, low_level_channels,
                    deformable_rates=())

    def _build(self, num_classes: int, depth: int, base_width: int, in_channels: int, output_stride: int,
               head_channels: int, low_level_channels: int, deformable_rates: Sequence[int]) -> None:
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLabv3+ output_stride must be 8 or 16, not {output_stride}")
        self.num_classes = num_classes
        self.backbone = ResNet(depth=depth, output_stride=output_stride, in_channels=in_channels,
                               base_width=base_width)
        scale = 16 // output_stride
        rates = tuple(r * scale for r in DEFAULT_ATROUS_RATES)
        self.aspp = ASPP(self.backbone.out_channels[3], head_channels, rates,
                         tuple(int(r) * scale for r in deformable_rates))
        self.decoder = DeepLabDecoder(self.backbone.out_channels[0], head_channels, num_classes,
                                      low_level_channels, head_channels)
        self.upsample = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
        if not self.upsample.weight.is_meta:  # a shape-only skeleton has no values (see ResNet._init_weights)
            with torch.no_grad():
                self.upsample.weight.copy_(bilinear_upsampling_kernel(num_classes, 2))
        self.arguments: dict[str, Any] = {
            "num_classes": num_classes, "depth": depth, "base_width": base_width, "in_channels": in_channels,
            "output_stride": output_stride, "head_channels": head_channels, "low_level_channels": low_level_channels,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : (N, in_channels, H, W) float, normalised as the checkpoint card says.

        Returns
        -------
        (N, num_classes, H, W) float logits (softmax over dim 1 gives class probabilities).
        """
        c2, _, _, c5 = self.backbone(x)
        logits = self.decoder(self.aspp(c5), c2)
        return resize_to(self.upsample(logits), tuple(x.shape[2:]))

    def load_backbone_state(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load ResNet weights (e.g. from DINO pretraining) into :attr:`backbone`.

        Parameters
        ----------
        state_dict : ResNet state dict; keys with a ``backbone.`` prefix are accepted too.

        Raises
        ------
        CheckpointError
            If keys or shapes differ from this backbone's (e.g. another depth or width); the
            message names the first difference.
        """
        state = {k.removeprefix("backbone."): v for k, v in state_dict.items()}
        own = self.backbone.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            parts = ([f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []) + (
                [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else [])
            raise CheckpointError(f"backbone weights do not fit ResNet-{self.backbone.depth}: " + ", ".join(parts))
        for key, tensor in own.items():
            if tuple(state[key].shape) != tuple(tensor.shape):
                raise CheckpointError(f"backbone weights: {key} has shape {tuple(state[key].shape)}, "
                                      f"ResNet-{self.backbone.depth} here expects {tuple(tensor.shape)}")
        self.backbone.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


@register_model("deformable_deeplabv3plus")
class DeformableDeepLabV3Plus(DeepLabV3Plus):
    """The liver paper's model: :class:`DeepLabV3Plus` with DCNv2 atrous branches in ASPP.

    Parameters
    ----------
    deformable_rates : which 3x3 atrous branches (by their rate at output stride 16) are
        modulated deformable convs; default all three, ``[6, 12, 18]`` (why: module docstring).
    Other parameters : as :class:`DeepLabV3Plus`.
    """

    def __init__(self, num_classes: int = 7, depth: int = 50, base_width: int = 64, in_channels: int = 3,
                 output_stride: int = 16, head_channels: int = 256, low_level_channels: int = 48,
                 deformable_rates: Sequence[int] = DEFAULT_ATROUS_RATES) -> None:
        nn.Module.__init__(self)
        self._build(num_classes, depth, base_width, in_channels, output_stride, head_channels, low_level_channels,
                    deformable_rates)
        self.arguments["deformable_rates"] = [int(r) for r in deformable_rates]
