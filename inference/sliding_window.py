"""Sliding-window prediction of a class map for an in-memory image of any size.

A pure function in the manner of MONAI's ``sliding_window_inference`` (``monai/inferers/utils.py``):
the predictor is passed in, the image is cut into overlapping tiles, the predictor's per-class
scores are blended with :func:`blend_window` (a linear ramp over the overlap that trusts tile
centres more than tile edges; neighbours' ramps sum to one), and the class is the argmax of the
blended scores. The whole-slide engine blends its overlapping tiles with the same window
(:class:`lobule.inference.engine.blend.CoreBlender`).

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


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """(T, T) float32 weights of one tile's scores: a separable linear ramp ("feathering") that
    rises over ``overlap`` pixels from each edge and is 1 inside.

    Pixel ``d`` (0-based) from the nearer edge weighs ``min(1, (d + 0.5) / overlap)``: never 0,
    and two neighbours sharing exactly ``overlap`` pixels get weights summing to 1 there (four
    at a corner: the product of two such sums), so a blended score is a convex mix that moves
    from one tile's prediction to the other's across the shared band instead of switching at a
    line. ``overlap == 0`` gives all ones.

    Raises
    ------
    ValueError
        If ``overlap`` is not in ``[0, tile]``.
    """
    if not 0 <= overlap <= tile:
        raise ValueError(f"overlap must be in [0, {tile}], not {overlap}")
    if overlap == 0:
        return np.ones((tile, tile), dtype=np.float32)
    d = np.minimum(np.arange(tile), np.arange(tile)[::-1])
    axis = np.minimum(1.0, (d + 0.5) / overlap).astype(np.float32)
    return np.outer(axis, axis)


def sliding_window_scores(image: np.ndarray, predict: Predictor, tile: int = 512, overlap: int = 128,
                          batch_size: int = 4) -> np.ndarray:
    """Blended per-class scores of an image of any size.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    predict : function (N, T, T, 3) uint8 -> (N, C, T, T) float scores.
    tile : T, the tile side the predictor takes (pixels).
    overlap : pixels shared by neighbouring tiles.
    batch_size : tiles per predictor call.

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
    window = blend_window(tile, overlap)
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
                          batch_size: int = 4) -> np.ndarray:
    """(H, W) uint8 class map: the argmax of :func:`sliding_window_scores` (same parameters)."""
    scores = sliding_window_scores(image, predict, tile, overlap, batch_size)
    return scores.argmax(axis=0).astype(np.uint8)
