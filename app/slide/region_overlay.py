"""Regions drawn over the slide: outlines and names (a slide-view overlay).

Outlines are built once per geometry as QPainterPaths in level-0 pixels and drawn through the
view transform with cosmetic pens (constant width on screen at any zoom). The whole-tissue
region is a thin dashed line; the selected region is drawn thicker.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen

REGION_COLOUR = QColor(255, 210, 0)
SELECTED_COLOUR = QColor(0, 230, 255)
LABEL_BACKGROUND = QColor(0, 0, 0, 150)


def geometry_path(geometry) -> QPainterPath:
    """A QPainterPath (odd-even fill) of a shapely Polygon / MultiPolygon, holes included."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.OddEvenFill)
    polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
    for polygon in polygons:
        if polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            coords = list(ring.coords)
            path.moveTo(*coords[0])
            for x, y in coords[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
    return path


class RegionOverlay:
    """Draws ``controller.regions()`` on a SlideView (``view.add_overlay(overlay)``).

    Attributes
    ----------
    selected : name of the highlighted region, or None.
    show_tissue : draw the whole-tissue outline too.
    """

    def __init__(self, controller) -> None:
        self.controller = controller
        self.selected: str | None = None
        self.show_tissue = True
        self._paths: dict[int, tuple[object, QPainterPath]] = {}

    def _path(self, geometry) -> QPainterPath:
        key = id(geometry)
        cached = self._paths.get(key)
        if cached is None or cached[0] is not geometry:
            cached = (geometry, geometry_path(geometry))
            self._paths[key] = cached
        return cached[1]

    def paint(self, painter: QPainter, view) -> None:
        regions = self.controller.regions()
        live = {id(r.geometry) for r in regions}
        for key in [k for k in self._paths if k not in live]:
            del self._paths[key]
        tissue = self.controller.default_region
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setTransform(view.view_transform())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        labels = []
        for region in regions:
            if region.geometry.is_empty:
                continue
            is_tissue = region is tissue
            if is_tissue and not self.show_tissue:
                continue
            selected = region.name == self.selected
            colour = SELECTED_COLOUR if selected else QColor(*(region.colour or REGION_COLOUR.getRgb()[:3]))
            pen = QPen(colour, 1.5 if is_tissue else (3.0 if selected else 2.0))
            pen.setCosmetic(True)
            if is_tissue:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawPath(self._path(region.geometry))
            if not is_tissue or selected:
                x0, y0, _, _ = region.geometry.bounds
                labels.append((region.name, view.level0_to_widget(x0, y0), colour))
        painter.resetTransform()
        font = QFont(painter.font())
        font.setPointSizeF(9)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        for name, (x, y), colour in labels:
            width = metrics.horizontalAdvance(name) + 8
            top = max(0.0, y - metrics.height() - 4)
            painter.fillRect(int(x), int(top), width, metrics.height() + 2, LABEL_BACKGROUND)
            painter.setPen(colour)
            painter.drawText(QPointF(x + 4, top + metrics.ascent() + 1), name)
