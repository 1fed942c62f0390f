"""Tiles load on worker threads; a newer wish list drops queued requests unread."""
from __future__ import annotations

import numpy as np

from lobule.app.slide.tile_layer import TileKey, TileRequest
from lobule.app.slide.tile_loader import TileLoader, array_to_qimage


def _requests(provider, cells, layer_id=1):
    return [TileRequest(TileKey(layer_id, 0, c, r), 0, provider) for c, r in cells]


def test_stale_requests_are_dropped_unread(qtbot, gated_provider):
    provider = gated_provider()
    loader = TileLoader(threads=1)
    loaded = []
    loader.tileLoaded.connect(lambda request, image: loaded.append(request.key))
    old = _requests(provider, [(c, 0) for c in range(10)])
    loader.submit(old)
    qtbot.waitUntil(lambda: len(loader._running) == 1)  # the worker holds the first tile
    new = _requests(provider, [(c, 5) for c in range(3)])
    loader.submit(new)  # the view moved on
    assert loader.dropped == 9
    provider.gate.set()
    qtbot.waitUntil(lambda: len(loaded) == 4, timeout=5000)
    loader.shutdown()
    assert provider.reads == [(0, 0, 0), (0, 0, 5), (0, 1, 5), (0, 2, 5)]
    assert loaded == [old[0].key] + [r.key for r in new]


def test_resubmitting_a_running_request_does_not_read_it_twice(qtbot, gated_provider):
    provider = gated_provider()
    loader = TileLoader(threads=1)
    requests = _requests(provider, [(0, 0), (1, 0)])
    loader.submit(requests)
    qtbot.waitUntil(lambda: len(loader._running) == 1)
    loader.submit(requests)
    provider.gate.set()
    qtbot.waitUntil(lambda: loader.pending() == 0, timeout=5000)
    loader.shutdown()
    assert sorted(provider.reads) == [(0, 0, 0), (0, 1, 0)]


def test_retire_closes_the_provider_only_after_running_reads(qtbot, gated_provider):
    provider = gated_provider()
    loader = TileLoader(threads=2)
    loader.submit(_requests(provider, [(c, 0) for c in range(6)]))
    qtbot.waitUntil(lambda: len(loader._running) == 2)
    loader.retire(provider, provider.close)
    assert not provider.closed  # two reads still run
    provider.gate.set()
    qtbot.waitUntil(lambda: provider.closed, timeout=5000)
    loader.shutdown()
    assert len(provider.reads) == 2


def test_failed_reads_are_reported_not_raised(qtbot, gated_provider):
    provider = gated_provider()
    provider.gate.set()

    def broken(level, col, row):
        raise ValueError("corrupt tile")

    provider.read_tile = broken
    loader = TileLoader(threads=1)
    with qtbot.waitSignal(loader.tileFailed, timeout=5000) as blocker:
        loader.submit(_requests(provider, [(0, 0)]))
    loader.shutdown()
    assert blocker.args[1] == "corrupt tile"


def test_array_to_qimage_keeps_pixels():
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    image = array_to_qimage(rgb)
    assert (image.width(), image.height()) == (5, 3)
    colour = image.pixelColor(2, 1)
    assert (colour.red(), colour.green(), colour.blue()) == (10, 20, 30)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 128)
    colour = array_to_qimage(rgba).pixelColor(0, 0)
    assert (colour.red(), colour.alpha()) == (255, 128)


def _rgb(image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a QImage of any format."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_slide_tiles_decode_straight_into_the_screen_image(demo_slide):
    """The viewer's slide tiles (aligned with the file's 240 px tiles: 480 px) are decoded into
    Format_RGB32 images with the pixels of the general path (read_region, then conversion), at
    stored and virtual levels, inside the slide and over its edges."""
    from PySide6.QtGui import QImage

    from lobule.app.slide.tile_layer import SlideTileProvider
    from lobule.app.slide.tile_loader import read_tile_image
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as reader:
        provider = SlideTileProvider(reader)
        assert provider.tile_size == 480 and provider.writes_bgrx
        assert SlideTileProvider(reader, 512).tile_size == 512
        for level in range(reader.level_count):
            cols, rows = provider.grid_shape(level)
            for col, row in {(0, 0), (cols // 2, rows // 2), (cols - 1, rows - 1)}:
                request = TileRequest(TileKey(1, level, col, row), 0, provider)
                image = read_tile_image(request)
                assert image.format() == QImage.Format.Format_RGB32
                assert (image.width(), image.height()) == provider.tile_shape(level, col, row)
                np.testing.assert_array_equal(_rgb(image), provider.read_tile(level, col, row))
                # an evicted tile's image serves the next tile of its size: every pixel rewritten
                spare = QImage(image.width(), image.height(), QImage.Format.Format_RGB32)
                spare.fill(0xFF00FF00)
                again = read_tile_image(request, spare)
                assert again is spare
                np.testing.assert_array_equal(_rgb(again), provider.read_tile(level, col, row))
        small = QImage(8, 8, QImage.Format.Format_RGB32)
        assert read_tile_image(TileRequest(TileKey(1, 0, 1, 1), 0, provider), small) is not small


def test_display_tile_size_follows_the_files_tiles(pyramid_tiff, demo_slide):
    from lobule.app.slide.tile_layer import display_tile_size
    from lobule.inference.slide import open_slide

    with open_slide(pyramid_tiff) as tiff, open_slide(demo_slide) as svs:
        assert display_tile_size(tiff) == 512  # 256 px tiles
        assert display_tile_size(svs) == 480  # Aperio's 240 px tiles


def test_idle_workers_prepare_tile_images_that_new_tiles_use(qtbot, demo_slide):
    from PySide6.QtGui import QImage

    from lobule.app.slide.tile_layer import SlideTileProvider
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as reader:
        provider = SlideTileProvider(reader)
        loader = TileLoader(threads=1)
        loaded = []
        loader.tileLoaded.connect(lambda request, image: loaded.append(image))
        assert loader.spare_limit() == 0  # nothing known yet of the tiles to come
        loader.submit([TileRequest(TileKey(1, 0, 1, 1), 0, provider)])
        qtbot.waitUntil(lambda: len(loaded) == 1, timeout=5000)
        assert loader.spare_limit() == (32 << 20) // (4 * 480 * 480)
        qtbot.waitUntil(lambda: len(loader._spare) == loader.spare_limit(), timeout=5000)
        spares = list(loader._spare)
        assert all(image.size().toTuple() == (480, 480) for image in spares)
        loader.recycle(QImage(480, 480, QImage.Format.Format_RGB32))  # no room left
        loader.recycle(QImage(100, 480, QImage.Format.Format_RGB32))  # not a whole tile
        assert len(loader._spare) == loader.spare_limit()
        loader.submit([TileRequest(TileKey(1, 0, 2, 1), 0, provider)])
        qtbot.waitUntil(lambda: len(loaded) == 2, timeout=5000)
        loader.shutdown()
        assert any(loaded[1] is spare for spare in spares)
        np.testing.assert_array_equal(_rgb(loaded[1]), provider.read_tile(0, 2, 1))
