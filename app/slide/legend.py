"""The class legend: overlay opacity, and one row per class with its colour, a visibility check
box and its area in the region shown (mm² and % of tissue)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QHeaderView, QLabel, QSlider, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from lobule.resources.classes import LIVER_CLASSES


def swatch(colour: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class LegendWidget(QWidget):
    """Overlay opacity and per-class visibility.

    Signals
    -------
    opacityChanged(float) : 0..1.
    overlayToggled(bool) : the class overlay shown or hidden.
    classToggled(int, bool) : class id, visible.
    """

    opacityChanged = Signal(float)
    overlayToggled = Signal(bool)
    classToggled = Signal(int, bool)

    def __init__(self, opacity: float = 0.5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.show_box = QCheckBox("Classes")
        self.show_box.setChecked(True)
        self.show_box.setToolTip("Show the class overlay (O)")
        self.show_box.toggled.connect(self.overlayToggled)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(opacity * 100))
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_label = QLabel(f"{round(opacity * 100)} %")
        self.opacity_label.setMinimumWidth(36)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        row.addWidget(self.show_box)
        row.addWidget(QLabel("opacity"))
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.opacity_label)
        layout.addLayout(row)

        self.classes = [c for c in LIVER_CLASSES if c.id != 0]
        self.table = QTableWidget(len(self.classes), 3)
        self.table.setHorizontalHeaderLabels(["Class (shown)", "mm²", "% tissue"])
        self.table.verticalHeader().hide()
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        for row_index, c in enumerate(self.classes):
            item = QTableWidgetItem(swatch(c.colour), c.key.replace("_", " "))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setToolTip(f"{c.id}: {c.name} (key {c.id} selects it for the brush)")
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.table.setItem(row_index, 0, item)
            for column in (1, 2):
                value = QTableWidgetItem("")
                value.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row_index, column, value)
        self.table.itemChanged.connect(self._on_item)
        self.table.resizeRowsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + 4
                                  + sum(self.table.rowHeight(r) for r in range(len(self.classes))))
        layout.addWidget(self.table)

    def refresh_colours(self) -> None:
        """Repaint the class swatches in the current palette."""
        for row, c in enumerate(self.classes):
            self.table.item(row, 0).setIcon(swatch(c.colour))

    def _on_opacity(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.opacityChanged.emit(value / 100.0)

    def _on_item(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            self.classToggled.emit(int(item.data(Qt.ItemDataRole.UserRole)),
                                   item.checkState() == Qt.CheckState.Checked)

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        for row, c in enumerate(self.classes):
            if c.id == class_id:
                self.table.item(row, 0).setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def set_values(self, result) -> None:
        """Areas of a RegionResult (None: clear)."""
        rows = {row["id"]: row for row in result.classes} if result is not None else {}
        self.table.blockSignals(True)
        for index, c in enumerate(self.classes):
            row = rows.get(c.id)
            self.table.item(index, 1).setText(f"{row['area_mm2']:.4f}" if row else "")
            percent = row.get("percent_of_tissue") if row else None
            self.table.item(index, 2).setText(f"{percent:.1f}" if percent is not None else "")
        self.table.blockSignals(False)
