"""The overview: a thumbnail of the whole slide in a corner of the view, with the viewport
rectangle; clicking or dragging in it moves the view there."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from lobule.app.slide.slide_view import SlideView
from lobule.app.slide.tile_loader import array_to_qimage

MAX_SIDE = 220  # px, long side of the overview
MARGIN = 10  # px from the view's top-right corner
VIEWPORT_COLOUR = QColor(255, 200, 0)


class OverviewWidget(QWidget):
    """Overview of ``view``'s slide, floating at the view's top-right corner."""

    def __init__(self, view: SlideView) -> None:
        super().__init__(view)
        self.view = view
        self._image: QImage | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        view.viewChanged.connect(self.update)
        view.installEventFilter(self)
        self.hide()

    def set_thumbnail(self, thumbnail: np.ndarray | None) -> None:
        """(H, W, 3) uint8 RGB image of the whole slide, or None to hide the overview."""
        if thumbnail is None:
            self._image = None
            self.hide()
            return
        self._image = array_to_qimage(thumbnail)
        h, w = thumbnail.shape[:2]
        scale = MAX_SIDE / max(h, w)
        self.resize(max(1, round(w * scale)) + 2, max(1, round(h * scale)) + 2)
        self._place()
        self.show()

    def _place(self) -> None:
        self.move(self.view.width() - self.width() - MARGIN, MARGIN)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.view and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    # --- geometry ---------------------------------------------------------------------------
    def _image_rect(self) -> QRectF:
        return QRectF(1, 1, self.width() - 2, self.height() - 2)

    def _to_level0(self, x: float, y: float) -> tuple[float, float]:
        rect = self._image_rect()
        sw, sh = self.view.state.slide_size
        return (x - rect.left()) / rect.width() * sw, (y - rect.top()) / rect.height() * sh

    def viewport_rect(self) -> QRectF:
        """The view's visible area in overview widget pixels."""
        rect = self._image_rect()
        sw, sh = self.view.state.slide_size
        x0, y0, x1, y1 = self.view.visible_rect()
        fx, fy = rect.width() / sw, rect.height() / sh
        return QRectF(rect.left() + x0 * fx, rect.top() + y0 * fy, (x1 - x0) * fx, (y1 - y0) * fy)

    # --- events -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        if self._image is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.fillRect(self.rect(), QColor(200, 200, 200))
        painter.drawImage(self._image_rect(), self._image)
        painter.setClipRect(self._image_rect())
        painter.setPen(QPen(VIEWPORT_COLOUR, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.viewport_rect().adjusted(1, 1, -1, -1))
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._jump(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event)

    def _jump(self, event) -> None:
        pos = event.position()
        self.view.center_on(*self._to_level0(pos.x(), pos.y()))
        event.accept()
