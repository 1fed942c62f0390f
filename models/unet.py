"""U-Net (Ronneberger, Fischer, Brox, MICCAI 2015), the liver paper's second baseline (table 3).

Registry name ``"unet"``. Ronneberger's layout with two changes that are now usual and that the
liver paper does not contradict: padded 3x3 convs (output the size of the input, no cropping of
skip connections) and batch normalisation after each conv. Encoder widths ``base_width * 2**i``
for i = 0..depth (64 ... 1024 at the defaults), 2x2 max-pooling, 2x2 stride-2 transposed convs
to upsample, skip connections by concatenation, a 1x1 classifier.

Inputs whose sides are not multiples of ``2**depth`` are zero-padded (zero is the mean colour
after normalisation) on the bottom/right and the logits cropped back.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lobule.models.registry import register_model


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


@register_model("unet")
class UNet(nn.Module):
    """U-Net for semantic segmentation.

    Parameters
    ----------
    num_classes : output classes (7 liver classes).
    in_channels : input channels (3, RGB).
    base_width : channels of the first level (64 in Ronneberger et al.).
    depth : number of 2x down-samplings (4 in Ronneberger et al.).

    Attributes
    ----------
    arguments : the constructor keyword arguments, JSON-serialisable (for checkpoint cards).

    Raises
    ------
    ValueError
        If ``depth`` < 1 or ``base_width`` < 1.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 3, base_width: int = 64, depth: int = 4) -> None:
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ValueError("U-Net depth and base_width must be positive")
        self.num_classes = num_classes
        self.depth = depth
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList([_double_conv(in_channels, widths[0])]
                                     + [_double_conv(widths[i], widths[i + 1]) for i in range(depth)])
        self.upsamplers = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                         for i in reversed(range(depth))])
        self.decoder = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.arguments: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels,
                                          "base_width": base_width, "depth": depth}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) normalised float -> (N, num_classes, H, W) logits."""
        height, width = x.shape[2:]
        multiple = 2**self.depth
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for index, block in enumerate(self.encoder):
            x = block(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for upsample, block in zip(self.upsamplers, self.decoder):
            x = block(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.classifier(x)[:, :, :height, :width]
