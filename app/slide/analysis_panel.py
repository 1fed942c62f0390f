"""The Slide tab's analysis side panel: Analyze (model, area, progress, Cancel) on top, then
tabs for the numbers of the selected region, the class legend with overlay opacity and the
regions, and Export and Fine-tune at the bottom (all in sight without scrolling). It only calls the :class:`~lobule.app.slide.analysis_controller.AnalysisController` and
listens to its signals."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QMessageBox, QProgressBar, QPushButton, QScrollArea,
                               QTabWidget, QVBoxLayout, QWidget)

from lobule.app.slide.analysis_session import CLASSICAL, WHOLE_TISSUE, default_model, model_names
from lobule.app.common.folder_dialog import choose_folder
from lobule.app.slide.legend import LegendWidget
from lobule.app.slide.results_panel import ResultsPanel

REGION_FILTER = "Regions (*.geojson *.json);;All files (*)"


class AnalysisPanel(QScrollArea):
    """Side panel of the analysis.

    Signals
    -------
    selectedRegionChanged(str) : the region whose numbers are shown (and that is highlighted).
    finetuneRequested() : the user pressed "Fine-tune on my corrections".
    """

    selectedRegionChanged = Signal(str)
    finetuneRequested = Signal()

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.selected = WHOLE_TISSUE
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._build_run_box())
        # Classes, Numbers and Regions share one tabbed area so that Analyze, the class table,
        # the regions and Export are all in sight without scrolling the panel
        self.sections = QTabWidget()
        self.sections.setDocumentMode(True)
        self.legend = LegendWidget(controller.opacity)
        self.legend.opacityChanged.connect(controller.set_opacity)
        self.legend.overlayToggled.connect(controller.set_overlay_visible)
        self.legend.classToggled.connect(controller.set_class_visible)
        self.results = ResultsPanel()
        self.results.settingsChanged.connect(controller.set_settings)
        numbers = QScrollArea()
        numbers.setWidgetResizable(True)
        numbers.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        numbers.setFrameShape(QFrame.Shape.NoFrame)
        numbers.setWidget(self.results)
        self.numbers_area = numbers
        classes = QWidget()
        classes_layout = QVBoxLayout(classes)
        classes_layout.setContentsMargins(2, 4, 2, 2)
        classes_layout.addWidget(self.legend)
        classes_layout.addStretch(1)
        self.sections.addTab(numbers, "Numbers")
        self.sections.addTab(classes, "Classes")
        self.sections.addTab(self._build_regions_box(), "Regions")
        layout.addWidget(self.sections, 1)
        layout.addWidget(self._build_output_box())
        self.setWidget(body)
        self.setMinimumWidth(360)
        self.interactive = QGuiApplication.platformName() not in ("offscreen", "minimal")
        self._select_when_listed: str | None = None

        controller.stateChanged.connect(self.update_state)
        controller.stage.connect(self.stage_label.setText)
        controller.progress.connect(self._on_progress)
        controller.regionsChanged.connect(self._fill_regions)
        controller.regionAdded.connect(self._on_region_added)
        controller.resultChanged.connect(self._on_result)
        controller.qualityChanged.connect(self.results.set_quality)
        self.update_state()

    # --- construction -----------------------------------------------------------------------
    def _build_run_box(self) -> QGroupBox:
        box = QGroupBox("Analysis")
        grid = QGridLayout(box)
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Segmentation model: installed liver H&E checkpoints, or the classical "
                                    "colour-phase labeller (no learned weights)")
        self.refresh_models()
        self.area_combo = QComboBox()
        self.area_combo.setToolTip("Analyse the whole tissue, or only the tissue inside a drawn region "
                                   "(the result replaces the saved class map of this model)")
        self.analyze_button = QPushButton("Analyze")
        self.analyze_button.setDefault(True)
        self.analyze_button.clicked.connect(self.start_analysis)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel_analysis)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m tiles")
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        self.stage_label.setStyleSheet("color: #555;")
        grid.addWidget(QLabel("Model"), 0, 0)
        grid.addWidget(self.model_combo, 0, 1, 1, 2)
        grid.addWidget(QLabel("Area"), 1, 0)
        grid.addWidget(self.area_combo, 1, 1, 1, 2)
        grid.addWidget(self.analyze_button, 2, 1)
        grid.addWidget(self.cancel_button, 2, 2)
        grid.addWidget(self.progress, 3, 0, 1, 3)
        grid.addWidget(self.stage_label, 4, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        return box

    def _build_regions_box(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(2, 4, 2, 2)
        self.region_list = QListWidget()
        self.region_list.setToolTip("Click a region to see its numbers; double-click to rename. Draw regions with "
                                    "the rectangle (R), polygon (P) and freehand (F) tools.")
        self.region_list.currentItemChanged.connect(self._on_region_selected)
        self.region_list.itemChanged.connect(self._on_region_renamed)
        layout.addWidget(self.region_list)
        row = QHBoxLayout()
        self.delete_region_button = QPushButton("Delete")
        self.delete_region_button.clicked.connect(self._delete_region)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add regions from a QuPath GeoJSON or LabelMe JSON file (level-0 pixels)")
        self.import_button.clicked.connect(self._import_regions)
        self.export_regions_button = QPushButton("Export GeoJSON…")
        self.export_regions_button.setToolTip("Write the regions and their class masks as QuPath GeoJSON")
        self.export_regions_button.clicked.connect(self._export_regions)
        for button in (self.delete_region_button, self.import_button, self.export_regions_button):
            row.addWidget(button)
        layout.addLayout(row)
        return box

    def _build_output_box(self) -> QWidget:
        box = QGroupBox("Results")
        row = QHBoxLayout(box)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write summary.json, regions.csv, classes.geojson and labels.tif into a "
                                      "folder named after the slide (Ctrl+E)")
        self.export_button.clicked.connect(self._export)
        self.finetune_button = QPushButton("Fine-tune on my corrections…")
        self.finetune_button.clicked.connect(self.finetuneRequested)
        row.addWidget(self.export_button)
        row.addWidget(self.finetune_button)
        return box

    # --- models -----------------------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        names = model_names()
        current = select or self.model_combo.currentText() or default_model(names)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(names)
        self.model_combo.setCurrentIndex(names.index(current) if current in names else names.index(default_model(names)))
        self.model_combo.blockSignals(False)
        self.controller.preferred_model = self.model_combo.currentText()

    def model(self) -> str:
        return self.model_combo.currentText()

    # --- analysis ---------------------------------------------------------------------------
    def start_analysis(self) -> bool:
        """Analyze with the chosen model on the chosen area."""
        region = self.controller.region(self.area_combo.currentText()) if self.area_combo.currentIndex() > 0 else None
        self.progress.setRange(0, 0)  # busy until the first batch tells the tile count (not "0 / 1 tiles")
        self.progress.setValue(0)
        return self.controller.analyze(self.model(), region)

    def _on_progress(self, event) -> None:
        self.progress.setRange(0, max(1, event.total))
        self.progress.setValue(event.done)
        eta = "" if event.eta_s is None else f", about {event.eta_s:.0f} s left"
        self.stage_label.setText(f"{event.done} of {event.total} tiles, {event.tiles_per_s:.2f} tiles/s{eta}")

    # --- regions ----------------------------------------------------------------------------
    def _on_region_added(self, name: str) -> None:
        """A region was drawn: select it once it is listed (its numbers follow)."""
        self._select_when_listed = name
        if self.controller.region(name) is not None:
            self._fill_regions()

    def _fill_regions(self) -> None:
        regions = self.controller.regions()
        names = [r.name for r in regions]
        if self._select_when_listed in names:
            self.selected, self._select_when_listed = self._select_when_listed, None
            self.sections.setCurrentWidget(self.numbers_area)
        if self.selected not in names:
            self.selected = names[0] if names else WHOLE_TISSUE
        self.region_list.blockSignals(True)
        self.region_list.clear()
        for region in regions:
            item = QListWidgetItem(region.name)
            item.setData(Qt.ItemDataRole.UserRole, region.name)
            if region is not self.controller.default_region:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.region_list.addItem(item)
            if region.name == self.selected:
                self.region_list.setCurrentItem(item)
        self.region_list.blockSignals(False)
        current_area = self.area_combo.currentText()
        self.area_combo.clear()
        self.area_combo.addItem("Whole tissue")
        self.area_combo.addItems([r.name for r in self.controller.drawn_regions()])
        index = self.area_combo.findText(current_area)
        self.area_combo.setCurrentIndex(max(0, index))
        self.selectedRegionChanged.emit(self.selected)
        self._show_selected()
        self.update_state()

    def select_region(self, name: str) -> None:
        self.selected = name
        for row in range(self.region_list.count()):
            item = self.region_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                self.region_list.setCurrentItem(item)
        self.selectedRegionChanged.emit(name)
        self._show_selected()
        self.update_state()

    def _on_region_selected(self, item, _previous=None) -> None:
        if item is not None:
            self.selected = item.data(Qt.ItemDataRole.UserRole)
            self.selectedRegionChanged.emit(self.selected)
            self._show_selected()
            self.update_state()

    def _on_region_renamed(self, item) -> None:
        old, new = item.data(Qt.ItemDataRole.UserRole), item.text().strip()
        if new and new != old:
            self.selected = new
            self.controller.rename_region(old, new)

    def _delete_region(self) -> None:
        if self.selected and self.controller.region(self.selected) is not self.controller.default_region:
            self.controller.remove_region(self.selected)

    def _import_regions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import regions", "", REGION_FILTER)
        if path:
            self.controller.import_regions(path)

    def _export_regions(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export regions", "regions.geojson", "GeoJSON (*.geojson)")
        if path:
            self.controller.export_regions(path)

    # --- numbers ------------------------------------------------------------------------------
    def _on_result(self, name: str) -> None:
        if name == self.selected:
            self._show_selected()

    def _show_selected(self) -> None:
        result = self.controller.results.get(self.selected)
        if result is None and self.controller.store is None:
            self.results.set_result(None)
        else:
            self.results.set_result(result, self.selected)
        self.legend.set_values(result)

    # --- output -----------------------------------------------------------------------------
    def export_folder(self, parent: str | Path) -> Path | None:
        """Where an export into ``parent`` goes: a folder named after the slide inside it (so a
        second slide never overwrites the first); None without a slide."""
        document = self.controller.document
        return None if document is None else Path(parent).expanduser() / Path(document.reader.path).stem

    def export_into(self, parent: str | Path) -> Path | None:
        """Export into ``parent``/<slide name>/ (folders are created). When that folder already
        holds files, asks before replacing them (only when interactive: without a screen the
        export goes ahead). Returns the folder, or None when nothing was started."""
        out = self.export_folder(parent)
        if out is None or self.controller.exporting is not None:
            return None  # no slide, or an export still being written (the controller says so)
        if self.interactive and out.is_dir() and any(out.iterdir()):
            answer = QMessageBox.question(
                self, "Replace the export?",
                f"{out} already holds an export. Replace its files with this analysis?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return None
        return out if self.controller.export(out) else None

    def export_dialog(self) -> None:
        """File > Export: choose the folder that receives one folder per slide."""
        if not self.export_button.isEnabled():
            return
        last = self.controller.last_export
        start = str(last.parent if last is not None else Path.home())
        parent = choose_folder(
            self, "Export the analysis: choose or type a folder (a folder named after the slide is made inside)", start)
        if parent is not None:
            self.export_into(parent)

    def _export(self) -> None:
        self.export_dialog()

    # --- state --------------------------------------------------------------------------------
    def update_state(self) -> None:
        c = self.controller
        has_slide = c.document is not None
        running = c.running
        analysed = c.store is not None
        self.analyze_button.setEnabled(has_slide and not running)
        self.cancel_button.setEnabled(running)
        self.model_combo.setEnabled(not running)
        self.area_combo.setEnabled(not running)
        self.progress.setVisible(running or self.progress.value() > 0)
        self.export_button.setEnabled(analysed and not running and c.exporting is None)
        self.legend.setEnabled(analysed)
        is_drawn = c.region(self.selected) is not None and c.region(self.selected) is not c.default_region
        self.delete_region_button.setEnabled(is_drawn and not running)
        self.import_button.setEnabled(has_slide)
        self.export_regions_button.setEnabled(has_slide and bool(c.drawn_regions()))
        finetunable = c.session is not None and c.store.model.get("name") != CLASSICAL
        self.finetune_button.setEnabled(finetunable and not running)
        self.finetune_button.setToolTip(
            "Teach the model your corrections (runs in the background)" if finetunable else
            "Needs a class map from a trained model (the classical labeller has no weights to fine-tune)")
