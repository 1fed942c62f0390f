"""Tile stitching: overlapping 96x96 tiles averaged back equal a direct prediction."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.ffa.patches import Cancelled, predict_tiled, tile_starts


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
        predict_tiled(pointwise, image, cancelled=lambda: True)
