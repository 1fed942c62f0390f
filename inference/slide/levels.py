"""Stored levels plus virtual (built and cached) downsampled levels, shared by every backend.

A slide stored with one level (or whose smallest stored level is still large) is slow to view
zoomed out: every zoomed-out request would decode the whole stored level. :class:`LeveledReader`
appends virtual levels below the smallest stored level, each half the size of the one above,
down to :data:`VIRTUAL_MIN_SIZE` px on the long side. A virtual level is served in
:data:`VIRTUAL_TILE` px tiles; a tile is made from the 2x2 tiles (or the stored pixels) of the
level above with area averaging (``cv2.INTER_AREA``) and kept in a byte-bounded LRU cache, so
every stored pixel is decoded at most once per cache lifetime, never once per request.
"""
from __future__ import annotations

import math
import threading
from abc import abstractmethod
from collections import OrderedDict

import cv2
import numpy as np

from lobule.inference.errors import InputError, SlideError
from lobule.inference.slide.base import SlideReader, bgrx_shape

VIRTUAL_MIN_SIZE = 512  # stop adding virtual levels once the long side is <= this (px)
VIRTUAL_TILE = 256  # tile size of virtual levels (px of that level)
VIRTUAL_CACHE_BYTES = 96 * 2**20  # bound of the per-slide virtual tile cache
# Plausible micrometres per pixel of a light-microscopy slide image. Below 0.05 um/px a pixel is
# far under the optical resolution of any objective (about 0.2 um at NA 1.4; 100x scans are
# 0.1 um/px); above 20 um/px (a 0.5x objective) the image is a macro photograph, not a
# micrograph. Values outside are typing errors (0.5 typed as 5e-4 or 500) that would make
# analyses resample by absurd factors (1e9 um/px: an endless grid).
MPP_RANGE = (0.05, 20.0)


