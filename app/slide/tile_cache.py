"""A least-recently-used tile cache bounded in bytes (used from the GUI thread only)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class TileCache:
    """Maps tile keys to decoded tiles, evicting the least recently used beyond ``max_bytes``.

    Parameters
    ----------
    max_bytes : budget for the sum of the stored tiles' sizes, in bytes (> 0).

    Notes
    -----
    :meth:`get` marks a tile as used (the painter calls it for every visible tile each frame, so
    visible tiles are the last to go); :meth:`peek` does not. ``on_evict(tile)``, when set, is
    called with each tile pushed out for room (not for tiles discarded or replaced), so its
    memory can serve a new tile.
    """

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._nbytes = 0
        self._max_bytes = 1
        self.on_evict: Callable[[Any], None] | None = None
        self.max_bytes = max_bytes
        self.evictions = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        value = int(value)
        if value <= 0:
            raise ValueError(f"the tile cache needs a positive size in bytes, got {value}")
        self._max_bytes = value
        self._evict()

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> Any | None:
        """The tile for ``key`` (marked most recently used) or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def peek(self, key: Hashable) -> Any | None:
        """The tile for ``key`` without changing its recency, or None."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: Hashable, tile: Any, nbytes: int, recent: bool = True) -> None:
        """Store ``tile`` (``nbytes`` bytes) under ``key``, replacing any previous one.

        ``recent=False`` files it as the least recently used (for prefetched tiles: they are
        the first to go and never push out tiles on screen).
        """
        self.discard(key)
        self._items[key] = (tile, int(nbytes))
        self._nbytes += int(nbytes)
        if not recent:
            self._items.move_to_end(key, last=False)
        self._evict()

    def discard(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._nbytes -= item[1]

    def keys(self, predicate: Callable[[Hashable], bool] | None = None) -> list[Hashable]:
        """Keys held (those satisfying ``predicate``), least recently used first."""
        return [key for key in self._items if predicate is None or predicate(key)]

    def discard_where(self, predicate: Callable[[Hashable], bool]) -> int:
        """Drop every tile whose key satisfies ``predicate``; returns how many were dropped."""
        doomed = [key for key in self._items if predicate(key)]
        for key in doomed:
            self.discard(key)
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()
        self._nbytes = 0

    def _evict(self) -> None:
        while self._nbytes > self._max_bytes and len(self._items) > 1:
            _, (tile, nbytes) = self._items.popitem(last=False)
            self._nbytes -= nbytes
            self.evictions += 1
            if self.on_evict is not None:
                self.on_evict(tile)
