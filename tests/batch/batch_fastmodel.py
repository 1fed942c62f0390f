"""A fast deterministic stand-in labeller for the cohort tests (trained weights are not part of
the tests; the pipeline around the model is the real one).

Ray workers cannot import the test tree, so the tests ship this module to them by value
(``ray.cloudpickle.register_pickle_by_value``).
"""
from __future__ import annotations

import cv2
import numpy as np


def colour_classes(image: np.ndarray, mpp: float = 0.5) -> np.ndarray:
    """Classes by colour after a 5 x 5 box blur (so tile borders depend on pixels outside the
    tile): glass white (> 235) -> 0 background, other light pixels -> 1 lipid droplet, dark purple
    -> 2 nuclei, everything else -> 4 parenchyma. (H, W, 3) uint8 -> (H, W) uint8."""
    blurred = cv2.blur(image, (5, 5), borderType=cv2.BORDER_REFLECT).astype(np.int16)
    r, g, b = blurred[..., 0], blurred[..., 1], blurred[..., 2]
    out = np.full(image.shape[:2], 4, np.uint8)
    out[(r > 200) & (g > 200) & (b > 200)] = 1
    out[(r < 160) & (g < 120) & (b > 110)] = 2
    out[(r > 235) & (g > 235) & (b > 235)] = 0
    return out


def make_predictor():
    """The predictor every worker loads once (512 px tiles, 32 px margin, 0.5 um/px)."""
    from lobule.inference.engine import FunctionPredictor

    return FunctionPredictor(colour_classes, name="colour-test", mpp=0.5, tile_size=512, margin=32)


def ship_to_workers() -> None:
    """Make Ray pickle this module's functions by value."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
