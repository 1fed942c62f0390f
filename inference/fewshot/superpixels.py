"""Superpixel pseudo-labels for self-supervised episodes (SSL-ALPNet, Ouyang et al. ECCV 2020, section 3.2).

Each slice is over-segmented by Felzenszwalb's graph method (scikit-image; SSL-ALPNet's setting
"MIDDLE": ``min_size=400, sigma=1`` on 256x256 slices, scaled here with the slice area); superpixels
outside the body (a threshold, the largest connected component, holes filled) are dropped.
One random superpixel of a slice is the foreground of an episode whose support and query are two
random transforms of that slice: no organ labels are needed.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import felzenszwalb

#: SSL-ALPNet's minimum superpixel size on 256 x 256 slices
MIN_SIZE_256 = 400


def body_mask(slice_norm: np.ndarray) -> np.ndarray:
    """(H, W) bool body region of a z-scored slice: above the volume's low tail, largest component,
    holes filled (SSL-ALPNet ``fg_mask2d`` with a relative instead of an absolute threshold)."""
    threshold = float(slice_norm.min()) + 0.05 * float(np.ptp(slice_norm)) if slice_norm.size else 0.0
    mask = slice_norm > threshold
    labels, count = ndi.label(mask)
    if count == 0:
        return mask
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return ndi.binary_fill_holes(labels == largest)


def superpixels(slice_norm: np.ndarray, min_size: int | None = None, sigma: float = 1.0) -> np.ndarray:
    """(H, W) int32 superpixel ids (0 = outside the body), Felzenszwalb on the normalised slice.

    Parameters
    ----------
    slice_norm : (H, W) float slice (any scale; min-max scaled to [0, 1] internally).
    min_size : minimum superpixel size in pixels; default 400 scaled by H*W / 256^2.
    """
    h, w = slice_norm.shape
    if min_size is None:
        min_size = max(8, int(round(MIN_SIZE_256 * h * w / 256.0**2)))
    span = float(np.ptp(slice_norm))
    scaled = (slice_norm - float(slice_norm.min())) / (span if span > 0 else 1.0)
    segments = felzenszwalb(scaled, scale=1.0, sigma=sigma, min_size=min_size).astype(np.int32) + 1
    segments[~body_mask(slice_norm)] = 0
    # renumber consecutively
    values, inverse = np.unique(segments, return_inverse=True)
    out = inverse.reshape(segments.shape).astype(np.int32)
    if values[0] != 0:
        out += 1
    return out
