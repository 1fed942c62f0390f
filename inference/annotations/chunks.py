"""Chunked 2-D uint8 arrays for editing: a read cache over zarr and a sparse, compressed
in-memory overlay of edited chunks.

Edits never hold a whole-slide array: a chunk is the unit of reading, changing, undoing and
saving. Edited chunks are kept zstd-compressed in memory (a hand-painted 256 x 256 chunk is
a few hundred bytes), decoded on demand through a small LRU cache, and written to disk only
when the session saves. Arrays handed out are read-only; a change replaces a whole chunk, so a
reader on another thread (overlay tiles) always sees one consistent version of each chunk.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
from numcodecs import Zstd

_CODEC = Zstd(level=1)

Key = tuple[int, int]
Window = tuple[int, int, int, int]


def encode(chunk: np.ndarray) -> bytes:
    """zstd-compressed bytes of a C-contiguous uint8 array (shape is not stored)."""
    return bytes(_CODEC.encode(np.ascontiguousarray(chunk, dtype=np.uint8)))


def decode(blob: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`encode`: a read-only (h, w) uint8 array."""
    out = np.frombuffer(_CODEC.decode(blob), dtype=np.uint8).reshape(shape)
    out.flags.writeable = False
    return out


class ChunkGrid:
    """The chunk layout of a (height, width) array cut into (ch, cw) chunks (edge chunks are
    clipped by the array border)."""

    def __init__(self, shape: tuple[int, int], chunk: tuple[int, int]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.chunk = (int(chunk[0]), int(chunk[1]))
        self.grid_shape = (math.ceil(self.shape[0] / self.chunk[0]), math.ceil(self.shape[1] / self.chunk[1]))

    def window(self, key: Key) -> Window:
        """(x, y, w, h) of chunk ``key`` = (row, col), clipped to the array."""
        ch, cw = self.chunk
        y, x = key[0] * ch, key[1] * cw
        return x, y, min(cw, self.shape[1] - x), min(ch, self.shape[0] - y)

    def keys(self, window: Window) -> Iterator[Key]:
        """Chunks overlapping the window (x, y, w, h), row-major; nothing outside the array."""
        r0, r1, c0, c1 = self.key_range(window)
        for r in range(r0, r1):
            for c in range(c0, c1):
                yield r, c

    def key_range(self, window: Window) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), half-open, of the chunks overlapping the window."""
        x, y, w, h = window
        ch, cw = self.chunk
        gh, gw = self.grid_shape
        r0, c0 = max(0, y // ch), max(0, x // cw)
        r1 = min(gh, -(-(y + h) // ch)) if h > 0 else r0
        c1 = min(gw, -(-(x + w) // cw)) if w > 0 else c0
        return r0, max(r0, r1), c0, max(c0, c1)


class CachedArray:
    """Window reads of a 2-D zarr array through an LRU cache of decoded chunks (thread-safe).

    Parameters
    ----------
    array : zarr array (H, W) uint8, or None for an array that is ``fill`` everywhere.
    shape, chunk : its shape and chunk shape (given for ``array=None``).
    fill : value outside the array and of chunks never written.
    max_chunks : decoded chunks kept.
    """

    def __init__(self, array, shape: tuple[int, int], chunk: tuple[int, int], fill: int = 0,
                 max_chunks: int = 32) -> None:
        self.array = array
        self.grid = ChunkGrid(shape, chunk)
        self.fill = int(fill)
        self.max_chunks = int(max_chunks)
        self._cache: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.blank = np.full(self.grid.chunk, self.fill, np.uint8)
        """A read-only full-size chunk of ``fill``."""
        self.blank.flags.writeable = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    def chunk(self, key: Key) -> np.ndarray:
        """The full-size (ch, cw) read-only chunk ``key`` (``fill`` beyond the array border)."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        if self.array is None:
            return self.blank
        x, y, w, h = self.grid.window(key)
        data = np.asarray(self.array[y : y + h, x : x + w], dtype=np.uint8)
        if data.shape != self.grid.chunk:
            full = np.full(self.grid.chunk, self.fill, np.uint8)
            full[:h, :w] = data
            data = full
        data.flags.writeable = False
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.max_chunks:
                self._cache.popitem(last=False)
        return data

    def invalidate(self, key: Key | None = None) -> None:
        """Forget one cached chunk (or all)."""
        with self._lock:
            if key is None:
                self._cache.clear()
            else:
                self._cache.pop(key, None)

    def read(self, window: Window) -> np.ndarray:
        """(h, w) uint8 of the window (x, y, w, h); ``fill`` outside the array."""
        return _assemble(self.grid, window, self.chunk, self.fill)


