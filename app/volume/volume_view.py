"""Slice viewer of the MRI/CT tab: one slice of a volume in millimetres, window/level, a mask
overlay, zoom and pan, cursor readout, and brush / eraser / polygon drawing.

Display convention: the slice's first axis increases to the screen's left and its second upwards,
which for axial slices is the radiological convention (patient's right on the screen's left,
anterior up; see :attr:`lobule.inference.volume.Volume.plane_label` for other planes); one screen
unit is one millimetre, so anisotropic pixels keep their shape. The wheel steps through slices as
in radiology viewers; Ctrl+wheel zooms about the pointer.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform

NAVIGATE, BRUSH, ERASE, POLYGON = "navigate", "brush", "erase", "polygon"

SUPPORT_RGBA = (40, 220, 90, 120)
RESULT_RGBA = (255, 60, 60, 110)


class _DrawableImage(pg.ImageItem):
    """The slice image; forwards left-button drags and clicks to the view while a drawing tool is on,
    and lets the ViewBox pan otherwise."""

    def __init__(self, owner: "VolumeView") -> None:
        super().__init__(axisOrder="col-major")
        self.owner = owner

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        if self.owner.tool in (BRUSH, ERASE) and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.owner._paint_at(self.mapToParent(ev.pos()), start=ev.isStart(), finish=ev.isFinish())
        else:
            ev.ignore()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        if self.owner.tool in (BRUSH, ERASE):
            ev.accept()
            self.owner._paint_at(self.mapToParent(ev.pos()), start=True, finish=True)
        elif self.owner.tool == POLYGON:
            ev.accept()
            if ev.double():
                self.owner.close_polygon()
            else:
                self.owner._add_vertex(self.mapToParent(ev.pos()))
        else:
            ev.ignore()


class VolumeView(pg.GraphicsLayoutWidget):
    """Shows slice ``k`` of an (X, Y, Z) array with spacing in mm.

    Signals
    -------
    cursorMoved(object) : (i, j) voxel indices under the mouse (floats) or None when outside.
    maskEdited(int) : a drawing action changed the mask of slice k (the owner holds the mask,
        see :meth:`set_edit_target`).
    strokeFinished(int) : a brush stroke on slice k ended (mouse released).
    sliceStep(int) : the wheel asks for the next (+1) or previous (-1) slice.
    """

    cursorMoved = Signal(object)
    maskEdited = Signal(int)
    strokeFinished = Signal(int)
    sliceStep = Signal(int)

    #: zoom factor per wheel notch (120 units of angleDelta) with Ctrl held
    ZOOM_PER_NOTCH = 1.15

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("k")
        self.viewbox = self.addViewBox(lockAspect=True, enableMenu=False)
        self.viewbox.invertX(True)  # radiological convention: patient's right on the left
        self.image_item = _DrawableImage(self)
        self.overlay_item = pg.ImageItem(axisOrder="col-major")
        self.overlay_item.setZValue(5)
        self.polygon_item = pg.PlotDataItem(pen=pg.mkPen((255, 230, 0), width=2), symbol="o", symbolSize=5,
                                            symbolBrush=(255, 230, 0))
        self.polygon_item.setZValue(10)
        for item in (self.image_item, self.overlay_item, self.polygon_item):
            self.viewbox.addItem(item)
        self.tool = NAVIGATE
        self.brush_radius_mm = 5.0
        self.spacing = np.ones(3)
        self.slice_index = 0
        self._edit_getter = None
        self._vertices: list[tuple[float, float]] = []
        self._last_paint: tuple[float, float] | None = None
        self._wheel_rest = 0
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    # ------------------------------------------------------------------ content
    def set_geometry(self, shape: tuple[int, int, int], spacing) -> None:
        """Size of a slice (X, Y) and its spacing in mm; resets the zoom to fit."""
        self.spacing = np.asarray(spacing, dtype=float)
        rect = QRectF(0.0, 0.0, shape[0] * self.spacing[0], shape[1] * self.spacing[1])
        for item in (self.image_item, self.overlay_item):  # one pixel = its spacing in mm
            item.setTransform(QTransform.fromScale(self.spacing[0], self.spacing[1]))
        self.viewbox.setRange(rect, padding=0.02)

    def show_slice(self, k: int, plane: np.ndarray, levels: tuple[float, float], overlay: np.ndarray | None) -> None:
        """Display slice ``k``: ``plane`` (X, Y) float, display ``levels`` (low, high), ``overlay``
        (X, Y, 4) uint8 RGBA or None."""
        self.slice_index = k
        self.image_item.setImage(plane, levels=levels, autoLevels=False)
        self.set_overlay(overlay)
        if self._vertices:
            self.cancel_polygon()

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.image_item.setLevels(levels)

    def set_overlay(self, overlay: np.ndarray | None) -> None:
        if overlay is None:
            self.overlay_item.clear()
        else:
            self.overlay_item.setImage(overlay, autoLevels=False, levels=(0, 255))

    def fit(self) -> None:
        self.viewbox.autoRange(padding=0.02)

    def zoom_by(self, factor: float) -> None:
        self.viewbox.scaleBy((1.0 / factor, 1.0 / factor))

    # ------------------------------------------------------------------ drawing
    def set_tool(self, tool: str) -> None:
        self.tool = tool
        if tool != POLYGON:
            self.cancel_polygon()

    def set_edit_target(self, getter) -> None:
        """``getter(k)`` returns the (X, Y) bool mask of slice k to draw into (creating it), or None
        when drawing is not possible."""
        self._edit_getter = getter

    def voxel_at(self, pos: QPointF) -> tuple[float, float]:
        """Fractional voxel (i, j) of a point in view (mm) coordinates."""
        return pos.x() / self.spacing[0], pos.y() / self.spacing[1]

    def _paint_at(self, pos: QPointF, start: bool, finish: bool) -> None:
        if self._edit_getter is None:
            return
        mask = self._edit_getter(self.slice_index)
        if mask is None:
            return
        i, j = self.voxel_at(pos)
        previous = None if start else self._last_paint
        paint_disc(mask, (i, j), self.brush_radius_mm / self.spacing[:2], value=self.tool == BRUSH, previous=previous)
        self._last_paint = None if finish else (i, j)
        self.maskEdited.emit(self.slice_index)
        if finish and self.tool == BRUSH:
            self.strokeFinished.emit(self.slice_index)

    def _add_vertex(self, pos: QPointF) -> None:
        self._vertices.append((pos.x(), pos.y()))
        xs, ys = zip(*self._vertices)
        self.polygon_item.setData(list(xs), list(ys))

    def close_polygon(self) -> bool:
        """Fill the polygon drawn so far into the slice's mask; False when it has < 3 vertices."""
        vertices = self._vertices
        self.cancel_polygon()
        if len(vertices) < 3 or self._edit_getter is None:
            return False
        mask = self._edit_getter(self.slice_index)
        if mask is None:
            return False
        voxels = [(x / self.spacing[0], y / self.spacing[1]) for x, y in vertices]
        fill_polygon(mask, voxels)
        self.maskEdited.emit(self.slice_index)
        return True

    def cancel_polygon(self) -> None:
        self._vertices = []
        self.polygon_item.setData([], [])

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt naming
        """Wheel: next/previous slice (one per notch; touchpad deltas accumulate). Ctrl+wheel: zoom
        about the pointer by :attr:`ZOOM_PER_NOTCH` per notch."""
        delta = event.angleDelta().y() or event.angleDelta().x()
        event.accept()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            point = self.viewbox.mapSceneToView(self.mapToScene(event.position().toPoint()))
            factor = self.ZOOM_PER_NOTCH ** (delta / 120.0)
            self.viewbox.scaleBy((1.0 / factor, 1.0 / factor), center=point)
            return
        self._wheel_rest += delta
        steps = int(self._wheel_rest / 120)
        if steps:
            self._wheel_rest -= steps * 120
            self.sliceStep.emit(steps)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if self.tool == POLYGON and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close_polygon()
        elif event.key() == Qt.Key.Key_Escape:
            self.cancel_polygon()
        else:
            super().keyPressEvent(event)

    # ------------------------------------------------------------------ cursor
    def _mouse_moved(self, scene_pos) -> None:
        if not self.viewbox.sceneBoundingRect().contains(scene_pos):
            self.cursorMoved.emit(None)
            return
        point = self.viewbox.mapSceneToView(scene_pos)
        self.cursorMoved.emit(self.voxel_at(point))


