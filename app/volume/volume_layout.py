"""The MRI/CT tab's widgets and their layout: the slice view with its slider on the left, the side
panel (volume, slicing and window / level, support slices, segmentation, the area plot and the
exports) on the right.

:class:`VolumeTabLayout` only builds widgets and connects them to the tab's actions
(:class:`lobule.app.volume.volume_tab.VolumeTab`, which inherits it); what the actions do lives
in the tab.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lobule.app.volume.volume_view import BRUSH, ERASE, NAVIGATE, POLYGON, VolumeView
from lobule.inference.volume.volume import AXES
from lobule.inference.volume.window import PRESET_NAMES


class VolumeTabLayout:
    """Builds the tab's widgets as attributes of the tab (``self`` is the :class:`VolumeTab`)."""

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020; font-weight: bold")
        self.banner.hide()
        self.view = VolumeView()
        self.view.set_edit_target(self._edit_mask)
        self.view.maskEdited.connect(self._on_mask_edited)
        self.view.cursorMoved.connect(self._on_cursor)
        self.view.sliceStep.connect(lambda step: self.slider.setValue(self.slider.value() + step))
        self.view.strokeFinished.connect(self._on_stroke_finished)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.set_slice)
        self.slice_label = QLabel("no volume")
        self.slice_label.setMinimumWidth(210)
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Slice"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.slice_label)
        left = QVBoxLayout()
        left.addWidget(self.banner)
        left.addWidget(self.view, 1)
        left.addLayout(slider_row)
        left.addWidget(self.readout)

        panel = QVBoxLayout()
        panel.addWidget(self._build_file_box())
        panel.addWidget(self._build_display_box())
        panel.addWidget(self._build_support_box())
        panel.addWidget(self._build_run_box())
        self.area_plot = pg.PlotWidget()
        self.area_plot.setMinimumHeight(150)
        # its size hint (480 px) made the panel taller than a 1000 px window: the plot's axis and
        # the export buttons were below the fold; now it takes the height that is left
        self.area_plot.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        self.area_plot.setLabel("bottom", "slice")
        self.area_plot.setLabel("left", "area", units="cm²")
        self.area_plot.setMouseEnabled(x=False, y=False)
        for name in ("bottom", "left"):  # no "(x0.001)" scale factors on an empty plot
            self.area_plot.getAxis(name).enableAutoSIPrefix(False)
        self.area_plot.setXRange(0, 1, padding=0.02)
        self.area_plot.setYRange(0, 1, padding=0.02)
        self.area_curve = self.area_plot.plot([], [], pen=pg.mkPen((255, 80, 80), width=2), fillLevel=0,
                                              brush=(255, 80, 80, 60))
        self.support_points = pg.ScatterPlotItem(size=8, brush=(40, 220, 90), pen=None)
        self.area_plot.addItem(self.support_points)
        self.slice_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen((200, 200, 200), style=Qt.PenStyle.DashLine))
        self.area_plot.addItem(self.slice_marker)
        panel.addWidget(self.area_plot, 1)
        export_row = QHBoxLayout()
        self.export_mask_button = QPushButton("Export mask (NIfTI)…")
        self.export_mask_button.clicked.connect(self._export_mask_dialog)
        self.export_csv_button = QPushButton("Export numbers (CSV)…")
        self.export_csv_button.clicked.connect(self._export_csv_dialog)
        export_row.addWidget(self.export_mask_button)
        export_row.addWidget(self.export_csv_button)
        panel.addLayout(export_row)
        side = QWidget()
        side.setLayout(panel)
        scroll = QScrollArea()  # a short window scrolls the panel instead of squashing its rows
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(356)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(scroll)
        for key, step in ((Qt.Key.Key_PageUp, 1), (Qt.Key.Key_PageDown, -1)):
            QShortcut(QKeySequence(key), self, activated=lambda s=step: self.slider.setValue(self.slider.value() + s))

    def _build_file_box(self) -> QGroupBox:
        box = QGroupBox("Volume")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        open_file = QPushButton("Open file…")
        open_file.clicked.connect(self._open_file_dialog)
        open_folder = QPushButton("Open DICOM folder…")
        open_folder.clicked.connect(self._open_folder_dialog)
        row.addWidget(open_file)
        row.addWidget(open_folder)
        layout.addLayout(row)
        self.info_label = QLabel("Open a NIfTI file or a DICOM series.")
        self.info_label.setWordWrap(True)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setStyleSheet("color: #8a6d00")
        layout.addWidget(self.info_label)
        layout.addWidget(self.notes_label)
        self.time_row = QWidget()
        time_layout = QHBoxLayout(self.time_row)
        time_layout.setContentsMargins(0, 0, 0, 0)
        time_layout.addWidget(QLabel("Time point (4D)"))
        self.time_spin = QSpinBox()
        self.time_spin.setKeyboardTracking(False)
        self.time_spin.valueChanged.connect(self._time_point_changed)
        time_layout.addWidget(self.time_spin, 1)
        self.time_row.hide()
        layout.addWidget(self.time_row)
        return box

    def _build_display_box(self) -> QGroupBox:
        box = QGroupBox("Slicing and window / level")
        outer = QVBoxLayout(box)
        slicing = QHBoxLayout()
        slicing.addWidget(QLabel("Slicing"))
        self.axis_combo = QComboBox()
        self.axis_combo.addItems(AXES)
        self.axis_combo.setToolTip("acquisition: the slices as stored (DICOM slice normal, NIfTI slice axis); "
                                   "axial / coronal / sagittal: reformatted views")
        self.axis_combo.currentTextChanged.connect(self.set_axis)
        slicing.addWidget(self.axis_combo, 1)
        outer.addLayout(slicing)
        self.plane_label = QLabel(" ")
        self.plane_label.setWordWrap(True)
        outer.addWidget(self.plane_label)
        layout = QHBoxLayout()
        outer.addLayout(layout)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESET_NAMES)
        self.preset_combo.currentTextChanged.connect(self.set_preset)
        fit = QPushButton("Fit")
        fit.clicked.connect(self.view.fit)
        self.levels_label = QLabel()
        layout.addWidget(self.preset_combo, 1)
        layout.addWidget(self.levels_label)
        layout.addWidget(fit)
        return box

    def _build_support_box(self) -> QGroupBox:
        box = QGroupBox("Support slices")
        layout = QVBoxLayout(box)
        tools = QHBoxLayout()
        self.tool_group = QButtonGroup(self)
        self.tool_buttons = {}
        for tool, text, tip in ((NAVIGATE, "Pan", "drag to pan; wheel: next/previous slice; Ctrl+wheel: zoom"),
                                (BRUSH, "Brush", "paint the organ (makes this slice a support)"),
                                (ERASE, "Erase", "erase from the support mask"),
                                (POLYGON, "Polygon", "click vertices, double-click or Enter to fill")):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
            self.tool_group.addButton(button)
            self.tool_buttons[tool] = button
            tools.addWidget(button)
        self.tool_buttons[NAVIGATE].setChecked(True)
        layout.addLayout(tools)
        form = QFormLayout()
        self.brush_spin = QDoubleSpinBox()
        self.brush_spin.setRange(0.5, 50.0)
        self.brush_spin.setValue(self.view.brush_radius_mm)
        self.brush_spin.setSuffix(" mm")
        self.brush_spin.valueChanged.connect(lambda v: setattr(self.view, "brush_radius_mm", float(v)))
        form.addRow("Brush radius", self.brush_spin)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.make_support_button = QPushButton("Make support")
        self.make_support_button.setToolTip("make the current slice a support slice and start outlining with the brush")
        self.make_support_button.clicked.connect(lambda: self.make_support())
        load = QPushButton("Load mask…")
        load.clicked.connect(self._load_mask_dialog)
        remove = QPushButton("Remove")
        remove.setToolTip("the current slice is no longer a support")
        remove.clicked.connect(lambda: self.remove_support())
        row.addWidget(self.make_support_button)
        row.addWidget(load)
        row.addWidget(remove)
        layout.addLayout(row)
        self.supports_label = QLabel("none yet")
        self.supports_label.setWordWrap(True)
        layout.addWidget(self.supports_label)
        return box

    def _build_run_box(self) -> QGroupBox:
        box = QGroupBox("Segmentation")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.organ_edit = QLineEdit("liver")
        form.addRow("Model", self.model_combo)
        form.addRow("Organ name", self.organ_edit)
        layout.addLayout(form)
        extent = QHBoxLayout()
        self.first_spin, self.last_spin = QSpinBox(), QSpinBox()
        for spin, tip in ((self.first_spin, "lowest slice that may hold the organ"),
                          (self.last_spin, "highest slice that may hold the organ")):
            spin.setToolTip(tip)
            spin.setKeyboardTracking(False)
        first_here, last_here = QToolButton(), QToolButton()
        first_here.setText("here")
        first_here.setToolTip("the current slice is the organ's first slice")
        first_here.clicked.connect(lambda: self.first_spin.setValue(self.slice_index))
        last_here.setText("here")
        last_here.setToolTip("the current slice is the organ's last slice")
        last_here.clicked.connect(lambda: self.last_spin.setValue(self.slice_index))
        for widget in (QLabel("Organ slices"), self.first_spin, first_here, QLabel("to"), self.last_spin, last_here):
            extent.addWidget(widget)
        layout.addLayout(extent)
        self.connected_check = QCheckBox("Keep only parts connected to the supports")
        self.connected_check.setChecked(True)
        layout.addWidget(self.connected_check)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.result_label = QLabel("No result yet.")
        self.result_label.setStyleSheet("font-size: 14px; font-weight: bold")
        layout.addWidget(self.result_label)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #b35900")
        self.warning_label.hide()
        layout.addWidget(self.warning_label)
        self.refresh_models()
        return box
