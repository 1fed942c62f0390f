"""Fixtures of the whole-slide analysis tests: an in-memory slide and small deterministic
predictors (the engine takes any predictor; these stand in for trained models)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lobule.inference.slide.base import SlideReader


class ArraySlide(SlideReader):
    """A slide served from an (H, W, 3) uint8 array, with a 2x mean pyramid; white outside."""

    backend = "array"

    def __init__(self, image: np.ndarray, mpp: float | None = 0.5, path: Path | None = None, levels: int = 3):
        self.path = Path(path) if path else Path("array.png")
        self._levels = [image]
        for _ in range(levels - 1):
            prev = self._levels[-1]
            if min(prev.shape[:2]) < 4:
                break
            self._levels.append(cv2.resize(prev, ((prev.shape[1] + 1) // 2, (prev.shape[0] + 1) // 2),
                                           interpolation=cv2.INTER_AREA))
        self._mpp = mpp

    @property
    def level_dimensions(self):
        return tuple((a.shape[1], a.shape[0]) for a in self._levels)

    @property
    def level_downsamples(self):
        return tuple(float(2**k) for k in range(len(self._levels)))

    @property
    def mpp(self):
        return None if self._mpp is None else (self._mpp, self._mpp)

    @property
    def mpp_source(self):
        return None if self._mpp is None else "metadata"

    objective_power = None
    vendor = None
    properties = {}
    associated_image_names = ()

    def associated_image(self, name):
        raise KeyError(name)

    def read_region(self, location, level, size):
        image = self._levels[level]
        ds = 2**level
        x, y = int(location[0] // ds), int(location[1] // ds)
        w, h = size
        out = np.full((h, w, 3), 255, np.uint8)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(image.shape[1], x + w), min(image.shape[0], y + h)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
        return out


def colour_classes(image: np.ndarray, mpp: float = 0.5) -> np.ndarray:
    """A deterministic stand-in labeller with spatial context: classes by colour after a 5 x 5
    box blur (so a tile's border pixels depend on pixels outside it).

    white -> 0, dark purple -> 2 (nuclei), red-dominant -> 4 (parenchyma), green-dominant -> 5,
    blue-dominant -> 3, yellow -> 1.
    """
    blurred = cv2.blur(image, (5, 5), borderType=cv2.BORDER_REFLECT).astype(np.int16)
    r, g, b = blurred[..., 0], blurred[..., 1], blurred[..., 2]
    out = np.full(image.shape[:2], 4, np.uint8)
    out[(g > r + 30) & (g > b + 30)] = 5
    out[(b > r + 30) & (b > g + 30)] = 3
    out[(r > 150) & (g > 150) & (b < 100)] = 1
    out[(r < 140) & (g < 100) & (b > 120)] = 2
    out[(r > 225) & (g > 225) & (b > 225)] = 0
    return out


def synthetic_he(shape=(1500, 1900), seed: int = 0) -> np.ndarray:
    """White glass with a pink tissue blob holding purple nuclei and white round holes."""
    rng = np.random.default_rng(seed)
    h, w = shape
    image = np.full((h, w, 3), 250, np.uint8)
    cv2.ellipse(image, (w // 2, h // 2), (int(w * 0.38), int(h * 0.36)), 15, 0, 360, (225, 140, 180), -1)
    for _ in range(400):
        x, y = rng.integers(0, w), rng.integers(0, h)
        if (image[y, x] == 250).all():
            continue
        cv2.circle(image, (int(x), int(y)), int(rng.integers(3, 7)), (90, 50, 150), -1)
    for _ in range(40):
        x, y = rng.integers(0, w), rng.integers(0, h)
        if (image[y, x] == 250).all():
            continue
        cv2.circle(image, (int(x), int(y)), int(rng.integers(6, 20)), (252, 252, 252), -1)
    noise = rng.integers(-6, 7, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def he_image() -> np.ndarray:
    return synthetic_he()


@pytest.fixture
def array_slide(he_image, tmp_path) -> ArraySlide:
    path = tmp_path / "synthetic.png"
    cv2.imwrite(str(path), cv2.cvtColor(he_image, cv2.COLOR_RGB2BGR))
    return ArraySlide(he_image, mpp=0.5, path=path)


@pytest.fixture
def colour_predictor():
    from lobule.inference.engine import FunctionPredictor

    return FunctionPredictor(colour_classes, name="colour-test", mpp=0.5, tile_size=256, margin=16)


@pytest.fixture
def make_slide():
    return ArraySlide


@pytest.fixture
def colour_fn():
    return colour_classes
