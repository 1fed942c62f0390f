"""LadderNet and Enhance LadderNet for capillary non-perfusion (CNP) segmentation in FFA
(docs/models.md, section 2; the Enhance LadderNet paper; LadderNet: Zhuang, arXiv:1810.07810).

Both are two chained U-Nets ("a ladder") whose features are summed where they meet:

* first U-Net: a 3x3 input conv, then an encoder of four levels with widths
  ``base_width * (1, 2, 4, 8)`` (the paper: 64, 128, 256, 512), a bottom block at 1/16
  resolution, and a decoder that upsamples with 3x3 transposed convs (stride 2, padding 1,
  output padding 1 so the size doubles exactly) and adds the encoder feature of the same level;
* second U-Net: the same levels without VGG blocks and without CBAM; at every level its encoder
  input is summed with the first U-Net's decoder feature of that level, its bottom with the first
  U-Net's bottom; its decoder output goes through a 1x1 conv to ``num_classes`` logits.

The building block everywhere except the VGG encoder is the shared-weight residual block: one
3x3 conv (stride 1) applied twice with dropout between, ``y = relu(x + W * drop(relu(W * x)))``,
no batch normalisation (the Enhance LadderNet paper removes it).

Plain LadderNet (``"laddernet"``): the first encoder is made of shared residual blocks, each
level followed by a 3x3 stride-2 conv that doubles the width (LadderNet's down-sampling).

Enhance LadderNet (``"enhance_laddernet"``): the first encoder is made of VGG blocks (two
identical 3x3 conv + ReLU, then 2x2 max-pool stride 2); CBAM follows each VGG block of the first
encoder ("CBAMV2" position of the seed's ablation, reduction ratio 8). The skip feature of a
level is taken after CBAM and before the pool.

Choices where the paper is silent (ours): dropout p = 0.25 (LadderNet's code), ``Dropout2d``;
the bottom width equals the deepest encoder width (512 at base 64); two output classes
(background, CNP) trained with cross-entropy, as LadderNet does; CBAM after every VGG block of
the first encoder (the paper's figure places attention after the encoder's "Vgg module").
Input height and width must be multiples of 16.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lobule.models.cbam import CBAM
from lobule.models.registry import register_model

LEVELS = 4
"""Encoder levels (widths base, 2 base, 4 base, 8 base); inputs must be multiples of 2**LEVELS."""


class SharedResidualBlock(nn.Module):
    """LadderNet's shared-weight residual block: ``relu(x + conv(drop(relu(conv(x)))))``.

    ``conv`` is ONE ``nn.Conv2d`` (3x3, stride 1, padding 1) used twice, so both convolutions
    share a single weight tensor and bias. No batch normalisation.

    Shapes: (N, C, H, W) float -> (N, C, H, W).
    """

    def __init__(self, channels: int, dropout: float = 0.25) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv(x))
        out = self.drop(out)
        out = self.conv(out)
        return F.relu(out + x)


class VGGBlock(nn.Module):
    """Two identical 3x3 conv + ReLU (VGGNet); the 2x2 max-pool that ends the paper's block is
    applied by the encoder after the skip feature is taken.

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


