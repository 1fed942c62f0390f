"""Direct tile reads of tiled TIFF levels (Aperio SVS, generic and OME tiled TIFF).

OpenSlide and tiffslide spend most of a 512x512 read outside the JPEG decoder (cairo
compositing, premultiplied ARGB conversion, PIL images; zarr selection). For a level stored as
plain TIFF tiles we read the tile bytes ourselves (``os.pread``: no shared file position, safe
from any thread), decode them with tifffile's decoder for the page (imagecodecs, which releases
the GIL), and copy them into the output. Decoded tiles are kept in a small byte-bounded LRU.
The backends stay in charge of metadata, associated images and every other layout.

For display, :meth:`TiffTiles.read_bgrx` writes a region as B, G, R, 255 bytes (the memory
layout of a 32-bit screen image): JPEG tiles that lie wholly inside the region are decoded by
libjpeg-turbo straight to that layout (its ``JCS_EXT_BGRX`` output: the same colour conversion
as RGB output, in another byte order), with no RGB copy and no later conversion.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from lobule.inference.errors import SlideError

try:  # imagecodecs is how tifffile decodes JPEG tiles; without it read_bgrx converts RGB tiles
    import imagecodecs
    from tifffile.tifffile import jpeg_decode_colorspace

    _BGRX = int(imagecodecs.JPEG8.CS.EXT_BGRX)
except (ImportError, AttributeError):  # pragma: no cover - imagecodecs is a dependency
    imagecodecs = None

TILE_CACHE_BYTES = 64 * 2**20  # decoded tiles kept per slide

# compressions tifffile decodes with imagecodecs for 8-bit RGB tiles
_COMPRESSIONS = {1, 5, 7, 8, 32946, 33003, 33005, 34712, 50000, 50001}
_PHOTOMETRIC = {2, 6}  # RGB, YCbCr (JPEG-coded)


class _Collect(logging.Filter):
    """Logger filter that keeps warning messages and drops every record."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        return False


@contextmanager
def quiet_tifffile():
    """Collect tifffile's logged warnings (bad page offsets...) instead of printing them;
    yields the list of messages. Adds and removes only its own filter (safe across threads)."""
    logger = logging.getLogger("tifffile")
    collect = _Collect()
    logger.addFilter(collect)
    try:
        yield collect.messages
    finally:
        logger.removeFilter(collect)


class _Bytes:
    """Thread-safe positional reads of one file (``os.pread``; a locked seek+read where the
    platform lacks it)."""

    def __init__(self, path: Path):
        self._pread = getattr(os, "pread", None)
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
        self._fd = os.open(path, flags)
        self._lock = threading.Lock()

    def read(self, offset: int, count: int) -> bytes:
        if self._pread is not None:
            data = self._pread(self._fd, count, offset)
        else:  # pragma: no cover - Windows
            with self._lock:
                os.lseek(self._fd, offset, os.SEEK_SET)
                data = os.read(self._fd, count)
        if len(data) != count:
            raise SlideError(f"truncated file: tile data at byte {offset} is missing")
        return data

    def close(self) -> None:
        os.close(self._fd)


