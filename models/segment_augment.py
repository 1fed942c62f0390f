"""Augmentations of (image, label map) pairs for segmentation training (numpy, per sample).

- scale: a random zoom in ``scale_range`` (the crop is taken at size crop / s and resized to
  crop: bilinear for the image, nearest for the labels);
- the eight symmetries of the square: horizontal flip and 90-degree rotations (H&E tissue has no
  preferred orientation);
- HED jitter (Tellez et al., "Whole-slide mitosis detection in H&E breast histology using PHH3
  as a reference to train distilled stain-invariant convolutional networks", IEEE TMI 2018):
  in Ruifrok-Johnston HED optical-density space each stain channel becomes
  ``alpha * c + beta`` with ``alpha ~ U(1 - sigma, 1 + sigma)``, ``beta ~ U(-sigma, sigma)``
  (base-10 optical density);
- brightness / contrast jitter in RGB.

Labels keep 255 (ignore) wherever the crop runs outside the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = 255


@dataclass(frozen=True)
class AugmentSettings:
    """Augmentation strengths; ``scale_range=(1, 1)``, ``hed_sigma=0`` etc. switch each off."""

    scale_range: tuple[float, float] = (0.75, 1.25)
    flips: bool = True
    hed_sigma: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1


def random_crop(image: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator,
                scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` x ``size`` crop, zoomed by ``scale``.

    Parameters
    ----------
    image : (H, W, 3) uint8. labels : (H, W) uint8 (255 = ignore).
    size : output side (pixels). scale : > 1 zooms in (a smaller window is enlarged).

    Returns
    -------
    (size, size, 3) uint8 image, (size, size) uint8 labels; outside the image: black, 255.
    """
    import cv2

    window = max(1, int(round(size / scale)))
    height, width = labels.shape
    y = int(rng.integers(0, max(height - window, 0) + 1))
    x = int(rng.integers(0, max(width - window, 0) + 1))
    img = np.zeros((window, window, 3), dtype=np.uint8)
    lab = np.full((window, window), IGNORE, dtype=np.uint8)
    part = image[y:y + window, x:x + window]
    img[:part.shape[0], :part.shape[1]] = part
    lab[:part.shape[0], :part.shape[1]] = labels[y:y + window, x:x + window]
    if window != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (size, size), interpolation=cv2.INTER_NEAREST)
    return img, lab


def dihedral(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 flips / 90-degree rotations, uniformly; applied to both arrays."""
    k = int(rng.integers(0, 4))
    image, labels = np.rot90(image, k), np.rot90(labels, k)
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


#: skimage's ``rgb2hed`` divides natural-log optical density by -ln(1e-6); this converts a shift
#: given in the usual base-10 optical density units to that scale
_OD10_TO_SKIMAGE = float(np.log(10.0) / -np.log(1e-6))


def hed_jitter(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Tellez et al. 2018 stain jitter in HED space; (H, W, 3) uint8 -> (H, W, 3) uint8.

    ``alpha ~ U(1 - sigma, 1 + sigma)`` scales each stain's density, ``beta ~ U(-sigma, sigma)``
    shifts it, in base-10 optical density units (converted to skimage's HED scale).
    """
    from skimage.color import hed2rgb, rgb2hed

    if sigma <= 0:
        return image
    hed = rgb2hed(image)
    alpha = rng.uniform(1 - sigma, 1 + sigma, size=3)
    beta = rng.uniform(-sigma, sigma, size=3) * _OD10_TO_SKIMAGE
    rgb = hed2rgb(hed * alpha + beta)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def colour_jitter(image: np.ndarray, brightness: float, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness (additive, share of 255) and contrast (multiplicative about the mean) jitter."""
    if brightness <= 0 and contrast <= 0:
        return image
    x = image.astype(np.float32)
    c = rng.uniform(1 - contrast, 1 + contrast)
    b = rng.uniform(-brightness, brightness) * 255.0
    x = (x - x.mean()) * c + x.mean() + b
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def augment_sample(image: np.ndarray, labels: np.ndarray, size: int, settings: AugmentSettings,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crop, zoom, flip/rotate and stain-jitter one training sample.

    Returns
    -------
    (size, size, 3) uint8 image and (size, size) uint8 labels.
    """
    low, high = settings.scale_range
    scale = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else float(low)
    image, labels = random_crop(image, labels, size, rng, scale)
    if settings.flips:
        image, labels = dihedral(image, labels, rng)
    image = hed_jitter(image, settings.hed_sigma, rng)
    image = colour_jitter(image, settings.brightness, settings.contrast, rng)
    return image, labels
