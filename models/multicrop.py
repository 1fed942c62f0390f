"""DINO multi-crop augmentation in torch, batched and on the training device.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, section 3
and appendix D (``DataAugmentationDINO`` in the reference code): two global views (random resized
crop, scale (0.4, 1) of the tile, 224 px) and several local views (scale (0.05, 0.4), 96 px);
horizontal flip; colour jitter (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1) with
probability 0.8; grayscale 0.2; Gaussian blur (sigma in [0.1, 2]) with probability 1.0 / 0.1 / 0.5
(first global / second global / locals); solarisation 0.2 on the second global view only.

Additions for H&E tiles (tissue has no orientation): vertical flips and 90-degree rotations,
applied in the same resampling as the crop. Pixel units: crops and blurs are defined on the
output view, as in the reference implementation (which blurs the resized PIL crop).

All functions take and return (N, 3, H, W) float tensors in [0, 1] (before normalisation) and a
``torch.Generator`` on the CPU for reproducibility; random numbers are drawn on the CPU and moved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: ImageNet mean / std, the usual normalisation; the segmentation cards state theirs
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MultiCropConfig:
    """Multi-crop parameters (defaults: DINO's, see the module docstring)."""

    global_size: int = 224
    local_size: int = 96
    local_crops: int = 8
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.2
    rotate90: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _bernoulli(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def random_resized_crop(images: torch.Tensor, size: int, scale: tuple[float, float], generator: torch.Generator,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), rotate90: bool = True) -> torch.Tensor:
    """Per-sample random crop of area ``scale`` x image area and aspect ``ratio``, resized to
    ``size`` x ``size`` bilinearly, with random horizontal flips (and vertical flips and
    90-degree rotations when ``rotate90``). (N, C, H, W) -> (N, C, size, size).

    The crop is one affine resampling (``affine_grid`` + ``grid_sample``); crops stay inside the
    image (their size is clipped to the image when the drawn area does not fit).
    """
    n = images.shape[0]
    area = _uniform(n, *scale, generator)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    # crop width and height as fractions of the image sides (square tiles: area fraction = w * h)
    height, width = images.shape[2:]
    w = torch.sqrt(area * aspect * height / width).clamp(max=1.0)
    h = torch.sqrt(area / aspect * width / height).clamp(max=1.0)
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - w)  # centre in normalised coords
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - h)
    flip_x = torch.where(_bernoulli(n, 0.5, generator), -1.0, 1.0)
    flip_y = torch.where(_bernoulli(n, 0.5, generator), -1.0, 1.0) if rotate90 else torch.ones(n)
    quarter = torch.randint(0, 4, (n,), generator=generator) if rotate90 else torch.zeros(n, dtype=torch.long)
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0])[quarter]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0])[quarter]
    # output coords u -> rotate -> flip -> scale by crop half-sizes -> shift to the crop centre
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip_x * cos
    theta[:, 0, 1] = -w * flip_x * sin
    theta[:, 1, 0] = h * flip_y * sin
    theta[:, 1, 1] = h * flip_y * cos
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(images.device, images.dtype), [n, images.shape[1], size, size], align_corners=False)
    # antialias: shrink first when the crop is much larger than the view (avoids aliasing)
    shrink = int(max(height, width) * float(max(w.max(), h.max())) // (2 * size))
    source = F.avg_pool2d(images, shrink) if shrink >= 2 else images
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = rgb.unbind(1)
    maxc, _ = rgb.max(1)
    minc, _ = rgb.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack((hue, saturation, maxc), 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv.unbind(1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)


def colour_jitter(x: torch.Tensor, config: MultiCropConfig, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter, each factor drawn per sample, applied with
    probability ``jitter_p`` (torchvision ``ColorJitter`` semantics, fixed order); then grayscale
    with probability ``grayscale_p``."""
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    apply = _bernoulli(n, config.jitter_p, generator).view(shape).to(x.device)
    b = _uniform(n, 1 - config.brightness, 1 + config.brightness, generator).view(shape).to(x)
    c = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator).view(shape).to(x)
    s = _uniform(n, 1 - config.saturation, 1 + config.saturation, generator).view(shape).to(x)
    hshift = _uniform(n, -config.hue, config.hue, generator).view(n, 1, 1).to(x)
    y = (x * b).clamp(0, 1)
    mean = _grayscale(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    gray = _grayscale(y)
    y = ((y - gray) * s + gray).clamp(0, 1)
    hsv = rgb_to_hsv(y)
    hsv = torch.stack(((hsv[:, 0] + hshift) % 1.0, hsv[:, 1], hsv[:, 2]), 1)
    y = hsv_to_rgb(hsv).clamp(0, 1)
    x = torch.where(apply, y, x)
    to_gray = _bernoulli(n, config.grayscale_p, generator).view(shape).to(x.device)
    return torch.where(to_gray, _grayscale(x), x)


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur with sigma ~ U(sigma) pixels per sample, applied with probability p."""
    n, c = x.shape[:2]
    sigmas = _uniform(n, *sigma, generator)
    apply = _bernoulli(n, p, generator)
    if not bool(apply.any()):
        return x
    radius = int(math.ceil(3 * sigma[1]))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (taps[None] / sigmas[:, None]) ** 2)
    kernels = kernels / kernels.sum(1, keepdim=True)  # (N, 2r+1)
    kernels = kernels.repeat_interleave(c, 0).to(x)  # (N*C, 2r+1), one per channel
    flat = x.reshape(1, n * c, *x.shape[2:])
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernels.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(flat, kernels.view(n * c, 1, -1, 1), groups=n * c)
    blurred = flat.view_as(x)
    return torch.where(apply.view(n, 1, 1, 1).to(x.device), blurred, x)


def solarize(x: torch.Tensor, p: float, generator: torch.Generator, threshold: float = 0.5) -> torch.Tensor:
    """Invert pixels at or above ``threshold`` (PIL ``ImageOps.solarize(img, 128)``), with probability p."""
    apply = _bernoulli(x.shape[0], p, generator).view(-1, 1, 1, 1).to(x.device)
    return torch.where(apply & (x >= threshold), 1 - x, x)


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std per channel."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def multi_crop(tiles: torch.Tensor, config: MultiCropConfig, generator: torch.Generator) -> list[torch.Tensor]:
    """DINO views of a batch of tiles.

    Parameters
    ----------
    tiles : (N, H, W, 3) uint8 RGB tiles (or (N, 3, H, W) float in [0, 1]).
    config : crop sizes, scales and augmentation strengths.
    generator : CPU generator that draws every random choice.

    Returns
    -------
    [global_1, global_2, local_1, ..., local_L] : normalised float views,
    (N, 3, global_size, global_size) twice then (N, 3, local_size, local_size) ``local_crops`` times.
    """
    if tiles.dtype == torch.uint8:
        tiles = tiles.permute(0, 3, 1, 2).float() / 255.0
    views = []
    for index in range(2):
        v = random_resized_crop(tiles, config.global_size, config.global_scale, generator, rotate90=config.rotate90)
        v = colour_jitter(v, config, generator)
        v = gaussian_blur(v, 1.0 if index == 0 else 0.1, config.blur_sigma, generator)
        if index == 1:
            v = solarize(v, config.solarize_p, generator)
        views.append(v)
    for _ in range(config.local_crops):
        v = random_resized_crop(tiles, config.local_size, config.local_scale, generator, rotate90=config.rotate90)
        v = colour_jitter(v, config, generator)
        views.append(gaussian_blur(v, 0.5, config.blur_sigma, generator))
    return [normalise(v, config.mean, config.std) for v in views]
