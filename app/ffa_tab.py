"""The FFA tab: capillary non-perfusion segmentation (placeholder until the FFA work lands)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class FFATab(QWidget):
    """Tab widget for fundus fluorescein angiograms. ``open_path(path)`` opens an image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        label = QLabel("FFA capillary non-perfusion segmentation: not yet available")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        QVBoxLayout(self).addWidget(label)

    def open_path(self, path: str) -> None:
        from lobule.models.errors import LobuleError

        raise LobuleError("the FFA tab is not yet available in this version")
