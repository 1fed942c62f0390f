"""Fixtures of the viewer tests: tabs and windows that open slides and wait for them."""
from __future__ import annotations

import threading

import numpy as np
import pytest


@pytest.fixture
def wait_loaded(qtbot):
    """``wait_loaded(tab, path)``: open ``path`` in a SlideTab and wait until its viewport is
    complete (all visible tiles at the zoom's level)."""

    def wait(tab, path=None, timeout=20000):
        if path is not None:
            with qtbot.waitSignal(tab.opened, timeout=timeout):
                tab.open_path(path)
        qtbot.waitUntil(tab.view.is_viewport_complete, timeout=timeout)

    return wait


@pytest.fixture
def slide_tab(shown):
    from lobule.app.slide.slide_tab import SlideTab

    tab = shown(SlideTab())
    yield tab
    tab.shutdown()


@pytest.fixture(scope="session")
def no_mpp_tiff(tmp_path_factory):
    """A synthetic pyramidal TIFF (2048x1536, 3 levels) without any resolution metadata."""
    from lobule.inference.slide.synthetic import write_pyramid_tiff

    return write_pyramid_tiff(tmp_path_factory.mktemp("nompp") / "nompp.tif", size=(2048, 1536), mpp=None)


@pytest.fixture
def gated_provider():
    """A TileProvider class whose reads wait for ``gate`` (a threading.Event) and are logged;
    tiles are solid ``colour`` (RGB)."""
    from lobule.app.slide.tile_layer import TileProvider

    class GatedProvider(TileProvider):
        def __init__(self, size=(4096, 4096), levels=3, tile_size=256, colour=(200, 30, 30)):
            super().__init__([(size[0] >> i, size[1] >> i) for i in range(levels)], [2 ** i for i in range(levels)])
            self.tile_size = tile_size
            self.colour = colour
            self.gate = threading.Event()
            self.reads: list[tuple[int, int, int]] = []
            self.closed = False
            self._lock = threading.Lock()

        def read_tile(self, level, col, row):
            self.gate.wait(10)
            with self._lock:
                self.reads.append((level, col, row))
            w, h = self.tile_shape(level, col, row)
            return np.broadcast_to(np.array(self.colour, np.uint8), (h, w, 3)).copy()

        def close(self):
            self.closed = True

    return GatedProvider
