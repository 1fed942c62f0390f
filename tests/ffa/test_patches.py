"""Tile stitching: overlapping 96x96 tiles averaged back equal a direct prediction."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.ffa.patches import Cancelled, blend_weights, predict_tiled, tile_starts


def pointwise(tiles: np.ndarray) -> np.ndarray:
    return np.tanh(3 * tiles[:, 0]) ** 2


def test_tile_starts_cover_the_whole_length():
    for length in (96, 97, 150, 512):
        starts = tile_starts(length, 96, 48)
        assert starts[0] == 0 and starts[-1] == length - 96
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + 96] = True
        assert covered.all()


@pytest.mark.parametrize("shape", [(200, 150), (96, 96), (60, 70)])
def test_stitching_a_pointwise_predictor_equals_direct(shape):
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    calls = []
    out = predict_tiled(pointwise, image, batch_size=5, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, pointwise(image[None, None])[0], rtol=1e-6, atol=1e-6)
    assert calls[-1][0] == calls[-1][1]


def test_stitched_model_equals_direct_on_a_single_tile_image(tiny_checkpoint):
    import torch

    from lobule.inference.ffa.predictor import CNPSegmenter

    segmenter = CNPSegmenter.from_checkpoint(str(tiny_checkpoint), device="cpu")
    image = np.random.default_rng(2).random((96, 96), dtype=np.float32)
    stitched = predict_tiled(segmenter.predict_tiles, image)
    with torch.inference_mode():
        direct = torch.softmax(segmenter.model(torch.from_numpy(image)[None, None]), 1)[0, 1].numpy()
    np.testing.assert_allclose(stitched, direct, atol=1e-6)


def test_cancel_stops_between_batches():
    image = np.zeros((300, 300), np.float32)
    with pytest.raises(Cancelled):
        predict_tiled(pointwise, image, cancel=lambda: True)


def test_blend_weights_favour_tile_centres():
    w = blend_weights(96)
    assert w.shape == (96, 96) and w.max() <= 1.0 and w.min() >= 1e-3
    assert w[47, 47] > 0.99 and w[0, 0] == 1e-3
    np.testing.assert_allclose(w, w.T)


def test_stitching_removes_a_tile_border_artefact():
    def bordered(tiles):  # a predictor wrong (1.0) on the outer 8 px of every tile, 0 inside
        out = np.ones(tiles[:, 0].shape, np.float32)
        out[:, 8:-8, 8:-8] = 0.0
        return out

    out = predict_tiled(bordered, np.zeros((240, 240), np.float32))
    assert out[40:200, 40:200].max() < 0.05  # interior pixels: tile centres dominate
