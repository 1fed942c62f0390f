"""The MRI/CT tab: volume viewer and one-shot organ segmentation (placeholder until that work lands)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class VolumeTab(QWidget):
    """Tab widget for MRI/CT volumes. ``open_path(path)`` opens a NIfTI file or DICOM folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        label = QLabel("MRI/CT one-shot organ segmentation: not yet available")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        QVBoxLayout(self).addWidget(label)

    def open_path(self, path: str) -> None:
        from lobule.models.errors import LobuleError

        raise LobuleError("the MRI/CT tab is not yet available in this version")
