"""The slide-info panel: metadata, pixel size (with a field to enter a missing one), pyramid
levels, associated images and every backend property."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QScrollArea, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from lobule.app.slide.slide_document import SlideDocument
from lobule.app.slide.tile_loader import array_to_qimage

ASSOCIATED_WIDTH = 250  # px, associated images in the panel
MISSING_STYLE = "color: #b45309; font-weight: bold;"


def describe_mpp(document: SlideDocument) -> str:
    """``"0.499 x 0.499 µm/px (from the file)"`` / ``"... (entered by you)"`` / ``"not recorded in the file"``."""
    mpp = document.mpp
    if mpp is None:
        return "not recorded in the file"
    source = {"user": "entered by you", "metadata": "from the file"}.get(document.mpp_source or "", "")
    value = f"{mpp[0]:.4g} µm/px" if abs(mpp[0] - mpp[1]) < 1e-9 else f"{mpp[0]:.4g} x {mpp[1]:.4g} µm/px"
    return f"{value} ({source})" if source else value


def _file_size(document: SlideDocument) -> str:
    try:
        size = document.reader.path.stat().st_size
    except OSError:
        return "?"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return "?"



def mpp_field() -> QDoubleSpinBox:
    """A spin box for a pixel size in µm/px (0.01-100, 4 decimals, starting at 0.25: a 40x scan)."""
    field = QDoubleSpinBox()
    field.setDecimals(4)
    field.setRange(0.01, 100.0)
    field.setSingleStep(0.01)
    field.setValue(0.25)
    field.setSuffix(" µm/px")
    return field

class SlideInfoPanel(QTabWidget):
    """Shows a :class:`SlideDocument`; emits ``mppEntered(float)`` when the user sets the pixel size."""

    mppEntered = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(300)
        info = QWidget()
        layout = QVBoxLayout(info)

        general = QGroupBox("Slide")
        self._form = QFormLayout(general)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._fields: dict[str, QLabel] = {}
        for name in ("File", "Format", "Size", "Area", "Pixel size", "Objective", "File size"):
            label = QLabel("-")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._fields[name] = label
            self._form.addRow(f"{name}:", label)
        layout.addWidget(general)

        pixel = QGroupBox("Set pixel size")
        row = QHBoxLayout(pixel)
        self.mpp_field = mpp_field()
        self.mpp_field.setToolTip("Micrometres per level-0 pixel (40x scans are about 0.25, 20x about 0.5)")
        self.mpp_button = QPushButton("Set")
        self.mpp_button.clicked.connect(lambda: self.mppEntered.emit(self.mpp_field.value()))
        row.addWidget(self.mpp_field, 1)
        row.addWidget(self.mpp_button)
        layout.addWidget(pixel)

        levels = QGroupBox("Pyramid levels")
        self._levels = QLabel("-")
        self._levels.setTextFormat(Qt.TextFormat.RichText)
        self._levels.setWordWrap(True)
        QVBoxLayout(levels).addWidget(self._levels)
        layout.addWidget(levels)

        self._associated_box = QGroupBox("Associated images")
        self._associated = QVBoxLayout(self._associated_box)
        layout.addWidget(self._associated_box)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(info)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.addTab(scroll, "Info")

        self._properties = QTableWidget(0, 2)
        self._properties.setHorizontalHeaderLabels(["Property", "Value"])
        self._properties.verticalHeader().hide()
        self._properties.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self._properties.horizontalHeader().setStretchLastSection(True)
        self._properties.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.addTab(self._properties, "Properties")
        self.set_document(None)

    def set_document(self, document: SlideDocument | None) -> None:
        for label in self._fields.values():
            label.setText("-")
            label.setStyleSheet("")
        self._levels.setText("-")
        while self._associated.count():
            item = self._associated.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._properties.setRowCount(0)
        self.mpp_field.setEnabled(document is not None)
        self.mpp_button.setEnabled(document is not None)
        if document is None:
            self._associated_box.hide()
            return
        reader = document.reader
        width, height = reader.dimensions
        self._fields["File"].setText(reader.path.name)
        self._fields["File"].setToolTip(str(reader.path))
        self._fields["Format"].setText(f"{reader.vendor or 'image'} (read with {reader.backend})")
        self._fields["Size"].setText(f"{width:,} x {height:,} px")
        self._fields["Objective"].setText(f"{reader.objective_power:g}x" if reader.objective_power else "not recorded")
        self._fields["File size"].setText(_file_size(document))
        self.update_mpp(document)
        stored = getattr(reader, "stored_level_count", reader.level_count)
        rows = []
        for level, ((w, h), ds) in enumerate(zip(reader.level_dimensions, reader.level_downsamples)):
            note = "" if level < stored else " <i>(built by Lobule)</i>"
            rows.append(f"{level}: {w:,} x {h:,} px, ds {ds:.4g}{note}")
        self._levels.setText("<br>".join(rows))
        self._associated_box.setVisible(bool(document.associated or document.associated_errors))
        for name, image in document.associated.items():
            caption = QLabel(f"<b>{name}</b>")
            picture = QLabel()
            pixmap = QPixmap.fromImage(array_to_qimage(image))
            picture.setPixmap(pixmap.scaledToWidth(min(ASSOCIATED_WIDTH, pixmap.width()),
                                                   Qt.TransformationMode.SmoothTransformation))
            self._associated.addWidget(caption)
            self._associated.addWidget(picture)
        for name, reason in document.associated_errors.items():
            self._associated.addWidget(QLabel(f"<b>{name}</b>: could not be read ({reason})"))
        properties = sorted(reader.properties.items())
        self._properties.setRowCount(len(properties))
        for row, (key, value) in enumerate(properties):
            self._properties.setItem(row, 0, QTableWidgetItem(key))
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            self._properties.setItem(row, 1, item)

    def update_mpp(self, document: SlideDocument) -> None:
        """Refresh the pixel-size rows (after the user entered an mpp)."""
        label = self._fields["Pixel size"]
        label.setText(describe_mpp(document))
        label.setStyleSheet("" if document.mpp else MISSING_STYLE)
        width, height = document.reader.dimensions
        if document.mpp:
            self._fields["Area"].setText(f"{width * document.mpp[0] / 1000:.2f} x {height * document.mpp[1] / 1000:.2f} mm")
            self.mpp_field.setValue(document.mpp[0])
        else:
            self._fields["Area"].setText("unknown (pixel size missing)")
