"""The tile-streaming slide view: paints cached tiles of its layers, asks for the missing ones.

Painting never waits: for every visible tile of the level chosen from the zoom, the painter
draws it if cached, otherwise the best stand-in it already has (a coarser level stretched, the
next finer level, or the layer's preview image), and the view asks the :class:`TileLoader` for
what is missing (visible tiles nearest the centre first; once a frame has shown them all, a
ring around the viewport and the next coarser level, so pans and zoom-outs find something to
show: the prefetch never takes a core from a tile on screen or from the frame that shows it).

A tile that arrives repaints only its own rectangle (the arrivals of ~16 ms are gathered into
one frame): while a new view fills, each tile is drawn about once instead of every tile and
stand-in being drawn again at every arrival, and the CPU stays with the decoding threads.

Extension points for later work (class overlays, region drawing):

- layers: :meth:`add_layer` / :meth:`remove_layer` with :class:`~lobule.app.slide.tile_layer.TileLayer`
  (own provider, opacity, visibility, :meth:`TileLayer.invalidate` to reload changed tiles);
- transforms: :meth:`level0_to_widget`, :meth:`widget_to_level0`, :meth:`view_transform`;
- vector overlays: :meth:`add_overlay`, objects with ``paint(painter, view)`` drawn above the
  tiles in widget coordinates (``painter.setTransform(view.view_transform())`` for level-0);
- tools: :meth:`set_tool`, an object whose ``mouse_press/mouse_move/mouse_release(view, event,
  (x, y) level-0)`` return True when they consumed the event (otherwise the view pans).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QRegion, QTransform
from PySide6.QtWidgets import QWidget

from lobule.app.slide.scale_bar import paint_scale_bar
from lobule.app.slide.tile_cache import TileCache
from lobule.app.slide.tile_layer import TileKey, TileLayer, TileRequest
from lobule.app.slide.tile_loader import TileLoader, array_to_qimage
from lobule.app.slide.tile_painter import TilePainter
from lobule.app.slide.view_state import ViewState

BACKGROUND = QColor(58, 60, 64)
SLIDE_BACKGROUND = QColor(255, 255, 255)
WHEEL_STEP = 1.25  # zoom factor per wheel notch
KEY_ZOOM = 1.5
KEY_PAN_FRACTION = 0.2
TILE_REPAINT_MS = 16  # arriving tiles repaint the view at most this often (~60 frames/s)
ZOOM_SETTLE_MS = 150  # the zoom counts as settled (tiles get high-quality scaling) after this pause
JUMP_WAIT_MS = 30  # after a jump the first frame waits this long for the view's tiles


class SlideView(QWidget):
    """A pannable, zoomable view of tile layers in a slide's level-0 frame.

    Parameters
    ----------
    cache_bytes : tile cache budget in bytes.
    threads : tile-reading worker threads.

    Signals
    -------
    viewChanged() : centre, zoom, size or layers changed.
    cursorMoved(object) : (x, y) level-0 position under the mouse, or None when it left.
    viewportComplete() : every visible tile of every visible layer is loaded at the level the
        zoom asks for (emitted once per view change).
    tileFailed(str) : a tile could not be read (its one-line reason); it is drawn from a stand-in.
    """

    viewChanged = Signal()
    tileFailed = Signal(str)
    cursorMoved = Signal(object)
    viewportComplete = Signal()

    def __init__(self, cache_bytes: int = 512 << 20, threads: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState()
        self.cache = TileCache(cache_bytes)
        self.loader = TileLoader(threads, parent=self)
        self.loader.tileLoaded.connect(self._on_tile_loaded)
        self.loader.tileFailed.connect(self._on_tile_failed)
        self.cache.on_evict = self.loader.recycle  # evicted tiles' memory serves new tiles
        self.mpp: float | None = None
        self.base_magnification: float | None = None
        self.failed_tiles: dict[TileKey, str] = {}
        self._layers: list[TileLayer] = []
        self._previews: dict[int, QImage] = {}
        self._stale: set[TileKey] = set()
        self._prefetch: list[TileRequest] = []  # asked for once the complete viewport is shown
        self._on_screen: set[TileKey] = set()
        self._overlays: list = []
        self._tool = None
        self._needs_fit = True
        self._drag_from: QPointF | None = None
        self._complete_sent = False
        self._fill_shown = False  # a frame showed the complete viewport since the view last changed
        self._quality_frame = False  # the last frame drew every tile at its final quality
        self._request_timer = QTimer(self)
        self._request_timer.setSingleShot(True)
        self._request_timer.setInterval(0)
        self._request_timer.timeout.connect(self._update_requests)
        self._repaint_timer = QTimer(self)
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(TILE_REPAINT_MS)
        self._repaint_timer.timeout.connect(self._repaint_dirty)
        self._dirty = QRegion()  # widget area of tiles that arrived since the last repaint
        self._dirty_all = False  # the next timed repaint redraws everything
        self._full_frame_due = False  # the view changed and no full frame has shown it yet
        self._tile_painter = TilePainter(self.cache)
        self._settle_timer = QTimer(self)  # running while the zoom is changing
        self._settle_timer.setSingleShot(True)
        self._settle_timer.setInterval(ZOOM_SETTLE_MS)
        self._settle_timer.timeout.connect(self._zoom_settled)
        self._settled_scale = self.state.scale
        # a jump (the new view shares nothing with the last frame) waits up to one frame for its
        # tiles instead of painting a screenful of stretched stand-ins first: that frame costs
        # 5-12 ms of the GUI thread, which holds Python's GIL while Qt paints and so also stalls
        # the tile threads, and is replaced by the real tiles a few ms later
        self._jump_timer = QTimer(self)
        self._jump_timer.setSingleShot(True)
        self._jump_timer.setInterval(JUMP_WAIT_MS)
        self._jump_timer.timeout.connect(self._jump_wait_over)
        self._last_frame: tuple[float, tuple[float, float, float, float]] | None = None  # (scale, rect)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    # --- layers -----------------------------------------------------------------------------
    @property
    def layers(self) -> tuple[TileLayer, ...]:
        """Layers bottom first; the first one defines the slide extent."""
        return tuple(self._layers)

    def add_layer(self, layer: TileLayer, index: int | None = None) -> None:
        self._layers.insert(len(self._layers) if index is None else index, layer)
        layer.connect(self._on_layer_event)
        if layer.preview is not None:
            self._previews[layer.id] = array_to_qimage(layer.preview)
        if len(self._layers) == 1:
            self.state.slide_size = layer.provider.extent
            self._needs_fit = True
            self._fit_if_sized()
        self._view_changed()

    def remove_layer(self, layer: TileLayer, close_provider: bool = False) -> None:
        """Remove ``layer``; with ``close_provider`` its provider is closed once no worker reads it."""
        self._layers.remove(layer)
        layer.disconnect(self._on_layer_event)
        self._previews.pop(layer.id, None)
        self.cache.discard_where(lambda key: key.layer_id == layer.id)
        self._stale = {k for k in self._stale if k.layer_id != layer.id}
        self.failed_tiles = {k: v for k, v in self.failed_tiles.items() if k.layer_id != layer.id}
        self.loader.retire(layer.provider, layer.provider.close if close_provider else None)
        self._view_changed()

    def clear_layers(self, close_providers: bool = True) -> None:
        for layer in reversed(self._layers):
            self.remove_layer(layer, close_providers)

    def _on_layer_event(self, layer: TileLayer, what: str, detail) -> None:
        if what == "preview":
            if layer.preview is None:
                self._previews.pop(layer.id, None)
            else:
                self._previews[layer.id] = array_to_qimage(layer.preview)
        elif what == "data":
            provider = layer.provider
            for key in self.cache.keys(lambda k: k.layer_id == layer.id):
                if detail is None or _intersects(_rect_xyxy(provider.tile_rect(key.level, key.col, key.row)), detail):
                    self._stale.add(key)
            self.failed_tiles = {k: v for k, v in self.failed_tiles.items() if k.layer_id != layer.id}
        self._view_changed()

    # --- overlays and tools -----------------------------------------------------------------
    def add_overlay(self, overlay) -> None:
        """Draw ``overlay.paint(painter, view)`` above the tiles (widget coordinates)."""
        self._overlays.append(overlay)
        self.update()

    def remove_overlay(self, overlay) -> None:
        self._overlays.remove(overlay)
        self.update()

    def set_tool(self, tool) -> None:
        """Route mouse events to ``tool`` first (None: plain panning)."""
        self._tool = tool

    # --- transforms and state ---------------------------------------------------------------
    def level0_to_widget(self, x: float, y: float) -> tuple[float, float]:
        return self.state.level0_to_widget(x, y)

    def widget_to_level0(self, x: float, y: float) -> tuple[float, float]:
        return self.state.widget_to_level0(x, y)

    def view_transform(self) -> QTransform:
        """QTransform mapping level-0 pixels to widget pixels."""
        s = self.state.scale
        tx, ty = self.state.level0_to_widget(0.0, 0.0)
        return QTransform(s, 0.0, 0.0, s, tx, ty)

    def visible_rect(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) level-0 area shown."""
        return self.state.visible_rect()

    def level_for(self, layer: TileLayer) -> int:
        """The level of ``layer`` the current zoom draws."""
        return layer.provider.best_level(self.state.downsample)

    def magnification(self) -> float | None:
        """Equivalent objective magnification on screen (None when the slide gives no scale)."""
        if self.base_magnification is None:
            return None
        return self.base_magnification * self.state.scale

    def set_magnification(self, magnification: float) -> None:
        """Zoom (around the centre) so the screen shows ``magnification``; no-op without a scale."""
        if self.base_magnification:
            self.state.set_scale(magnification / self.base_magnification)
            self._view_changed()

    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        self.state.zoom_by(factor, anchor)
        self._view_changed()

    def pan_by(self, dx: float, dy: float) -> None:
        self.state.pan_by(dx, dy)
        self._view_changed()

    def center_on(self, x: float, y: float) -> None:
        self.state.center_on(x, y)
        self._view_changed()

    def fit(self) -> None:
        self.state.fit()
        self._view_changed()

    def set_mpp(self, mpp: float | None) -> None:
        self.mpp = mpp
        self.update()

    def shutdown(self) -> None:
        """Stop the workers and close every layer's provider once idle (call before deleting)."""
        self.clear_layers(close_providers=True)
        self.loader.shutdown()

    # --- requests ---------------------------------------------------------------------------
    def _view_changed(self) -> None:
        if self.state.scale != self._settled_scale:
            self._settled_scale = self.state.scale
            self._settle_timer.start()
        self._complete_sent = False
        self._fill_shown = False
        # tile areas waiting to be repainted are part of the full frame to come
        self._repaint_timer.stop()
        self._dirty, self._dirty_all = QRegion(), False
        self._full_frame_due = True
        self._request_timer.start()  # asks for the tiles, then repaints (see _update_requests)
        self.viewChanged.emit()

    def _visible_layers(self) -> list[TileLayer]:
        return [layer for layer in self._layers if layer.visible and layer.opacity > 0]

    def _needed(self, key: TileKey) -> bool:
        return (key not in self.cache or key in self._stale) and key not in self.failed_tiles

    def _update_requests(self) -> None:
        urgent: list[TileRequest] = []
        later: list[TileRequest] = []
        rect = self.visible_rect()
        self._on_screen = set()
        screen_bytes = 0
        for layer in self._visible_layers():
            provider = layer.provider
            level = self.level_for(layer)
            span = provider.tile_size * provider.level_downsamples[level]
            ring = (rect[0] - span, rect[1] - span, rect[2] + span, rect[3] + span)
            visible = provider.tiles_in(level, rect)
            wanted = [(level, c, r) for c, r in visible]
            on_screen = [TileKey(layer.id, level, c, r) for c, r in visible]
            self._on_screen.update(on_screen)
            for key in on_screen:  # tiles on screen are the last to be evicted, painted yet or not
                self.cache.get(key)
            screen_bytes += 4 * len(visible) * provider.tile_size ** 2
            urgent += self._requests(layer, wanted)
            seen = set(visible)
            later += self._requests(layer, [(level, c, r) for c, r in provider.tiles_in(level, ring)
                                            if (c, r) not in seen])
            if level + 1 < len(provider.level_downsamples):
                later += self._requests(layer, [(level + 1, c, r) for c, r in provider.tiles_in(level + 1, ring)])
        if screen_bytes > self.cache.max_bytes // 2:
            # a screenful must fit twice, or tiles on screen would push each other out forever
            self.cache.max_bytes = 2 * screen_bytes
        self._prefetch = later if urgent else []
        self.loader.submit(urgent if urgent else later)
        # the frame of stand-ins is painted after the tile threads have their work, not before;
        # after a jump, once its tiles are in or one frame interval has passed
        if urgent and self._is_jump(rect):
            if not self._jump_timer.isActive():
                self._jump_timer.start()
        else:
            self._jump_timer.stop()
            self.update()
        self._check_complete()

    def _zoom_settled(self) -> None:
        if not self._jump_timer.isActive():  # a jump's first frame is drawn settled anyway
            self.update()  # tiles at their final quality

    def _jump_wait_over(self) -> None:
        self.update()  # the tiles that arrived and stand-ins for the others

    def _is_jump(self, rect: tuple[float, float, float, float]) -> bool:
        """True when ``rect`` (level-0 x0, y0, x1, y1) at the current zoom shares no area with
        the last full frame's view at that zoom: nothing already on screen can stay."""
        last = self._last_frame
        return last is not None and last[0] == self.state.scale and not _intersects(rect, last[1])

    def _requests(self, layer: TileLayer, tiles: Iterable[tuple[int, int, int]]) -> list[TileRequest]:
        out = []
        for level, col, row in tiles:
            key = TileKey(layer.id, level, col, row)
            if self._needed(key):
                out.append(TileRequest(key, layer.revision, layer.provider))
        return out

    def is_viewport_complete(self) -> bool:
        """True when every visible tile is loaded (or failed) at the level the zoom asks for."""
        if not self._request_timer.isActive():  # the tiles on screen are those last asked for
            return not any(self._needed(key) for key in self._on_screen)
        rect = self.visible_rect()
        for layer in self._visible_layers():
            level = self.level_for(layer)
            for col, row in layer.provider.tiles_in(level, rect):
                if self._needed(TileKey(layer.id, level, col, row)):
                    return False
        return True

    def is_settled(self) -> bool:
        """True when the next frame would look exactly like the last one: every visible tile
        loaded and current (none waiting to be reloaded after an edit), the zoom settled and
        every tile drawn at its final quality."""
        return (self._quality_frame and not (self._settle_timer.isActive() or self._tile_painter.incomplete)
                and self.is_viewport_complete())

    def is_viewport_shown(self) -> bool:
        """True once a frame has shown the complete viewport (every visible tile at the level
        the zoom asks for) since the view last changed."""
        return self._fill_shown

    def _check_complete(self) -> None:
        if not self._complete_sent and self._layers and self.is_viewport_complete():
            self._complete_sent = True
            if self._jump_timer.isActive():  # the jump's tiles are all in: its first frame now
                self._jump_timer.stop()
                self.update()
            if self._repaint_timer.isActive():  # show the last tiles now, not a frame later
                self._repaint_timer.stop()
                self._repaint_dirty()
            self.viewportComplete.emit()

    def _layer_of(self, request: TileRequest) -> TileLayer | None:
        for layer in self._layers:
            if layer.id == request.key.layer_id:
                if layer.revision == request.revision and layer.provider is request.provider:
                    return layer
                return None
        return None

    def _on_tile_loaded(self, request: TileRequest, image: QImage) -> None:
        if self._layer_of(request) is None:
            return  # the layer was removed or its data changed while the tile was read
        on_screen = request.key in self._on_screen
        self.cache.put(request.key, image, image.sizeInBytes(), recent=on_screen)
        self._stale.discard(request.key)
        if on_screen:
            key = request.key
            x, y, w, h = request.provider.tile_rect(key.level, key.col, key.row)
            self._schedule_repaint(self._widget_rect(x, y, x + w, y + h))
        self._check_complete()

    def _on_tile_failed(self, request: TileRequest, reason: str) -> None:
        if self._layer_of(request) is None:
            return
        self.failed_tiles[request.key] = reason
        self._stale.discard(request.key)
        self.tileFailed.emit(reason)
        self._schedule_repaint()
        self._check_complete()

    # --- repaints ---------------------------------------------------------------------------
    def _widget_rect(self, x0: float, y0: float, x1: float, y1: float) -> QRect:
        """Level-0 rectangle in widget pixels, grown to whole pixels (and one more for rounding)."""
        ax, ay = self.level0_to_widget(x0, y0)
        bx, by = self.level0_to_widget(x1, y1)
        left, top = math.floor(ax) - 1, math.floor(ay) - 1
        return QRect(left, top, math.ceil(bx) + 1 - left, math.ceil(by) + 1 - top)

    def _schedule_repaint(self, rect: QRect | None = None) -> None:
        """Repaint ``rect`` (widget pixels; None: everything) at the next timed frame (after a
        jump: with the full frame that ends the wait)."""
        if self._jump_timer.isActive():
            return
        if rect is None:
            self._dirty_all = True
        else:
            self._dirty += rect
        if not self._repaint_timer.isActive():
            self._repaint_timer.start()

    def _repaint_dirty(self) -> None:
        if self._dirty_all:
            self.update()
        elif not self._dirty.isEmpty():
            self.update(self._dirty)
        self._dirty, self._dirty_all = QRegion(), False

    # --- painting ---------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._jump_timer.stop()  # whatever asked for this frame, it shows the jump
        self.state.device_pixel_ratio = self.devicePixelRatioF()
        painter = QPainter(self)
        if not self._layers:
            painter.fillRect(self.rect(), BACKGROUND)
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Open a slide: File > Open, or drop a file here")
            painter.end()
            return
        tiles = self._tile_painter
        # tiles shown at another size are drawn bilinear until the viewport has been shown
        # complete once: the area-averaged rescaling (a few tiles per frame) waits until the
        # tile threads no longer need the CPU for what is on screen
        quality = self._fill_shown and not self._settle_timer.isActive()
        tiles.begin_frame(self.state, settled=quality)
        sw, sh = self.state.slide_size
        # a frame of newly arrived tiles redraws only their area: only tiles inside it are drawn
        exposed = event.region().boundingRect().intersected(self.rect())
        full = exposed == self.rect()
        rect = self.visible_rect()
        if not full:
            (ex0, ey0), (ex1, ey1) = (self.widget_to_level0(exposed.left(), exposed.top()),
                                      self.widget_to_level0(exposed.right() + 1, exposed.bottom() + 1))
            rect = (max(rect[0], ex0), max(rect[1], ey0), min(rect[2], ex1), min(rect[3], ey1))
        # the backgrounds are filled only where no opaque tile of the bottom layer will be drawn
        # (two full-window fills cost as much as drawing the tiles)
        uncovered = QRegion(self.rect())
        layers = self._visible_layers()
        if layers and layers[0] is self._layers[0] and layers[0].opacity >= 1.0:
            uncovered -= tiles.opaque_region(layers[0], self.level_for(layers[0]), rect,
                                             self._previews.get(layers[0].id))
        painter.setClipRegion(uncovered)
        painter.fillRect(self.rect(), BACKGROUND)
        painter.fillRect(tiles.widget_rect(0, 0, sw, sh), SLIDE_BACKGROUND)
        painter.setClipping(False)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for layer in layers:
            painter.setOpacity(layer.opacity)
            tiles.paint_layer(painter, layer, self.level_for(layer), rect, self._previews.get(layer.id))
        tiles.end_frame(full)
        painter.setOpacity(1.0)
        for overlay in self._overlays:
            painter.save()
            overlay.paint(painter, self)
            painter.restore()
        paint_scale_bar(painter, QRectF(self.rect()), self.mpp, self.state.scale)
        painter.end()
        if full:
            self._last_frame = (self.state.scale, rect)
        # a partial frame leaves the rest of the screen as the last frames drew it
        self._quality_frame = quality and (full or self._quality_frame)
        self._full_frame_due = self._full_frame_due and not full
        if not self._fill_shown and not self._full_frame_due and self.is_viewport_complete():
            # every tile that arrived had its area repainted (a partial frame after the last
            # arrival covers it): the screen now shows the complete viewport
            self._fill_shown = True
            if self._prefetch:  # only now: the neighbours never delay the frame that completes
                self.loader.submit(self._prefetch)
                self._prefetch = []
            if not quality:
                self._schedule_repaint()  # the rescaling pass
        if tiles.incomplete:
            self._schedule_repaint()  # scale the remaining tiles in the next frames

    # --- events -----------------------------------------------------------------------------
    def _fit_if_sized(self) -> None:
        if self._needs_fit and self.isVisible() and self.width() > 0:
            self._needs_fit = False
            self.state.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self.state.widget_size = (self.width(), self.height())
        self.state.device_pixel_ratio = self.devicePixelRatioF()
        self._fit_if_sized()
        self._view_changed()

    def showEvent(self, event) -> None:  # noqa: N802
        self.state.widget_size = (self.width(), self.height())
        self._fit_if_sized()
        self._view_changed()

    def wheelEvent(self, event) -> None:  # noqa: N802
        if not self._layers:
            return
        steps = event.angleDelta().y() / 120.0
        if steps == 0 and not event.pixelDelta().isNull():
            steps = event.pixelDelta().y() / 50.0
        if steps:
            pos = event.position()
            self.zoom_by(WHEEL_STEP ** steps, (pos.x(), pos.y()))
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._tool is not None and self._tool.mouse_press(self, event, self.widget_to_level0(pos.x(), pos.y())):
            return
        if event.button() == Qt.MouseButton.LeftButton and self._layers:
            self._drag_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        point = self.widget_to_level0(pos.x(), pos.y())
        if self._layers:
            self.cursorMoved.emit(point)
        if self._tool is not None and self._tool.mouse_move(self, event, point):
            return
        if self._drag_from is not None:
            delta = pos - self._drag_from
            self._drag_from = pos
            self.pan_by(delta.x(), delta.y())

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._tool is not None and self._tool.mouse_release(self, event, self.widget_to_level0(pos.x(), pos.y())):
            return
        if self._drag_from is not None:
            self._drag_from = None
            self.unsetCursor()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        if self._tool is None and self._layers and event.button() == Qt.MouseButton.LeftButton:
            pos = event.position()
            self.zoom_by(2.0, (pos.x(), pos.y()))

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.cursorMoved.emit(None)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        w, h = self.width(), self.height()
        pans = {Qt.Key.Key_Left: (KEY_PAN_FRACTION * w, 0), Qt.Key.Key_Right: (-KEY_PAN_FRACTION * w, 0),
                Qt.Key.Key_Up: (0, KEY_PAN_FRACTION * h), Qt.Key.Key_Down: (0, -KEY_PAN_FRACTION * h)}
        if not self._layers:
            super().keyPressEvent(event)
        elif key in pans:
            self.pan_by(*pans[key])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(KEY_ZOOM)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_by(1 / KEY_ZOOM)
        else:
            super().keyPressEvent(event)


def _rect_xyxy(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = rect
    return x, y, x + w, y + h


def _intersects(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

