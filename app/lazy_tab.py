"""A tab page whose widget is built the first time it is needed, so the main window opens
without importing what only the FFA and MRI/CT tabs use (pyqtgraph, pydicom...)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyTab(QWidget):
    """Holds ``factory()``'s widget once :meth:`widget` is first called (then ``on_created(widget)``)."""

    def __init__(self, factory: Callable[[], QWidget], on_created: Callable[[QWidget], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._on_created = on_created
        self._widget: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    @property
    def created(self) -> bool:
        return self._widget is not None

    def widget(self) -> QWidget:
        if self._widget is None:
            self._widget = self._factory()
            self.layout().addWidget(self._widget)
            self._on_created(self._widget)
        return self._widget

    def showEvent(self, event) -> None:  # noqa: N802
        self.widget()
        super().showEvent(event)
