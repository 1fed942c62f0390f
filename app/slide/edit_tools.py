"""Correction tools of the slide view: class brush, eraser, and click fills (flood fill, magic
wand). Polygon fill is :class:`~lobule.app.slide.region_tools.PolygonTool` with a fill callback.

The tools only turn mouse events into calls of the
:class:`~lobule.app.slide.analysis_controller.AnalysisController` (which applies them to the
corrections layer on its worker thread); while a stroke is painted, the tool draws its trail at
once, so painting stays fluid whatever the overlay tiles are doing.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen

from lobule.app.slide.region_tools import ViewTool
from lobule.resources.classes import LIVER_CLASSES

ERASER_COLOUR = QColor(255, 255, 255)


def class_colour(value: int) -> QColor:
    """The overlay colour of a class id (white for the eraser)."""
    for c in LIVER_CLASSES:
        if c.id == value:
            return QColor(*c.colour)
    return ERASER_COLOUR


class BrushTool(ViewTool):
    """Paints a class (or erases corrections) along the mouse path.

    Parameters
    ----------
    controller : the AnalysisController.
    value : callable giving the class id to paint (``ERASE`` for the eraser).
    diameter_um : callable giving the brush diameter in micrometres.

    While the mouse hovers over the slide a circle of the brush size follows it (the cursor
    preview); the stroke's trail is drawn until the overlay shows it.
    """

    name = "brush"
    cursor = Qt.CursorShape.BlankCursor

    def __init__(self, controller, value: Callable[[], int], diameter_um: Callable[[], float],
                 name: str = "brush") -> None:
        super().__init__()
        self.controller = controller
        self.value = value
        self.diameter_um = diameter_um
        self.name = name
        self.hover: tuple[float, float] | None = None
        self.trail: list[tuple[float, float]] = []
        self.painting = False
        self._fading: list | None = None

    def radius_px(self) -> float | None:
        """Brush radius in level-0 pixels (None without a pixel size)."""
        mpp = self.view.mpp if self.view is not None else None
        return self.diameter_um() / 2.0 / mpp if mpp else None

    def press(self, view, event, point) -> bool:
        if not self.controller.can_edit or self.radius_px() is None:
            return True
        self.painting = True
        self.trail = [point]
        self.controller.begin_stroke(self.value(), self.diameter_um() / 2.0, point)
        self._update()
        return True

    def move(self, view, event, point) -> bool:
        self.hover = point
        if self.painting:
            self.trail.append(point)
            self.controller.extend_stroke(point)
        self._update()
        return self.painting

    def release(self, view, event, point) -> bool:
        if self.painting:
            self.painting = False
            trail = self.trail
            # the trail stays until the overlay shows the whole stroke (no blank frame between)
            self.controller.end_stroke(lambda: self._stroke_applied(trail))
        return True

    def _stroke_applied(self, trail: list) -> None:
        """The stroke is in the class map and its overlay tiles invalidated: drop the trail once
        they are reloaded."""
        if trail is self.trail and not self.painting:
            self._fading = trail
            if self.view is None or self.view.is_viewport_complete():
                self._drop_trail()

    def _drop_trail(self) -> None:
        if self._fading is not None and self._fading is self.trail and not self.painting:
            self.trail = []
            self._update()
        self._fading = None

    def activate(self, view) -> None:
        super().activate(view)
        view.viewportComplete.connect(self._drop_trail)

    def deactivate(self) -> None:
        self.hover = None
        if self.view is not None:
            self.view.viewportComplete.disconnect(self._drop_trail)
        super().deactivate()

    def cancel(self) -> None:
        if self.painting:
            self.painting = False
            self.controller.cancel_stroke()
        self.trail = []
        self._update()

    def paint(self, painter: QPainter, view) -> None:
        radius = self.radius_px()
        if radius is None:
            return
        scale = view.state.scale
        colour = class_colour(self.value())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if len(self.trail) >= 1:
            trail = QColor(colour)
            trail.setAlpha(110)
            pen = QPen(trail, max(1.0, 2 * radius * scale), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                       Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            path = QPainterPath(QPointF(*view.level0_to_widget(*self.trail[0])))
            for point in self.trail[1:]:
                path.lineTo(QPointF(*view.level0_to_widget(*point)))
            if len(self.trail) == 1:
                path.lineTo(path.currentPosition() + QPointF(0.01, 0))
            painter.drawPath(path)
        if self.hover is not None:
            centre = QPointF(*view.level0_to_widget(*self.hover))
            r = max(1.5, radius * scale)
            for width, shade in ((3.0, QColor(0, 0, 0, 160)), (1.5, colour)):
                pen = QPen(shade, width)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(centre, r, r)
            painter.drawLine(centre - QPointF(3, 0), centre + QPointF(3, 0))
            painter.drawLine(centre - QPointF(0, 3), centre + QPointF(0, 3))


class ClickFillTool(ViewTool):
    """A click fills the connected area under the mouse: ``fill(point)`` (flood fill of the
    same class, or magic wand of similar colour, bounded around the click)."""

    cursor = Qt.CursorShape.PointingHandCursor

    def __init__(self, fill: Callable[[tuple[float, float]], None], name: str) -> None:
        super().__init__()
        self.fill = fill
        self.name = name

    def press(self, view, event, point) -> bool:
        return True

    def release(self, view, event, point) -> bool:
        width, height = view.state.slide_size
        if 0 <= point[0] < width and 0 <= point[1] < height:
            self.fill(point)
        return True
