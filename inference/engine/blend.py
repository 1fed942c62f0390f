"""Blending overlapping tiles on class scores into the cores of a whole-slide class map.

Each tile of a :class:`~lobule.inference.tiling.TileGrid` is its core with ``margin`` pixels of
context on every side, so neighbouring tiles share a band of ``2 * margin`` pixels centred on
their common core border. Keeping each tile's core and stitching argmax labels switches from
one tile's prediction to the other's at a straight line; where the predictions differ (a
network's image-pooling branch is a per-tile statistic, and a tile edge has less context) the
class map shows a seam along every core border.

Here each tile's class scores (softmax probabilities) are weighted by
:func:`lobule.inference.sliding_window.blend_window` with ``overlap = 2 * margin`` (a ramp
that is ~0 at the tile edge, 0.5 at the core border and 1 from ``margin`` pixels inside the
core; neighbours' weights sum to one), summed into the cores they overlap (a tile reaches into
its eight neighbours' cores), and a core's labels are the argmax once every tile overlapping it
has been added. The cost over argmax stitching is the softmax and one multiply-add per score:
the tiles and their stride are unchanged. This is the weighted sliding-window blending of
MONAI's ``sliding_window_inference`` at the grid's stride, with the same window as
:func:`lobule.inference.sliding_window.sliding_window_scores`.

Memory: one float32 sum per core still waiting for a neighbour, about one row of cores
(C x core x core x 4 bytes each: 4.1 MB for 7 classes and 384 px cores) in row-major order.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lobule.inference.sliding_window import blend_window
from lobule.inference.tiling import Tile, TileGrid


class CoreBlender:
    """Sums the weighted scores of the tiles of ``grid`` into their cores' labels.

    Parameters
    ----------
    grid : the tiles (every tile of ``grid.tiles`` must be added exactly once, in any order).
    sink : ``sink(tile, labels)`` with (h, w) uint8 labels of ``tile.core``, called once per
        tile when its core is complete (the core's tile and all its neighbours in the grid were
        added); in row-major order of the tiles this is one row of tiles behind.
    """

    def __init__(self, grid: TileGrid, sink: Callable[[Tile, np.ndarray], None]) -> None:
        self.grid = grid
        self.sink = sink
        self.window = blend_window(grid.tile_size, 2 * grid.margin)
        self._tiles = {(t.row, t.col): t for t in grid.tiles}
        self._waiting = {key: sum((key[0] + dr, key[1] + dc) in self._tiles for dr in (-1, 0, 1) for dc in (-1, 0, 1))
                         for key in self._tiles}
        self._sums: dict[tuple[int, int], np.ndarray] = {}

    @property
    def pending(self) -> int:
        """Cores whose sums are held (waiting for a neighbour)."""
        return len(self._sums)

    def add(self, tile: Tile, scores: np.ndarray) -> None:
        """Add one tile's class scores ((C, T, T) float, e.g. softmax probabilities of the
        tile's input) to the cores it overlaps; emit the cores this completes."""
        grid = self.grid
        size, margin, core = grid.tile_size, grid.margin, grid.core
        if scores.ndim != 3 or scores.shape[1:] != (size, size):
            raise ValueError(f"scores of tile {tile.row},{tile.col} have shape {scores.shape}, not (C, {size}, {size})")
        x0, y0 = tile.col * core - margin, tile.row * core - margin  # the input's origin, label px
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                key = (tile.row + dr, tile.col + dc)
                cell = self._tiles.get(key)
                if cell is None:
                    continue
                cx, cy, cw, ch = cell.core
                ax0, ax1 = max(x0, cx), min(x0 + size, cx + cw)
                ay0, ay1 = max(y0, cy), min(y0 + size, cy + ch)
                if ax0 < ax1 and ay0 < ay1:
                    total = self._sums.get(key)
                    if total is None:
                        total = self._sums[key] = np.zeros((scores.shape[0], ch, cw), np.float32)
                    part = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
                    total[:, ay0 - cy : ay1 - cy, ax0 - cx : ax1 - cx] += scores[:, part[0], part[1]] * self.window[part]
                self._waiting[key] -= 1
                if self._waiting[key] == 0:
                    total = self._sums.pop(key)
                    self.sink(cell, total.argmax(axis=0).astype(np.uint8))
