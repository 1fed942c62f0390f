"""Tile layers: what the slide view draws, one pluggable tile source each.

A :class:`TileLayer` is plain state (no Qt): a :class:`TileProvider` that cuts its image into a
pyramid of tiles, an opacity, a visibility flag, and an optional whole-extent preview image.
The slide itself is the bottom layer (:class:`SlideTileProvider`); a class overlay from a label
store is another layer with its own provider (RGBA tiles), drawn through the same asynchronous
tile path (:mod:`lobule.app.slide.tile_loader`) and cache (:mod:`lobule.app.slide.tile_cache`).

Coordinates: every provider places its tiles in the **slide's level-0 pixel frame** through its
``level_downsamples`` (slide level-0 pixels per provider-level pixel). A label store at 1 um/px
over a 0.25 um/px slide therefore has ``level_downsamples[0] == 4.0``.

Tiles are addressed by immutable keys (QuPath's ``TileRequest`` idea): :class:`TileKey` is the
cache key (layer, level, col, row); :class:`TileRequest` adds the layer revision (so results of
data that was invalidated meanwhile are dropped) and the provider that will read it.
"""
from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lobule.inference.slide import SlideReader

_layer_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class TileKey:
    """Cache key of one tile: ``level`` of the layer's provider, tile column/row in that level."""

    layer_id: int
    level: int
    col: int
    row: int


@dataclass(frozen=True, slots=True)
class TileRequest:
    """One tile to load: its key, the layer revision it was asked for, the provider to read it."""

    key: TileKey
    revision: int
    provider: "TileProvider" = field(compare=False, hash=False, repr=False)


