"""Corrections on the Slide tab: a brush stroke by simulated mouse events changes the class
map and the numbers, undo restores both; fills; export writes the four files; unsaved work of a
killed session is offered back."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from lobule.resources.classes import INFLAMMATORY_NUCLEI, STEATOSIS

STROKE = [(850, 700), (950, 700), (1050, 720)]  # level-0 px, inside the analysed region


def _labels(analysis, box):
    x0, y0, x1, y1 = (round(v / analysis.labels.scale) for v in box)
    return analysis.labels.read_labels((x0, y0, x1 - x0, y1 - y0))


def test_brush_stroke_changes_map_and_numbers_and_undo_restores(tab, open_demo, analysed_cache, qtbot, drag):
    open_demo(tab)
    analysis, view = tab.analysis, tab.view
    area = (840, 660, 1060, 760)
    before = _labels(analysis, area)
    from shapely.geometry import box

    analysis.add_region(box(*area), "Stroke area")
    qtbot.waitUntil(lambda: analysis.is_idle() and "Stroke area" in analysis.results, timeout=60000)

    def inflamed() -> float:
        return analysis.results["Stroke area"].classes[INFLAMMATORY_NUCLEI]["area_um2"]

    inflamed_before = inflamed()
    view.set_magnification(10)
    view.center_on(950, 710)
    qtbot.keyClick(view, Qt.Key.Key_B)
    qtbot.keyClick(view, Qt.Key.Key_3)  # class 3: inflammatory nuclei
    assert tab.edit_bar.tool_name == "brush" and tab.edit_bar.class_id() == INFLAMMATORY_NUCLEI
    tab.edit_bar.size_field.setValue(20)  # µm diameter: radius 20 label px at 0.5 µm
    drag(view, STROKE)
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    after = _labels(analysis, area)
    changed = after != before
    assert changed.any() and (after[changed] == INFLAMMATORY_NUCLEI).all()
    # a band of 20 µm (40 px) along the path: its centre line painted, 25 px off it untouched
    assert (_labels(analysis, (940, 700, 960, 702)) == INFLAMMATORY_NUCLEI).all()
    assert (_labels(analysis, (950, 735, 952, 737)) == before[75:77, 110:112]).all()
    # the numbers follow the stroke
    assert inflamed() - inflamed_before == pytest.approx(changed.sum() * analysis.labels.mpp ** 2)
    assert "brush" in analysis.history_labels()[0]
    assert tab.edit_bar.undo_action.isEnabled()
    # the overlay shows the correction (the layer's tiles read the merged map)
    tile = analysis.layer.provider.read_tile(0, 1, 1)  # level 0 tile covering (512..1024, 512..1024)
    assert ((tile[..., :3] == (230, 30, 40)).all(axis=-1) & (tile[..., 3] > 0)).sum() >= changed.sum() // 2

    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    assert (_labels(analysis, area) == before).all()
    assert inflamed() == pytest.approx(inflamed_before)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    assert (_labels(analysis, area) == after).all()
    # the eraser removes the correction: the model's output shows again
    qtbot.keyClick(view, Qt.Key.Key_E)
    tab.edit_bar.size_field.setValue(60)
    drag(view, STROKE)
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    assert (_labels(analysis, area) == before).all()


def test_fills_and_export_writes_the_four_files(tab, open_demo, analysed_cache, qtbot, tmp_path):
    open_demo(tab)
    analysis, view = tab.analysis, tab.view
    from shapely.geometry import box

    analysis.fill_polygon(box(800, 300, 900, 400), STEATOSIS)
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    assert (_labels(analysis, (802, 302, 898, 398)) == STEATOSIS).all()
    # flood fill by a click: the connected steatosis area under it becomes class 6
    view.center_on(850, 350)
    qtbot.keyClick(view, Qt.Key.Key_6)
    qtbot.keyClick(view, Qt.Key.Key_K)
    x, y = (round(v) for v in view.level0_to_widget(850, 350))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    qtbot.waitUntil(analysis.is_idle, timeout=60000)
    assert (_labels(analysis, (802, 302, 898, 398)) == 6).all()
    analysis.add_region(box(750, 250, 1000, 500), "Corrected area")
    qtbot.waitUntil(lambda: analysis.is_idle() and "Corrected area" in analysis.results, timeout=60000)

    out = tmp_path / "export"
    with qtbot.waitSignal(analysis.exported, timeout=60000):
        assert analysis.export(out)
    assert sorted(p.name for p in out.iterdir()) == ["classes.geojson", "labels.tif", "regions.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["regions"]] == ["Whole tissue", "Corrected area"]
    assert summary["model"]["name"] == "classical"
    assert summary["model"]["corrections"]["corrected_label_pixels"] > 0
    exported = summary["regions"][1]["results"]
    shown = analysis.results["Corrected area"].as_dict()
    assert exported["tissue_area_um2"] == pytest.approx(shown["tissue_area_um2"])
    assert "Corrected area" in (out / "regions.csv").read_text()
    import tifffile

    with tifffile.TiffFile(out / "labels.tif") as tif:
        labels = tif.pages[0].asarray()
    s = analysis.labels.scale
    assert (labels[round(310 / s):round(390 / s), round(810 / s):round(890 / s)] == 6).all()  # corrections exported


def test_unsaved_work_of_a_killed_session_is_offered_back(tab, open_demo, analysed_cache, qtbot, demo_slide):
    from lobule.inference.labelstore import find_store

    store = find_store(demo_slide, "classical")
    script = f"""
import os, signal
from shapely.geometry import box
from lobule.inference.annotations import AnnotationSession
from lobule.inference.labelstore import LabelStore
session = AnnotationSession.open({str(demo_slide)!r}, LabelStore.open({str(store.path)!r}), autosave_s=None)
session.fill_polygon(box(800, 300, 900, 400), {STEATOSIS})
session.autosave()
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    open_demo(tab)
    assert tab.recovery_banner.isVisible() and "unsaved edit" in tab.recovery_text.text()
    assert not (_labels(tab.analysis, (802, 302, 898, 398)) == STEATOSIS).all()  # not applied unasked
    qtbot.mouseClick(tab.recover_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(tab.analysis.is_idle, timeout=60000)
    assert not tab.recovery_banner.isVisible()
    assert (_labels(tab.analysis, (802, 302, 898, 398)) == STEATOSIS).all()
    qtbot.keyClick(tab.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # recovery is one undo step
    qtbot.waitUntil(tab.analysis.is_idle, timeout=60000)
    assert not (_labels(tab.analysis, (802, 302, 898, 398)) == STEATOSIS).all()
