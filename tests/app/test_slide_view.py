"""The slide view on real and fixture-written slides: levels follow the zoom, panning, keys,
wheel, overview, stand-ins while tiles load, the bounded cache, a slide without mpp."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent

from lobule.app.slide.slide_view import SlideView
from lobule.app.slide.tile_layer import TileLayer


def _pixels(widget) -> np.ndarray:
    """(H, W, 3) uint8 RGB of what ``widget`` shows."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _at(widget, x: int, y: int) -> tuple[int, ...]:
    """RGB at widget pixel (x, y) as Python ints."""
    return tuple(int(v) for v in _pixels(widget)[y, x])


def _stained_fraction(rgb: np.ndarray) -> float:
    """Fraction of H&E-stained pixels (pink/purple: green well below red and blue)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return float(np.mean((r - g > 30) & (b - g > 10)))


def test_demo_slide_opens_and_shows_tissue(slide_tab, wait_loaded, demo_slide):
    wait_loaded(slide_tab, demo_slide)
    view = slide_tab.view
    assert slide_tab.document.mpp == pytest.approx((0.499, 0.499))
    assert not slide_tab.banner.isVisible()
    assert view.state.slide_size == (2220, 2967)
    x0, y0, x1, y1 = view.visible_rect()  # fitted: the whole slide is in view
    assert x0 < 0 and y0 < 0 and x1 > 2220 and y1 > 2967
    pixels = _pixels(view)
    assert _stained_fraction(pixels) > 0.15
    assert pixels.std() > 30


def test_zooming_changes_the_level_shown(slide_tab, wait_loaded, pyramid_tiff):
    wait_loaded(slide_tab, pyramid_tiff)
    view, layer = slide_tab.view, slide_tab.slide_layer
    coarse = view.level_for(layer)
    assert coarse >= 2
    view.set_magnification(20.0)  # mpp 0.5: 20x is level 0 at 1:1
    assert view.magnification() == pytest.approx(20.0)
    assert view.level_for(layer) == 0
    wait_loaded(slide_tab)
    assert any(key.level == 0 for key in view.cache.keys())
    assert "level 0" in slide_tab.zoom_text()
    assert slide_tab.magnification_actions[20.0].isChecked()
    view.zoom_by(1 / 3)
    assert view.level_for(layer) == 1


def test_wheel_zooms_around_the_cursor(slide_tab, wait_loaded, demo_slide):
    wait_loaded(slide_tab, demo_slide)
    view = slide_tab.view
    cursor = QPointF(300, 200)
    before_point = view.widget_to_level0(cursor.x(), cursor.y())
    scale = view.state.scale
    event = QWheelEvent(cursor, view.mapToGlobal(cursor), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(event)
    assert view.state.scale == pytest.approx(scale * 1.25 ** 2)
    assert view.widget_to_level0(cursor.x(), cursor.y()) == pytest.approx(before_point)


def test_dragging_and_arrow_keys_pan(slide_tab, wait_loaded, qtbot, demo_slide):
    wait_loaded(slide_tab, demo_slide)
    view = slide_tab.view
    view.set_magnification(10.0)
    cx, cy = view.state.center
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(view, QPoint(300, 250))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 250))
    scale = view.state.scale
    assert view.state.center == pytest.approx((cx + 100 / scale, cy + 50 / scale))
    cx, cy = view.state.center
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.state.center[0] < cx
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.state.center[1] > cy
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.state.scale == pytest.approx(scale * 1.5)
    wait_loaded(slide_tab)  # the moved viewport fills up


def test_overview_click_moves_the_view(slide_tab, wait_loaded, qtbot, demo_slide):
    wait_loaded(slide_tab, demo_slide)
    view, overview = slide_tab.view, slide_tab.overview
    view.set_magnification(20.0)
    assert overview.isVisible()
    qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=QPoint(overview.width() // 4, overview.height() * 3 // 4))
    cx, cy = view.state.center
    assert cx == pytest.approx(2220 / 4, rel=0.05) and cy == pytest.approx(2967 * 3 / 4, rel=0.05)
    rect = overview.viewport_rect()
    assert rect.center().x() == pytest.approx(overview.width() / 4, abs=3)


def test_view_is_never_blank_while_tiles_load(qtbot, gated_provider):
    """Missing tiles are drawn from the preview until the sharp ones arrive; complete only then."""
    view = SlideView(cache_bytes=64 << 20, threads=2)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    provider = gated_provider(colour=(200, 30, 30))
    preview = np.full((64, 64, 3), (30, 30, 200), np.uint8)
    layer = TileLayer(provider, "test", preview=preview)
    view.add_layer(layer)
    view.zoom_by(8.0)
    qtbot.wait(50)
    assert _at(view, 300, 200) == (30, 30, 200)  # stretched preview, not a blank
    assert not view.is_viewport_complete()
    provider.gate.set()
    qtbot.waitUntil(view.is_viewport_complete, timeout=5000)
    assert _at(view, 300, 200) == (200, 30, 30)
    assert all(read[0] == view.level_for(layer) for read in provider.reads[:4])
    view.shutdown()
    assert provider.closed


def test_overlay_layer_invalidation_reloads_tiles(qtbot, gated_provider):
    view = SlideView(cache_bytes=64 << 20, threads=2)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    base, overlay = gated_provider(colour=(255, 255, 255)), gated_provider(colour=(0, 200, 0))
    base.gate.set()
    overlay.gate.set()
    view.add_layer(TileLayer(base, "slide"))
    labels = TileLayer(overlay, "classes", opacity=0.5)
    view.add_layer(labels)
    qtbot.waitUntil(view.is_viewport_complete, timeout=5000)
    assert _at(view, 300, 200) == pytest.approx((127, 227, 127), abs=2)  # 50 % green over white
    reads = len(overlay.reads)
    overlay.colour = (200, 0, 0)
    labels.invalidate()
    qtbot.waitUntil(view.is_viewport_complete, timeout=5000)
    assert len(overlay.reads) > reads
    assert _at(view, 300, 200) == pytest.approx((227, 127, 127), abs=2)
    labels.visible = False
    assert _at(view, 300, 200) == (255, 255, 255)
    view.shutdown()


def test_cache_stays_within_its_budget_while_panning(qtbot, pyramid_tiff, wait_loaded):
    from lobule.app.slide.slide_tab import SlideTab

    tab = SlideTab()
    qtbot.addWidget(tab)
    tab.view.cache.max_bytes = 24 << 20
    tab.resize(900, 600)
    tab.show()
    wait_loaded(tab, pyramid_tiff)
    tab.view.set_magnification(20.0)
    for x, y in [(500, 500), (3500, 500), (3500, 2500), (500, 2500), (2000, 1500), (500, 500)]:
        tab.view.center_on(x, y)
        wait_loaded(tab)
        assert tab.view.cache.nbytes <= 24 << 20
    assert tab.view.cache.evictions > 0
    assert tab.view.cache.max_bytes == 24 << 20  # a screenful fits twice: the budget held
    tab.shutdown()


def test_slide_without_mpp_asks_for_it(slide_tab, wait_loaded, no_mpp_tiff):
    wait_loaded(slide_tab, no_mpp_tiff)
    assert slide_tab.document.mpp is None
    assert slide_tab.banner.isVisible()
    assert slide_tab.view.magnification() is None
    assert not slide_tab.magnification_actions[20.0].isEnabled()
    assert slide_tab.info._fields["Pixel size"].text() == "not recorded in the file"
    slide_tab._on_cursor((100.0, 50.0))
    assert "µm" not in slide_tab.position_text()
    slide_tab.banner_field.setValue(0.25)
    slide_tab.set_mpp(slide_tab.banner_field.value())
    assert not slide_tab.banner.isVisible()
    assert slide_tab.view.mpp == 0.25
    assert slide_tab.view.magnification() == pytest.approx(40 * slide_tab.view.state.scale)
    assert "(25.0, 12.5 µm)" in slide_tab.position_text()
    assert "entered by you" in slide_tab.info._fields["Pixel size"].text()
    assert slide_tab.magnification_actions[40.0].isEnabled()


def test_label_store_overlay_draws_class_colours_over_the_slide(qtbot, gated_provider, tmp_path):
    from lobule.app.slide.label_layer import label_layer
    from lobule.inference.labelstore import store_from_array
    from lobule.resources.classes import LIVER_CLASSES, PARENCHYMA, STEATOSIS

    labels = np.zeros((256, 256), np.uint8)
    labels[:, :128] = STEATOSIS
    labels[:, 128:] = PARENCHYMA
    store = store_from_array(tmp_path / "labels.zarr", labels, mpp=1.0, scale=4.0)  # 4 slide px per label px
    view = SlideView(cache_bytes=64 << 20, threads=2)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    base = gated_provider(size=(1024, 1024), colour=(255, 255, 255))
    base.gate.set()
    view.add_layer(TileLayer(base, "slide"))
    overlay = label_layer(store, opacity=0.5)
    view.add_layer(overlay)
    view.center_on(512, 512)
    qtbot.waitUntil(view.is_viewport_complete, timeout=10000)
    left = view.level0_to_widget(256, 512)
    right = view.level0_to_widget(768, 512)
    for (x, y), cls in ((left, STEATOSIS), (right, PARENCHYMA)):
        expected = tuple(round(255 + (c - 255) * 0.5) for c in LIVER_CLASSES[cls].colour)
        assert _at(view, int(x), int(y)) == pytest.approx(expected, abs=2)
    overlay.provider.visible_classes = {PARENCHYMA}
    overlay.invalidate()
    qtbot.waitUntil(view.is_viewport_complete, timeout=10000)
    assert _at(view, int(left[0]), int(left[1])) == (255, 255, 255)
    view.shutdown()


def _screen(view) -> np.ndarray:
    """(H, W, 3) uint8 RGB of what the window system holds for ``view`` (the backing store,
    kept between partial repaints), unlike ``grab()``, which paints the widget anew."""
    image = view.screen().grabWindow(view.winId()).toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def _logged_paints(view) -> list:
    """Bounding rectangles of the frames ``view`` paints from now on."""
    paints = []
    paint_event = view.paintEvent

    def logged(event):
        paints.append(event.region().boundingRect())
        paint_event(event)

    view.paintEvent = logged
    return paints


def test_arriving_tiles_repaint_only_their_area(qtbot, gated_provider):
    """Tiles arriving one by one repaint only their rectangles; once the view is shown complete
    the screen holds exactly what a full repaint draws (every tile its own colour)."""
    import threading

    class OneByOne(gated_provider):
        permits = threading.Semaphore(0)

        def read_tile(self, level, col, row):
            self.permits.acquire(timeout=10)
            self.gate.set()
            tile = super().read_tile(level, col, row)
            tile[...] = (40 * (col % 6), 200 - 25 * (row % 8), 90 + 20 * level)
            return tile

    view = SlideView(cache_bytes=64 << 20, threads=1)
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    qtbot.waitExposed(view)
    paints = _logged_paints(view)
    provider = OneByOne()
    view.add_layer(TileLayer(provider, "slide", preview=np.full((64, 64, 3), 128, np.uint8)))
    view.zoom_by(4.0)
    view.center_on(1000, 1000)
    qtbot.waitUntil(lambda: view.loader.pending() > 0 and bool(paints), timeout=5000)
    first = len(paints)
    while not view.is_viewport_complete():
        cached = len(view.cache)
        provider.permits.release()  # one more tile
        qtbot.waitUntil(lambda: len(view.cache) > cached, timeout=5000)
        qtbot.wait(25)  # its repaint
        assert view.is_viewport_complete() or not view.is_viewport_shown()
    for _ in range(200):
        provider.permits.release()  # the prefetching
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    tiles = len(provider.tiles_in(view.level_for(view.layers[0]), view.visible_rect()))
    partial = [rect for rect in paints[first:] if rect != view.rect()]
    assert tiles >= 6 and len(partial) >= tiles - 1  # about one small repaint per tile
    assert all(rect.width() * rect.height() < view.width() * view.height() / 2 for rect in partial)
    np.testing.assert_array_equal(_screen(view), _pixels(view))
    assert len(np.unique(_screen(view).reshape(-1, 3), axis=0)) >= 6
    view.shutdown()


def test_neighbours_are_prefetched_once_the_view_is_shown(qtbot, gated_provider):
    view = SlideView(cache_bytes=64 << 20, threads=1)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    provider = gated_provider()
    layer = TileLayer(provider, "slide")
    view.add_layer(layer)
    view.zoom_by(4.0)
    view.center_on(2000, 2000)
    qtbot.waitUntil(lambda: view.loader.pending() > 0, timeout=5000)
    qtbot.wait(20)
    level = view.level_for(layer)
    visible = {(level, c, r) for c, r in provider.tiles_in(level, view.visible_rect())}
    queued = {(q.key.level, q.key.col, q.key.row) for q in list(view.loader._queue) + list(view.loader._running)}
    assert queued and queued <= visible  # only tiles on screen while the view fills
    provider.gate.set()
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)  # the neighbours are asked for now
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=5000)
    later = set(provider.reads) - visible
    assert any(read[0] == level for read in later) and any(read[0] == level + 1 for read in later)
    assert set(provider.reads[: len(visible)]) == visible
    view.shutdown()


def _view_at(qtbot, provider, centre, preview=None) -> SlideView:
    """A shown 600x400 view of ``provider`` (gate open) at 4x the fitted zoom, centred on
    ``centre``, complete and with its prefetching done."""
    view = SlideView(cache_bytes=64 << 20, threads=1)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    provider.gate.set()
    view.add_layer(TileLayer(provider, "slide", preview=preview))
    view.zoom_by(4.0)
    view.center_on(*centre)
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=5000)
    qtbot.wait(300)  # the windows of earlier tests closed (their exposes are over)
    return view


def test_a_jump_is_painted_once_its_tiles_are_in(qtbot, gated_provider, monkeypatch):
    """A jump (nothing of the last frame stays on screen) paints no frame of stretched
    stand-ins while its tiles are being read within the wait: its first frame is complete."""
    from lobule.app.slide import slide_view

    monkeypatch.setattr(slide_view, "JUMP_WAIT_MS", 5000)
    provider = gated_provider(colour=(200, 30, 30))
    view = _view_at(qtbot, provider, (800, 800), preview=np.full((64, 64, 3), (30, 30, 200), np.uint8))
    provider.gate.clear()
    asked = []  # frames the view asks for (the window system may still ask for others)
    update = view.update
    view.update = lambda *args: (asked.append(args), update(*args))
    view.center_on(3200, 3200)  # 2400 px away: the old and new views share nothing
    qtbot.wait(200)
    assert asked == [] and not view.is_viewport_complete()
    provider.gate.set()
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    assert asked[0] == ()  # one full frame once every tile is in
    assert _at(view, 300, 200) == (200, 30, 30)
    view.shutdown()


def test_a_slow_jump_shows_stand_ins_after_the_wait(qtbot, gated_provider, monkeypatch):
    from lobule.app.slide import slide_view

    monkeypatch.setattr(slide_view, "JUMP_WAIT_MS", 40)
    provider = gated_provider(colour=(200, 30, 30))
    view = _view_at(qtbot, provider, (800, 800), preview=np.full((64, 64, 3), (30, 30, 200), np.uint8))
    provider.gate.clear()
    paints = _logged_paints(view)
    view.center_on(3200, 3200)
    qtbot.waitUntil(lambda: bool(paints), timeout=2000)  # the wait is over: never stuck on the old view
    assert not view.is_viewport_complete()
    assert _at(view, 300, 200) == (30, 30, 200)  # the stretched preview stands in
    provider.gate.set()
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    assert _at(view, 300, 200) == (200, 30, 30)
    view.shutdown()


def test_cached_tiles_of_a_jump_are_not_evicted_before_they_are_shown(qtbot, gated_provider, monkeypatch):
    """Regression: after a jump the frame waits for the missing tiles; the cached tiles of the
    new view must not be pushed out by those arrivals (the view then never completed)."""
    from lobule.app.slide import slide_view
    from lobule.app.slide.tile_layer import TileKey

    monkeypatch.setattr(slide_view, "JUMP_WAIT_MS", 5000)  # no frame touches them before
    provider = gated_provider()
    view = _view_at(qtbot, provider, (800, 800))
    layer = view.layers[0]
    view.center_on(3200, 3200)
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    qtbot.waitUntil(lambda: view.loader.pending() == 0, timeout=5000)
    level = view.level_for(layer)
    span = provider.tile_size * provider.level_downsamples[level]
    target = (800 + 2 * span, 800)  # two tile columns right of the first view: partly cached
    x, y = target
    half_w, half_h = (view.visible_rect()[2] - view.visible_rect()[0]) / 2, (view.visible_rect()[3] - view.visible_rect()[1]) / 2
    keys = [TileKey(layer.id, level, c, r)
            for c, r in provider.tiles_in(level, (x - half_w, y - half_h, x + half_w, y + half_h))]
    cached = [key for key in keys if key in view.cache]
    assert 0 < len(cached) < len(keys)
    for key in cached:  # filed as least recently used, as prefetched tiles are
        image = view.cache.peek(key)
        view.cache.put(key, image, image.sizeInBytes(), recent=False)
    screen = 4 * len(keys) * provider.tile_size ** 2
    assert view.cache.nbytes >= 2 * screen
    view.cache.max_bytes = view.cache.nbytes  # full: every arrival evicts
    view.center_on(*target)
    qtbot.waitUntil(view.is_viewport_shown, timeout=5000)
    assert all(key in view.cache for key in keys)
    view.shutdown()