class TileProvider(ABC):
    """A tiled image pyramid in the slide's level-0 frame; ``read_tile`` is called from worker
    threads (several at once) and must be thread-safe.

    Subclasses pass the pyramid's levels to ``__init__`` and give ``read_tile``; ``tile_size``
    (pixels of the provider's level, square) may be overridden.
    """

    tile_size: int = 512
    #: True when :meth:`read_tile_bgrx` fills a screen image directly (opaque tiles only)
    writes_bgrx: bool = False

    def __init__(self, level_dimensions, level_downsamples) -> None:
        self._dims = tuple((int(w), int(h)) for w, h in level_dimensions)
        self._ds = tuple(float(d) for d in level_downsamples)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """(width, height) of each level in that level's pixels, finest first."""
        return self._dims

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Slide level-0 pixels per pixel of each level, increasing."""
        return self._ds

    @abstractmethod
    def read_tile(self, level: int, col: int, row: int) -> np.ndarray:
        """Pixels of one tile.

        Returns
        -------
        (h, w, 3) uint8 RGB or (h, w, 4) uint8 RGBA (straight alpha), where (w, h) is
        :meth:`tile_shape` (edge tiles are smaller than ``tile_size``).
        """

    def read_tile_bgrx(self, level: int, col: int, row: int, out: np.ndarray) -> None:
        """Write one opaque tile into ``out``: (h, w, 4) uint8 C-contiguous, (w, h) as
        :meth:`tile_shape`, bytes B, G, R, 255 (the memory of a ``QImage.Format_RGB32`` on a
        little-endian machine). Only called where :attr:`writes_bgrx` is True."""
        raise NotImplementedError(f"{type(self).__name__} has no direct BGRX reads")

    def close(self) -> None:
        """Release resources; called once no worker reads from the provider any more."""

    # --- geometry (shared by all providers) -------------------------------------------------
    @property
    def extent(self) -> tuple[float, float]:
        """(width, height) of the whole layer in slide level-0 pixels."""
        (w, h), ds = self.level_dimensions[0], self.level_downsamples[0]
        return w * ds, h * ds

    def grid_shape(self, level: int) -> tuple[int, int]:
        """(columns, rows) of tiles at ``level``."""
        w, h = self.level_dimensions[level]
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_shape(self, level: int, col: int, row: int) -> tuple[int, int]:
        """(width, height) in level pixels of a tile (clipped at the right/bottom edge)."""
        w, h = self.level_dimensions[level]
        ts = self.tile_size
        return min(ts, w - col * ts), min(ts, h - row * ts)

    def tile_rect(self, level: int, col: int, row: int) -> tuple[float, float, float, float]:
        """(x, y, width, height) of a tile in slide level-0 pixels."""
        ds = self.level_downsamples[level]
        w, h = self.tile_shape(level, col, row)
        ts = self.tile_size
        return col * ts * ds, row * ts * ds, w * ds, h * ds

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample is <= ``downsample`` (the finest level if none):
        the level whose pixels are at least as fine as the screen's."""
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= downsample * 1.0001:
                best = level
        return best

    def tiles_in(self, level: int, rect: tuple[float, float, float, float]) -> list[tuple[int, int]]:
        """(col, row) of the tiles of ``level`` intersecting ``rect`` = (x0, y0, x1, y1) in level-0
        pixels, nearest to the rectangle's centre first."""
        ds = self.level_downsamples[level]
        span = self.tile_size * ds
        cols, rows = self.grid_shape(level)
        x0, y0, x1, y1 = rect
        c0, c1 = max(0, math.floor(x0 / span)), min(cols - 1, math.ceil(x1 / span) - 1)
        r0, r1 = max(0, math.floor(y0 / span)), min(rows - 1, math.ceil(y1 / span) - 1)
        if c1 < c0 or r1 < r0:
            return []
        cx, cy = (x0 + x1) / 2 / span - 0.5, (y0 + y1) / 2 / span - 0.5
        tiles = [(c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
        tiles.sort(key=lambda t: (t[0] - cx) ** 2 + (t[1] - cy) ** 2)
        return tiles


DISPLAY_TILE = 512  # viewer tile size (px) where the file's own tiles do not suggest another


def display_tile_size(reader: SlideReader) -> int:
    """The viewer tile size for ``reader``: the largest multiple of the square tiles level 0 is
    stored in that is <= :data:`DISPLAY_TILE` (480 for Aperio's 240 px tiles, 512 for 256 px
    ones), so every stored tile is decoded once, for one viewer tile, straight into it; else
    :data:`DISPLAY_TILE` (stored tiles over 1024 px, non-square ones, or none known)."""
    size = reader.stored_tile_size(0)
    if size is None or size[0] != size[1] or not 0 < size[0] <= 1024:
        return DISPLAY_TILE
    return max(1, DISPLAY_TILE // size[0]) * size[0]


class SlideTileProvider(TileProvider):
    """The slide's own pixels, tiled on its pyramid levels (RGB tiles; decoded straight into
    the screen image's byte order through :meth:`read_tile_bgrx`)."""

    writes_bgrx = True

    def __init__(self, reader: SlideReader, tile_size: int | None = None) -> None:
        super().__init__(reader.level_dimensions, reader.level_downsamples)
        self.reader = reader
        self.tile_size = display_tile_size(reader) if tile_size is None else int(tile_size)

    @property
    def extent(self) -> tuple[float, float]:
        return tuple(float(v) for v in self.reader.dimensions)

    def read_tile(self, level: int, col: int, row: int) -> np.ndarray:
        x, y, _, _ = self.tile_rect(level, col, row)
        return self.reader.read_region((round(x), round(y)), level, self.tile_shape(level, col, row))

    def read_tile_bgrx(self, level: int, col: int, row: int, out: np.ndarray) -> None:
        x, y, _, _ = self.tile_rect(level, col, row)
        self.reader.read_region_bgrx((round(x), round(y)), level, out)

    def close(self) -> None:
        self.reader.close()


Listener = Callable[["TileLayer", str, object], None]


class TileLayer:
    """A drawable tile source with its display state (napari-style model: setters validate,
    store, then notify listeners; widgets only listen).

    Parameters
    ----------
    provider : where the tiles come from.
    name : shown in layer lists.
    opacity : 0..1, applied when drawing.
    visible : drawn at all.
    preview : optional (H, W, 3|4) uint8 image of the whole layer extent (e.g. the slide
        thumbnail), drawn stretched where no tile of any level is loaded yet, so the view is
        never blank.

    Listeners are called as ``listener(layer, what, detail)`` with ``what`` one of
    ``"opacity"``, ``"visible"``, ``"data"`` (detail: the invalidated level-0 rectangle
    (x0, y0, x1, y1) or None for everything) or ``"preview"``.
    """

    def __init__(self, provider: TileProvider, name: str, *, opacity: float = 1.0, visible: bool = True,
                 preview: np.ndarray | None = None) -> None:
        self.id = next(_layer_ids)
        self.provider = provider
        self.name = name
        self._opacity = _check_opacity(opacity)
        self._visible = bool(visible)
        self._preview = preview
        self.revision = 0
        self._listeners: list[Listener] = []

    def connect(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def disconnect(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, what: str, detail: object = None) -> None:
        for listener in list(self._listeners):
            listener(self, what, detail)

    @property
    def opacity(self) -> float:
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        value = _check_opacity(value)
        if value != self._opacity:
            self._opacity = value
            self._emit("opacity", value)

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        if bool(value) != self._visible:
            self._visible = bool(value)
            self._emit("visible", self._visible)

    @property
    def preview(self) -> np.ndarray | None:
        return self._preview

    @preview.setter
    def preview(self, image: np.ndarray | None) -> None:
        self._preview = image
        self._emit("preview", None)

    def invalidate(self, rect: tuple[float, float, float, float] | None = None) -> None:
        """The provider's data changed inside ``rect`` (x0, y0, x1, y1, level-0 px; None: all).

        Bumps :attr:`revision`: tiles being loaded for an older revision are dropped, and the
        view reloads the cached tiles that intersect ``rect``.
        """
        self.revision += 1
        self._emit("data", rect)


def _check_opacity(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {value}")
    return value
