"""Reads for display (``read_region_bgrx``: B, G, R, 255 bytes, JPEG tiles decoded straight to
that layout) give exactly the pixels of ``read_region`` on real slides: an Aperio SVS (240 px
tiles, RGB-coded JPEG with shared tables, virtual levels below its one stored level), a
pyramidal TIFF written from real H&E (256 px tiles, YCbCr 4:2:0 JPEG, three stored levels) and
a QuPath OME-TIFF (512 px JFIF tiles, read through tiffslide)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lobule.inference.errors import SlideError
from lobule.inference.slide import open_slide
from lobule.inference.slide.tifftiles import TiledLevel


@pytest.fixture(scope="module")
def real_pyramid(tmp_path_factory, demo_slide):
    """The demo slide's real H&E pixels (2220x2967) as a generic pyramidal TIFF: 256 px JPEG
    tiles in YCbCr 4:2:0 (as tifffile writes them), levels at downsample 1, 2 and 4 (edge
    tiles cut by the level border on the right and at the bottom)."""
    import tifffile

    with open_slide(demo_slide) as slide:
        level = slide.read_region((0, 0), 0, slide.dimensions)
    path = tmp_path_factory.mktemp("real") / "real-pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        for index in range(3):
            tif.write(level, tile=(256, 256), photometric="rgb", compression="jpeg",
                      compressionargs={"level": 90}, subfiletype=1 if index else 0, metadata=None)
            h, w = level.shape[:2]
            level = cv2.resize(level, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    return path


def _bgrx(slide, location, level, size) -> np.ndarray:
    out = np.full((size[1], size[0], 4), 7, np.uint8)  # garbage a read must overwrite
    slide.read_region_bgrx(location, level, out)
    return out


def _as_bgrx(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = rgb[..., ::-1]
    out[..., 3] = 255
    return out


def _regions(slide, level):
    """Level-0 (location, size) pairs: two stored tiles by two (aligned), a window across tile
    borders, one over the right and bottom edges, one wholly left of and above the slide."""
    ds = slide.level_downsamples[level]
    w, h = slide.level_dimensions[level]
    tw, th = slide.stored_tile_size(level) or (256, 256)
    tw, th = min(tw, w // 2), min(th, h // 2)
    return [
        ((0, 0), (2 * tw, 2 * th)),
        ((round((tw // 2 + 3) * ds), round((th // 3 + 1) * ds)), (tw + 37, th + 11)),
        ((round((w - 70) * ds), round((h - 50) * ds)), (100, 90)),
        ((-round(300 * ds), -round(200 * ds)), (64, 48)),
    ]


def _check_slide(path, monkeypatch):
    direct = []
    decode_bgrx = TiledLevel.decode_bgrx

    def spy(self, data):
        out = decode_bgrx(self, data)
        direct.append(out is not None)
        return out

    monkeypatch.setattr(TiledLevel, "decode_bgrx", spy)
    with open_slide(path) as slide:
        slide._tiles.cache_bytes = 0  # every stored tile is decoded for each read
        for level in range(slide.level_count):
            for location, size in _regions(slide, level):
                expected = _as_bgrx(slide.read_region(location, level, size))
                np.testing.assert_array_equal(_bgrx(slide, location, level, size), expected,
                                              err_msg=f"{path.name} level {level} at {location} {size}")
        # with the decoded-tile cache on, tiles the cache holds are used as they are
        slide._tiles.cache_bytes = 64 << 20
        location, size = _regions(slide, 0)[1]
        expected = _as_bgrx(slide.read_region(location, 0, size))
        np.testing.assert_array_equal(_bgrx(slide, location, 0, size), expected)
        np.testing.assert_array_equal(_bgrx(slide, (0, 0), 0, _regions(slide, 0)[0][1]),
                                      _as_bgrx(slide.read_region((0, 0), 0, _regions(slide, 0)[0][1])))
    assert direct and all(direct)  # JPEG tiles were decoded straight to BGRX, none refused


def test_display_reads_match_on_the_aperio_demo_slide(demo_slide, monkeypatch):
    with open_slide(demo_slide) as slide:
        assert slide.stored_level_count == 1 and slide.level_count > 1  # virtual levels too
        assert slide.stored_tile_size(0) == (240, 240)
        assert slide.stored_tile_size(1) is None
    _check_slide(demo_slide, monkeypatch)


def test_display_reads_match_on_a_pyramidal_tiff_of_real_tissue(real_pyramid, monkeypatch):
    with open_slide(real_pyramid) as slide:
        assert slide.stored_level_count == 3
        assert [slide.stored_tile_size(level) for level in range(3)] == [(256, 256)] * 3
        assert slide._tiles.levels[0].jpeg_bgrx
    _check_slide(real_pyramid, monkeypatch)


def test_display_reads_match_on_an_ome_tiff(shared_data, monkeypatch):
    path = shared_data / "wsi" / "OS-1-detail.ome.tif"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in ../shared/data")
    with open_slide(path) as slide:
        assert slide.backend == "tiffslide" and slide.stored_tile_size(0) == (512, 512)
    _check_slide(path, monkeypatch)


def test_display_reads_of_a_corrupt_or_missing_tile(tmp_path, real_pyramid):
    """A tile of garbage raises SlideError naming the file (the rest stays readable); a tile
    the file does not store is white."""
    import tifffile

    data = bytearray(real_pyramid.read_bytes())
    with tifffile.TiffFile(real_pyramid) as tif:
        page = tif.pages[0]
        across = -(-page.imagewidth // 256)
        index = 4 * across + 3  # tile (3, 4) of level 0, inside the tissue
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    data[offset: offset + count] = bytes(count)
    path = tmp_path / "corrupt.tif"
    path.write_bytes(bytes(data))
    with open_slide(path) as slide:
        with pytest.raises(SlideError, match="corrupt.tif"):
            _bgrx(slide, (3 * 256, 4 * 256), 0, (512, 512))
        intact = _bgrx(slide, (0, 4 * 256), 0, (512, 256))
        np.testing.assert_array_equal(intact, _as_bgrx(slide.read_region((0, 4 * 256), 0, (512, 256))))
        level = slide._tiles.levels[0]
        level.counts = level.counts.copy()
        level.counts[index + 2] = 0  # tile (5, 4) is not stored
        hole = _bgrx(slide, (4 * 256, 4 * 256), 0, (512, 256))
        assert (hole[:, 256:] == 255).all()
        np.testing.assert_array_equal(hole[:, :256], _as_bgrx(slide.read_region((4 * 256, 4 * 256), 0, (256, 256))))


def test_display_reads_refuse_a_wrong_buffer(demo_slide):
    with open_slide(demo_slide) as slide:
        for bad in (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 4), np.float32),
                    np.zeros((8, 16, 4), np.uint8)[:, ::2]):
            with pytest.raises(ValueError, match=r"\(height, width, 4\) uint8"):
                slide.read_region_bgrx((0, 0), 0, bad)
