"""Sliding-window prediction of a class map for an in-memory image of any size.

A pure function in the manner of MONAI's ``sliding_window_inference`` (``monai/inferers/utils.py``):
the predictor is passed in, the image is cut into overlapping tiles, the predictor's per-class
scores are blended with a window that trusts tile centres more than tile edges (a Gaussian with
sigma = tile / 8, MONAI's default ``sigma_scale=0.125``), and the class is the argmax of the
blended scores. The whole-slide engine reuses :func:`tile_origins` and :func:`blend_window`.

Shapes: images (H, W, 3) uint8 RGB; predictor input (N, T, T, 3) uint8, output (N, C, T, T)
float scores (probabilities are best: they are averaged).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lobule.inference.errors import InputError

Predictor = Callable[[np.ndarray], np.ndarray]


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``
    pixels shared by neighbours; the last tile ends exactly at ``length`` (``[0]`` when
    ``length <= tile``: the caller pads).

    Raises
    ------
    ValueError
        If ``overlap`` is not in ``[0, tile)``.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), not {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    origins = list(range(0, length - tile, step))
    origins.append(length - tile)
    return origins


def blend_window(tile: int, kind: str = "gaussian") -> np.ndarray:
    """(T, T) float32 weights of one tile's scores: ``"gaussian"`` (sigma = T / 8, peak 1, floored
    at 1e-3 so border pixels covered by one tile only still count) or ``"constant"`` (all 1)."""
    if kind == "constant":
        return np.ones((tile, tile), dtype=np.float32)
    if kind != "gaussian":
        raise ValueError(f"blend must be 'gaussian' or 'constant', not {kind!r}")
    centre = (tile - 1) / 2.0
    axis = np.exp(-0.5 * ((np.arange(tile) - centre) / (tile / 8.0)) ** 2)
    window = np.outer(axis, axis).astype(np.float32)
    return np.maximum(window, 1e-3)


def sliding_window_scores(image: np.ndarray, predict: Predictor, tile: int = 512, overlap: int = 128,
                          batch_size: int = 4, blend: str = "gaussian") -> np.ndarray:
    """Blended per-class scores of an image of any size.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    predict : function (N, T, T, 3) uint8 -> (N, C, T, T) float scores.
    tile : T, the tile side the predictor takes (pixels).
    overlap : pixels shared by neighbouring tiles.
    batch_size : tiles per predictor call.
    blend : ``"gaussian"`` or ``"constant"`` (:func:`blend_window`).

    Returns
    -------
    (C, H, W) float32 weighted mean of the scores of the tiles covering each pixel. An image
    smaller than a tile is padded by mirroring (``numpy.pad`` ``"symmetric"``) and cropped back.

    Raises
    ------
    InputError
        If the image is not (H, W, 3) uint8 or is empty.
    ValueError
        If the predictor returns a wrong shape.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    pad_h, pad_w = max(0, tile - height), max(0, tile - width)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    full_h, full_w = image.shape[:2]
    window = blend_window(tile, blend)
    origins = [(y, x) for y in tile_origins(full_h, tile, overlap) for x in tile_origins(full_w, tile, overlap)]
    scores: np.ndarray | None = None
    weights = np.zeros((full_h, full_w), dtype=np.float32)
    for start in range(0, len(origins), batch_size):
        chunk = origins[start:start + batch_size]
        batch = np.stack([image[y:y + tile, x:x + tile] for y, x in chunk])
        out = np.asarray(predict(batch), dtype=np.float32)
        if out.ndim != 4 or out.shape[0] != len(chunk) or out.shape[2:] != (tile, tile):
            raise ValueError(f"predictor returned shape {out.shape} for {len(chunk)} tiles of {tile}x{tile}")
        if scores is None:
            scores = np.zeros((out.shape[1], full_h, full_w), dtype=np.float32)
        for (y, x), tile_scores in zip(chunk, out):
            scores[:, y:y + tile, x:x + tile] += tile_scores * window
            weights[y:y + tile, x:x + tile] += window
    scores /= weights
    return scores[:, :height, :width]


def sliding_window_labels(image: np.ndarray, predict: Predictor, tile: int = 512, overlap: int = 128,
                          batch_size: int = 4, blend: str = "gaussian") -> np.ndarray:
    """(H, W) uint8 class map: the argmax of :func:`sliding_window_scores` (same parameters)."""
    scores = sliding_window_scores(image, predict, tile, overlap, batch_size, blend)
    return scores.argmax(axis=0).astype(np.uint8)
