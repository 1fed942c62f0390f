"""Modulated deformable convolution (DCNv2) in plain PyTorch.

Zhu, Hu, Lin, Dai, "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019, eq. (3);
the liver paper's eq. (5):

    y(p) = sum_{k=1..K} w_k * x(p + p_k + dp_k) * dm_k

where p_k are the K taps of a regular (dilated) kernel grid, dp_k = (dy_k, dx_k) learned
fractional offsets, dm_k in [0, 1] a learned modulation, and x(.) is sampled bilinearly with zeros
outside the feature map. Offsets and modulation come from a parallel ordinary convolution over the
same input with the same kernel size, stride, padding and dilation (DCNv2, section 3.1), whose
weights start at zero: offsets start at 0 and modulation at sigmoid(0) = 0.5.

The implementation is vectorised over taps and runs on any device with autograd and autocast, no
custom kernel, in one of two equal orders, whichever needs fewer operations: sample the C input
channels at all K taps with one ``grid_sample`` and contract with the weights in one matrix
product (a deformed im2col), or first project the input by each tap's weights (one 1x1 conv to
K*O channels) and sample only the O projected channels (bilinear sampling is linear and acts per
channel, so the two are equal; the second is ~C/O times less sampling, 8x for ASPP's 2048 -> 256).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
                  padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """Modulated deformable 2-D convolution, y(p) = sum_k w_k x(p + p_k + dp_k) dm_k (+ bias).

    Parameters
    ----------
    x : (N, C, H, W) float input.
    offset : (N, 2K, Ho, Wo) offsets in input pixels, K = kh * kw taps in row-major order;
        channel 2k is dy_k (rows), 2k+1 is dx_k (columns) (torchvision's ``deform_conv2d`` layout).
    mask : (N, K, Ho, Wo) modulation dm_k (DCNv2), or None for DCNv1 (all ones).
    weight : (O, C, kh, kw) kernel.
    bias : (O,) or None.
    stride, padding, dilation : as in ``torch.nn.functional.conv2d`` (padding is zeros).

    Returns
    -------
    (N, O, Ho, Wo) with Ho = (H + 2 ph - dh (kh - 1) - 1) // sh + 1, likewise Wo.

    Raises
    ------
    ValueError
        If ``offset`` or ``mask`` do not have the shapes above.
    """
    n, c, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    if tuple(offset.shape) != (n, 2 * k, ho, wo):
        raise ValueError(f"offset must have shape {(n, 2 * k, ho, wo)}, got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (n, k, ho, wo):
        raise ValueError(f"mask must have shape {(n, k, ho, wo)}, got {tuple(mask.shape)}")
    grid = _sampling_grid(offset, (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    if mask is None:
        mask = torch.ones(n, k, ho, wo, dtype=x.dtype, device=x.device)
    if _project_first_is_cheaper(c, out_channels, (h, w), (ho, wo)):
        out = _project_then_sample(x, grid, mask, weight)
    else:
        out = _sample_then_project(x, grid, mask, weight)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1).to(out.dtype)
    return out


def _sampling_grid(offset: torch.Tensor, size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """(N, K, Ho, Wo, 2) ``grid_sample`` coordinates (x, y) of p + p_k + dp_k."""
    n, _, ho, wo = offset.shape
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = size, kernel, stride, padding, dilation
    k = kh * kw
    dtype, device = offset.dtype, offset.device
    # regular sampling grid p + p_k in input pixel coordinates
    rows = torch.arange(ho, device=device, dtype=dtype) * sh - ph
    cols = torch.arange(wo, device=device, dtype=dtype) * sw - pw
    tap_rows = (torch.arange(kh, device=device, dtype=dtype) * dh).repeat_interleave(kw)
    tap_cols = (torch.arange(kw, device=device, dtype=dtype) * dw).repeat(kh)
    offset = offset.view(n, k, 2, ho, wo)
    y = tap_rows[:, None, None] + rows[None, :, None] + offset[:, :, 0]  # (N, K, Ho, Wo)
    x = tap_cols[:, None, None] + cols[None, None, :] + offset[:, :, 1]
    # grid_sample with align_corners=False maps pixel centre i to (2 i + 1) / size - 1
    return torch.stack(((2 * x + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)


# bilinear sampling costs about this many multiply-adds per sampled value, relative to a matmul's one
_SAMPLE_COST = 8


def _project_first_is_cheaper(c: int, o: int, size: tuple[int, int], out_size: tuple[int, int]) -> bool:
    """Compare the operation counts of the two equivalent orders (per tap and image)."""
    hw, howo = size[0] * size[1], out_size[0] * out_size[1]
    sample_first = c * howo * _SAMPLE_COST + o * c * howo
    project_first = o * c * hw + o * howo * _SAMPLE_COST
    return project_first < sample_first


def _sample_then_project(x: torch.Tensor, grid: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Sample the C input channels at all K taps (deformed im2col), then one (O, C K) matmul."""
    n, c = x.shape[:2]
    _, k, ho, wo, _ = grid.shape
    out_channels = weight.shape[0]
    sampled = F.grid_sample(x, grid.reshape(n, k * ho, wo, 2).to(x.dtype), mode="bilinear",
                            padding_mode="zeros", align_corners=False)  # (N, C, K*Ho, Wo)
    sampled = sampled.view(n, c, k, ho * wo) * mask.reshape(n, 1, k, ho * wo).to(sampled.dtype)
    out = torch.matmul(weight.reshape(out_channels, c * k).to(sampled.dtype), sampled.view(n, c * k, ho * wo))
    return out.view(n, out_channels, ho, wo)


def _project_then_sample(x: torch.Tensor, grid: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Project the input by each tap's weights (a 1x1 conv to K*O channels), then sample the O
    projected channels of tap k at its positions and sum over taps. Equal to
    :func:`_sample_then_project` because bilinear sampling is linear and acts per channel; cheaper
    when O < C at stride 1 (deformable ASPP: 256 outputs from 2048 inputs)."""
    n, c = x.shape[:2]
    _, k, ho, wo, _ = grid.shape
    out_channels = weight.shape[0]
    taps = weight.reshape(out_channels, c, k).permute(2, 0, 1).reshape(k * out_channels, c, 1, 1)
    projected = F.conv2d(x, taps.to(x.dtype))  # (N, K*O, H, W)
    projected = projected.reshape(n * k, out_channels, *x.shape[2:])
    sampled = F.grid_sample(projected, grid.reshape(n * k, ho, wo, 2).to(projected.dtype), mode="bilinear",
                            padding_mode="zeros", align_corners=False)  # (N*K, O, Ho, Wo)
    sampled = sampled.view(n, k, out_channels, ho, wo) * mask.view(n, k, 1, ho, wo).to(sampled.dtype)
    return sampled.sum(dim=1)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer: a (dilated) conv whose K taps move by learned offsets and are scaled by a
    learned modulation, both predicted from the input by a parallel conv (``offset_conv``).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, bias :
        as ``torch.nn.Conv2d`` (no groups).

    Attributes
    ----------
    weight : (out_channels, in_channels, kh, kw) kernel, Kaiming-uniform initialised like ``nn.Conv2d``.
    offset_conv : ``nn.Conv2d`` to 3K channels (2K offsets dy, dx per tap, then K modulation
        logits), zero-initialised: at initialisation the layer is the ordinary convolution
        scaled by 0.5 (DCNv2, section 3.1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        kh, kw = self.kernel_size
        reference = nn.Conv2d(in_channels, out_channels, self.kernel_size, bias=bias)  # for nn.Conv2d's init
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone()) if bias else None
        self.offset_conv = nn.Conv2d(in_channels, 3 * kh * kw, self.kernel_size, self.stride, self.padding,
                                     self.dilation, bias=True)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def offsets_and_modulation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2K, Ho, Wo) offsets in input pixels and (N, K, Ho, Wo) modulation in (0, 1)."""
        k = self.kernel_size[0] * self.kernel_size[1]
        out = self.offset_conv(x)
        return out[:, : 2 * k], torch.sigmoid(out[:, 2 * k :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, Ho, Wo), sizes as ``nn.Conv2d``."""
        offset, mask = self.offsets_and_modulation(x)
        return deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        o, c = self.weight.shape[:2]
        return (f"{c}, {o}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, bias={self.bias is not None}")
