"""Drawing tools of the slide view: rectangle, polygon and freehand outlines.

A tool gets the view's mouse events with the level-0 position (see
:meth:`lobule.app.slide.slide_view.SlideView.set_tool`) and draws its outline in progress as a view
overlay. When an outline is complete it calls ``on_done(geometry)`` with a shapely Polygon in
level-0 pixels; what the outline is for (a region, a polygon fill) is the caller's business.
With any tool, the right or middle mouse button drags the slide.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QApplication

CLOSE_DISTANCE_PX = 8.0  # a polygon click this close to its first vertex closes it (widget px)
FREEHAND_STEP_PX = 2.0  # freehand vertices at least this far apart (widget px)
MIN_SIZE_PX = 3.0  # rectangles smaller than this on screen are taken as stray clicks
OUTLINE = QColor(255, 210, 0)

GeometryCallback = Callable[[object], None]


class ViewTool:
    """Base of the view tools: right/middle drags pan; :meth:`press`, :meth:`move` and
    :meth:`release` get the left button (and plain moves); :meth:`paint` draws a preview.

    Attributes
    ----------
    name : shown in the status bar.
    cursor : the mouse cursor over the view while the tool is active.
    """

    name = "tool"
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self) -> None:
        self.view = None
        self._pan_from: QPointF | None = None

    # the SlideView tool protocol
    def mouse_press(self, view, event, point) -> bool:
        if event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            self._pan_from = event.position()
            return True
        if event.button() == Qt.MouseButton.LeftButton:
            return self.press(view, event, point)
        return False

    def mouse_move(self, view, event, point) -> bool:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            view.pan_by(delta.x(), delta.y())
            return True
        return self.move(view, event, point)

    def mouse_release(self, view, event, point) -> bool:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            self._pan_from = None
            return True
        if event.button() == Qt.MouseButton.LeftButton:
            return self.release(view, event, point)
        return False

    # subclasses
    def press(self, view, event, point) -> bool:
        return True

    def move(self, view, event, point) -> bool:
        return False

    def release(self, view, event, point) -> bool:
        return True

    def paint(self, painter: QPainter, view) -> None:
        """Draw the work in progress (widget coordinates)."""

    def activate(self, view) -> None:
        """The tool becomes the view's tool: it routes events here and draws as an overlay."""
        self.view = view
        view.set_tool(self)
        view.add_overlay(self)
        view.setCursor(self.cursor)

    def deactivate(self) -> None:
        view, self.view = self.view, None
        if view is not None:
            self.cancel()
            view.set_tool(None)
            view.remove_overlay(self)
            view.unsetCursor()

    def cancel(self) -> None:
        """Drop the work in progress (Esc)."""

    def finish(self) -> None:
        """Complete the work in progress (Enter)."""

    def _update(self) -> None:
        if self.view is not None:
            self.view.update()


def _pen(width: float = 2.0, colour: QColor = OUTLINE, dashed: bool = False) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _widget_points(view, points) -> list[QPointF]:
    return [QPointF(*view.level0_to_widget(x, y)) for x, y in points]


class RectangleTool(ViewTool):
    """Press, drag, release: an axis-aligned rectangle."""

    name = "rectangle"

    def __init__(self, on_done: GeometryCallback) -> None:
        super().__init__()
        self.on_done = on_done
        self.start: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None

    def press(self, view, event, point) -> bool:
        self.start = self.end = point
        return True

    def move(self, view, event, point) -> bool:
        if self.start is None:
            return False
        self.end = point
        self._update()
        return True

    def release(self, view, event, point) -> bool:
        from shapely.geometry import box

        if self.start is None:
            return True
        (x0, y0), (x1, y1) = self.start, point
        self.start = self.end = None
        self._update()
        scale = view.state.scale
        if abs(x1 - x0) * scale >= MIN_SIZE_PX and abs(y1 - y0) * scale >= MIN_SIZE_PX:
            self.on_done(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return True

    def cancel(self) -> None:
        self.start = self.end = None
        self._update()

    def paint(self, painter: QPainter, view) -> None:
        if self.start is None or self.end is None:
            return
        (x0, y0), (x1, y1) = (view.level0_to_widget(*self.start), view.level0_to_widget(*self.end))
        painter.setPen(_pen(dashed=True))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))


class PolygonTool(ViewTool):
    """Click the vertices; close with a click on the first vertex, a double click or Enter.
    Backspace (:meth:`undo_vertex`) removes the last vertex, Esc drops the outline."""

    name = "polygon"

    def __init__(self, on_done: GeometryCallback, colour: QColor = OUTLINE) -> None:
        super().__init__()
        self.on_done = on_done
        self.colour = colour
        self.points: list[tuple[float, float]] = []
        self.hover: tuple[float, float] | None = None
        self._last_click: tuple[float, QPointF] | None = None

    def press(self, view, event, point) -> bool:
        now, pos = time.monotonic(), event.position()
        last, self._last_click = self._last_click, (now, pos)
        if last is not None and self.points:
            interval = QApplication.styleHints().mouseDoubleClickInterval() / 1000.0
            if now - last[0] <= interval and _distance(pos, last[1]) <= CLOSE_DISTANCE_PX / 2:
                self.finish()  # a double click: the first click already added its vertex
                return True
        if len(self.points) >= 3:
            first = QPointF(*view.level0_to_widget(*self.points[0]))
            if _distance(pos, first) <= CLOSE_DISTANCE_PX:
                self.finish()
                return True
        self.points.append(point)
        self._update()
        return True

    def move(self, view, event, point) -> bool:
        self.hover = point
        if self.points:
            self._update()
        return bool(self.points)

    def finish(self) -> None:
        from shapely.geometry import Polygon

        points, self.points = self.points, []
        self._last_click = None
        self._update()
        if len(points) >= 3:
            self.on_done(Polygon(points))

    def undo_vertex(self) -> None:
        if self.points:
            self.points.pop()
            self._update()

    def cancel(self) -> None:
        self.points = []
        self._last_click = None
        self._update()

    def paint(self, painter: QPainter, view) -> None:
        if not self.points:
            return
        points = _widget_points(view, self.points + ([self.hover] if self.hover else []))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(_pen(colour=self.colour))
        painter.drawPolyline(QPolygonF(points))
        painter.setBrush(self.colour)
        for p in points[: len(self.points)]:
            painter.drawEllipse(p, 3, 3)


class FreehandTool(ViewTool):
    """Press and drag around an area; releasing closes the outline."""

    name = "freehand"

    def __init__(self, on_done: GeometryCallback) -> None:
        super().__init__()
        self.on_done = on_done
        self.points: list[tuple[float, float]] = []

    def press(self, view, event, point) -> bool:
        self.points = [point]
        return True

    def move(self, view, event, point) -> bool:
        if not self.points:
            return False
        lx, ly = self.points[-1]
        if math.hypot(point[0] - lx, point[1] - ly) * view.state.scale >= FREEHAND_STEP_PX:
            self.points.append(point)
            self._update()
        return True

    def release(self, view, event, point) -> bool:
        from shapely.geometry import Polygon

        points, self.points = self.points + [point], []
        self._update()
        if len(points) >= 3:
            self.on_done(Polygon(points))
        return True

    def cancel(self) -> None:
        self.points = []
        self._update()

    def paint(self, painter: QPainter, view) -> None:
        if len(self.points) < 2:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(_pen())
        painter.drawPolyline(QPolygonF(_widget_points(view, self.points)))


def _distance(a: QPointF, b: QPointF) -> float:
    return math.hypot(a.x() - b.x(), a.y() - b.y())
