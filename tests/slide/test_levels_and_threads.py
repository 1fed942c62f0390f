"""Virtual levels (consistent with level 0, cached, bounded) and reads from 8 threads."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from lobule.inference.slide import levels, open_slide
from lobule.inference.slide.wsi import TiffSlideReader


def _count_stored_reads(slide):
    """Wrap the reader's stored-level read; return the list of (level, (w, h)) it receives."""
    calls = []
    original = slide._read_stored

    def counting(location, level, size):
        calls.append((level, size))
        return original(location, level, size)

    slide._read_stored = counting
    return calls


def test_virtual_levels_match_level0_downsampled(demo_slide):
    with open_slide(demo_slide) as slide:
        full = slide.read_region((0, 0), 0, slide.dimensions)
        assert not slide.is_virtual_level(0)
        for level in (1, 2, 3):
            assert slide.is_virtual_level(level)
            ds = int(slide.level_downsamples[level])
            w, h = slide.dimensions[0] // ds, slide.dimensions[1] // ds  # whole level pixels only
            virtual = slide.read_region((0, 0), level, (w, h)).astype(int)
            direct = cv2.resize(full[: h * ds, : w * ds], (w, h), interpolation=cv2.INTER_AREA).astype(int)
            # repeated 2x area averaging vs one ds x area average: uint8 rounding at each step
            difference = np.abs(virtual - direct)
            assert difference.mean() < 0.6 and difference.max() <= level
        # a region of a virtual level is the same crop of the whole level
        whole = slide.read_region((0, 0), 2, slide.level_dimensions[2])
        part = slide.read_region((4 * 101, 4 * 57), 2, (300, 200))
        np.testing.assert_array_equal(part[:, :, :], whole[57:257, 101:401])
        beyond = slide.read_region((4 * 500, 4 * 700), 2, (100, 100))
        np.testing.assert_array_equal(beyond[:42, :55], whole[700:742, 500:555])
        assert (beyond[42:] == 255).all() and (beyond[:, 55:] == 255).all()


def test_virtual_reads_never_reread_level0(demo_slide):
    with open_slide(demo_slide) as slide:
        calls = _count_stored_reads(slide)
        thumb = slide.thumbnail((256, 256))
        assert thumb.shape[0] == 256 and thumb.std() > 10
        first = sum(w * h for _, (w, h) in calls)
        w0, h0 = slide.dimensions
        assert all(level == 0 for level, _ in calls)
        assert first <= w0 * h0 * 1.05  # level 0 decoded once to build the pyramid, not per level
        for _ in range(5):
            slide.thumbnail((256, 256))
            slide.read_region((1000, 1000), 3, (100, 100))
            slide.read_region((800, 800), 2, (256, 256))
        assert sum(w * h for _, (w, h) in calls) == first  # served from the cache


def test_small_virtual_request_reads_only_its_area(demo_slide):
    with open_slide(demo_slide) as slide:
        calls = _count_stored_reads(slide)
        slide.read_region((0, 0), 1, (64, 64))  # one 256 px tile of level 1
        assert sum(w * h for _, (w, h) in calls) == 512 * 512


def test_virtual_cache_is_bounded(demo_slide, monkeypatch):
    monkeypatch.setattr(levels, "VIRTUAL_CACHE_BYTES", 3 * 256 * 256 * 3)
    with open_slide(demo_slide) as slide:
        reference = slide.read_region((0, 0), 1, slide.level_dimensions[1])
        assert slide._cache_bytes <= 3 * 256 * 256 * 3
        np.testing.assert_array_equal(slide.read_region((0, 0), 1, slide.level_dimensions[1]), reference)


def _requests(slide, count, seed):
    rng = np.random.default_rng(seed)
    w0, h0 = slide.dimensions
    out = []
    for _ in range(count):
        level = int(rng.integers(0, slide.level_count))
        ds = slide.level_downsamples[level]
        size = (int(rng.integers(50, 300)), int(rng.integers(50, 300)))
        location = (int(rng.integers(-200, w0)), int(rng.integers(-200, h0)))
        out.append((location, level, size))
    return out


@pytest.mark.parametrize("variant", ["demo", "pyramid", "pyramid-openslide-only", "pyramid-tiffslide", "j2k"])
def test_eight_threads_read_what_one_thread_reads(variant, demo_slide, pyramid_tiff, aperio_j2k_svs):
    path = {"demo": demo_slide, "j2k": aperio_j2k_svs}.get(variant, pyramid_tiff)

    def make():
        slide = TiffSlideReader(path) if variant == "pyramid-tiffslide" else open_slide(path)
        if variant == "pyramid-openslide-only":
            slide._tiles = None  # every read through the OpenSlide library
        return slide

    with make() as single:
        requests = _requests(single, 96, seed=len(variant))
        expected = [single.read_region(*r) for r in requests]
    with make() as shared:
        barrier = threading.Barrier(8)

        def work(worker):
            barrier.wait()
            order = list(range(len(requests)))[worker::8] + list(range(len(requests)))[: worker : 1]
            return [(i, shared.read_region(*requests[i])) for i in order]

        with ThreadPoolExecutor(8) as pool:
            results = [item for chunk in pool.map(work, range(8)) for item in chunk]
    assert len(results) >= len(requests)
    for index, region in results:
        np.testing.assert_array_equal(region, expected[index])