def _up(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """3x3 transposed conv, stride 2, padding 1 (the Enhance LadderNet paper); output padding 1 doubles H and W."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)


def _down(in_channels: int, out_channels: int) -> nn.Conv2d:
    """LadderNet's down-sampling: 3x3 conv, stride 2, padding 1 (halves H and W)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)


class _Decoder(nn.Module):
    """U-Net decoder: per level (deepest first) ``relu(up(x) + skip)`` then a shared residual block.

    Returns the per-level outputs, finest last.
    """

    def __init__(self, widths: list[int], bottom_width: int, dropout: float) -> None:
        super().__init__()
        ins = [*widths[1:], bottom_width]
        self.ups = nn.ModuleList(_up(ins[i], widths[i]) for i in reversed(range(len(widths))))
        self.blocks = nn.ModuleList(SharedResidualBlock(widths[i], dropout) for i in reversed(range(len(widths))))

    def forward(self, bottom: torch.Tensor, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        out, outs = bottom, []
        for up, block, skip in zip(self.ups, self.blocks, reversed(skips)):
            out = block(F.relu(up(out) + skip))
            outs.append(out)
        return outs


class _ResidualEncoder(nn.Module):
    """LadderNet encoder: per level a shared residual block (the skip), then a stride-2 conv.

    When ``joins`` (the other U-Net's decoder features, finest first) are given, each level's
    input is summed with the join of the same level before its block.
    """

    def __init__(self, widths: list[int], bottom_width: int, dropout: float) -> None:
        super().__init__()
        outs = [*widths[1:], bottom_width]
        self.blocks = nn.ModuleList(SharedResidualBlock(w, dropout) for w in widths)
        self.downs = nn.ModuleList(_down(w, o) for w, o in zip(widths, outs))

    def forward(self, x: torch.Tensor, joins: list[torch.Tensor] | None = None):
        skips = []
        for i, (block, down) in enumerate(zip(self.blocks, self.downs)):
            if joins is not None:
                x = x + joins[i]
            x = block(x)
            skips.append(x)
            x = F.relu(down(x))
        return x, skips


class _VGGEncoder(nn.Module):
    """Enhance LadderNet's first encoder: per level a VGG block, CBAM (optional), the skip, then
    2x2 max-pool stride 2."""

    def __init__(self, widths: list[int], use_cbam: bool, reduction_ratio: int) -> None:
        super().__init__()
        ins = [widths[0], *widths[:-1]]
        self.blocks = nn.ModuleList(VGGBlock(i, o) for i, o in zip(ins, widths))
        self.attention = nn.ModuleList(
            CBAM(w, reduction_ratio) if use_cbam else nn.Identity() for w in widths
        )

    def forward(self, x: torch.Tensor):
        skips = []
        for block, attention in zip(self.blocks, self.attention):
            x = attention(block(x))
            skips.append(x)
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        return x, skips


class _Ladder(nn.Module):
    """Two chained U-Nets; ``first_encoder`` is built by the subclass."""

    def __init__(self, in_channels: int, num_classes: int, base_width: int, dropout: float) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        widths = [base_width * 2**i for i in range(LEVELS)]
        bottom = widths[-1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.inconv = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1)
        self.first_encoder = self._first_encoder(widths, bottom, dropout)
        self.first_bottom = SharedResidualBlock(bottom, dropout)
        self.first_decoder = _Decoder(widths, bottom, dropout)
        self.second_inconv = SharedResidualBlock(widths[0], dropout)
        self.second_encoder = _ResidualEncoder(widths, bottom, dropout)
        self.second_bottom = SharedResidualBlock(bottom, dropout)
        self.second_decoder = _Decoder(widths, bottom, dropout)
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def _first_encoder(self, widths: list[int], bottom: int, dropout: float) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits.

        Parameters
        ----------
        x : (N, in_channels, H, W) float, the preprocessed image (docs/models.md, section 2), H and W
            multiples of 16.

        Returns
        -------
        (N, num_classes, H, W) float logits; softmax over dim 1 gives class probabilities
        (class 1 = CNP).

        Raises
        ------
        ValueError
            If H or W is not a multiple of 16 or the channel count is wrong.
        """
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channel(s), got {c}")
        step = 2**LEVELS
        if h % step or w % step:
            raise ValueError(f"input height and width must be multiples of {step}, got {h}x{w}")
        out = F.relu(self.inconv(x))
        out, skips = self.first_encoder(out)
        bottom1 = self.first_bottom(out)
        dec1 = self.first_decoder(bottom1, skips)  # coarsest first, finest last
        joins = dec1[::-1]  # finest first, one per level
        out = self.second_inconv(dec1[-1])
        out, skips2 = self.second_encoder(out, joins)
        bottom2 = self.second_bottom(out + bottom1)
        dec2 = self.second_decoder(bottom2, skips2)
        return self.head(dec2[-1])


@register_model("laddernet")
class LadderNet(_Ladder):
    """Plain LadderNet (the Enhance LadderNet paper's ablation baseline): both U-Nets built from shared
    residual blocks.

    Parameters
    ----------
    in_channels : input channels (1: the preprocessed grayscale angiogram).
    num_classes : output classes (2: background, CNP).
    base_width : width of the first level; levels are ``base_width * (1, 2, 4, 8)``
        (paper: 64; smaller only to train on a CPU).
    dropout : dropout probability inside the shared residual blocks.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_width: int = 64, dropout: float = 0.25):
        super().__init__(in_channels, num_classes, base_width, dropout)

    def _first_encoder(self, widths, bottom, dropout):
        return _ResidualEncoder(widths, bottom, dropout)


@register_model("enhance_laddernet")
class EnhanceLadderNet(_Ladder):
    """Enhance LadderNet (the Enhance LadderNet paper): VGG blocks and CBAM in the first U-Net's encoder.

    Parameters
    ----------
    in_channels, num_classes, base_width, dropout : as :class:`LadderNet`.
    reduction_ratio : CBAM channel-attention reduction ratio (paper: 8, best of 4 / 8 / 16).
    use_cbam : False gives the paper's "LadderNetpro" (VGG blocks without attention).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_width: int = 64,
        dropout: float = 0.25,
        reduction_ratio: int = 8,
        use_cbam: bool = True,
    ):
        self.reduction_ratio = reduction_ratio
        self.use_cbam = use_cbam
        super().__init__(in_channels, num_classes, base_width, dropout)

    def _first_encoder(self, widths, bottom, dropout):
        return _VGGEncoder(widths, self.use_cbam, self.reduction_ratio)
