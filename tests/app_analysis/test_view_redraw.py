"""What the slide view shows after a correction: every edit, undo, redo, class toggle and
opacity change appears in the rendered view (QWidget.grab) where it was made and nowhere else,
without moving the view, both at a zoom where overlay tiles are drawn rescaled and zoomed out on
the display pyramid's coarser levels."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from shapely.geometry import box

from lobule.resources.classes import INFLAMMATORY_NUCLEI, STEATOSIS

STROKE = [(850, 700), (950, 700), (1050, 720)]  # level-0 px, inside the analysed region
MARGIN_PX = 3  # widget px around an edit where rescaled tiles may blend the change in


def _frame(qtbot, tab) -> np.ndarray:
    """The view as drawn once nothing is pending: (H, W, 3) uint8 RGB."""
    view = tab.view
    qtbot.waitUntil(lambda: tab.analysis.is_idle() and view.is_viewport_complete(), timeout=60000)
    for _ in range(50):
        image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
        if view.is_settled():
            break
        qtbot.wait(20)
    assert view.is_settled()
    w, h = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h).reshape(h, -1)
    return rows[:, : 3 * w].reshape(h, w, 3).copy()


def _widget_box(view, x0, y0, x1, y1, pad_level0=0.0):
    """Level-0 box (padded) in widget pixels, padded by MARGIN_PX: (c0, r0, c1, r1)."""
    a = view.level0_to_widget(x0 - pad_level0, y0 - pad_level0)
    b = view.level0_to_widget(x1 + pad_level0, y1 + pad_level0)
    return (int(np.floor(a[0])) - MARGIN_PX, int(np.floor(a[1])) - MARGIN_PX,
            int(np.ceil(b[0])) + MARGIN_PX, int(np.ceil(b[1])) + MARGIN_PX)


def _changed(a, b, where) -> tuple[int, int]:
    """(changed pixels inside ``where`` (c0, r0, c1, r1), changed pixels outside it)."""
    diff = (a != b).any(axis=-1)
    c0, r0, c1, r1 = where
    inside = np.zeros_like(diff)
    inside[max(0, r0):max(0, r1), max(0, c0):max(0, c1)] = True
    return int((diff & inside).sum()), int((diff & ~inside).sum())


def _stroke(qtbot, drag, tab, points, tool_key):
    qtbot.keyClick(tab.view, tool_key)
    drag(tab.view, points)
    tab.edit_bar.set_tool("pan")  # hides the brush cursor, which is not part of the edit


def _shows(before, after, where, at_least: int) -> None:
    inside, outside = _changed(before, after, where)
    assert inside >= at_least, f"only {inside} px changed where the edit was"
    assert outside == 0, f"{outside} px changed outside the edit"


def _only_on_class(view, analysis, a, b, class_id, at_least: int) -> None:
    """Frames ``a`` and ``b`` differ in at least ``at_least`` px, all on (or within 3 px of)
    pixels of class ``class_id`` in the merged class map (sampled here at screen resolution, so
    tile rounding may leave a stray pixel in a thousand)."""
    diff = (a != b).any(axis=-1)
    assert diff.sum() >= at_least
    labels = analysis.labels.read_region(view.widget_to_level0(0, 0), 1 / view.state.scale,
                                         (view.width(), view.height()))
    near = np.zeros_like(diff)
    ys, xs = np.nonzero(labels == class_id)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near[np.clip(ys + dy, 0, diff.shape[0] - 1), np.clip(xs + dx, 0, diff.shape[1] - 1)] = True
    assert (diff & ~near).sum() <= diff.sum() // 1000


def _setup(qtbot, tab, open_demo, magnification):
    open_demo(tab)
    view = tab.view
    view.set_magnification(magnification)
    view.center_on(950, 710)
    return view, view.state.center, view.state.scale


@pytest.mark.parametrize("magnification, level", [(14, 0), (3, 2)])
def test_brush_undo_redo_eraser_show_in_the_view(tab, open_demo, analysed_cache, qtbot, drag, magnification, level):
    view, center, scale = _setup(qtbot, tab, open_demo, magnification)
    analysis = tab.analysis
    assert view.level_for(analysis.layer) == level  # level 2: a display-pyramid level, mode-downsampled
    diameter_um = 20 if level == 0 else 40
    radius = diameter_um / 2 / view.mpp  # level-0 px
    where = _widget_box(view, 850, 700, 1050, 720, pad_level0=radius)
    band = 200 * 2 * radius * scale ** 2  # widget px under the stroke
    before = _frame(qtbot, tab)

    qtbot.keyClick(view, Qt.Key.Key_3)  # inflammatory nuclei
    tab.edit_bar.size_field.setValue(diameter_um)
    _stroke(qtbot, drag, tab, STROKE, Qt.Key.Key_B)
    painted = _frame(qtbot, tab)
    _shows(before, painted, where, at_least=int(0.3 * band))
    # the stroke is drawn in the class colour: red dominates where it was painted
    cx, cy = (round(v) for v in view.level0_to_widget(950, 700))
    r, g, b = painted[cy, cx].astype(int)
    assert r > g + 60 and r > b + 40, painted[cy, cx]

    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    undone = _frame(qtbot, tab)
    assert (undone == before).all()  # exactly as before the stroke
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    redone = _frame(qtbot, tab)
    assert (redone == painted).all()

    tab.edit_bar.size_field.setValue(2 * diameter_um)
    _stroke(qtbot, drag, tab, STROKE, Qt.Key.Key_E)
    erased = _frame(qtbot, tab)
    assert (erased == before).all()  # the model's output shows again
    assert view.state.center == center and view.state.scale == scale  # the view did not move


def test_fills_class_toggles_and_opacity_show_in_the_view(tab, open_demo, analysed_cache, qtbot):
    view, center, scale = _setup(qtbot, tab, open_demo, 14)
    analysis = tab.analysis
    before = _frame(qtbot, tab)

    square = (860, 600, 940, 660)
    analysis.fill_polygon(box(*square), STEATOSIS)
    filled = _frame(qtbot, tab)
    where = _widget_box(view, *square)
    _shows(before, filled, where, at_least=int(0.5 * (80 * 60) * scale ** 2))
    cx, cy = (round(v) for v in view.level0_to_widget(900, 630))
    r, g, b = filled[cy, cx].astype(int)
    assert r > b + 60 and g > b + 40, filled[cy, cx]  # steatosis yellow

    # flood fill by a click: the filled square becomes class 6, nothing else changes
    qtbot.keyClick(view, Qt.Key.Key_6)
    qtbot.keyClick(view, Qt.Key.Key_K)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(cx, cy))
    tab.edit_bar.set_tool("pan")
    flooded = _frame(qtbot, tab)
    _shows(filled, flooded, where, at_least=int(0.5 * (80 * 60) * scale ** 2))

    # unticking a class removes exactly its colour; ticking it again restores the frame
    analysis.set_class_visible(6, False)
    hidden = _frame(qtbot, tab)
    _only_on_class(view, analysis, flooded, hidden, 6, at_least=int(0.5 * (80 * 60) * scale ** 2))
    x0, y0, x1, y1 = where
    assert (hidden[y0 + 4:y1 - 4, x0 + 4:x1 - 4] == before[y0 + 4:y1 - 4, x0 + 4:x1 - 4]).all()  # bare slide
    analysis.set_class_visible(6, True)
    assert (_frame(qtbot, tab) == flooded).all()
    analysis.set_class_visible(INFLAMMATORY_NUCLEI, False)
    _only_on_class(view, analysis, flooded, _frame(qtbot, tab), INFLAMMATORY_NUCLEI, at_least=100)
    analysis.set_class_visible(INFLAMMATORY_NUCLEI, True)
    assert (_frame(qtbot, tab) == flooded).all()

    analysis.set_opacity(0.9)
    opaque = _frame(qtbot, tab)
    assert (opaque != flooded).any(axis=-1).sum() > 1000
    analysis.set_opacity(0.5)
    assert (_frame(qtbot, tab) == flooded).all()
    assert view.state.center == center and view.state.scale == scale
