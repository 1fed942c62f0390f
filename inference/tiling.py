"""The tile grid of a whole-slide analysis and the reading of one model-input tile.

The class map ("label map") has pixels of exactly the model's mpp: label pixel (i, j) covers
level-0 pixels [j * scale, (j + 1) * scale) x [i * scale, (i + 1) * scale), with
``scale = model_mpp / slide_mpp``. It is cut into square *cores* of ``core = tile_size - 2 *
margin`` label pixels; the model sees each core with ``margin`` pixels of context on every
side (a ``tile_size`` x ``tile_size`` input) and only the core of its output is kept
("keep tile centres" stitching, as MONAI's sliding window with constant blending in the limit
of no overlap between kept parts). Every label pixel is thus predicted exactly once, from a
tile in which it lies at least ``margin`` pixels from the border: seams do not show as long as
the margin covers the model's border effects, and the output does not depend on batch order.

Cores coincide with the label store's level-0 chunks, so every write is one whole chunk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lobule.inference.errors import InputError


@dataclass(frozen=True)
class Tile:
    """One model input.

    Attributes
    ----------
    row, col : index of its core in the grid.
    core : (x, y, w, h) of the kept part in label pixels (clipped to the label map).
    """

    row: int
    col: int
    core: tuple[int, int, int, int]


@dataclass(frozen=True)
class TileGrid:
    """The cores of a label map and the tiles that must be predicted.

    Attributes
    ----------
    slide_size : level-0 (width, height) of the slide.
    slide_mpp : um per level-0 pixel.
    mpp : um per label pixel (the model's input mpp).
    tile_size : model input side in pixels.
    margin : context pixels discarded on each side of a tile.
    tiles : the tiles to predict (those whose core overlaps tissue), row-major.
    """

    slide_size: tuple[int, int]
    slide_mpp: float
    mpp: float
    tile_size: int
    margin: int
    tiles: tuple[Tile, ...]

    @property
    def scale(self) -> float:
        """Level-0 pixels per label pixel."""
        return self.mpp / self.slide_mpp

    @property
    def core(self) -> int:
        return self.tile_size - 2 * self.margin

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the label map."""
        return label_shape(self.slide_size, self.scale)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of cores covering the label map."""
        h, w = self.shape
        return math.ceil(h / self.core), math.ceil(w / self.core)

    @property
    def cell_count(self) -> int:
        rows, cols = self.grid_shape
        return rows * cols


def label_shape(slide_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(height, width) of a label map with ``scale`` level-0 px per label px."""
    width, height = slide_size
    return max(1, math.ceil(height / scale - 1e-6)), max(1, math.ceil(width / scale - 1e-6))


def make_grid(slide_size: tuple[int, int], slide_mpp: float, mpp: float, tile_size: int = 512,
              margin: int = 64, tissue=None) -> TileGrid:
    """Cut the label map of a slide into tiles.

    Parameters
    ----------
    slide_size : level-0 (width, height).
    slide_mpp : um per level-0 pixel.
    mpp : um per label pixel (the model's).
    tile_size, margin : model input side and discarded context per side (label pixels).
    tissue : a :class:`~lobule.inference.tissue.TissueMask`; tiles whose core misses tissue are
        skipped (their label pixels stay background). None keeps every tile.

    Raises
    ------
    InputError
        For a margin that leaves no core, or non-positive sizes.
    """
    if tile_size <= 0 or margin < 0 or tile_size - 2 * margin < 16:
        raise InputError(f"tile size {tile_size} with margin {margin} leaves a core under 16 px")
    if slide_mpp <= 0 or mpp <= 0:
        raise InputError(f"mpp must be positive (slide {slide_mpp}, model {mpp})")
    core = tile_size - 2 * margin
    scale = mpp / slide_mpp
    height, width = label_shape(slide_size, scale)
    tiles = []
    for row in range(math.ceil(height / core)):
        for col in range(math.ceil(width / core)):
            x, y = col * core, row * core
            box = (x, y, min(core, width - x), min(core, height - y))
            if tissue is not None and not tissue.covers(
                (box[0] * scale, box[1] * scale, (box[0] + box[2]) * scale, (box[1] + box[3]) * scale)
            ):
                continue
            tiles.append(Tile(row, col, box))
    return TileGrid(tuple(slide_size), float(slide_mpp), float(mpp), tile_size, margin, tuple(tiles))


def read_tile(slide, grid: TileGrid, tile: Tile, timings: dict | None = None) -> np.ndarray:
    """Read the model input of ``tile``: (tile_size, tile_size, 3) uint8 RGB at the model mpp.

    Reads from the highest-resolution level at or below the needed downsample and resamples so
    that input pixel j lies exactly at label pixel ``core - margin + j`` of the slide (pixel
    centres mapped through ``scale``, sub-pixel offsets kept): rounding the read origin to whole
    slide pixels would shift neighbouring tiles by up to a pixel against each other, and the
    class map would show a seam along every core border. An input on whole level pixels is a
    plain resize (area averaging when shrinking); otherwise shrinking by 2x or more is
    area-averaged first (whole-pixel factor) and the rest bilinear; white outside the slide.
    ``timings``, if given, gets ``"read"`` and ``"preprocess"`` seconds added.
    """
    import time

    size = grid.tile_size
    scale = grid.scale
    level = slide.best_level_for_downsample(scale)
    ds = slide.level_downsamples[level]
    factor = scale / ds  # level pixels per model pixel (>= 1 unless the slide is coarser)
    lx = (tile.core[0] - grid.margin) * scale / ds  # the input's top-left edge in level pixels
    ly = (tile.core[1] - grid.margin) * scale / ds
    ix, iy = math.floor(lx), math.floor(ly)
    span = size * factor  # level pixels the input covers
    aligned = lx == ix and ly == iy and abs(span - round(span)) < 1e-9
    n = round(span) if aligned else math.ceil(span + 1) + 2
    t0 = time.perf_counter()
    image = slide.read_region((round(ix * ds), round(iy * ds)), level, (n, n))
    t1 = time.perf_counter()
    if aligned:  # whole level pixels: a plain resize (area averaging when shrinking) is exact
        if n != size:
            interp = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interp)
    else:
        fx, fy, f = lx - ix, ly - iy, factor
        k = int(factor) if factor >= 2 else 1
        if k > 1:  # area-average k x k blocks: block i covers level pixels [i k, (i + 1) k)
            m = n // k
            image = cv2.resize(np.ascontiguousarray(image[: m * k, : m * k]), (m, m), interpolation=cv2.INTER_AREA)
            fx, fy, f = fx / k, fy / k, factor / k
        # output pixel j has its centre at read-image coordinate f * (j + 0.5) + fx (pixel edges at integers)
        matrix = np.array([[f, 0.0, 0.5 * f + fx - 0.5], [0.0, f, 0.5 * f + fy - 0.5]])
        image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    image = np.ascontiguousarray(image)
    if timings is not None:
        timings["read"] = timings.get("read", 0.0) + (t1 - t0)
        timings["preprocess"] = timings.get("preprocess", 0.0) + (time.perf_counter() - t1)
    return image
