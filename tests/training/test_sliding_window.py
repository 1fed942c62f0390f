"""Sliding-window prediction: equal to direct prediction, seamless, any size."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.errors import InputError
from lobule.inference.sliding_window import sliding_window_labels, sliding_window_scores, tile_origins


def pointwise_scores(batch: np.ndarray) -> np.ndarray:
    """A per-pixel predictor (translation-equivariant): 3 scores from the pixel's colour."""
    x = batch.astype(np.float32) / 255.0
    return np.stack([x[..., 0], x[..., 1], 1.0 - x[..., 2]], axis=1)


def neighbourhood_scores(batch: np.ndarray) -> np.ndarray:
    """Depends on a 5x5 neighbourhood, like a convolution (edge effects at tile borders)."""
    from scipy import ndimage as ndi

    x = batch.astype(np.float32) / 255.0
    smooth = ndi.uniform_filter(x, size=(1, 5, 5, 1), mode="reflect")
    return np.moveaxis(smooth, -1, 1)


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(150, 210, 3), dtype=np.uint8)


def test_tile_origins_cover_and_end_at_the_border():
    assert tile_origins(64, 64, 16) == [0]
    assert tile_origins(40, 64, 16) == [0]
    origins = tile_origins(150, 64, 16)
    assert origins[0] == 0 and origins[-1] == 150 - 64
    assert all(b - a <= 48 for a, b in zip(origins, origins[1:]))
    with pytest.raises(ValueError):
        tile_origins(100, 64, 64)


def test_equals_direct_prediction_on_a_tile_sized_image(image):
    tile = image[:64, :64]
    direct = neighbourhood_scores(tile[None])[0]
    assert np.allclose(sliding_window_scores(tile, neighbourhood_scores, tile=64, overlap=16), direct, atol=1e-6)
    assert np.array_equal(sliding_window_labels(tile, neighbourhood_scores, tile=64, overlap=16), direct.argmax(0))


def test_no_seams_with_a_pointwise_predictor(image):
    whole = pointwise_scores(image[None])[0]
    tiled = sliding_window_scores(image, pointwise_scores, tile=64, overlap=16, batch_size=3)
    assert tiled.shape == whole.shape
    assert np.allclose(tiled, whole, atol=1e-5)


def test_blending_hides_tile_edge_effects(image):
    """With a neighbourhood predictor, the error against the whole-image answer stays small at
    the tile seams (where a naive paste would show each tile's border effects)."""
    whole = neighbourhood_scores(image[None])[0]
    tiled = sliding_window_scores(image, neighbourhood_scores, tile=64, overlap=32)
    pasted = np.zeros_like(whole)
    for y in tile_origins(150, 64, 32):
        for x in tile_origins(210, 64, 32):
            pasted[:, y:y + 64, x:x + 64] = neighbourhood_scores(image[None, y:y + 64, x:x + 64])[0]
    assert np.abs(tiled - whole).max() < np.abs(pasted - whole).max()


def test_small_image_is_padded_and_cropped_back():
    small = np.full((20, 30, 3), 200, np.uint8)
    labels = sliding_window_labels(small, pointwise_scores, tile=64, overlap=16)
    assert labels.shape == (20, 30) and labels.dtype == np.uint8


def test_bad_inputs():
    with pytest.raises(InputError):
        sliding_window_scores(np.zeros((10, 10), np.uint8), pointwise_scores, tile=8, overlap=2)
    with pytest.raises(ValueError, match="predictor returned"):
        sliding_window_scores(np.zeros((10, 10, 3), np.uint8), lambda b: np.zeros((1, 3, 4, 4)), tile=8, overlap=2)
