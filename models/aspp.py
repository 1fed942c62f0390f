"""Atrous Spatial Pyramid Pooling with optional deformable atrous branches.

ASPP as in DeepLabv3 (Chen et al. 2017, section 3.3) and the liver paper (section 3.3): a 1x1
conv, three 3x3 atrous convs (rates 6, 12, 18 at output stride 16), and an image-level branch
(global average pooling, 1x1 conv, broadcast back); the five outputs are concatenated and fused
by a 1x1 conv to 256 channels. The liver paper integrates modulated deformable convolution
(DCNv2, :mod:`lobule.models.deform_conv`) into ASPP without saying which convs; here any subset of
the atrous 3x3 branches can be deformable (``deformable_rates``). A deformable branch keeps its
atrous rate as the dilation of its regular grid, so at initialisation (zero offsets) it samples
exactly where the plain branch does.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lobule.models.deform_conv import ModulatedDeformConv2d


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """ASPP head on the stride-16 backbone features.

    Parameters
    ----------
    in_channels : channels of the input (C5: 2048 for ResNet-50).
    out_channels : channels of every branch and of the fused output (256 in DeepLabv3 and the paper).
    atrous_rates : dilation rates of the 3x3 branches ((6, 12, 18) at output stride 16).
    deformable_rates : the rates (a subset of ``atrous_rates``) whose 3x3 branch is a DCNv2
        :class:`ModulatedDeformConv2d` instead of an ordinary atrous conv; empty for plain ASPP.
    dropout : dropout after the fusing 1x1 conv (0.5 as in torchvision's DeepLabv3 head).

    Notes
    -----
    The image-pooling branch has no batch normalisation (a bias instead): batch norm over a 1x1
    map with batch size 1 has a single value per channel and fails in training mode.

    Raises
    ------
    ValueError
        If a deformable rate is not one of the atrous rates.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, atrous_rates: Sequence[int] = (6, 12, 18),
                 deformable_rates: Sequence[int] = (), dropout: float = 0.5) -> None:
        super().__init__()
        unknown = sorted(set(deformable_rates) - set(atrous_rates))
        if unknown:
            raise ValueError(f"deformable rates {unknown} are not among the atrous rates {list(atrous_rates)}")
        self.atrous_rates = tuple(int(r) for r in atrous_rates)
        self.deformable_rates = tuple(int(r) for r in deformable_rates)
        branches = [_conv_bn_relu(nn.Conv2d(in_channels, out_channels, 1, bias=False), out_channels)]
        for rate in self.atrous_rates:
            if rate in self.deformable_rates:
                conv = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False)
            else:
                conv = nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False)
            branches.append(_conv_bn_relu(conv, out_channels))
        self.branches = nn.ModuleList(branches)
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1),
                                     nn.ReLU(inplace=True))
        fused_in = out_channels * (len(branches) + 1)
        self.project = nn.Sequential(nn.Conv2d(fused_in, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                                     nn.ReLU(inplace=True), nn.Dropout(dropout))

    def deformable_modules(self) -> list[ModulatedDeformConv2d]:
        """The DCNv2 layers of this ASPP (empty for plain ASPP); used to time them."""
        return [m for m in self.modules() if isinstance(m, ModulatedDeformConv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, h, w) -> (N, out_channels, h, w)."""
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pooling(x)
        outputs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outputs, dim=1))


def bilinear_upsampling_kernel(channels: int, factor: int) -> torch.Tensor:
    """(channels, channels, 2 f, 2 f) transposed-conv weight that upsamples each channel bilinearly
    by ``factor`` (Long, Shelhamer, Darrell, FCN, 2015, section 3.3)."""
    size = 2 * factor
    centre = factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    kernel = ramp[:, None] * ramp[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) to (N, C, *size) (align_corners=False)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
