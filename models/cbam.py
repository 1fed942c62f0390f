"""CBAM, the Convolutional Block Attention Module (Woo et al., ECCV 2018), as Enhance LadderNet
uses it (docs/models.md, section 2; the Enhance LadderNet paper, section 1.1).

The Enhance LadderNet paper describes the channel attention as global average pooling followed by two
fully connected layers (no max-pool branch, unlike the original CBAM), and calls the spatial
attention "max pooling and two fully connected layers" without giving sizes. The spatial part
here is the original CBAM's: channel-wise mean and max maps, concatenated, a 7x7 conv and a
sigmoid. Channel attention first, spatial second, as in CBAM.
"""
from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Channel attention: ``x * sigmoid(FC2(ReLU(FC1(GAP(x)))))``.

    Parameters
    ----------
    channels : number of input channels C.
    reduction : reduction ratio r; the hidden FC width is ``max(1, C // r)`` (the Enhance LadderNet paper: r = 8).

    Shapes: (N, C, H, W) float -> (N, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction ratio must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # global average pool: (N, C)
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled))))
        return x * weights[:, :, None, None]


class SpatialAttention(nn.Module):
    """Spatial attention of CBAM: ``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``.

    Shapes: (N, C, H, W) float -> (N, C, H, W).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Module):
    """Channel attention followed by spatial attention.

    Parameters
    ----------
    channels : number of input channels.
    reduction : channel-attention reduction ratio (the Enhance LadderNet paper table 2: 4 / 8 / 16; 8 was best).

    Shapes: (N, C, H, W) float -> (N, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
