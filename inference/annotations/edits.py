"""Editing tools: what pixels a brush, an eraser, a polygon fill and a flood fill / magic wand
change, computed chunk by chunk on the corrections layer.

Every tool is a *mask function* on level-0 label windows: ``mask(window) -> (h, w) bool`` for
the pixels it covers; :func:`paint` applies a value (a class id, or 255 for the eraser, which
removes corrections so the model's output shows again) to the covered pixels of each
corrections chunk the tool's bounding box overlaps, and returns the new chunks with the boxes
that changed. Nothing larger than a chunk (or the bounded fill window) is ever allocated, so a
tool costs what it touches, at any zoom.

Conventions: inputs are in slide level-0 pixels (the viewer's scene coordinates) and are turned
into label pixels by dividing by the layer's ``scale``; a label pixel is covered when its centre
is (as :mod:`lobule.inference.regions` rasterises regions). Sizes given to users are in um.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lobule.inference.annotations.chunks import Key, Window
from lobule.inference.annotations.corrections import NO_CORRECTION, CorrectionLayer
from lobule.inference.errors import InputError
from lobule.inference.regions import Rasterizer, as_area
from lobule.resources.classes import LIVER_CLASSES

ERASE = NO_CORRECTION
"""Value the eraser writes: no correction (the model's output shows)."""
MAX_FILL_RADIUS_UM = 1000.0
"""Largest bound of a flood fill / magic wand (a 2 mm square at most)."""

Mask = Callable[[Window], np.ndarray]


@dataclass(frozen=True)
class Change:
    """New corrections chunks made by one tool application.

    Attributes
    ----------
    chunks : key -> full-size new chunk (uint8, 255 = no correction).
    boxes : key -> level-0 label box (x, y, w, h) that changed in that chunk.
    """

    chunks: dict[Key, np.ndarray]
    boxes: dict[Key, Window]

    def __bool__(self) -> bool:
        return bool(self.chunks)


def check_value(value: int) -> int:
    """A class id of the liver table or :data:`ERASE`.

    Raises
    ------
    InputError
        For any other value.
    """
    ids = {c.id for c in LIVER_CLASSES}
    if int(value) != ERASE and int(value) not in ids:
        raise InputError(f"class id {value} is not one of {sorted(ids)} (or {ERASE} to erase)")
    return int(value)


def paint(layer: CorrectionLayer, box: Window, mask: Mask, value: int) -> Change:
    """Set the pixels ``mask`` covers inside ``box`` (level-0 label px) to ``value``.

    Only chunks overlapping ``box`` are read; a chunk whose pixels already hold ``value`` where
    covered is left alone.
    """
    value = check_value(value)
    chunks, boxes = {}, {}
    for key in layer.grid.keys(box):
        x, y, w, h = layer.grid.window(key)
        covered = mask((x, y, w, h))
        if not covered.any():
            continue
        before = layer.corrections.chunk(key)
        differ = covered & (before[:h, :w] != value)
        if not differ.any():
            continue
        after = before.copy()
        after[:h, :w][differ] = value
        rows = np.flatnonzero(differ.any(axis=1))
        cols = np.flatnonzero(differ.any(axis=0))
        chunks[key] = after
        boxes[key] = (x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1)
    return Change(chunks, boxes)


# --- brush / eraser ----------------------------------------------------------------------------
def brush_mask(points: np.ndarray, radius: float) -> tuple[Mask, Window]:
    """Pixels whose centres lie within ``radius`` of the polyline ``points`` (a disc for one
    point; a swept disc, i.e. a chain of capsules, for several).

    Parameters
    ----------
    points : (N, 2) float (x, y) in label pixels.
    radius : label pixels (> 0).

    Returns
    -------
    (mask function, bounding box (x, y, w, h) in label pixels)
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 1:
        points = np.vstack([points, points])
    a, b = points[:-1], points[1:]
    lo = np.floor(np.minimum(a, b) - radius - 0.5).astype(np.int64)
    hi = np.ceil(np.maximum(a, b) + radius + 0.5).astype(np.int64)
    r2 = radius * radius

    def mask(window: Window) -> np.ndarray:
        x, y, w, h = window
        out = np.zeros((h, w), bool)
        hit = (lo[:, 0] < x + w) & (hi[:, 0] > x) & (lo[:, 1] < y + h) & (hi[:, 1] > y)
        for k in np.flatnonzero(hit):
            x0, y0 = max(x, int(lo[k, 0])), max(y, int(lo[k, 1]))
            x1, y1 = min(x + w, int(hi[k, 0])), min(y + h, int(hi[k, 1]))
            px = np.arange(x0, x1) + 0.5
            py = (np.arange(y0, y1) + 0.5)[:, None]
            (ax, ay), (bx, by) = a[k], b[k]
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            if length2 > 0:
                t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
            else:
                t = np.zeros((y1 - y0, x1 - x0))
            d2 = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2
            out[y0 - y : y1 - y, x0 - x : x1 - x] |= d2 <= r2
        return out

    box_lo, box_hi = lo.min(axis=0), hi.max(axis=0)
    return mask, (int(box_lo[0]), int(box_lo[1]), int(box_hi[0] - box_lo[0]), int(box_hi[1] - box_lo[1]))


def brush(layer: CorrectionLayer, points: Sequence[tuple[float, float]], radius_um: float, value: int) -> Change:
    """Paint (``value`` = class id) or erase (``value`` = :data:`ERASE`) along ``points``.

    Parameters
    ----------
    points : (x, y) in slide level-0 pixels; one point makes a disc.
    radius_um : brush radius in micrometres (> 0).
    """
    if not radius_um or radius_um <= 0 or not math.isfinite(radius_um):
        raise InputError(f"brush radius must be a positive number of um, got {radius_um}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0 or not np.isfinite(pts).all():
        raise InputError("a brush stroke needs at least one finite point")
    mask, box = brush_mask(pts / layer.scale, radius_um / layer.mpp)
    return paint(layer, box, mask, value)


# --- polygon fill ------------------------------------------------------------------------------
def polygon_fill(layer: CorrectionLayer, geometry, value: int) -> Change:
    """Fill a Polygon / MultiPolygon (slide level-0 pixels, holes left alone) with ``value``."""
    geometry = as_area(geometry)
    if geometry.is_empty:
        return Change({}, {})
    raster = Rasterizer(geometry, layer.scale)
    x0, y0, x1, y1 = (v / layer.scale for v in geometry.bounds)
    box = (int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)) - int(math.floor(x0)) + 1,
           int(math.ceil(y1)) - int(math.floor(y0)) + 1)
    return paint(layer, box, raster.window, value)


# --- flood fill / magic wand -------------------------------------------------------------------
@dataclass(frozen=True)
class FillResult:
    """What a flood fill / magic wand selected.

    Attributes
    ----------
    change : the new chunks.
    pixels : label pixels selected.
    bounded : True if the selection reached the bound (it may continue beyond it).
    """

    change: Change
    pixels: int
    bounded: bool


def _fill_window(layer: CorrectionLayer, point: tuple[float, float], radius_um: float) -> tuple[Window, int, int]:
    if not (0 < radius_um <= MAX_FILL_RADIUS_UM):
        raise InputError(f"fill bound must be in (0, {MAX_FILL_RADIUS_UM:g}] um, got {radius_um}")
    sx, sy = int(math.floor(point[0] / layer.scale)), int(math.floor(point[1] / layer.scale))
    height, width = layer.shape
    if not (0 <= sx < width and 0 <= sy < height):
        raise InputError(f"point ({point[0]:.0f}, {point[1]:.0f}) lies outside the slide")
    r = max(1, int(round(radius_um / layer.mpp)))
    x0, y0 = max(0, sx - r), max(0, sy - r)
    x1, y1 = min(width, sx + r + 1), min(height, sy + r + 1)
    return (x0, y0, x1 - x0, y1 - y0), sx - x0, sy - y0


def _component(selected: np.ndarray, seed: tuple[int, int], connectivity: int) -> np.ndarray:
    _, labels = cv2.connectedComponents(selected.astype(np.uint8), connectivity=connectivity)
    return labels == labels[seed[1], seed[0]]


def _apply_selection(layer: CorrectionLayer, window: Window, selection: np.ndarray, value: int) -> FillResult:
    x, y, w, h = window

    def mask(win: Window) -> np.ndarray:
        return _crop(selection, window, win)

    bounded = bool(selection[0].any() or selection[-1].any() or selection[:, 0].any() or selection[:, -1].any())
    height, width = layer.shape
    bounded = bounded and not (x == 0 and y == 0 and w == width and h == height)
    return FillResult(paint(layer, window, mask, value), int(selection.sum()), bounded)


def flood_fill(layer: CorrectionLayer, point: tuple[float, float], value: int, radius_um: float = 100.0,
               connectivity: int = 4) -> FillResult:
    """Fill the connected area of the merged class under ``point`` with ``value``, within the
    square of half-side ``radius_um`` around it.

    Parameters
    ----------
    point : (x, y) in slide level-0 pixels.
    connectivity : 4 or 8.
    """
    window, sx, sy = _fill_window(layer, point, radius_um)
    labels = layer.read_labels(window)
    selection = _component(labels == labels[sy, sx], (sx, sy), connectivity)
    return _apply_selection(layer, window, selection, value)


def magic_wand(layer: CorrectionLayer, slide, point: tuple[float, float], value: int, tolerance: float = 10.0,
               radius_um: float = 100.0, connectivity: int = 8) -> FillResult:
    """Fill the connected area of similar colour around ``point`` with ``value``.

    A pixel is similar when its CIELAB colour (read from ``slide`` at the label resolution) is
    within ``tolerance`` (Delta E 1976) of the mean of the 3 x 3 pixels at the point; the
    selection is the connected part containing the point, inside the square of half-side
    ``radius_um``.

    Parameters
    ----------
    slide : a :class:`~lobule.inference.slide.base.SlideReader` of the slide the layer belongs to.
    point : (x, y) in slide level-0 pixels.
    """
    if not (0 <= tolerance <= 100):
        raise InputError(f"magic wand tolerance must be in [0, 100] (Delta E), got {tolerance}")
    window, sx, sy = _fill_window(layer, point, radius_um)
    rgb = read_rgb(slide, window, layer.scale)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    seed = lab[max(0, sy - 1) : sy + 2, max(0, sx - 1) : sx + 2].reshape(-1, 3).mean(axis=0)
    close = ((lab - seed) ** 2).sum(axis=2) <= tolerance * tolerance
    close[sy, sx] = True
    selection = _component(close, (sx, sy), connectivity)
    return _apply_selection(layer, window, selection, value)


def read_rgb(slide, window: Window, scale: float) -> np.ndarray:
    """(h, w, 3) uint8 RGB of a label-pixel window, read from the pyramid level at or below
    ``scale`` and resampled (area when shrinking), as the analysis reads its tiles."""
    x, y, w, h = window
    level = slide.best_level_for_downsample(scale)
    ds = slide.level_downsamples[level]
    factor = scale / ds
    n_w, n_h = max(1, round(w * factor)), max(1, round(h * factor))
    image = slide.read_region((round(x * scale), round(y * scale)), level, (n_w, n_h))
    if (n_w, n_h) != (w, h):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if n_w > w else cv2.INTER_LINEAR)
    return np.ascontiguousarray(image[..., :3])


def _crop(selection: np.ndarray, window: Window, win: Window) -> np.ndarray:
    """The part of ``selection`` (covering ``window``) inside ``win``, False elsewhere."""
    x, y, w, h = window
    wx, wy, ww, wh = win
    out = np.zeros((wh, ww), bool)
    x0, y0, x1, y1 = max(x, wx), max(y, wy), min(x + w, wx + ww), min(y + h, wy + wh)
    if x1 > x0 and y1 > y0:
        out[y0 - wy : y1 - wy, x0 - wx : x1 - wx] = selection[y0 - y : y1 - y, x0 - x : x1 - x]
    return out
