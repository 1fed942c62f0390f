"""The MRI/CT tab with pytest-qt: open, browse, window/level, draw a support, Run, numbers, exports."""
from __future__ import annotations

import sys

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QPointF

from lobule.app.volume.volume_view import BRUSH, ERASE, POLYGON


@pytest.fixture
def tab(qtbot):
    from lobule.app.volume.volume_tab import VolumeTab

    widget = VolumeTab()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    return widget


def test_no_torch_at_import():
    import subprocess

    code = "import sys, lobule.app.volume.volume_tab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_open_browse_draw_run_export(tab, qtbot, nibabel_data, tiny_models, tmp_path):
    path = nibabel_data / "anatomical.nii"
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(str(path))
    volume = tab.session.volume
    assert tab.is_ready()
    assert tab.slider.maximum() == volume.shape[2] - 1 == 24
    assert "(file axes LAS)" in tab.plane_label.text()
    tab.slider.setValue(12)
    assert tab.slice_index == 12 and "12 / 24" in tab.slice_label.text()
    assert tab.view.image_item.image.shape == (33, 41)

    tab.set_preset("CT lung")
    assert tab.levels == (-1350.0, 150.0)
    tab.set_preset("MRI automatic")
    low, high = tab.levels
    assert volume.data.min() <= low <= np.percentile(volume.data, 5)
    assert np.percentile(volume.data, 95) <= high <= volume.data.max()

    text = tab.cursor_text((10.4, 20.7))
    x, y, z = volume.voxel_to_mm((10, 20, 12))
    assert f"voxel (10, 20, 12)" in text and f"RAS ({x:.1f}, {y:.1f}, {z:.1f}) mm" in text
    assert f"{volume.data[10, 20, 12]:.0f} a.u." in text

    # brush a disc in mm coordinates: slice 12 becomes a support
    tab.set_tool(BRUSH)
    tab.view.brush_radius_mm = 6.0
    tab.view._paint_at(QPointF(30.0, 40.0), start=True, finish=False)
    tab.view._paint_at(QPointF(40.0, 40.0), start=False, finish=True)
    support = tab.session.supports[12]
    assert support[15, 20] and support[20, 20] and not support[0, 0]
    tab.set_tool(ERASE)
    tab.view._paint_at(QPointF(40.0, 40.0), start=True, finish=True)
    assert not support[20, 20] and support[15, 20]
    # polygon on slice 6 (a second support)
    tab.slider.setValue(6)
    tab.set_tool(POLYGON)
    for px, py in ((10.0, 10.0), (40.0, 10.0), (40.0, 50.0), (10.0, 50.0)):
        tab.view._add_vertex(QPointF(px, py))
    assert tab.view.close_polygon()
    assert tab.session.supports[6][5:20, 5:25].all()
    assert "6 (" in tab.supports_label.text() and "12 (" in tab.supports_label.text()

    tab.model_combo.setCurrentText("tiny-dpcenet")
    assert (tab.first_spin.value(), tab.last_spin.value()) == (0, 24)
    tab.last_spin.setValue(20)  # the organ ends at slice 20
    with qtbot.waitSignal(tab.segmentationFinished, timeout=60000) as blocker:
        tab.run()
    ml = blocker.args[0]
    result = tab.session.result
    assert result.shape == volume.shape
    np.testing.assert_array_equal(result[:, :, 6], tab.session.supports[6])
    assert ml == pytest.approx(result.sum() * 8 / 1000.0)
    assert "mL" in tab.result_label.text()
    assert not result[:, :, 21:].any()
    xs, ys = tab.area_curve.getData()
    assert len(xs) == 25 and ys[6] == pytest.approx(tab.session.supports[6].sum() * 4 / 100.0)

    # correcting another slice makes it an extra support starting from the result there
    tab.slider.setValue(3)
    tab.set_tool(BRUSH)
    tab.view._paint_at(QPointF(20.0, 20.0), start=True, finish=True)
    assert 3 in tab.session.supports and tab.session.supports[3][10, 10]

    out = tab.export_mask(str(tmp_path / "mask.nii.gz"))
    written = nib.load(str(out))
    assert written.shape == nib.load(str(path)).shape
    np.testing.assert_allclose(written.affine, nib.load(str(path)).affine)
    csv_text = tab.export_csv(str(tmp_path / "numbers.csv")).read_text()
    assert "organ_volume" in csv_text and "liver" in csv_text


def test_run_without_support_and_bad_files_say_why(tab, qtbot, nibabel_data, tmp_path):
    with qtbot.waitSignal(tab.openFailed, timeout=20000) as blocker:
        tab.open_path(str(tmp_path / "nothing.nii.gz"))
    assert "not found" in blocker.args[1] and tab.banner.isVisibleTo(tab)
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(str(nibabel_data / "anatomical.nii"))
    assert not tab.banner.isVisibleTo(tab)
    with qtbot.waitSignal(tab.segmentationFailed, timeout=5000) as blocker:
        tab.run()
    assert "no support slice" in blocker.args[0]


def test_folder_with_several_series_asks_which(tab, qtbot, tmp_path, dicom_file, make_series, copy_file):
    make_series(tmp_path / "mixed", dicom_file("CT_small.dcm"), [0.0, 5.0, 10.0])
    copy_file(dicom_file("MR_small.dcm"), tmp_path / "mixed")
    asked = []
    tab.series_chooser = lambda labels: asked.append(labels) or 0
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(str(tmp_path / "mixed"))
    assert len(asked[0]) == 2 and "CT" in asked[0][0]
    assert tab.session.volume.shape == (128, 128, 3)
    assert tab.preset_combo.currentText() == "CT abdomen"
    assert "HU" in tab.cursor_text((5.0, 5.0))