def parse_mpp(mpp) -> tuple[float, float]:
    """A user-given mpp (one number or (x, y)) as a validated (mpp_x, mpp_y) tuple.

    Raises
    ------
    InputError
        If it is not one or two finite numbers within :data:`MPP_RANGE` (0.05..20 um/px).
    """
    values = mpp if isinstance(mpp, (tuple, list)) else (mpp, mpp)
    try:
        mx, my = (float(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"mpp must be a positive number of micrometres per pixel, got {mpp!r}") from None
    if not (math.isfinite(mx) and math.isfinite(my) and mx > 0 and my > 0):
        raise InputError(f"mpp must be a positive number of micrometres per pixel, got {mpp!r}")
    low, high = MPP_RANGE
    if not (low <= mx <= high and low <= my <= high):
        raise InputError(f"mpp {mpp!r} um/px is outside the plausible range {low}..{high} um/px of a slide scan")
    return mx, my


def metadata_mpp(mpp_x, mpp_y) -> tuple[float, float] | None:
    """(mpp_x, mpp_y) from metadata values (strings or numbers, possibly missing), or None.

    One missing axis takes the other's value (square pixels); zero, negative, non-numeric and
    implausible values (outside :data:`MPP_RANGE`, e.g. a 72 dpi screen default) count as
    missing. Never a default.
    """

    def num(value):
        try:
            out = float(value)
        except (TypeError, ValueError):
            return None
        return out if math.isfinite(out) and MPP_RANGE[0] <= out <= MPP_RANGE[1] else None

    mx, my = num(mpp_x), num(mpp_y)
    if mx is None and my is None:
        return None
    return (mx or my, my or mx)


def level_origin(location: tuple[int, int], downsample: float) -> tuple[int, int]:
    """Level pixel (x, y) of a level-0 location: floor(location / downsample), as OpenSlide
    maps it (also for locations left of or above the slide)."""
    return math.floor(location[0] / downsample), math.floor(location[1] / downsample)


class LeveledReader(SlideReader):
    """Base of all backends: stored levels from the backend, virtual levels added here.

    Subclasses set ``path``, ``backend`` and the metadata fields in ``__init__`` (then call
    :meth:`_init_levels`) and implement :meth:`_read_stored` and :meth:`_close`.

    A level-0 location maps to level pixel ``floor(location / downsample)`` on every level
    (as tiffslide does; OpenSlide instead resamples by the sub-pixel remainder).
    """

    _mpp: tuple[float, float] | None
    _mpp_source: str | None
    _objective_power: float | None
    _vendor: str | None
    _properties: dict[str, str]
    _tiles = None  # TiffTiles: direct tile access to stored levels, set by backends that have it

    def _init_levels(self, dims: tuple[tuple[int, int], ...], downsamples: tuple[float, ...], mpp=None) -> None:
        """Record the stored levels, add virtual ones, apply the user mpp override."""
        self._stored_level_count = len(dims)
        dims, downsamples = list(dims), list(downsamples)
        while max(dims[-1]) > VIRTUAL_MIN_SIZE:
            w, h = dims[-1]
            dims.append((math.ceil(w / 2), math.ceil(h / 2)))
            downsamples.append(downsamples[-1] * 2.0)
        self._dims = tuple(dims)
        self._downsamples = tuple(float(d) for d in downsamples)
        if mpp is not None:
            self._mpp, self._mpp_source = parse_mpp(mpp), "user"
        elif self._mpp is not None:
            self._mpp_source = "metadata"
        else:
            self._mpp_source = None
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._pending: dict[tuple[int, int, int], threading.Lock] = {}
        self._closed = False

    # --- metadata ---------------------------------------------------------------------------
    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return self._dims

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return self._downsamples

    @property
    def mpp(self) -> tuple[float, float] | None:
        return self._mpp

    @property
    def mpp_source(self) -> str | None:
        return self._mpp_source

    @property
    def objective_power(self) -> float | None:
        return self._objective_power

    @property
    def vendor(self) -> str | None:
        return self._vendor

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._properties)

    @property
    def stored_level_count(self) -> int:
        return self._stored_level_count

    def set_mpp(self, mpp) -> None:
        self._mpp, self._mpp_source = parse_mpp(mpp), "user"

    # --- pixels -----------------------------------------------------------------------------
    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        if self._closed:
            raise SlideError(f"{self.path.name}: slide is closed")
        level = int(level)
        if not 0 <= level < len(self._dims):
            raise ValueError(f"level {level} out of range 0..{len(self._dims) - 1}")
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be positive, got {tuple(size)}")
        x, y = int(location[0]), int(location[1])
        if level < self.stored_level_count:
            return self._read_stored((x, y), level, (width, height))
        return self._read_virtual((x, y), level, (width, height))

    def stored_tile_size(self, level: int) -> tuple[int, int] | None:
        tiles = self._tiles
        if tiles is None or not 0 <= level < self.stored_level_count or not tiles.handles(level):
            return None
        return tiles.levels[level].tile_width, tiles.levels[level].tile_height

    def read_region_bgrx(self, location: tuple[int, int], level: int, out: np.ndarray) -> None:
        tiles = self._tiles
        level = int(level)
        if (tiles is None or self._closed or not 0 <= level < self.stored_level_count
                or not tiles.handles(level)):
            super().read_region_bgrx(location, level, out)
            return
        bgrx_shape(out)
        tiles.read_bgrx(level, level_origin((int(location[0]), int(location[1])), self._downsamples[level]), out)

    @abstractmethod
    def _read_stored(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """(h, w, 3) uint8 RGB of a stored level, white outside the slide; SlideError on decode failure."""

    def _read_virtual(self, location, level, size) -> np.ndarray:
        ds = self._downsamples[level]
        lw, lh = self._dims[level]
        # level-0 -> level pixels, floor (also for locations left of / above the slide)
        lx, ly = level_origin(location, ds)
        width, height = size
        out = np.full((height, width, 3), 255, np.uint8)
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, lw), min(ly + height, lh)
        if x0 >= x1 or y0 >= y1:
            return out
        t = VIRTUAL_TILE
        for ty in range(y0 // t, (y1 - 1) // t + 1):
            for tx in range(x0 // t, (x1 - 1) // t + 1):
                tile = self._virtual_tile(level, tx, ty)
                # overlap of this tile with the request, in level pixels
                ax0, ay0 = max(x0, tx * t), max(y0, ty * t)
                ax1, ay1 = min(x1, tx * t + tile.shape[1]), min(y1, ty * t + tile.shape[0])
                out[ay0 - ly : ay1 - ly, ax0 - lx : ax1 - lx] = tile[ay0 - ty * t : ay1 - ty * t, ax0 - tx * t : ax1 - tx * t]
        return out

    def _virtual_tile(self, level: int, tx: int, ty: int) -> np.ndarray:
        key = (level, tx, ty)
        with self._cache_lock:
            tile = self._cache.get(key)
            if tile is not None:
                self._cache.move_to_end(key)
                return tile
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:  # one thread builds a tile; the others wait for it
            with self._cache_lock:
                tile = self._cache.get(key)
            if tile is None:
                tile = self._build_virtual_tile(level, tx, ty)
                self._store(key, tile)
            with self._cache_lock:
                self._pending.pop(key, None)
        return tile

    def _build_virtual_tile(self, level: int, tx: int, ty: int) -> np.ndarray:
        """Tile (tx, ty) of a virtual level: 2x area-average of the level above."""
        t = VIRTUAL_TILE
        lw, lh = self._dims[level]
        w, h = min(t, lw - tx * t), min(t, lh - ty * t)
        parent = level - 1
        pw, ph = self._dims[parent]
        px, py = 2 * tx * t, 2 * ty * t
        sw, sh = min(2 * w, pw - px), min(2 * h, ph - py)
        pds = self._downsamples[parent]
        source = self.read_region((round(px * pds), round(py * pds)), parent, (sw, sh))
        if (sw, sh) != (2 * w, 2 * h):  # odd edge: repeat the last row/column, never blend white in
            source = cv2.copyMakeBorder(source, 0, 2 * h - sh, 0, 2 * w - sw, cv2.BORDER_REPLICATE)
        tile = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA)
        tile.setflags(write=False)
        return tile

    def _store(self, key, tile: np.ndarray) -> None:
        with self._cache_lock:
            self._cache[key] = tile
            self._cache_bytes += tile.nbytes
            while self._cache_bytes > VIRTUAL_CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            with self._cache_lock:
                self._cache.clear()
                self._cache_bytes = 0
            self._close()

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's handles."""

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def to_rgb8(array: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Convert decoded pixels to (H, W, 3) uint8 RGB.

    Parameters
    ----------
    array : (H, W), (H, W, 1), (H, W, 2) (grey + alpha), (H, W, 3) or (H, W, 4) (RGBA) of any
        integer or float dtype.
    scale : value mapped to 255 for non-uint8 data; default: 255 for uint8, the array's maximum
        for other integer dtypes (so 12-bit data in uint16 is not dark), 1.0 for floats <= 1.

    Alpha is composited onto white (the slide background).
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] > 4:
        raise SlideError(f"unsupported pixel layout {array.shape}")
    if array.dtype != np.uint8:
        data = array.astype(np.float32)
        if scale is None:
            top = float(np.nanmax(data)) if data.size else 1.0
            scale = 1.0 if array.dtype.kind == "f" and top <= 1.0 else max(top, 1.0)
        array = np.clip(np.nan_to_num(data) * (255.0 / scale) + 0.5, 0, 255).astype(np.uint8)
    channels = array.shape[2]
    if channels in (2, 4):
        colour, alpha = array[..., :-1], array[..., -1:]
        if alpha.min() < 255:
            a = alpha.astype(np.float32) / 255.0
            colour = (colour * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
        array = colour
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)

