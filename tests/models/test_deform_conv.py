"""DCNv2 against its definition: y(p) = sum_k w_k x(p + p_k + dp_k) dm_k (Zhu et al. 2019, eq. 3)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lobule.models.deform_conv import ModulatedDeformConv2d, deform_conv2d

CONFIGS = [  # (kernel, stride, padding, dilation)
    (3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 6, 6), (1, 1, 0, 1), (3, 2, 3, 2), ((3, 1), 1, (1, 0), 1),
]


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _zeros_offset(x, weight, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = weight.shape[2:], _pair(stride), _pair(padding), _pair(dilation)
    ho = _out_size(x.shape[2], kh, sh, ph, dh)
    wo = _out_size(x.shape[3], kw, sw, pw, dw)
    return torch.zeros(x.shape[0], 2 * kh * kw, ho, wo, dtype=torch.float64), torch.ones(x.shape[0], kh * kw, ho, wo,
                                                                                        dtype=torch.float64)


@pytest.mark.parametrize("kernel, stride, padding, dilation", CONFIGS)
def test_zero_offsets_unit_modulation_equal_conv2d(kernel, stride, padding, dilation):
    torch.manual_seed(0)
    kh, kw = _pair(kernel)
    x = torch.randn(2, 5, 13, 11, dtype=torch.float64)
    weight = torch.randn(4, 5, kh, kw, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    offset, mask = _zeros_offset(x, weight, stride, padding, dilation)
    expected = F.conv2d(x, weight, bias, stride, padding, dilation)
    actual = deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shift", [(1, 0), (0, -2), (2, 3), (-1, -1)])
def test_integer_offset_equals_shifted_convolution(shift):
    """dp_k = s for every tap: y(p) = conv(x)(p + s), the ordinary conv evaluated at shifted positions."""
    torch.manual_seed(1)
    dy, dx = shift
    x = torch.randn(1, 3, 10, 12, dtype=torch.float64)
    weight = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    pad, dil = 2, 2
    offset, mask = _zeros_offset(x, weight, 1, pad, dil)
    offset[:, 0::2] = dy
    offset[:, 1::2] = dx
    actual = deform_conv2d(x, offset, mask, weight, None, 1, pad, dil)
    # the ordinary conv on a zero-padded input, evaluated at p + s
    m = 4
    full = F.conv2d(F.pad(x, (pad + m,) * 4), weight, None, 1, 0, dil)  # output index i <-> position i - m
    expected = full[:, :, m + dy: m + dy + 10, m + dx: m + dx + 12]
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


def _bilinear(image, y, x):
    """Zero-padded bilinear sample of a (C, H, W) image at real (y, x), written from the definition."""
    c, h, w = image.shape
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(c, dtype=image.dtype)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                value = value + (1 - abs(y - yy)) * (1 - abs(x - xx)) * image[:, yy, xx]
    return value


def test_fractional_offsets_and_modulation_match_the_formula():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    stride, pad, dil = 2, 1, 1
    offset, _ = _zeros_offset(x, weight, stride, pad, dil)
    offset = torch.randn_like(offset) * 1.5
    mask = torch.rand(1, 9, offset.shape[2], offset.shape[3], dtype=torch.float64)
    actual = deform_conv2d(x, offset, mask, weight, None, stride, pad, dil)
    expected = torch.zeros_like(actual)
    for i in range(actual.shape[2]):
        for j in range(actual.shape[3]):
            for k in range(9):
                ky, kx = divmod(k, 3)
                py = i * stride - pad + ky * dil + offset[0, 2 * k, i, j].item()
                px = j * stride - pad + kx * dil + offset[0, 2 * k + 1, i, j].item()
                sample = _bilinear(x[0], py, px) * mask[0, k, i, j]
                expected[0, :, i, j] += weight[:, :, ky, kx] @ sample
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_layer_starts_as_half_the_ordinary_convolution():
    torch.manual_seed(3)
    layer = ModulatedDeformConv2d(4, 6, 3, padding=12, dilation=12).double()
    x = torch.randn(2, 4, 20, 20, dtype=torch.float64)
    offset, mask = layer.offsets_and_modulation(x)
    assert torch.count_nonzero(offset) == 0
    assert torch.all(mask == 0.5)
    expected = 0.5 * F.conv2d(x, layer.weight, None, 1, 12, 12) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("in_channels, out_channels", [(3, 4), (16, 2)])  # both evaluation orders
def test_gradients_reach_offsets_modulation_and_input(in_channels, out_channels):
    torch.manual_seed(4)
    layer = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=1)
    with torch.no_grad():  # away from the zero init so the offset path is not at a kink
        layer.offset_conv.weight.normal_(0, 0.1)
    x = torch.randn(2, in_channels, 9, 9, requires_grad=True)
    layer(x).square().mean().backward()
    offset_rows = layer.offset_conv.weight.grad[:18]
    modulation_rows = layer.offset_conv.weight.grad[18:]
    assert offset_rows.abs().sum() > 0 and modulation_rows.abs().sum() > 0
    assert layer.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_gradcheck_with_respect_to_offsets_and_modulation():
    torch.manual_seed(5)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    offset = (torch.rand(1, 18, 5, 5, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()  # off integer kinks
    mask = torch.rand(1, 9, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda o, m: deform_conv2d(x, o, m, weight, None, 1, 1, 1), (offset, mask))


def test_bad_offset_shape_is_rejected():
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(x, torch.zeros(1, 9, 5, 5), None, torch.randn(2, 2, 3, 3), padding=1)


@pytest.mark.parametrize("in_channels, out_channels, stride", [(6, 3, 1), (3, 6, 1), (6, 3, 2)])
def test_both_evaluation_orders_agree(in_channels, out_channels, stride):
    """Sampling the input then projecting equals projecting per tap then sampling (linearity)."""
    from lobule.models.deform_conv import _project_then_sample, _sample_then_project, _sampling_grid

    torch.manual_seed(6)
    x = torch.randn(2, in_channels, 9, 8, dtype=torch.float64)
    weight = torch.randn(out_channels, in_channels, 3, 3, dtype=torch.float64)
    ho, wo = _out_size(9, 3, stride, 2, 2), _out_size(8, 3, stride, 2, 2)
    offset = torch.randn(2, 18, ho, wo, dtype=torch.float64) * 2
    mask = torch.rand(2, 9, ho, wo, dtype=torch.float64)
    grid = _sampling_grid(offset, (9, 8), (3, 3), (stride, stride), (2, 2), (2, 2))
    torch.testing.assert_close(_project_then_sample(x, grid, mask, weight), _sample_then_project(x, grid, mask, weight))


def test_aspp_shapes_use_the_cheaper_order():
    from lobule.models.deform_conv import _project_first_is_cheaper

    assert _project_first_is_cheaper(2048, 256, (32, 32), (32, 32))  # deformable ASPP at 512 px input
    assert not _project_first_is_cheaper(64, 256, (32, 32), (32, 32))
    assert not _project_first_is_cheaper(256, 256, (64, 64), (32, 32))  # stride 2


@pytest.mark.parametrize("in_channels, out_channels", [(3, 4), (16, 2)])
def test_runs_under_bfloat16_autocast(in_channels, out_channels):
    torch.manual_seed(7)
    layer = ModulatedDeformConv2d(in_channels, out_channels, 3, padding=2, dilation=2)
    x = torch.randn(2, in_channels, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    torch.testing.assert_close(out.float(), layer(x), rtol=0.05, atol=0.05)
