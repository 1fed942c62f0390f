"""Fixtures of the analysis-GUI tests: an isolated analysis cache, a class map of the demo slide
made once per session by the classical labeller on a small region (one tile, fast), and a
Slide tab that opens the demo slide."""
from __future__ import annotations

import shutil

import pytest

REGION_BOX = (700, 200, 1250, 1250)  # level-0 px: tissue inside one classical tile core of the demo slide


@pytest.fixture(autouse=True)
def _stain_palette():
    """These tests recognise classes in the rendered view by hue (red inflammatory nuclei, yellow
    lipid, pink parenchyma): they run with the ``stain`` overlay palette and restore the default."""
    from lobule.resources.classes import DEFAULT_PALETTE, set_palette

    set_palette("stain")
    yield
    set_palette(DEFAULT_PALETTE)


@pytest.fixture(scope="session")
def classical_cache(tmp_path_factory, demo_slide):
    """A cache folder holding the classical labeller's class map of the demo slide, limited to
    REGION_BOX (made with the same call the Analyze button runs)."""
    pytest.importorskip("lobule.inference.liver.labeller")
    import os

    from shapely.geometry import box

    from lobule.app.slide.analysis_worker import run_analysis
    from lobule.inference.regions import Region
    from lobule.inference.slide import open_slide

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        with open_slide(demo_slide) as slide:
            run_analysis(slide, "classical", Region("box", box(*REGION_BOX)))
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old
    return cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty analysis cache for this test (the demo slide's analyses go there)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture
def analysed_cache(cache, classical_cache):
    """This test's cache, holding a copy of the session's classical class map of the demo."""
    shutil.copytree(classical_cache, cache)
    return cache


@pytest.fixture
def tab(shown):
    from lobule.app.slide.slide_tab import SlideTab

    tab = shown(SlideTab(), (1400, 900))
    yield tab
    tab.shutdown()


@pytest.fixture
def drag(qtbot):
    """``drag(view, points)``: press the left mouse button over the first level-0 point of
    ``points``, move through the others and release over the last (a brush stroke, a rectangle)."""
    from PySide6.QtCore import QPoint, Qt

    def drag_(view, points) -> None:
        widget = [QPoint(*(round(v) for v in view.level0_to_widget(*p))) for p in points]
        qtbot.mouseMove(view, widget[0])
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=widget[0])
        for p in widget[1:]:
            qtbot.mouseMove(view, p)
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=widget[-1])

    return drag_


@pytest.fixture
def open_demo(qtbot, demo_slide):
    """``open_demo(tab)``: open the demo slide and wait until the tab is ready (tiles loaded,
    saved analysis restored, numbers computed)."""

    def open_(tab, timeout=60000):
        with qtbot.waitSignal(tab.opened, timeout=timeout):
            tab.open_path(demo_slide)
        qtbot.waitUntil(tab.is_ready, timeout=timeout)

    return open_
