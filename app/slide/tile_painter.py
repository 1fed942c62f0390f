"""Drawing cached tiles of a layer into the slide view, fast.

- Tile rectangles are snapped to whole pixels with an integer translation, so neighbouring tiles
  meet without seams and a tile keeps its on-screen size while the view pans.
- A tile drawn at the size of its pixels is a plain blit. A tile shown at another size is drawn
  with bilinear filtering while the zoom is changing (interactive frames); once the zoom has
  settled it is scaled once with Qt's area-averaging ``SmoothTransformation`` (sharper than
  bilinear when shrinking) and the scaled copy is blitted on every later frame, so panning at a
  fixed zoom costs about a blit per tile. A few tiles are scaled per frame at most
  (:data:`SCALES_PER_FRAME`); the rest are drawn bilinear until later frames catch up.
- A scaled copy remembers the ``QImage.cacheKey`` of the tile it was made from and is made
  again when the cache holds a newer image under the same key (a tile reloaded after an edit).
- Missing tiles are filled from what is cached (:meth:`TilePainter.paint_stand_in`): the
  nearest coarser level, else the next finer one, else the layer's preview image.
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QRegion

from lobule.app.slide.tile_cache import TileCache
from lobule.app.slide.tile_layer import TileKey, TileLayer
from lobule.app.slide.view_state import ViewState

SCALES_PER_FRAME = 6  # tiles scaled to the settled zoom per frame at most (~1.2 ms each for 512 px)


class TilePainter:
    """Paints the tiles of layers from ``cache`` for one view.

    Call :meth:`begin_frame` before painting the layers of a frame; :attr:`incomplete` then
    says whether a later frame would look sharper (tiles still waiting to be scaled).
    """

    def __init__(self, cache: TileCache) -> None:
        self.cache = cache
        self._scaled: dict[TileKey, tuple[int, QImage]] = {}  # key -> (source cacheKey, scaled copy)
        self._scaled_at = 0.0
        self._used: set[TileKey] = set()
        self._budget = 0
        self._state = ViewState()
        self._offset = (0, 0)
        self._dpr = 1.0
        self.settled = False
        self.incomplete = False

    def begin_frame(self, state: ViewState, settled: bool) -> None:
        """Start a frame for ``state``; ``settled``: the zoom has stopped changing."""
        self._state = state
        w, h = state.widget_size
        self._offset = (round(w / 2 - state.center[0] * state.scale), round(h / 2 - state.center[1] * state.scale))
        self._dpr = state.device_pixel_ratio
        if state.scale != self._scaled_at:
            self._scaled.clear()
            self._scaled_at = state.scale
        self.settled = settled
        self._budget = SCALES_PER_FRAME
        self._used = set()
        self.incomplete = False

    def end_frame(self, full: bool = True) -> None:
        """Forget scaled tiles not drawn in this frame once they outnumber those drawn twice
        (after a ``full`` frame only: a partial frame draws a few tiles of the view)."""
        if full and len(self._scaled) > 2 * len(self._used) + 8:
            self._scaled = {key: image for key, image in self._scaled.items() if key in self._used}

    def widget_rect(self, x0: float, y0: float, x1: float, y1: float) -> QRect:
        """Level-0 rectangle (x0, y0)-(x1, y1) in widget pixels, snapped to whole pixels."""
        s, (ox, oy) = self._state.scale, self._offset
        ax, ay = round(x0 * s) + ox, round(y0 * s) + oy
        return QRect(ax, ay, round(x1 * s) + ox - ax, round(y1 * s) + oy - ay)

    def paint_tile(self, painter: QPainter, key: TileKey, image: QImage, target: QRect) -> None:
        """Draw a whole tile into ``target`` (widget pixels)."""
        device = QSize(round(target.width() * self._dpr), round(target.height() * self._dpr))
        if device == image.size():
            painter.drawImage(target, image)
            return
        entry = self._scaled.get(key)
        # a scaled copy is only good for the very image it was made from: a tile reloaded after
        # an edit or a class toggle has the same key but new pixels (and a new cache key)
        scaled = entry[1] if entry is not None and entry[0] == image.cacheKey() else None
        if scaled is None or scaled.size() != device:
            if not self.settled or self._budget <= 0:
                painter.drawImage(target, image)
                self.incomplete = self.incomplete or self.settled
                return
            self._budget -= 1
            scaled = image.scaled(device, Qt.AspectRatioMode.IgnoreAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
            scaled.setDevicePixelRatio(self._dpr)
            self._scaled[key] = (image.cacheKey(), scaled)
        self._used.add(key)
        painter.drawImage(QPoint(target.x(), target.y()), scaled)

    def opaque_region(self, layer: TileLayer, level: int, rect: tuple[float, float, float, float],
                      preview: QImage | None = None) -> QRegion:
        """Widget area (whole pixels) that :meth:`paint_layer` will cover opaquely at ``level``
        inside level-0 ``rect`` (x0, y0, x1, y1): its cached tiles without alpha, and, for a
        provider of opaque tiles (``writes_bgrx``) with an opaque ``preview``, every tile (a
        missing one gets an opaque stand-in: a coarser or finer tile, else the preview)."""
        provider = layer.provider
        region = QRegion()
        stand_ins = provider.writes_bgrx and preview is not None and not preview.hasAlphaChannel()
        for col, row in provider.tiles_in(level, rect):
            image = self.cache.peek(TileKey(layer.id, level, col, row))
            if stand_ins or (image is not None and not image.hasAlphaChannel()):
                x, y, w, h = provider.tile_rect(level, col, row)
                region += self.widget_rect(x, y, x + w, y + h)
        return region

    def paint_layer(self, painter: QPainter, layer: TileLayer, level: int,
                    rect: tuple[float, float, float, float], preview: QImage | None) -> None:
        """Draw ``layer``'s tiles of ``level`` inside level-0 ``rect`` (x0, y0, x1, y1); stand-ins
        where a tile is not cached."""
        provider = layer.provider
        missing = []
        for col, row in provider.tiles_in(level, rect):
            key = TileKey(layer.id, level, col, row)
            image = self.cache.get(key)
            if image is None:
                missing.append((col, row))
                continue
            x, y, w, h = provider.tile_rect(level, col, row)
            self.paint_tile(painter, key, image, self.widget_rect(x, y, x + w, y + h))
        for col, row in missing:
            x, y, w, h = provider.tile_rect(level, col, row)
            self.paint_stand_in(painter, layer, level, (x, y, x + w, y + h), preview)

    def paint_stand_in(self, painter: QPainter, layer: TileLayer, level: int, area, preview: QImage | None) -> None:
        """Fill level-0 ``area`` (x0, y0, x1, y1) of a missing tile from what is cached: the
        nearest coarser level that covers it, else the next finer level, else ``preview``."""
        provider = layer.provider
        candidates = list(range(level + 1, len(provider.level_downsamples)))
        if level > 0:
            candidates.append(level - 1)
        for other in candidates:
            tiles = provider.tiles_in(other, area)
            images = [self.cache.peek(TileKey(layer.id, other, c, r)) for c, r in tiles]
            if tiles and all(image is not None for image in images):
                ds = provider.level_downsamples[other]
                for (col, row), image in zip(tiles, images):
                    self._paint_part(painter, image, provider.tile_rect(other, col, row), ds, area)
                return
        if preview is not None:
            ew, eh = provider.extent
            self._paint_part(painter, preview, (0.0, 0.0, ew, eh), ew / preview.width(), area)

    def _paint_part(self, painter: QPainter, image: QImage, image_rect, ds: float, area) -> None:
        """Draw the part of ``image`` (covering level-0 ``image_rect`` (x, y, w, h) at ``ds``
        level-0 px per image px) that lies inside level-0 ``area`` (x0, y0, x1, y1)."""
        x, y, w, h = image_rect
        x0, y0 = max(area[0], x), max(area[1], y)
        x1, y1 = min(area[2], x + w), min(area[3], y + h)
        if x1 <= x0 or y1 <= y0:
            return
        source = QRectF((x0 - x) / ds, (y0 - y) / ds, (x1 - x0) / ds, (y1 - y0) / ds)
        painter.drawImage(QRectF(self.widget_rect(x0, y0, x1, y1)), image, source)
