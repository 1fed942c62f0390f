"""The tile cache is bounded in bytes and evicts the least recently used tile first."""
from __future__ import annotations

import pytest

from lobule.app.slide.tile_cache import TileCache


def test_cache_never_exceeds_its_byte_budget():
    cache = TileCache(max_bytes=10 << 20)
    for i in range(100):
        cache.put(("t", i), object(), 1 << 20)
        assert cache.nbytes <= 10 << 20
    assert len(cache) == 10
    assert cache.evictions == 90
    assert [key[1] for key in cache.keys()] == list(range(90, 100))


def test_get_keeps_a_tile_recent_and_peek_does_not():
    cache = TileCache(max_bytes=3)
    for key in "abc":
        cache.put(key, key.upper(), 1)
    assert cache.get("a") == "A"  # a is now the most recent
    assert cache.peek("b") == "B"  # b stays the least recent
    cache.put("d", "D", 1)
    assert "b" not in cache and "a" in cache
    assert cache.get("b") is None


def test_replacing_and_discarding_keep_the_byte_count_exact():
    cache = TileCache(max_bytes=100)
    cache.put("a", 1, 40)
    cache.put("a", 2, 10)
    cache.put("b", 3, 20)
    assert cache.nbytes == 30 and cache.get("a") == 2
    assert cache.discard_where(lambda key: key == "a") == 1
    assert cache.nbytes == 20
    cache.max_bytes = 10  # shrinking evicts down to the new budget (keeps at least one tile)
    assert len(cache) == 1
    with pytest.raises(ValueError):
        cache.max_bytes = 0


def test_tiles_pushed_out_for_room_are_offered_for_reuse():
    cache = TileCache(max_bytes=2)
    evicted = []
    cache.on_evict = evicted.append
    for key in "abc":
        cache.put(key, key.upper(), 1)
    cache.put("c", "C2", 1)  # replaced, not pushed out
    cache.discard("b")  # discarded, not pushed out
    assert evicted == ["A"]
