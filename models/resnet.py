"""ResNet-18/34/50/101 in plain PyTorch, as a feature extractor returning the four stage outputs.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (table 1 gives the stage
depths used in ``STAGE_DEPTHS``); the bottleneck places its stride on the 3x3 conv ("ResNet v1.5",
as torchvision does). Output stride 16 or 8 replaces the stride of the last one or two stages by
dilation (Chen et al., DeepLabv3, 2017, section 3.2), which keeps every weight shape unchanged, so
weights trained at one output stride load at any other.

Parameter names follow torchvision's ``resnet*`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ...) without the classifier ``fc``, so a torchvision state dict converted
to safetensors by the user loads with ``strict=False`` (minus ``fc.*``).

No weights are downloaded: the network starts random or from a checkpoint (DINO pretraining,
:mod:`lobule.models.train_dino`).
"""
from __future__ import annotations

import torch
from torch import nn

from lobule.models.registry import register_model

#: blocks per stage (He et al. 2016, table 1), and whether the depth uses bottleneck blocks
STAGE_DEPTHS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
}

#: stride / dilation of stages 2, 3, 4 (layer2..layer4) for each output stride
_STAGE_PLAN: dict[int, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    32: ((2, 1), (2, 1), (2, 1)),
    16: ((2, 1), (2, 1), (1, 2)),
    8: ((2, 1), (1, 2), (1, 4)),
}


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, first_dilation, first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying stride and dilation), 1x1 expand x4 (ResNet-50/101)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 first_dilation: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, first_dilation, first_dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


@register_model("resnet")
class ResNet(nn.Module):
    """ResNet feature extractor: stem, then four residual stages; no pooling head, no classifier.

    Parameters
    ----------
    depth : 18, 34, 50 or 101.
    output_stride : 32, 16 (default; the last stage dilated by 2) or 8 (stages 3 and 4 dilated
        by 2 and 4). Stride of C5 relative to the input.
    in_channels : input channels (3 for RGB).
    base_width : channels of the stem and of the first stage's 3x3 convs (64 in the paper's
        ResNet); stages use ``base_width * (1, 2, 4, 8)``. A smaller value (e.g. 16) makes a
        narrower net for CPU training with the same depth and strides.

    Attributes
    ----------
    out_channels : channels of [C2, C3, C4, C5]; ``base_width * (1, 2, 4, 8) * expansion``
        (expansion 1 for 18/34, 4 for 50/101): [256, 512, 1024, 2048] for ResNet-50.
    strides : strides of [C2, C3, C4, C5] relative to the input, e.g. [4, 8, 16, 16] at OS16.
    arguments : the constructor keyword arguments, JSON-serialisable (for checkpoint cards).

    Raises
    ------
    ValueError
        On an unsupported depth or output stride, or a non-positive width.
    """

    def __init__(self, depth: int = 50, output_stride: int = 16, in_channels: int = 3, base_width: int = 64) -> None:
        super().__init__()
        if depth not in STAGE_DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(STAGE_DEPTHS)}, not {depth}")
        if output_stride not in _STAGE_PLAN:
            raise ValueError(f"ResNet output_stride must be one of {sorted(_STAGE_PLAN)}, not {output_stride}")
        if base_width < 1 or in_channels < 1:
            raise ValueError("ResNet base_width and in_channels must be positive")
        self.depth = depth
        self.output_stride = output_stride
        self.arguments = {"depth": depth, "output_stride": output_stride, "in_channels": in_channels,
                          "base_width": base_width}
        blocks, bottleneck = STAGE_DEPTHS[depth]
        block = Bottleneck if bottleneck else BasicBlock
        self.conv1 = nn.Conv2d(in_channels, base_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._in = base_width
        plan = ((1, 1),) + _STAGE_PLAN[output_stride]
        self._dilation = 1
        stages = []
        for index, ((stride, dilation), count) in enumerate(zip(plan, blocks)):
            stages.append(self._make_stage(block, base_width * 2**index, count, stride, dilation))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = [base_width * 2**i * block.expansion for i in range(4)]
        strides, current = [], 4
        for stride, _ in plan:
            current *= stride
            strides.append(current)
        self.strides = strides
        self._init_weights()

    def _make_stage(self, block, width: int, count: int, stride: int, dilation: int) -> nn.Sequential:
        # the first block keeps the previous stage's dilation (torchvision's replace_stride_with_dilation)
        first_dilation = self._dilation
        self._dilation = dilation
        layers = [block(self._in, width, stride, dilation, first_dilation)]
        self._in = width * block.expansion
        layers += [block(self._in, width, 1, dilation, dilation) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        if next(self.parameters()).is_meta:
            # a shape-only skeleton (checkpoint loading checks shapes on one): nothing to draw, and
            # random init on the meta device runs through torch's Python reference ops, whose
            # first use imports about 3 s of torch's compiler stack
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # zero-init the last BN of each residual branch (Goyal et al. 2017): blocks start as identities
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stage features of ``x``.

        Parameters
        ----------
        x : (N, in_channels, H, W) float tensor (normalised image).

        Returns
        -------
        [C2, C3, C4, C5] : (N, out_channels[i], ceil(H / strides[i]), ceil(W / strides[i])) each
        (exactly that size when H and W are multiples of 32).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


def build_resnet(depth: int, output_stride: int = 16, in_channels: int = 3, base_width: int = 64) -> ResNet:
    """A randomly initialised :class:`ResNet` (see its parameters)."""
    return ResNet(depth=depth, output_stride=output_stride, in_channels=in_channels, base_width=base_width)
