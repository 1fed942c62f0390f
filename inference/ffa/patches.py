"""Tiled inference: overlapping square tiles, predicted in batches, blended back into one
full-size probability map (the Enhance LadderNet paper: 96x96 tiles at test time).

Blending weights each tile's prediction by a separable Gaussian centred on the tile (sigma =
tile / 8, MONAI's default "gaussian" mode), so the less reliable borders of a tile (zero padding of
the convolutions) count less than the centres of its neighbours and no tile grid shows.

A pure function of the image and a predictor callable (MONAI's sliding-window design), so it is
testable without a model and the GUI can run it on a worker thread with progress and cancel.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lobule.core.cancel import CancelFlag, Cancelled, check_cancelled  # noqa: F401 - Cancelled: what cancel raises

TILE = 96
OVERLAP = 48

TileProbabilities = Callable[[np.ndarray], np.ndarray]
"""(N, 1, T, T) float32 tiles -> (N, T, T) float32 probabilities."""




def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` px every ``stride`` px; the
    last tile is aligned to the end. ``length`` must be >= ``tile``."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_weights(tile: int) -> np.ndarray:
    """(tile, tile) float64 separable Gaussian, sigma = tile / 8, peak 1, floor 1e-3."""
    centre = (tile - 1) / 2.0
    profile = np.exp(-0.5 * ((np.arange(tile) - centre) / (tile / 8.0)) ** 2)
    return np.maximum(np.outer(profile, profile), 1e-3)


def predict_tiled(
    predictor: TileProbabilities,
    image: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelFlag = None,
) -> np.ndarray:
    """Probability map of a whole image from overlapping tile predictions.

    Parameters
    ----------
    predictor : maps a batch of tiles (N, 1, tile, tile) float32 to (N, tile, tile) float32.
    image : (H, W) float32 preprocessed image. Images smaller than a tile are zero-padded (the
        black surround of a fundus image) and the result cropped back.
    tile, overlap : tile side and overlap in px (stride = tile - overlap).
    batch_size : tiles per predictor call.
    progress : called as ``progress(done_tiles, total_tiles)`` after each batch.
    cancel : cancel token (:mod:`lobule.core.cancel`), polled before each batch; once set,
        :class:`~lobule.core.cancel.Cancelled` is raised.

    Returns
    -------
    (H, W) float32: the Gaussian-weighted mean of all tile predictions covering each pixel.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    height, width = image.shape
    padded = np.zeros((max(height, tile), max(width, tile)), np.float32)
    padded[:height, :width] = image
    stride = tile - overlap
    ys = tile_starts(padded.shape[0], tile, stride)
    xs = tile_starts(padded.shape[1], tile, stride)
    corners = [(y, x) for y in ys for x in xs]
    weight = blend_weights(tile)
    total = np.zeros(padded.shape, np.float64)
    count = np.zeros(padded.shape, np.float64)
    for first in range(0, len(corners), batch_size):
        check_cancelled(cancel, "tiled prediction cancelled")
        chunk = corners[first : first + batch_size]
        batch = np.stack([padded[y : y + tile, x : x + tile] for y, x in chunk])[:, None]
        probs = np.asarray(predictor(batch), np.float32)
        for (y, x), prob in zip(chunk, probs):
            total[y : y + tile, x : x + tile] += weight * prob
            count[y : y + tile, x : x + tile] += weight
        if progress is not None:
            progress(min(first + batch_size, len(corners)), len(corners))
    return (total / count)[:height, :width].astype(np.float32)