class TiledLevel:
    """The tiles of one TIFF page (one pyramid level)."""

    def __init__(self, page):
        self.width, self.height = int(page.imagewidth), int(page.imagelength)
        self.tile_width, self.tile_height = int(page.tilewidth), int(page.tilelength)
        self.across = math.ceil(self.width / self.tile_width)
        self.offsets = np.asarray(page.dataoffsets, np.int64)
        self.counts = np.asarray(page.databytecounts, np.int64)
        self.jpegtables = page.jpegtables
        self.ycbcr_j2k = page.compression == 33003  # Aperio: raw YCbCr components
        self._decode = page.decode
        self._scratch = threading.local()  # per thread: one BGRX tile buffer, reused
        # 8-bit baseline JPEG tiles libjpeg-turbo can decode straight to BGRX
        self._jpeg_colorspace = None
        self.jpeg_bgrx = imagecodecs is not None and page.compression == 7 and not page.extrasamples
        if self.jpeg_bgrx:
            self._jpeg_colorspace, _ = jpeg_decode_colorspace(page.photometric, page.planarconfig,
                                                              page.extrasamples, page.is_jfif)

    @staticmethod
    def supported(page) -> bool:
        """True for an 8-bit, 3-sample, chunky, tiled 2-D page in a compression we decode."""
        return bool(
            page.is_tiled
            and page.imagedepth == 1
            and page.samplesperpixel == 3
            and page.bitspersample == 8
            and page.planarconfig == 1
            and page.photometric in _PHOTOMETRIC
            and page.compression in _COMPRESSIONS
        )

    def decode(self, data: bytes, index: int) -> np.ndarray:
        """(tile_height, tile_width, 3) uint8 RGB of tile ``index``."""
        array = self._decode(data, index, jpegtables=self.jpegtables)[0]
        array = array.reshape(array.shape[-3:])
        if self.ycbcr_j2k:
            array = cv2.cvtColor(np.ascontiguousarray(array[..., [0, 2, 1]]), cv2.COLOR_YCrCb2RGB)
        return array

    def decode_bgrx(self, data: bytes) -> np.ndarray | None:
        """(tile_height, tile_width, 4) uint8 B, G, R, 255 of a JPEG tile (the same colour
        conversion as :meth:`decode`), or None where libjpeg-turbo cannot give that layout
        (the caller then converts :meth:`decode`'s RGB).

        The array is this thread's scratch buffer, overwritten by its next call: copy it out
        at once (a fresh array per tile would cost page faults and a zero fill every time).
        """
        if not self.jpeg_bgrx:
            return None
        shape = (self.tile_height, self.tile_width, 4)
        buffer = getattr(self._scratch, "buffer", None)
        if buffer is None:
            buffer = self._scratch.buffer = np.empty(shape, np.uint8)
        try:
            array = imagecodecs.jpeg8_decode(data, tables=self.jpegtables, colorspace=self._jpeg_colorspace,
                                             outcolorspace=_BGRX, shape=shape[:2], out=buffer)
        except Exception:  # noqa: BLE001 - the RGB decoder reports a corrupt tile in its words
            return None
        return array if array.shape == shape else None


