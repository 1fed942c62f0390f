"""Region tools by simulated mouse events: rectangle, polygon and freehand outlines become
regions in level-0 pixels; numbers follow; GeoJSON in and out."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, Qt
from shapely.geometry import Point, Polygon


def _drag(qtbot, view, points):
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(view, QPoint(*p))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(*points[-1]))


def test_rectangle_drawn_with_the_mouse_is_a_region_in_level0_pixels(tab, open_demo, cache, qtbot):
    open_demo(tab)
    view = tab.view
    view.zoom_by(2.0)
    qtbot.keyClick(view, Qt.Key.Key_R)  # the rectangle tool's shortcut
    assert tab.edit_bar.tool_name == "rectangle"
    _drag(qtbot, view, [(300, 200), (400, 300), (500, 350)])
    regions = tab.analysis.drawn_regions()
    assert [r.name for r in regions] == ["Region 1"]
    x0, y0 = view.widget_to_level0(300, 200)
    x1, y1 = view.widget_to_level0(500, 350)
    assert regions[0].geometry.bounds == pytest.approx((x0, y0, x1, y1))
    assert regions[0].geometry.area == pytest.approx((x1 - x0) * (y1 - y0))
    assert tab.analysis_panel.area_combo.findText("Region 1") > 0  # can be analysed alone
    # a stray click is no region; the right button pans instead of drawing
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(600, 400))
    centre = view.state.center
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=QPoint(600, 400))
    qtbot.mouseMove(view, QPoint(650, 420))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=QPoint(650, 420))
    assert len(tab.analysis.drawn_regions()) == 1
    assert view.state.center == pytest.approx((centre[0] - 50 / view.state.scale, centre[1] - 20 / view.state.scale))


def test_polygon_and_freehand_regions(tab, open_demo, cache, qtbot):
    open_demo(tab)
    view = tab.view
    qtbot.keyClick(view, Qt.Key.Key_P)
    clicks = [(300, 200), (450, 220), (420, 380), (310, 330)]
    for x, y in clicks:  # clicks far apart are never a double click
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    assert tab.analysis.drawn_regions() == []  # open until closed
    qtbot.keyClick(view, Qt.Key.Key_Return)  # closes the outline
    polygon = tab.analysis.drawn_regions()[0].geometry
    expected = Polygon([view.widget_to_level0(x, y) for x, y in clicks])
    assert polygon.symmetric_difference(expected).area < 1e-6 * expected.area
    # a click on the first vertex closes a polygon too
    for x, y in clicks[:3] + clicks[:1]:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(x + 1, y))
    assert len(tab.analysis.drawn_regions()) == 2
    tab.analysis.remove_region("Region 2")
    qtbot.keyClick(view, Qt.Key.Key_F)
    path = [(500, 200), (600, 210), (640, 300), (560, 380), (490, 300)]
    _drag(qtbot, view, path)
    names = [r.name for r in tab.analysis.drawn_regions()]
    assert names == ["Region 1", "Region 2"]
    freehand = tab.analysis.drawn_regions()[1].geometry
    for x, y in path:
        assert freehand.exterior.distance(Point(*view.widget_to_level0(x, y))) < 1e-6
    # Esc drops an outline in progress, a second Esc goes back to panning
    qtbot.keyClick(view, Qt.Key.Key_P)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 300))
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert tab.edit_bar.tool.points == []
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert tab.edit_bar.tool_name == "pan" and view._tool is None


def test_numbers_follow_a_drawn_region_and_geojson_goes_out_and_in(tab, open_demo, analysed_cache, qtbot, tmp_path):
    open_demo(tab)
    analysis = tab.analysis
    assert analysis.store is not None and "Whole tissue" in analysis.results  # restored, not re-run
    whole = analysis.results["Whole tissue"]
    view = tab.view
    x0, y0 = view.level0_to_widget(800, 400)
    x1, y1 = view.level0_to_widget(1200, 1000)
    qtbot.keyClick(view, Qt.Key.Key_R)
    _drag(qtbot, view, [(round(x0), round(y0)), (round(x1), round(y1))])
    qtbot.waitUntil(lambda: "Region 1" in analysis.results and analysis.is_idle(), timeout=30000)
    region = analysis.results["Region 1"]
    assert 0 < region.tissue_area_um2 < whole.tissue_area_um2
    assert region.region_area_um2 == pytest.approx(analysis.region("Region 1").geometry.area * (whole.mpp /
                                                   analysis.store.scale) ** 2, rel=0.02)
    tab.analysis_panel.select_region("Region 1")
    assert tab.analysis_panel.results.result is region
    # undo removes the region (region changes are undoable), redo brings it back
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: analysis.region("Region 1") is None and analysis.is_idle(), timeout=30000)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: analysis.region("Region 1") is not None and analysis.is_idle(), timeout=30000)
    # GeoJSON out (QuPath) and back in
    out = tmp_path / "regions.geojson"
    with qtbot.waitSignal(analysis.message, timeout=20000, check_params_cb=lambda text: "Wrote" in text):
        analysis.export_regions(out)
    features = json.loads(out.read_text())["features"]
    annotations = [f for f in features if f["properties"].get("objectType") == "annotation"]
    assert [f["properties"]["name"] for f in annotations] == ["Region 1"]
    analysis.remove_region("Region 1")
    qtbot.waitUntil(lambda: analysis.region("Region 1") is None, timeout=30000)
    analysis.import_regions(out)
    qtbot.waitUntil(lambda: analysis.region("Region 1") is not None and analysis.is_idle(), timeout=60000)
    assert analysis.region("Region 1").geometry.equals(region_geometry := analysis.region("Region 1").geometry)
    assert region_geometry.bounds == pytest.approx((800, 400, 1200, 1000), abs=5.0)
    # a malformed file: one line, nothing changes
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with qtbot.waitSignal(tab.actionFailed, timeout=30000) as failed:
        analysis.import_regions(bad)
    assert "\n" not in failed.args[1] and [r.name for r in analysis.drawn_regions()] == ["Region 1"]


def test_labelme_regions_come_in_before_an_analysis_and_settings_remeasure(tab, open_demo, analysed_cache, qtbot,
                                                                          tmp_path):
    labelme = tmp_path / "outline.json"
    labelme.write_text(json.dumps({"version": "5.0.1", "imagePath": "CMU-1-Small-Region.svs", "imageWidth": 2220,
                                   "imageHeight": 2967, "shapes": [
                                       {"label": "portal tract", "shape_type": "polygon",
                                        "points": [[800, 400], [1200, 400], [1200, 900], [800, 900]]}]}))
    open_demo(tab)
    analysis = tab.analysis
    analysis.import_regions(labelme)
    qtbot.waitUntil(lambda: analysis.region("portal tract") is not None and analysis.is_idle(), timeout=60000)
    assert analysis.region("portal tract").geometry.bounds == (800, 400, 1200, 900)
    before = analysis.results["portal tract"]
    # settings: edited in the panel, applied, every region measured again with them
    panel = tab.analysis_panel.results
    panel.settings_box.setChecked(True)
    panel.setting_fields["focus_min_nuclei"].setValue(before.settings.focus_min_nuclei + 3)
    panel.setting_fields["field_number_mm"].setValue(25.0)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: analysis.is_idle() and analysis.results["portal tract"] is not before, timeout=60000)
    after = analysis.results["portal tract"]
    assert after.settings.focus_min_nuclei == before.settings.focus_min_nuclei + 3
    assert after.inflammation["field_area_mm2"] == pytest.approx(3.14159265 * (25.0 / 20.0 / 2) ** 2)
    assert after.inflammation["foci_count"] <= before.inflammation["foci_count"]
    assert analysis.results["Whole tissue"].settings == after.settings
    assert "25 / 20x" in panel.note.text() or "FN 25" in panel.note.text()