def test_4d_volume_offers_its_time_points(tab, qtbot, nibabel_data):
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(str(nibabel_data / "example4d.nii.gz"))
    assert tab.time_row.isVisibleTo(tab) and tab.time_spin.maximum() == 1
    assert "time point 0" in tab.notes_label.text()
    first = tab.session.volume.data.copy()
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.time_spin.setValue(1)
    assert tab.session.volume.time_point == 1 and not np.array_equal(first, tab.session.volume.data)


def _open(tab, qtbot, path):
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(str(path))
    return tab.session.volume


def test_closed_brushed_outline_is_filled_and_one_slice_result_warns(tab, qtbot, nibabel_data, tiny_models):
    _open(tab, qtbot, nibabel_data / "anatomical.nii")
    tab.slider.setValue(12)
    tab.set_tool(BRUSH)
    tab.view.brush_radius_mm = 2.0
    centre = np.array([32.0, 40.0])  # mm
    points = [centre + 14.0 * np.array([np.cos(a), np.sin(a)]) for a in np.linspace(0, 2 * np.pi, 40)]
    for index, (x, y) in enumerate(points):  # one stroke around the organ, as a user outlines it
        tab.view._paint_at(QPointF(x, y), start=index == 0, finish=index == len(points) - 1)
    support = tab.session.supports[12]
    assert support[16, 20]  # the centre (voxel = mm / 2) is part of the support now
    assert "closed outline on slice 12 filled" in tab.warning_label.text() and tab.warning_label.isVisibleTo(tab)
    tab.first_spin.setValue(12)
    tab.last_spin.setValue(12)  # the organ only on the support slice
    tab.model_combo.setCurrentText("tiny-dpcenet")
    with qtbot.waitSignal(tab.segmentationFinished, timeout=60000):
        tab.run()
    assert tab.result_label.text().endswith("mL in 1 slice")
    assert "covers 1 slice only" in tab.warning_label.text()


def test_wheel_steps_slices_ctrl_wheel_zooms(tab, qtbot, nibabel_data):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtGui import QWheelEvent

    _open(tab, qtbot, nibabel_data / "anatomical.nii")
    tab.show()
    tab.slider.setValue(12)

    def wheel(notches, modifiers=Qt.KeyboardModifier.NoModifier):
        centre = QPointF(tab.view.width() / 2, tab.view.height() / 2)
        event = QWheelEvent(centre, tab.view.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120 * notches),
                            Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        tab.view.wheelEvent(event)

    width = tab.view.viewbox.viewRange()[0][1] - tab.view.viewbox.viewRange()[0][0]
    wheel(1)
    assert tab.slice_index == 13
    wheel(-2)
    assert tab.slice_index == 11
    assert tab.view.viewbox.viewRange()[0][1] - tab.view.viewbox.viewRange()[0][0] == pytest.approx(width)
    wheel(1, Qt.KeyboardModifier.ControlModifier)
    assert tab.slice_index == 11
    zoomed = tab.view.viewbox.viewRange()[0][1] - tab.view.viewbox.viewRange()[0][0]
    assert zoomed == pytest.approx(width / tab.view.ZOOM_PER_NOTCH, rel=0.02)


def test_slicing_choice_reformats_and_labels_the_plane(tab, qtbot, nibabel_data):
    volume = _open(tab, qtbot, nibabel_data / "anatomical.nii")  # 33 x 41 x 25, LAS
    assert tab.axis_combo.currentText() == "acquisition"
    assert "axial, acquisition plane; A up, R left" in tab.plane_label.text()
    assert "(S " in tab.slice_label.text()
    for name in ("bottom", "left"):  # no "(x0.001)" scale factor on the empty area plot
        assert "x0" not in tab.area_plot.getAxis(name).labelString()
    tab.make_support(12)
    tab.axis_combo.setCurrentText("sagittal")
    assert tab.session.volume.axis == "sagittal" and tab.slider.maximum() == volume.shape[0] - 1
    assert "sagittal, reformatted; S up, A left" in tab.plane_label.text()
    assert tab.view.image_item.image.shape == (41, 25)
    assert "(R " in tab.slice_label.text()
    assert not tab.session.supports and "support slice of the previous slicing dropped" in tab.warning_label.text()
    tab.axis_combo.setCurrentText("acquisition")
    np.testing.assert_array_equal(tab.session.volume.data, volume.data)


def test_side_panel_fits_a_1000_px_window_with_the_area_plot_and_exports(qtbot):
    """The area plot's size hint (480 px) made the panel taller than a 1600 x 1000 window: its
    axis and the export buttons were below the fold. The plot now takes the height left."""
    from PySide6.QtWidgets import QScrollArea

    from lobule.app.volume.volume_tab import VolumeTab

    window = VolumeTab()
    qtbot.addWidget(window)
    window.resize(1600, 960)
    window.show()
    qtbot.waitExposed(window)
    scroll = window.findChild(QScrollArea)
    assert scroll.verticalScrollBar().maximum() == 0  # nothing to scroll to
    assert window.area_plot.height() >= 150
    bottom = window.export_csv_button.mapTo(scroll.widget(), window.export_csv_button.rect().bottomLeft()).y()
    assert bottom <= scroll.viewport().height()
