"""The Enhance LadderNet paper's preprocessing (docs/models.md, section 2): grayscale, CLAHE, gamma correction
``out = (in + eps) ** gamma`` with gamma = 0.8 (the Enhance LadderNet paper, equation 1), plus the circular field
of view (FOV) of a fundus image.

Choices where the paper is silent (ours, from the LadderNet / retina-unet code the paper builds
on): CLAHE clip limit 2.0 on an 8x8 tile grid, applied to the 8-bit image; the gamma is applied
to intensities scaled to [0, 1]; eps = 1e-6 and the result is clipped to [0, 1].
"""
from __future__ import annotations

import numpy as np

CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILE_GRID = (8, 8)
GAMMA = 0.8
EPS = 1e-6

FOV_THRESHOLD = 12
"""8-bit intensity below which a pixel connected to the image border is outside the fundus
camera's circular field of view (the surround is black, about 0-5 in the data we have)."""


def clahe(gray8: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV, clip 2.0, 8x8 tiles).

    (H, W) uint8 -> (H, W) uint8.
    """
    import cv2

    return cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILE_GRID).apply(
        np.ascontiguousarray(gray8)
    )


def gamma_correct(image: np.ndarray, gamma: float = GAMMA, eps: float = EPS) -> np.ndarray:
    """``clip((image + eps) ** gamma, 0, 1)`` for an image scaled to [0, 1] (the Enhance LadderNet paper, eq. 1).

    gamma < 1 raises mid-tones (0.5 -> 0.57 at gamma 0.8); 0 and 1 stay fixed points.
    Returns float32 of the same shape.
    """
    return np.clip((np.asarray(image, np.float32) + np.float32(eps)) ** np.float32(gamma), 0.0, 1.0).astype(
        np.float32
    )


def preprocess(gray8: np.ndarray) -> np.ndarray:
    """The model input: CLAHE then gamma 0.8.

    Parameters
    ----------
    gray8 : (H, W) uint8 grayscale angiogram (see :func:`lobule.inference.ffa.io.read_angiogram`).

    Returns
    -------
    (H, W) float32 in [0, 1].
    """
    if gray8.dtype != np.uint8 or gray8.ndim != 2:
        raise ValueError(f"preprocess expects an (H, W) uint8 image, got {gray8.dtype} {gray8.shape}")
    return gamma_correct(clahe(gray8).astype(np.float32) / 255.0)


def field_of_view(gray8: np.ndarray) -> np.ndarray:
    """Pixels inside the fundus camera's field of view.

    The surround of a fundus image is a dark region connected to the image border. Pixels darker
    than :data:`FOV_THRESHOLD` (after a 5x5 median filter) that are connected to the border are
    outside; the field is the convex hull of the rest (the camera's field is a disc, so dark
    non-perfused areas touching its edge stay inside).

    Parameters
    ----------
    gray8 : (H, W) uint8.

    Returns
    -------
    (H, W) bool; all True for an image without a dark surround.
    """
    import cv2
    from scipy import ndimage

    smooth = cv2.medianBlur(np.ascontiguousarray(gray8), 5)
    dark = smooth < FOV_THRESHOLD
    labels, count = ndimage.label(dark)
    if count == 0:
        return np.ones(gray8.shape, bool)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = border[border > 0]
    inside = ~np.isin(labels, border)
    if inside.all() or not inside.any():
        return np.ones(gray8.shape, bool)
    from skimage.morphology import convex_hull_image

    return convex_hull_image(inside)