class SparseChunks:
    """A 2-D uint8 layer whose edited chunks live in memory, over a saved copy.

    Parameters
    ----------
    base : :class:`CachedArray` of the saved layer (its ``fill`` is this layer's fill).
    present : (rows, cols) bool, chunks of the saved layer holding a value other than fill
        (so that reads of untouched areas skip the disk entirely); None = none.
    max_raw : chunks kept uncompressed (the most recently used); older edited chunks are
        compressed (zstd), so memory grows with the edited area at a few hundred bytes per
        hand-painted chunk. Compression happens on eviction, not on every edit, so repeated
        strokes over the same area cost no compression at all.

    ``dirty`` holds the chunks changed since the last :meth:`mark_saved`.
    """

    def __init__(self, base: CachedArray, present: np.ndarray | None = None, max_raw: int = 64) -> None:
        self.base = base
        self.grid = base.grid
        self.fill = base.fill
        self.present = (np.zeros(self.grid.grid_shape, bool) if present is None
                        else np.array(present, dtype=bool).reshape(self.grid.grid_shape))
        self._raw: OrderedDict[Key, np.ndarray] = OrderedDict()  # newest version, or a clean cache
        self._blobs: dict[Key, bytes] = {}  # compressed newest version (dirty chunks)
        self._version: dict[Key, int] = {}
        self._max_raw = int(max_raw)
        self.dirty: set[Key] = set()
        self.cleared = False
        """True after :meth:`clear` until the next save: the saved copy is to be emptied."""
        self._lock = threading.RLock()

    # reading
    def chunk(self, key: Key) -> np.ndarray:
        """The full-size read-only chunk ``key``."""
        with self._lock:
            hit = self._raw.get(key)
            if hit is not None:
                self._raw.move_to_end(key)
                return hit
            blob = self._blobs.get(key)
            if blob is None:
                if not self.present[key] or self.cleared:
                    return self.base.blank
                return self.base.chunk(key)
            data = decode(blob, self.grid.chunk)
            self._keep_raw(key, data)
            return data

    def blob(self, key: Key) -> bytes:
        """The compressed bytes of chunk ``key`` (see :func:`encode`)."""
        with self._lock:
            blob = self._blobs.get(key)
            if blob is None:
                blob = encode(self.chunk(key))
                if key in self.dirty:
                    self._blobs[key] = blob
            return blob

    def read(self, window: Window) -> np.ndarray:
        """(h, w) uint8 of the window; ``fill`` outside the array and in untouched chunks."""
        return _assemble(self.grid, window, self.chunk, self.fill)

    def any_in(self, window: Window) -> bool:
        """True if a chunk overlapping the window holds something other than fill."""
        r0, r1, c0, c1 = self.grid.key_range(window)
        return bool(self.present[r0:r1, c0:c1].any())

    # writing
    def set_chunk(self, key: Key, data: np.ndarray) -> None:
        """Replace chunk ``key`` by a full-size (ch, cw) array (copied)."""
        data = np.array(data, dtype=np.uint8, copy=True)
        if data.shape != self.grid.chunk:
            raise ValueError(f"chunk {key} must be {self.grid.chunk}, got {data.shape}")
        x, y, w, h = self.grid.window(key)
        data[h:, :] = self.fill  # beyond the array border nothing is ever stored
        data[:, w:] = self.fill
        data.flags.writeable = False
        with self._lock:
            self._blobs.pop(key, None)
            self._version[key] = self._version.get(key, 0) + 1
            self.dirty.add(key)
            self.present[key] = bool((data != self.fill).any())
            self._keep_raw(key, data)

    def write(self, window: Window, data: np.ndarray) -> list[Key]:
        """Write an (h, w) array at the window (x, y, w, h), chunk by chunk; returns the chunks
        changed."""
        x, y, w, h = window
        changed = []
        for key in self.grid.keys(window):
            cx, cy, cw, ch = self.grid.window(key)
            ix0, iy0 = max(x, cx), max(y, cy)
            ix1, iy1 = min(x + w, cx + cw), min(y + h, cy + ch)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            part = data[iy0 - y : iy1 - y, ix0 - x : ix1 - x]
            old = self.chunk(key)
            if np.array_equal(old[iy0 - cy : iy1 - cy, ix0 - cx : ix1 - cx], part):
                continue
            new = old.copy()
            new[iy0 - cy : iy1 - cy, ix0 - cx : ix1 - cx] = part
            self.set_chunk(key, new)
            changed.append(key)
        return changed

    def _keep_raw(self, key: Key, data: np.ndarray) -> None:
        self._raw[key] = data
        self._raw.move_to_end(key)
        while len(self._raw) > self._max_raw:
            old_key, old = self._raw.popitem(last=False)
            if old_key in self.dirty and old_key not in self._blobs:
                self._blobs[old_key] = encode(old)

    def clear(self) -> None:
        """Make every chunk ``fill`` (the saved copy is emptied at the next :meth:`flush`)."""
        with self._lock:
            self.present[:] = False
            self._raw.clear()
            self._blobs.clear()
            self.dirty.clear()
            self.cleared = True

    # saving
    def flush(self, array) -> dict[Key, int]:
        """Write the dirty chunks into the zarr ``array`` (the saved layer), after emptying it if
        the layer was cleared. Returns the versions written (key -> version) for
        :meth:`mark_saved`; in-memory copies stay until then."""
        with self._lock:
            written = {key: self._version[key] for key in sorted(self.dirty)}
            if self.cleared:
                shape = array.shape
                array.resize((0,) * len(shape))  # zarr deletes the chunks outside the new shape
                array.resize(shape)
                self.base.invalidate()
                self.cleared = False
        for key in written:
            x, y, w, h = self.grid.window(key)
            array[y : y + h, x : x + w] = self.chunk(key)[:h, :w]
        return written

    def mark_saved(self, written: dict[Key, int]) -> None:
        """The versions ``written`` (from :meth:`flush`) are on disk: forget the base cache's
        stale copies; chunks that did not change again meanwhile are clean (their compressed
        copies are dropped; the saved array serves them from now on)."""
        with self._lock:
            for key, version in written.items():
                self.base.invalidate(key)
                if self._version.get(key) == version:
                    self.dirty.discard(key)
                    self._blobs.pop(key, None)

    @property
    def memory_bytes(self) -> int:
        """Bytes of edited chunks held in memory (compressed, plus those kept uncompressed)."""
        with self._lock:
            raw = sum(a.nbytes for k, a in self._raw.items() if k in self.dirty and k not in self._blobs)
            return raw + sum(len(b) for b in self._blobs.values())


def _assemble(grid: ChunkGrid, window: Window, get_chunk, fill: int) -> np.ndarray:
    x, y, w, h = window
    out = np.full((h, w), fill, np.uint8)
    for key in grid.keys(window):
        cx, cy, cw, ch = grid.window(key)
        ix0, iy0 = max(x, cx), max(y, cy)
        ix1, iy1 = min(x + w, cx + cw), min(y + h, cy + ch)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - y : iy1 - y, ix0 - x : ix1 - x] = get_chunk(key)[iy0 - cy : iy1 - cy, ix0 - cx : ix1 - cx]
    return out
