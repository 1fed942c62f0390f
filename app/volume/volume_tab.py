"""The MRI/CT tab: volume viewer and one-shot organ segmentation from support slices.

Workflow: open a NIfTI file or DICOM series (sliced along its acquisition axis, or a reformatted
axial / coronal / sagittal view chosen in "Slicing"); go to a slice showing the organ (wheel or
PageUp/PageDown; Ctrl+wheel zooms); outline it with the brush (a closed outline is filled) or the
polygon (or load a mask) - that slice becomes a support slice; Run segments every
other slice on a worker thread and overlays the result (red; supports green) with the organ's
volume in mL and a slice-by-slice area plot; drawing on any other slice turns it into an extra
support starting from the result there (a correction), and Run again uses all supports; export
the mask as NIfTI (the input's geometry) and the numbers as CSV.

The work is done by :class:`lobule.inference.fewshot.session.OneShotSession`; this widget only
shows it. torch is imported on the worker thread when a model first runs, never at import.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from lobule.app.volume.volume_layout import VolumeTabLayout
from lobule.app.volume.volume_view import BRUSH, overlay_rgba
from lobule.app.common.errors import error_message
from lobule.app.common.jobs import start_job
from lobule.inference.volume.volume import AXES
from lobule.inference.volume.window import default_preset, window_levels

DEFAULT_MODEL = "fewshot-mri"


class VolumeTab(VolumeTabLayout, QWidget):
    """Tab widget for MRI/CT volumes. ``open_path(path)`` opens a NIfTI file or DICOM folder/file.

    Signals
    -------
    opened(str) : a volume was opened (path).
    openFailed(str, str) : path, one-line reason.
    segmentationFinished(float) : the organ volume in mL after a run.
    segmentationFailed(str) : one-line reason.
    """

    opened = Signal(str)
    openFailed = Signal(str, str)
    segmentationFinished = Signal(float)
    segmentationFailed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = None
        self.levels = (0.0, 1.0)
        self._predictors: dict[str, object] = {}
        self._run_job = None
        self._open_job = None
        self._source: tuple[str, object] | None = None  # (path, series) of the open volume
        #: chooses a DICOM series: ``chooser(labels) -> index or None``; replaceable (tests). None:
        #: never ask (offscreen): a folder with several series fails in one line listing them
        self.series_chooser = self._ask_series
        self._build()
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.slider, self.preset_combo, self.axis_combo, self.run_button, self.make_support_button,
                       self.export_mask_button, self.export_csv_button):
            widget.setEnabled(enabled)

    def refresh_models(self) -> None:
        """List installed few-shot checkpoints (reads cards only)."""
        from lobule.models.checkpoint import list_checkpoints

        current = self.model_combo.currentText()
        names = [card["name"] for _, card in list_checkpoints(task="fewshot")]
        self.model_combo.clear()
        self.model_combo.addItems(names or [DEFAULT_MODEL])
        if current:
            self.model_combo.setCurrentText(current)
        elif DEFAULT_MODEL in names:
            self.model_combo.setCurrentText(DEFAULT_MODEL)

    # ================================================================== opening
    def open_path(self, path: str, series: str | int | None = None, time_point: int | None = None) -> None:
        """Open a NIfTI file, DICOM folder or DICOM file in the background; ``opened`` or
        ``openFailed`` follows. A folder with several series asks which one (:attr:`series_chooser`)."""
        path = str(path)
        self._show_error(None)
        self.info_label.setText(f"Opening {Path(path).name}…")
        ask = self.series_chooser is not None
        axis = self.axis_combo.currentText()

        def job(job):
            from lobule.inference.volume import list_series, load_volume, pick_series

            if series is None and Path(path).is_dir():
                found = list_series(path)
                if len(found) > 1:
                    if not ask:
                        pick_series(path)  # raises: one line naming the series and --series
                    return ("choose", [s.label() for s in found])
            return ("volume", (series, load_volume(path, series=series, time_point=time_point, axis=axis)))

        def done(outcome) -> None:
            self._open_job = None
            kind, value = outcome
            if kind == "choose":
                index = self.series_chooser(value)
                if index is None:
                    self._open_failed(path, "no series chosen")
                else:
                    self.open_path(path, series=index + 1, time_point=time_point)
                return
            self._set_volume(path, *value)

        def failed(error: BaseException) -> None:
            self._open_job = None
            self._open_failed(path, error_message(error))

        self._open_job = start_job(job, done, failed)

    def is_ready(self) -> bool:
        """True when a volume is shown and nothing is being opened (``lobule view`` waits for it)."""
        return self.session is not None and self._open_job is None

    def _ask_series(self, labels: list[str]) -> int | None:
        item, ok = QInputDialog.getItem(self, "Several series", "This folder holds several series; open:", labels, 0, False)
        return labels.index(item) if ok else None

    def _open_failed(self, path: str, message: str) -> None:
        self.info_label.setText("Open a NIfTI file or a DICOM series.")
        self._show_error(message)
        self.openFailed.emit(path, message)

    def _time_point_changed(self, value: int) -> None:
        if self._source is not None and self.session is not None and value != self.session.volume.time_point:
            self.open_path(self._source[0], series=self._source[1], time_point=value)

    def _set_volume(self, path: str, series, volume) -> None:
        from lobule.inference.fewshot.session import OneShotSession

        self.cancel()
        self._source = (path, series)
        self.time_spin.blockSignals(True)
        self.time_spin.setRange(0, max(0, volume.time_points - 1))
        self.time_spin.setValue(volume.time_point)
        self.time_spin.blockSignals(False)
        self.time_row.setVisible(volume.time_points > 1)
        self.session = OneShotSession(volume, organ=self.organ_edit.text() or "organ")
        self._set_axis_combo(volume.axis)
        self._show_geometry(path)
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentText(default_preset(volume.modality))
        self.preset_combo.blockSignals(False)
        self.levels = window_levels(self.preset_combo.currentText(), volume.data)
        self.levels_label.setText(f"{self.levels[0]:.0f} … {self.levels[1]:.0f}")
        self._set_enabled(True)
        self._refresh_results()
        self._refresh_supports()
        self.set_slice(volume.shape[2] // 2)
        self.opened.emit(path)

    def _set_axis_combo(self, axis: str) -> None:
        self.axis_combo.blockSignals(True)
        self.axis_combo.setCurrentText(axis)
        self.axis_combo.blockSignals(False)

    def _show_geometry(self, path: str | None = None) -> None:
        """Labels, view geometry, slider and extent ranges of the session's volume as sliced now."""
        volume = self.session.volume
        x, y, z = volume.shape
        sx, sy, sz = volume.spacing
        name = volume.description or Path(path or volume.source).name
        self.info_label.setText(
            f"<b>{name}</b><br>{x} x {y} x {z} voxels, "
            f"{sx:.2f} x {sy:.2f} x {sz:.2f} mm, {volume.modality or 'modality not stated'}"
        )
        self.plane_label.setText(f"Shown: {volume.plane_label} (file axes {''.join(volume.source_axcodes)})")
        # the orientation note says what the plane label says
        self.notes_label.setText("<br>".join(n for n in volume.notes if not n.startswith("orientation:")))
        self.view.set_geometry(volume.shape, volume.spacing)
        for spin, value in ((self.first_spin, 0), (self.last_spin, z - 1)):
            spin.setRange(0, z - 1)
            spin.setValue(value)
        self.slider.blockSignals(True)
        self.slider.setRange(0, z - 1)
        self.slider.setValue(z // 2)
        self.slider.blockSignals(False)
        self.area_plot.setXRange(0, max(1, z - 1), padding=0.02)

    def set_axis(self, axis: str) -> None:
        """Slice the open volume along ``axis`` (one of AXES: acquisition, axial, coronal,
        sagittal). The result follows; support slices of the old slicing are dropped (said in the
        warnings). Ignored while a segmentation runs."""
        if self.session is None or axis == self.session.volume.axis:
            return
        if self._run_job is not None:
            self._set_axis_combo(self.session.volume.axis)
            return
        dropped = len(self.session.supports)
        self.session.reslice(axis)
        self._set_axis_combo(axis)
        self._show_geometry()
        self._refresh_results()
        self._refresh_supports()
        if dropped:
            self._show_warnings([f"{dropped} support slice{'s' if dropped != 1 else ''} of the previous slicing "
                                 "dropped: outline the organ again in this view"])
        self.set_slice(self.session.volume.shape[2] // 2)

    # ================================================================== viewing
    @property
    def slice_index(self) -> int:
        return int(self.slider.value())

    def set_slice(self, k: int) -> None:
        """Show slice ``k`` (clamped) of the volume."""
        if self.session is None:
            return
        k = int(np.clip(k, 0, self.session.volume.shape[2] - 1))
        if self.slider.value() != k:
            self.slider.setValue(k)  # re-enters through valueChanged
            return
        volume = self.session.volume
        self.view.show_slice(k, volume.slice(k), self.levels, self._overlay(k))
        code, position = volume.slice_position_mm(k)
        tag = " · support" if k in self.session.supports else ""
        self.slice_label.setText(f"{k} / {volume.shape[2] - 1}  ({code} {position:.1f} mm){tag}")
        self.slice_marker.setValue(k)

    def set_preset(self, name: str) -> None:
        """Apply a window/level preset (CT abdomen, liver, lung; MRI automatic percentiles)."""
        if self.session is None:
            return
        self.levels = window_levels(name, self.session.volume.data)
        self.view.set_levels(self.levels)
        self.levels_label.setText(f"{self.levels[0]:.0f} … {self.levels[1]:.0f}")
        if self.preset_combo.currentText() != name:
            self.preset_combo.setCurrentText(name)

    def _overlay(self, k: int):
        result = self.session.result[:, :, k] if self.session.result is not None else None
        return overlay_rgba(result, self.session.supports.get(k))

    def cursor_text(self, ij) -> str:
        """Readout for fractional voxel (i, j) of the current slice: voxel, RAS mm, value."""
        if self.session is None or ij is None:
            return " "
        volume = self.session.volume
        i, j = int(np.floor(ij[0])), int(np.floor(ij[1]))
        k = self.slice_index
        if not (0 <= i < volume.shape[0] and 0 <= j < volume.shape[1]):
            return " "
        x, y, z = volume.voxel_to_mm((i, j, k))
        value = float(volume.data[i, j, k])
        inside = ""
        if self.session.result is not None and self.session.result[i, j, k]:
            inside = f" · {self.organ_edit.text() or 'organ'}"
        return f"voxel ({i}, {j}, {k}) · RAS ({x:.1f}, {y:.1f}, {z:.1f}) mm · {value:.0f} {volume.unit}{inside}"

    def _on_cursor(self, ij) -> None:
        self.readout.setText(self.cursor_text(ij))

    # ================================================================== supports
    def set_tool(self, tool: str) -> None:
        self.view.set_tool(tool)
        self.tool_buttons[tool].setChecked(True)

    def _edit_mask(self, k: int):
        """Drawing target: slice k's support mask, created on the first stroke."""
        if self.session is None or self._run_job is not None:
            return None
        created = k not in self.session.supports
        mask = self.session.support_mask(k, create=True)
        if created:
            self._refresh_supports()
        return mask

    def _on_stroke_finished(self, k: int) -> None:
        """A brush stroke ended on slice ``k``: an outline closed around unpainted pixels is filled
        (users outline an organ), and the user is told."""
        from scipy import ndimage as ndi

        if self.session is None or k not in self.session.supports:
            return
        mask = self.session.supports[k]
        filled = ndi.binary_fill_holes(mask)
        added = int(np.count_nonzero(filled)) - int(np.count_nonzero(mask))
        if added > 0:
            mask[...] = filled
            self._on_mask_edited(k)
            self._show_warnings([f"closed outline on slice {k} filled ({added} px added); erase to undo"])

    def _on_mask_edited(self, k: int) -> None:
        self.view.set_overlay(self._overlay(k))
        self._refresh_supports()

    def make_support(self, k: int | None = None) -> None:
        """Make slice ``k`` (default: the current one) a support slice and pick the brush."""
        if self.session is None:
            return
        k = self.slice_index if k is None else k
        self.session.support_mask(k, create=True)
        self.set_tool(BRUSH)
        self._refresh_supports()
        self.set_slice(k)

    def set_support_mask(self, mask: np.ndarray, k: int | None = None) -> None:
        """Use ``mask`` ((X, Y) bool) as the support mask of slice ``k`` (default: current)."""
        k = self.slice_index if k is None else k
        self.session.set_support(k, mask)
        self._refresh_supports()
        self.set_slice(k)

    def load_support_file(self, path: str, label: int | None = None) -> None:
        """Read the current slice's support mask from a NIfTI (volume or slice) or 2D image."""
        self.session.load_support(self.slice_index, path, label=label)
        self._refresh_supports()
        self.set_slice(self.slice_index)

    def remove_support(self, k: int | None = None) -> None:
        if self.session is None:
            return
        k = self.slice_index if k is None else k
        self.session.remove_support(k)
        self._refresh_supports()
        self.set_slice(self.slice_index)

    def _refresh_supports(self) -> None:
        supports = sorted(self.session.supports) if self.session else []
        if not supports:
            self.supports_label.setText("none yet: go to a slice showing the organ and outline it")
        else:
            parts = [f"{k} ({int(self.session.supports[k].sum())} px)" for k in supports]
            self.supports_label.setText("support slices: " + ", ".join(parts))
        self._refresh_plot()

    # ================================================================== running
    def run(self) -> None:
        """Segment every slice from the support slices on a worker thread."""
        if self.session is None or self._run_job is not None:
            return
        try:
            supports = self.session.ready_supports()
        except Exception as error:  # noqa: BLE001
            self._run_failed(error)
            return
        self._show_error(None)
        self._show_warnings(self.session.support_warnings)
        name = self.model_combo.currentText().strip() or DEFAULT_MODEL
        session, keep = self.session, self.connected_check.isChecked()
        extent = (self.first_spin.value(), self.last_spin.value())
        cached = self._predictors.get(name)

        def job(job):
            from lobule.inference.fewshot.predict import SlicePredictor

            predictor = cached or SlicePredictor.from_checkpoint(name)
            self._predictors[name] = predictor  # plain dict write: reused by the next run even if this one stops
            mask = session.compute(predictor, supports, keep_connected=keep, progress=job.report,
                                   cancel=job.cancel_event, slice_range=extent)
            return session, predictor, name, mask, sorted(supports)

        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.result_label.setText("Segmenting…")
        self._run_job = start_job(job, self._run_done, self._run_failed, self._run_progress, self._run_cancelled)

    def cancel(self) -> None:
        if self._run_job is not None:
            self._run_job.cancel()

    def _run_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _finish_run(self) -> None:
        self._run_job = None
        self.run_button.setEnabled(self.session is not None)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)

    def _run_cancelled(self) -> None:
        self._finish_run()
        self.progress.setValue(0)
        self.result_label.setText("Cancelled; the previous result is kept.")

    def _run_done(self, outcome) -> None:
        session, predictor, name, mask, supports = outcome
        self._finish_run()
        self._predictors[name] = predictor
        if session is not self.session:  # another volume was opened meanwhile
            return
        self.progress.setValue(1)
        self.session.organ = self.organ_edit.text() or "organ"
        self.session.set_result(mask, supports, predictor.card.get("name", name))
        self._refresh_results()
        self._show_warnings(self.session.warnings)
        self.set_slice(self.slice_index)
        self.segmentationFinished.emit(float(self.session.volume_ml()))

    def _run_failed(self, error: BaseException) -> None:
        self._finish_run()
        message = error_message(error)
        self.result_label.setText("No result.")
        self._show_error(message)
        self.segmentationFailed.emit(message)

    def _refresh_results(self) -> None:
        ml = self.session.volume_ml() if self.session else None
        if ml is None:
            self.result_label.setText("No result yet.")
        else:
            slices = int(self.session.result.any(axis=(0, 1)).sum())
            organ = self.organ_edit.text() or "organ"
            self.result_label.setText(f"{organ}: {ml:.1f} mL in {slices} slice{'' if slices == 1 else 's'}")
        self._refresh_plot()

    def _refresh_plot(self) -> None:
        if self.session is None:
            self.area_curve.setData([], [])
            self.support_points.setData([], [])
            return
        areas = self.session.areas_mm2()
        if areas is None:
            self.area_curve.setData([], [])
        else:
            self.area_curve.setData(np.arange(len(areas)), areas / 100.0)
        supports = sorted(self.session.supports)
        height = [float(self.session.supports[k].sum()) * float(np.prod(self.session.volume.spacing[:2])) / 100.0
                  for k in supports]
        self.support_points.setData(supports, height)
        # areas start at 0; an empty plot keeps readable 0..1 axes
        top = max([float(areas.max()) / 100.0 if areas is not None and areas.size else 0.0, *height, 0.0])
        self.area_plot.setYRange(0, top * 1.05 if top > 0 else 1.0, padding=0.02)

    # ================================================================== exports
    def export_mask(self, path: str) -> Path:
        """Write the result as NIfTI with the input's geometry."""
        out = self.session.export_mask(path)
        self._exported_result = self.session.result
        return out

    def export_csv(self, path: str) -> Path:
        """Write the organ volume and slice areas as CSV."""
        self.session.organ = self.organ_edit.text() or "organ"
        out = self.session.export_csv(path)
        self._exported_result = self.session.result
        return out

    def has_unsaved_results(self) -> bool:
        """True when a segmentation result exists that was not exported (Quit asks first)."""
        session = self.session
        return (session is not None and session.result is not None
                and getattr(self, "_exported_result", None) is not session.result)

    # ================================================================== dialogs
    def _open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open volume", "", "Volumes (*.nii *.nii.gz *.dcm);;All files (*)")
        if path:
            self.open_path(path)

    def _open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM series folder")
        if path:
            self.open_path(path)

    def _load_mask_dialog(self) -> None:
        if self.session is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Load support mask", "",
                                              "Masks (*.nii *.nii.gz *.png *.tif *.tiff);;All files (*)")
        if not path:
            return
        try:
            self.load_support_file(path)
        except Exception as error:  # noqa: BLE001
            message = error_message(error)
            if "--label" not in message:
                self._show_error(message)
                return
            label, ok = QInputDialog.getInt(self, "Several labels", message.split(";")[0] + "\nOrgan label:", 1, 1, 255)
            if ok:
                self._guarded(lambda: self.load_support_file(path, label=label))

    def _export_mask_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", "mask.nii.gz", "NIfTI (*.nii.gz *.nii)")
        if path:
            self._guarded(lambda: self.export_mask(path))

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export numbers", "organ.csv", "CSV (*.csv)")
        if path:
            self._guarded(lambda: self.export_csv(path))

    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - shown, never a crash
            self._show_error(error_message(error))

    def _show_warnings(self, warnings: list[str]) -> None:
        """Show one-line warnings under the result (tiny support, ring filled, result on one slice)."""
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))

    def _show_error(self, message: str | None) -> None:
        self.banner.setVisible(bool(message))
        self.banner.setText(message or "")
