"""The FFA tab: open a fundus fluorescein angiogram, look at it (zoom, pan, brightness,
contrast, the paper's preprocessing beside it), segment capillary non-perfusion (CNP) with a
click, adjust the threshold, read the CNP area, export the mask and the numbers, and compare with
a ground-truth mask (Acc, Se, Sp, F1, AUC-ROC and the ROC curve).

Reading, preprocessing, the model and AUC run on worker threads; this module imports no torch.
The state lives in :class:`lobule.app.ffa.ffa_document.FFADocument`; the widgets only show it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from lobule.app.ffa.ffa_document import FFADocument, evaluate_roc, load_image, load_truth_choices
from lobule.app.common.errors import error_message as error_text
from lobule.app.common.folder_dialog import choose_folder
from lobule.app.ffa.ffa_worker import segment
from lobule.app.common.jobs import Job, start_job
from lobule.inference.errors import InputError
from lobule.inference.ffa.predictor import card_threshold

DEFAULT_MODEL = "ffa-cnp"
OVERLAY_RGBA = (255, 40, 40, 110)
FIELD_RGBA = (255, 210, 0, 255)  # yellow outline of the field of view
IMAGE_FILTER = "Angiograms (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.dcm *.dicom);;All files (*)"
LABEL_FILTER = "Ground truth (*.png *.json *.tif *.tiff *.bmp);;All files (*)"
SCALE_NONE, SCALE_UM, SCALE_FOV = "no scale (px only)", "um per pixel", "field of view (degrees)"


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


class FFATab(QWidget):
    """Tab widget for fundus fluorescein angiograms. ``open_path(path)`` opens an image.

    Signals: ``imageOpened(str)``, ``segmented()`` (a probability map arrived), ``evaluated()``
    (ground-truth metrics and ROC are shown), ``failed(str)`` (a one-line error, also shown in
    the tab).
    """

    imageOpened = Signal(str)
    segmented = Signal()
    evaluated = Signal()
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = FFADocument()
        self.model = DEFAULT_MODEL
        self._segmenter = None
        self._job: Job | None = None
        self._pending = 0  # background steps under way (loading, evaluating)
        self._threshold_from_user = False  # the user moved the slider: segmenting keeps their value
        self._truth_path: Path | None = None
        self.card_threshold: float | None = None  # the model card's calibrated threshold
        self._build()
        self._use_card_threshold()
        self._refresh()

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("k")
        self.view = self.canvas.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.pre_view = self.canvas.addViewBox(row=0, col=1, lockAspect=True, invertY=True, enableMenu=False)
        self.pre_view.setXLink(self.view)
        self.pre_view.setYLink(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.truth_item = pg.ImageItem(axisOrder="row-major")
        self.pre_item = pg.ImageItem(axisOrder="row-major")
        self.pre_overlay_item = pg.ImageItem(axisOrder="row-major")
        self.field_item = pg.ImageItem(axisOrder="row-major")
        for item in (self.image_item, self.field_item, self.truth_item, self.overlay_item):
            self.view.addItem(item)
        for item in (self.pre_item, self.pre_overlay_item):
            self.pre_view.addItem(item)
        self.canvas.ci.layout.setColumnStretchFactor(0, 1)
        self.canvas.ci.layout.setColumnStretchFactor(1, 1)

        panel = QWidget()
        side = QVBoxLayout(panel)
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._choose_image)
        self.file_label = QLabel("No image open")
        self.file_label.setWordWrap(True)
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #b36b00;")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        side.addWidget(self.open_button)
        side.addWidget(self.file_label)
        side.addWidget(self.warning_label)

        display = QGroupBox("Display")
        form = QFormLayout(display)
        self.brightness = QSlider(Qt.Orientation.Horizontal)
        self.brightness.setRange(-100, 100)
        self.contrast = QSlider(Qt.Orientation.Horizontal)
        self.contrast.setRange(20, 400)
        self.contrast.setValue(100)
        self.brightness.valueChanged.connect(self._apply_levels)
        self.contrast.valueChanged.connect(self._apply_levels)
        self.preprocessing_box = QCheckBox("Show preprocessing (gray, CLAHE, gamma 0.8)")
        self.preprocessing_box.setChecked(True)
        self.preprocessing_box.toggled.connect(self._show_preprocessing)
        self.overlay_box = QCheckBox("Show CNP overlay")
        self.overlay_box.setChecked(True)
        self.overlay_box.toggled.connect(self._refresh_overlay)
        self.truth_box = QCheckBox("Show ground truth outline")
        self.truth_box.setChecked(True)
        self.truth_box.toggled.connect(self._refresh_overlay)
        self.field_box = QCheckBox("Show field of view (metrics and areas count inside it)")
        self.field_box.setChecked(True)
        self.field_box.toggled.connect(self._refresh_overlay)
        self.reset_button = QPushButton("Fit to window")
        self.reset_button.clicked.connect(lambda: self.view.autoRange(padding=0.02))
        form.addRow("Brightness", self.brightness)
        form.addRow("Contrast", self.contrast)
        form.addRow(self.preprocessing_box)
        form.addRow(self.overlay_box)
        form.addRow(self.truth_box)
        form.addRow(self.field_box)
        form.addRow(self.reset_button)
        side.addWidget(display)

        seg = QGroupBox("CNP segmentation")
        seg_layout = QFormLayout(seg)
        self.model_label = QLabel(self.model)
        self.model_button = QPushButton("Model…")
        self.model_button.clicked.connect(self._choose_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_label, 1)
        model_row.addWidget(self.model_button)
        self.run_button = QPushButton("Segment CNP")
        self.run_button.clicked.connect(self.run_segmentation)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_segmentation)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(50)
        self.threshold_slider.valueChanged.connect(self._threshold_changed)
        self.threshold_label = QLabel("0.50")
        self.threshold_reset = QPushButton("Model's")
        self.threshold_reset.setToolTip("Back to the operating threshold calibrated in the model card")
        self.threshold_reset.clicked.connect(self.reset_threshold)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold_slider, 1)
        threshold_row.addWidget(self.threshold_label)
        threshold_row.addWidget(self.threshold_reset)
        self.scale_kind = QComboBox()
        self.scale_kind.addItems([SCALE_NONE, SCALE_UM, SCALE_FOV])
        self.scale_value = QDoubleSpinBox()
        self.scale_value.setDecimals(3)
        self.scale_value.setRange(0.001, 1000.0)
        self.scale_value.setValue(30.0)
        self.scale_kind.currentTextChanged.connect(self._scale_changed)
        self.scale_value.valueChanged.connect(self._scale_changed)
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale_kind, 1)
        scale_row.addWidget(self.scale_value)
        self.area_label = QLabel("")
        self.area_label.setWordWrap(True)
        self.export_button = QPushButton("Export mask + numbers…")
        self.export_button.clicked.connect(self._choose_export)
        seg_layout.addRow("Model", model_row)
        seg_layout.addRow(run_row)
        seg_layout.addRow(self.progress)
        seg_layout.addRow("Threshold", threshold_row)
        seg_layout.addRow("Scale", scale_row)
        seg_layout.addRow(self.area_label)
        seg_layout.addRow(self.export_button)
        side.addWidget(seg)

        truth = QGroupBox("Ground truth")
        truth_layout = QVBoxLayout(truth)
        self.truth_button = QPushButton("Open ground-truth mask…")
        self.truth_button.clicked.connect(self._choose_truth)
        self.truth_class = QComboBox()
        self.truth_class.setToolTip("Which class (label, palette index, value or colour) of the file is CNP")
        self.truth_class.activated.connect(self._truth_class_chosen)
        class_row = QHBoxLayout()
        class_row.addWidget(QLabel("CNP class"))
        class_row.addWidget(self.truth_class, 1)
        self.metrics_label = QLabel("")
        self.metrics_label.setWordWrap(True)
        self.roc_plot = pg.PlotWidget()
        self.roc_plot.setMinimumHeight(160)
        self.roc_plot.setLabel("bottom", "1 - specificity")
        self.roc_plot.setLabel("left", "sensitivity")
        self.roc_plot.setXRange(0, 1, padding=0.02)
        self.roc_plot.setYRange(0, 1, padding=0.02)
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.roc_curve = self.roc_plot.plot([], [], pen=pg.mkPen((40, 120, 220), width=2))
        self.roc_point = self.roc_plot.plot([], [], pen=None, symbol="o", symbolBrush=(220, 40, 40), symbolSize=8)
        truth_layout.addWidget(self.truth_button)
        truth_layout.addLayout(class_row)
        truth_layout.addWidget(self.metrics_label)
        truth_layout.addWidget(self.roc_plot)
        side.addWidget(truth)
        side.addWidget(self.error_label)
        side.addStretch(1)
        panel.setFixedWidth(380)
        layout = QHBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(panel)

    # ----------------------------------------------------------------- opening
    def open_path(self, path: str) -> None:
        """Open an angiogram (JPEG, PNG, TIFF 8/16 bit, DICOM); reading happens on a worker.

        Raises
        ------
        InputError
            At once if ``path`` does not exist; later errors are shown in the tab and emitted as
            ``failed``.
        """
        path = str(path)
        if not Path(path).exists():
            raise InputError(f"image not found: {path}")
        self.cancel_segmentation()
        self._start(lambda: load_image(path), self._on_loaded)
        self.file_label.setText(f"Opening {Path(path).name}…")

    def open_truth(self, path: str, label_class=None) -> None:
        """Open a ground-truth mask (palette PNG, LabelMe JSON, class map, binary mask) for the
        open image. The classes the file holds fill the "CNP class" chooser; ``label_class``
        (a LabelMe label, palette index / value or (r, g, b) colour) picks one, else LabelMe "NP"
        or the first class is used and the user can pick another."""
        if self.document.image is None:
            self._fail("open an image before its ground truth")
            return
        shape = self.document.image.angiogram.shape
        self._start(lambda: load_truth_choices(path, shape, label_class), self._on_truth)

    def is_ready(self) -> bool:
        """True when no background work is under way (for screenshots and tests)."""
        return self._pending == 0 and self._job is None

    def _start(self, fn, on_done) -> None:
        """Run ``fn`` on a worker; ``on_done(result)`` or an error line back on this thread."""
        self._pending += 1
        self._refresh()

        def finish() -> None:
            self._pending -= 1

        start_job(lambda job: fn(), lambda result: (finish(), on_done(result)),
                  lambda error: (finish(), self._fail(error_text(error))))

    def _on_loaded(self, loaded) -> None:
        self.document.set_image(loaded)
        angiogram = loaded.angiogram
        self.image_item.setImage(angiogram.rgb8, autoLevels=False)
        self.pre_item.setImage(loaded.preprocessed, autoLevels=False, levels=(0.0, 1.0))
        self._apply_levels()
        if angiogram.um_per_px is not None:
            self.scale_kind.setCurrentText(SCALE_UM)
            self.scale_value.setValue(angiogram.um_per_px)
        self.view.autoRange(padding=0.02)
        height, width = angiogram.shape
        self.file_label.setText(f"{angiogram.path.name}: {width}x{height} px, {angiogram.bit_depth}-bit")
        self.warning_label.setText("\n".join(f"Warning: {w}" for w in angiogram.warnings))
        self.error_label.setText("")
        self._refresh()
        self.imageOpened.emit(str(angiogram.path))

    def _on_truth(self, result) -> None:
        truth, path, choices, chosen = result
        self._truth_path = path
        self.truth_class.blockSignals(True)
        self.truth_class.clear()
        for value, text in choices:
            self.truth_class.addItem(text, value)
        self.truth_class.setCurrentIndex(next((i for i, (v, _) in enumerate(choices) if v == chosen), 0))
        self.truth_class.blockSignals(False)
        self.document.set_truth(truth, path)
        self.error_label.setText("")
        self._refresh()
        self._evaluate()

    # ----------------------------------------------------------------- segmentation
    def run_segmentation(self) -> None:
        """Start CNP segmentation of the open image on a worker thread."""
        if self.document.image is None:
            self._fail("open an angiogram first")
            return
        if self._job is not None:
            return
        gray8, model, segmenter = self.document.image.angiogram.gray8, self.model, self._segmenter
        self.progress.setRange(0, 0)  # busy until the first tile batch reports
        self.error_label.setText("")
        self._job = start_job(lambda job: segment(job, gray8, model, segmenter), self._on_segmented,
                              lambda error: self._job_ended(error_text(error)), self._on_progress,
                              lambda: self._job_ended("segmentation cancelled"))
        self._refresh()

    def cancel_segmentation(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _job_ended(self, message: str | None = None) -> None:
        self._job = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if message:
            self._fail(message)
        self._refresh()

    def has_unsaved_results(self) -> bool:
        """True when a segmentation was made and not exported since (Quit asks first)."""
        return getattr(self, "_unsaved", False) and self.document.mask() is not None

    def _on_segmented(self, result) -> None:
        self._unsaved = True
        self._segmenter = result.segmenter
        self._job_ended()
        # the threshold shown is the one used: the card's was shown before segmenting, or the user's
        self.document.set_probability(result.probability, result.segmenter.name)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._refresh()
        self.segmented.emit()
        self._evaluate()

    def _evaluate(self) -> None:
        doc = self.document
        if doc.probability is None or doc.truth is None or doc.image is None:
            if doc.truth is not None:
                self.evaluated.emit()
            return
        probability, truth, field = doc.probability, doc.truth, doc.image.field

        def on_done(roc) -> None:
            if doc.probability is probability and doc.truth is truth:
                doc.roc = roc
                self._refresh()
                self.evaluated.emit()

        self._start(lambda: evaluate_roc(probability, truth, field), on_done)

    # ----------------------------------------------------------------- controls
    def _threshold_changed(self, value: int) -> None:
        self.document.threshold = value / 100.0
        self._threshold_from_user = True
        self._refresh()

    def set_threshold(self, threshold: float) -> None:
        """Set the CNP threshold (0.01-0.99) as the slider does."""
        self.threshold_slider.setValue(int(round(threshold * 100)))

    def _show_threshold(self, threshold: float) -> None:
        self.document.threshold = threshold
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(int(round(threshold * 100)))
        self.threshold_slider.blockSignals(False)

    def _use_card_threshold(self) -> None:
        """Show (and use) the model card's calibrated threshold unless the user chose one."""
        self.card_threshold = card_threshold(self.model)
        if self.card_threshold is not None and not self._threshold_from_user:
            self._show_threshold(self.card_threshold)

    def reset_threshold(self) -> None:
        """Back to the model card's calibrated threshold."""
        self._threshold_from_user = False
        self._use_card_threshold()
        self._refresh()

    def _truth_class_chosen(self, index: int) -> None:
        if self._truth_path is not None and index >= 0:
            self.open_truth(str(self._truth_path), self.truth_class.itemData(index))

    def _scale_changed(self, *_):
        kind = self.scale_kind.currentText()
        self.document.um_per_px = self.scale_value.value() if kind == SCALE_UM else None
        self.document.fov_degrees = self.scale_value.value() if kind == SCALE_FOV else None
        self._refresh()

    def set_scale(self, um_per_px: float | None = None, fov_degrees: float | None = None) -> None:
        """Set the scale as the scale controls do (at most one of the two)."""
        if um_per_px is not None:
            self.scale_kind.setCurrentText(SCALE_UM)
            self.scale_value.setValue(um_per_px)
        elif fov_degrees is not None:
            self.scale_kind.setCurrentText(SCALE_FOV)
            self.scale_value.setValue(fov_degrees)
        else:
            self.scale_kind.setCurrentText(SCALE_NONE)
        self._scale_changed()

    def _apply_levels(self, *_):
        """Brightness shifts and contrast narrows the display window of the original image."""
        width = 255.0 / (self.contrast.value() / 100.0)
        centre = 127.5 - self.brightness.value() / 100.0 * 127.5
        self.image_item.setLevels((centre - width / 2.0, centre + width / 2.0))

    def _show_preprocessing(self, shown: bool) -> None:
        self.pre_view.setVisible(shown)
        self.canvas.ci.layout.setColumnStretchFactor(1, 1 if shown else 0)
        self.canvas.ci.layout.setColumnMaximumWidth(1, 1e6 if shown else 0)

    # ----------------------------------------------------------------- refresh
    def _refresh(self) -> None:
        doc = self.document
        has_image = doc.image is not None
        running = self._job is not None
        self.run_button.setEnabled(has_image and not running)
        self.cancel_button.setEnabled(running)
        self.truth_button.setEnabled(has_image)
        self.export_button.setEnabled(doc.probability is not None)
        self.threshold_label.setText(f"{doc.threshold:.2f}")
        card = self.card_threshold
        self.threshold_reset.setEnabled(card is not None and abs(doc.threshold - card) > 1e-9)
        self.threshold_slider.setToolTip(
            f"CNP where probability >= {doc.threshold:.2f}"
            + (f"; the model card's calibrated threshold is {card:.2f}" if card is not None else ""))
        self.truth_class.setEnabled(self.truth_class.count() > 1)
        self._refresh_overlay()
        area = doc.area()
        if area is None:
            self.area_label.setText("Segment to measure the CNP area." if has_image else "")
        else:
            text = f"CNP area: {area['cnp_area_px']:,} px"
            if area["cnp_area_mm2"] is not None:
                text += f" = {area['cnp_area_mm2']:.3f} mm²  ({area['um_per_px']:.2f} µm/px)"
            if area["cnp_fraction_of_field"] is not None:
                text += f"\n{100 * area['cnp_fraction_of_field']:.1f} % of the field of view"
            if area["cnp_area_mm2"] is None:
                text += "\n(mm² needs the scale: µm per pixel or the camera's field of view in degrees)"
            self.area_label.setText(text)
        metrics = doc.threshold_metrics()
        if metrics is None:
            self.metrics_label.setText(
                f"Ground truth: {doc.truth_path.name} (segment to compare)" if doc.truth is not None else ""
            )
        else:
            self.metrics_label.setText(
                f"Acc {_fmt(metrics['accuracy'])}   Se {_fmt(metrics['sensitivity'])}   "
                f"Sp {_fmt(metrics['specificity'])}\nF1 {_fmt(metrics['f1'])}   AUC-ROC {_fmt(metrics['auc_roc'])}"
                f"   (inside the field of view, threshold {doc.threshold:.2f})"
            )
        if doc.roc is not None:
            self.roc_curve.setData(doc.roc.fpr, doc.roc.tpr)
        else:
            self.roc_curve.setData([], [])
        if metrics is not None and not math.isnan(metrics["specificity"]) and not math.isnan(metrics["sensitivity"]):
            self.roc_point.setData([1.0 - metrics["specificity"]], [metrics["sensitivity"]])
        else:
            self.roc_point.setData([], [])

    def _refresh_overlay(self, *_):
        doc = self.document
        if doc.image is None or not self.field_box.isChecked() or doc.image.field.all():
            self.field_item.clear()
        else:
            from scipy import ndimage

            field = doc.image.field
            edge = field & ~ndimage.binary_erosion(field, iterations=2)
            rgba = np.zeros((*edge.shape, 4), np.uint8)
            rgba[edge] = FIELD_RGBA
            self.field_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        mask = doc.mask()
        if mask is None or not self.overlay_box.isChecked():
            self.overlay_item.clear()
            self.pre_overlay_item.clear()
        else:
            rgba = np.zeros((*mask.shape, 4), np.uint8)
            rgba[mask] = OVERLAY_RGBA
            self.overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))
            self.pre_overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        if doc.truth is None or not self.truth_box.isChecked():
            self.truth_item.clear()
        else:
            from scipy import ndimage

            edge = doc.truth & ~ndimage.binary_erosion(doc.truth, iterations=1)
            rgba = np.zeros((*edge.shape, 4), np.uint8)
            rgba[edge] = (40, 230, 255, 255)  # cyan: distinct from the red CNP overlay
            self.truth_item.setImage(rgba, autoLevels=False, levels=(0, 255))

    def _fail(self, message: str) -> None:
        self.error_label.setText(message)
        if self.document.image is None:
            self.file_label.setText("No image open")
        self._refresh()
        self.failed.emit(message)

    # ----------------------------------------------------------------- export
    def export_to(self, folder: str | Path) -> list[Path]:
        """Write ``<stem>_cnp_mask.png`` (0/255), ``<stem>_cnp_overlay.png`` and
        ``<stem>_cnp.csv`` / ``.json`` into ``folder``; returns the paths.

        Raises
        ------
        InputError
            Nothing segmented yet, or the folder does not exist.
        """
        from lobule.inference.ffa.export import write_csv, write_json, write_mask_png, write_overlay_png

        doc = self.document
        mask = doc.mask()
        if mask is None or doc.image is None:
            raise InputError("nothing to export: segment the image first")
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"export folder not found: {folder}")
        numbers = doc.numbers()
        paths = [
            write_mask_png(mask, folder / f"{doc.stem}_cnp_mask.png"),
            write_overlay_png(doc.image.angiogram.rgb8, mask, folder / f"{doc.stem}_cnp_overlay.png"),
            write_csv([numbers], folder / f"{doc.stem}_cnp.csv"),
            write_json(numbers, folder / f"{doc.stem}_cnp.json"),
        ]
        self._unsaved = False
        return paths

    # ----------------------------------------------------------------- dialogs
    def _choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open angiogram", "", IMAGE_FILTER)
        if path:
            try:
                self.open_path(path)
            except InputError as error:
                self._fail(str(error))

    def _choose_truth(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open ground-truth mask", "", LABEL_FILTER)
        if path:
            self.open_truth(path)

    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a CNP model card", "", "Model cards (*.json)")
        if path:
            self.set_model(path)

    def set_model(self, name_or_card: str) -> None:
        """Use another checkpoint (installed name or card path) for the next segmentation."""
        self.model = str(name_or_card)
        self._segmenter = None
        self.model_label.setText(Path(self.model).stem if self.model.endswith(".json") else self.model)
        self._use_card_threshold()
        self._refresh()

    def _choose_export(self) -> None:
        folder = choose_folder(self, "Export CNP mask and numbers to (choose or type a folder)")
        if folder is not None:
            try:
                paths = self.export_to(folder)
            except (InputError, OSError) as error:
                self._fail(error_text(error))
            else:
                self.error_label.setText("")
                self.file_label.setText(self.file_label.text().split("\n")[0] + f"\nExported {len(paths)} files to {folder}")