class TiffTiles:
    """Direct reads of the stored levels that are plain tiled TIFF pages.

    Parameters
    ----------
    path : the TIFF file.
    pages : one tifffile page (or None where the backend must read) per stored level.
    name : file name for error messages.
    """

    def __init__(self, path: Path, pages: list, name: str):
        self.levels = [TiledLevel(p) if p is not None and TiledLevel.supported(p) else None for p in pages]
        self._bytes = _Bytes(path)
        self._name = name
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self.cache_bytes = TILE_CACHE_BYTES  # bound of the decoded-tile cache (0: off)
        self._lock = threading.Lock()

    def handles(self, level: int) -> bool:
        return level < len(self.levels) and self.levels[level] is not None

    def read(self, level: int, origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """(h, w, 3) uint8 RGB of ``level`` from level pixel ``origin`` (x, y); white outside.

        Raises SlideError when a tile cannot be read or decoded.
        """
        tiles = self.levels[level]
        (lx, ly), (width, height) = origin, size
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, tiles.width), min(ly + height, tiles.height)
        # a region inside the level is overwritten entirely by its tiles: no white fill first
        inside = (x0, y0, x1, y1) == (lx, ly, lx + width, ly + height)
        out = np.empty((height, width, 3), np.uint8) if inside else np.full((height, width, 3), 255, np.uint8)
        tw, th = tiles.tile_width, tiles.tile_height
        for ty in range(y0 // th, (y1 - 1) // th + 1) if y0 < y1 else ():
            for tx in range(x0 // tw, (x1 - 1) // tw + 1) if x0 < x1 else ():
                tile = self._tile(level, tiles, ty * tiles.across + tx)
                ax0, ay0 = max(x0, tx * tw), max(y0, ty * th)
                ax1, ay1 = min(x1, tx * tw + tw), min(y1, ty * th + th)
                part = out[ay0 - ly : ay1 - ly, ax0 - lx : ax1 - lx]
                if tile is None:
                    part[...] = 255  # tile not stored: background
                else:
                    part[...] = tile[ay0 - ty * th : ay1 - ty * th, ax0 - tx * tw : ax1 - tx * tw]
        return out

    def read_bgrx(self, level: int, origin: tuple[int, int], out: np.ndarray) -> None:
        """Write the pixels of ``level`` from level pixel ``origin`` (x, y) into ``out``.

        Parameters
        ----------
        out : (h, w, 4) uint8, filled with B, G, R, 255 (white outside the level and where the
            file stores no tile): the bytes of a 32-bit ``0xffRRGGBB`` image on a
            little-endian machine.

        Pixels equal :meth:`read` 's. Tiles lying wholly inside the region are decoded for it
        alone (straight to BGRX where they are JPEG) and not kept in the decoded-tile cache;
        tiles it only overlaps go through the cache, as their neighbours will need them too.

        Raises SlideError when a tile cannot be read or decoded.
        """
        tiles = self.levels[level]
        (lx, ly), (height, width) = origin, out.shape[:2]
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, tiles.width), min(ly + height, tiles.height)
        if (x0, y0, x1, y1) != (lx, ly, lx + width, ly + height):
            out[...] = 255
        tw, th = tiles.tile_width, tiles.tile_height
        for ty in range(y0 // th, (y1 - 1) // th + 1) if y0 < y1 else ():
            for tx in range(x0 // tw, (x1 - 1) // tw + 1) if x0 < x1 else ():
                index = ty * tiles.across + tx
                ax0, ay0 = max(x0, tx * tw), max(y0, ty * th)
                ax1, ay1 = min(x1, tx * tw + tw), min(y1, ty * th + th)
                part = out[ay0 - ly : ay1 - ly, ax0 - lx : ax1 - lx]
                whole = (ax1 - ax0, ay1 - ay0) == (tw, th)
                tile = self._bgrx_tile(level, tiles, index) if whole and (level, index) not in self._cache else None
                if tile is not None:
                    part[...] = tile
                    continue
                rgb = self._tile(level, tiles, index, keep=not whole)
                if rgb is None:
                    part[...] = 255  # tile not stored: background
                else:
                    rgb = rgb[ay0 - ty * th : ay1 - ty * th, ax0 - tx * tw : ax1 - tx * tw]
                    part[..., :3] = rgb[..., ::-1]
                    part[..., 3] = 255

    def _bgrx_tile(self, level: int, tiles: TiledLevel, index: int) -> np.ndarray | None:
        """Tile ``index`` decoded straight to BGRX, or None (not stored, not JPEG, or not
        decodable that way: the RGB path then decides)."""
        if not tiles.jpeg_bgrx:
            return None
        data = self._data(level, tiles, index)
        return None if data is None else tiles.decode_bgrx(data)

    def _data(self, level: int, tiles: TiledLevel, index: int) -> bytes | None:
        count = int(tiles.counts[index]) if index < len(tiles.counts) else 0
        if count == 0:
            return None
        try:
            return self._bytes.read(int(tiles.offsets[index]), count)
        except SlideError as error:
            raise SlideError(f"{self._name}: {error}") from None

    def _tile(self, level: int, tiles: TiledLevel, index: int, keep: bool = True) -> np.ndarray | None:
        key = (level, index)
        with self._lock:
            tile = self._cache.get(key)
            if tile is not None:
                self._cache.move_to_end(key)
                return tile
        data = self._data(level, tiles, index)
        if data is None:
            return None
        try:
            tile = tiles.decode(data, index)
        except Exception as error:  # noqa: BLE001 - any decoder failure is a corrupt tile
            text = " ".join(str(error).split())[:200]
            raise SlideError(f"{self._name}: cannot decode tile {index} of level {level}: {text}") from None
        if self.cache_bytes <= 0 or not keep:
            return tile
        with self._lock:
            self._cache[key] = tile
            self._cache_bytes += tile.nbytes
            while self._cache_bytes > self.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes
        return tile

    def close(self) -> None:
        self._bytes.close()
        with self._lock:
            self._cache.clear()
            self._cache_bytes = 0


def openslide_tiles(path: Path, vendor: str | None, dimensions, tile_sizes) -> TiffTiles | None:
    """Direct tile access for an OpenSlide slide whose levels are plain TIFF pages
    (vendors ``aperio`` and ``generic-tiff``); None for every other layout.

    Each OpenSlide level is matched to the main-chain tiled page of exactly its size and tile
    size; a level without such a page stays with OpenSlide.
    """
    import tifffile

    if vendor not in ("aperio", "generic-tiff"):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            candidates = [p for p in tif.pages if getattr(p, "is_tiled", False)]
            pages = []
            for (w, h), tile in zip(dimensions, tile_sizes):
                match = [p for p in candidates if (p.imagewidth, p.imagelength) == (w, h) and (p.tilewidth, p.tilelength) == tile]
                pages.append(match[0] if len(match) == 1 else None)
            if not any(p is not None for p in pages):
                return None
            return TiffTiles(path, pages, path.name)
    except Exception:  # noqa: BLE001 - no fast path; OpenSlide reads everything
        return None


def tiffslide_tiles(path: Path, tifffile_handle, series_index: int) -> TiffTiles | None:
    """Direct tile access for the levels of a tiffslide series with one page per level."""
    try:
        series = tifffile_handle.series[series_index]
        if series.axes != "YXS":
            return None
        pages = [level.keyframe if len(level.pages) == 1 else None for level in series.levels]
        return TiffTiles(path, pages, path.name)
    except Exception:  # noqa: BLE001 - no fast path; tiffslide reads everything
        return None