def paint_disc(mask: np.ndarray, centre: tuple[float, float], radius_vox, value: bool = True,
               previous: tuple[float, float] | None = None) -> None:
    """Set an elliptical disc (radii in voxels per axis) of ``mask`` to ``value``; with ``previous``
    the stroke from there to ``centre`` is filled too (discs every half radius)."""
    rx, ry = (max(0.5, float(r)) for r in np.broadcast_to(radius_vox, (2,)))
    points = [centre]
    if previous is not None:
        steps = int(np.ceil(np.hypot((centre[0] - previous[0]) / rx, (centre[1] - previous[1]) / ry) * 2))
        points = [(previous[0] + (centre[0] - previous[0]) * t, previous[1] + (centre[1] - previous[1]) * t)
                  for t in np.linspace(0.0, 1.0, max(2, steps + 1))]
    nx, ny = mask.shape
    for cx, cy in points:
        x0, x1 = max(0, int(np.floor(cx - rx))), min(nx, int(np.ceil(cx + rx)) + 1)
        y0, y1 = max(0, int(np.floor(cy - ry))), min(ny, int(np.ceil(cy + ry)) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        xs, ys = np.ogrid[x0:x1, y0:y1]
        inside = ((xs + 0.5 - cx) / rx) ** 2 + ((ys + 0.5 - cy) / ry) ** 2 <= 1.0
        mask[x0:x1, y0:y1][inside] = value


def fill_polygon(mask: np.ndarray, vertices) -> None:
    """Set the inside of a polygon given in fractional voxel (i, j) coordinates."""
    from skimage.draw import polygon

    xs = np.array([v[0] for v in vertices]) - 0.5
    ys = np.array([v[1] for v in vertices]) - 0.5
    rr, cc = polygon(xs, ys, shape=mask.shape)
    mask[rr, cc] = True


def overlay_rgba(result: np.ndarray | None, support: np.ndarray | None) -> np.ndarray | None:
    """(X, Y, 4) uint8 overlay: the result in red, a support mask in green (drawn on top)."""
    base = result if result is not None else support
    if base is None:
        return None
    rgba = np.zeros(base.shape + (4,), np.uint8)
    if result is not None:
        rgba[result] = RESULT_RGBA
    if support is not None:
        rgba[support] = SUPPORT_RGBA
    return rgba
