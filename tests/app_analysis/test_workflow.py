"""Slide-tab workflow: a drawn region is selected, the side panel fits a 1600 x 1000 window,
the wheel over the chart scrolls the panel, exports go into one folder per slide, magnifications
beyond the scan's pixels read "digital", and Quit asks about results not exported."""
from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from shapely.geometry import box


def test_a_drawn_region_is_selected_and_exported_into_a_folder_per_slide(tab, open_demo, analysed_cache, qtbot,
                                                                        tmp_path):
    open_demo(tab)
    panel, analysis = tab.analysis_panel, tab.analysis
    assert panel.selected == "Whole tissue"
    tab.edit_bar.set_tool("rectangle")
    view = tab.view
    a = QPoint(*(round(v) for v in view.level0_to_widget(800, 600)))
    b = QPoint(*(round(v) for v in view.level0_to_widget(1100, 900)))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    qtbot.waitUntil(lambda: panel.selected == "Region 1" and analysis.is_idle(), timeout=60000)
    assert panel.region_list.currentItem().text() == "Region 1"
    assert tab.region_overlay.selected == "Region 1"
    assert "Region 1" in panel.results.title.text()
    # a region of 0.02 mm^2: no grade per 200x field, and the panel says why
    rows = [label for label, _, _ in panel.results.row_texts()]
    assert any(r.startswith("not graded: region smaller than one 200x field") for r in rows)

    parent = tmp_path / "exports" / "not yet there"
    with qtbot.waitSignal(analysis.exported, timeout=60000):
        out = panel.export_into(parent)
        # one export at a time: while it is written, Export is off and a second one is refused
        assert analysis.exporting == out and not panel.export_button.isEnabled()
        assert panel.export_into(tmp_path / "elsewhere") is None and not analysis.export(tmp_path / "other")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "other").exists()
    assert analysis.exporting is None and panel.export_button.isEnabled()
    assert out == parent / "CMU-1-Small-Region"
    assert sorted(p.name for p in out.iterdir()) == ["classes.geojson", "labels.tif", "regions.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["regions"]] == ["Whole tissue", "Region 1"]
    # again: non-interactive, so it does not ask and replaces the files in place
    assert not panel.interactive
    with qtbot.waitSignal(analysis.exported, timeout=60000):
        assert panel.export_into(parent) == out


def test_side_panel_fits_and_the_wheel_over_the_chart_scrolls_it(qtbot, open_demo, analysed_cache):
    from lobule.app.main_window import MainWindow

    window = MainWindow(show_dialogs=False)
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    qtbot.waitExposed(window)
    tab = window.slide_tab
    try:
        open_demo(tab)
        panel = tab.analysis_panel
        qtbot.waitUntil(lambda: panel.results.chart is not None, timeout=30000)
        assert panel.verticalScrollBar().maximum() == 0  # nothing to scroll at 1600 x 1000
        top = panel.widget()
        for widget in (panel.analyze_button, panel.sections, panel.export_button):
            assert widget.isVisible()
            corner = widget.mapTo(top, QPoint(widget.width(), widget.height()))
            assert corner.y() <= panel.viewport().height(), widget
        assert [panel.sections.tabText(i) for i in range(panel.sections.count())] == ["Numbers", "Classes", "Regions"]
        # File > Export is there and enabled once analysed
        window._update_export_action()
        assert window.export_action.isEnabled() and window.export_action.text() == "&Export Analysis..."

        window.resize(1000, 560)  # small window: the numbers scroll, the wheel over the chart moves them
        qtbot.waitUntil(lambda: panel.numbers_area.verticalScrollBar().maximum() > 0, timeout=5000)
        bar = panel.numbers_area.verticalScrollBar()
        bar.setValue(0)
        plot = panel.results.chart.plot
        centre = QPointF(plot.viewport().width() / 2, plot.viewport().height() / 2)
        event = QWheelEvent(centre, plot.viewport().mapToGlobal(centre), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(plot.viewport(), event)
        assert bar.value() > 0

        # the demo is a 20x scan: 40x enlarges its pixels
        texts = {mag: action.text() for mag, action in tab.magnification_actions.items()}
        assert texts[40] == "40x digital" and texts[20] == "20x" and texts[10] == "10x"
    finally:
        window.close()


def test_quit_asks_about_results_not_exported(qtbot, monkeypatch):
    from lobule.app.main_window import MainWindow

    window = MainWindow(show_dialogs=True)
    qtbot.addWidget(window)
    window.show()
    assert window.unsaved_results() == []  # tabs not built have nothing to lose
    ffa = window.ffa_tab
    assert not ffa.has_unsaved_results()
    monkeypatch.setattr(ffa.document, "mask", lambda: np.ones((4, 4), bool))
    ffa._unsaved = True  # as after a segmentation
    assert window.unsaved_results() == ["FFA"]
    asked = []

    def answer(*args, **kwargs):
        asked.append(args[2])
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", answer)
    assert not window.close() and window.isVisible()
    assert "FFA" in asked[0] and "not exported" in asked[0]
    ffa._unsaved = False  # exported
    assert window.unsaved_results() == []
    assert window.close()

