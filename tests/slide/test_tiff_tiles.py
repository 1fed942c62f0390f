"""Direct TIFF tile reads: a region inside the level is assembled from its tiles alone, tiles
the file does not store read as white background, regions over the edge are white beyond it."""
from __future__ import annotations

import numpy as np

from lobule.inference.slide import open_slide


def test_inside_regions_match_the_whole_level_and_missing_tiles_are_white(demo_slide):
    with open_slide(demo_slide) as slide:
        tiles = slide._tiles
        assert tiles is not None and tiles.handles(0)
        tiles.cache_bytes = 0
        w, h = slide.dimensions
        whole = slide.read_region((0, 0), 0, (w, h))
        level = tiles.levels[0]
        tw, th = level.tile_width, level.tile_height
        # inside, across four tiles (no white fill first: every pixel comes from a tile)
        part = slide.read_region((tw - 100, th - 50), 0, (300, 200))
        np.testing.assert_array_equal(part, whole[th - 50: th + 150, tw - 100: tw + 200])
        # over the right and bottom edges: white beyond the slide
        edge = slide.read_region((w - 40, h - 30), 0, (100, 100))
        np.testing.assert_array_equal(edge[:30, :40], whole[h - 30:, w - 40:])
        assert (edge[30:] == 255).all() and (edge[:, 40:] == 255).all()
        # a tile the file does not store (zero byte count) reads as background
        index = 1 * level.across + 1
        level.counts = level.counts.copy()
        level.counts[index] = 0
        hole = slide.read_region((tw - 100, th - 50), 0, (300, 200))
        assert (hole[50:, 100: 100 + tw] == 255).all()
        np.testing.assert_array_equal(hole[:50], part[:50])
        np.testing.assert_array_equal(hole[50:, :100], part[50:, :100])
