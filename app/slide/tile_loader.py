"""Loads tiles on worker threads; the GUI thread never waits for a read.

The view hands :meth:`TileLoader.submit` the complete, priority-ordered list of tiles it wants
now (napari's layer-slicer idea: each new request supersedes the previous one). Queued requests
that are not in the new list are dropped unread: when the view moves on, stale work is
abandoned. Reads already running finish and are delivered (they may still be useful).

Slide tiles are decoded straight into the memory of the QImage the view paints
(:func:`read_tile_image`): no RGB array, no conversion. Images of tiles evicted from the view's
cache are reused, and idle workers prepare a few more, because writing a new 1 MB image costs
page faults worth about as much CPU as decoding the tile.

Results are delivered through Qt signals, which reach slots in the GUI thread as queued calls;
workers never touch a widget.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from lobule.app.slide.tile_layer import TileProvider, TileRequest
from lobule.core.errors import LobuleError

_LITTLE_ENDIAN = sys.byteorder == "little"
_RGB32 = QImage.Format.Format_RGB32


def array_to_qimage(array: np.ndarray) -> QImage:
    """Convert an image to a QImage in a format the raster painter blits fastest.

    Parameters
    ----------
    array : (H, W, 3) uint8 RGB, (H, W, 4) uint8 straight-alpha RGBA, or (H, W) uint8 grey.

    Returns
    -------
    QImage owning its pixels: Format_RGB32 (RGB, grey) or Format_ARGB32_Premultiplied (RGBA).
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 2:
        h, w = array.shape
        src = QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8)
        return src.convertToFormat(QImage.Format.Format_RGB32)
    h, w, channels = array.shape
    if channels == 3:
        src = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        return src.convertToFormat(QImage.Format.Format_RGB32)
    if channels == 4:
        src = QImage(array.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        return src.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {array.shape}")


SPARE_BYTES = 32 << 20  # evicted or prepared tile images kept for reuse (32 of 512 px)
SPARE_IDLE_S = 0.1  # tile images are prepared only after this long without a request


def read_tile_image(request: TileRequest, spare: QImage | None = None) -> QImage:
    """The tile of ``request`` as a QImage in the format the view paints without conversion.

    Providers that write opaque tiles in the screen's byte order (``writes_bgrx``) decode
    straight into the pixels of a ``Format_RGB32`` image (B, G, R, 255 in memory on
    little-endian machines): ``spare`` when it has the tile's size and format (its pixels are
    all overwritten; memory already in use costs no page faults, a new 1 MB image about as
    much CPU as decoding it), else a new one. Other providers go through :func:`array_to_qimage`.
    """
    provider, key = request.provider, request.key
    if not (provider.writes_bgrx and _LITTLE_ENDIAN):
        return array_to_qimage(provider.read_tile(key.level, key.col, key.row))
    width, height = provider.tile_shape(key.level, key.col, key.row)
    image = spare
    if image is None or (image.width(), image.height(), image.format()) != (width, height, _RGB32):
        image = QImage(width, height, _RGB32)
        if image.isNull():
            raise MemoryError(f"cannot allocate a {width}x{height} tile image")
    # Format_RGB32 rows are 4 * width bytes: no padding, one C-contiguous (h, w, 4) array;
    # bits() detaches an image whose pixels are shared, so no other image sees the writes
    pixels = np.frombuffer(image.bits(), np.uint8).reshape(height, width, 4)
    provider.read_tile_bgrx(key.level, key.col, key.row, pixels)
    return image


class TileLoader(QObject):
    """A pool of worker threads reading :class:`TileRequest` s, newest wish list first.

    Signals
    -------
    tileLoaded(TileRequest, QImage)
    tileFailed(TileRequest, str) : the provider raised; the one-line reason.

    Attributes
    ----------
    dropped : number of queued requests abandoned because a newer :meth:`submit` left them out.
    loaded : number of tiles read.
    """

    tileLoaded = Signal(object, object)
    tileFailed = Signal(object, str)

    def __init__(self, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._queue: deque[TileRequest] = deque()
        self._running: set[TileRequest] = set()
        self._busy: dict[int, int] = {}  # id(provider) -> reads running
        self._retired: dict[int, tuple[TileProvider, Callable[[], None] | None]] = {}
        self._stop = False
        self.dropped = 0
        self.loaded = 0
        self._spare: deque[QImage] = deque()
        self._spare_size: tuple[int, int] | None = None  # (w, h) of the last full screen-format tile
        self._last_busy = time.monotonic()  # when a worker last took or finished a request
        self._threads = [threading.Thread(target=self._work, name=f"lobule-tile-{i}", daemon=True)
                         for i in range(max(1, int(threads)))]
        for thread in self._threads:
            thread.start()

    # --- GUI-thread API ---------------------------------------------------------------------
    def submit(self, requests: Sequence[TileRequest]) -> None:
        """Replace the queue with ``requests`` (most urgent first), minus those already running."""
        with self._cond:
            wanted = [r for r in dict.fromkeys(requests) if r not in self._running
                      and id(r.provider) not in self._retired]
            keep = set(wanted)
            self.dropped += sum(1 for r in self._queue if r not in keep)
            self._queue = deque(wanted)
            self._cond.notify_all()

    def recycle(self, image) -> None:
        """Offer a tile image nobody draws any more (evicted from the cache) for reuse; kept
        when it has the size of a whole slide tile and fewer than :meth:`spare_limit` are."""
        if (isinstance(image, QImage) and image.format() == _RGB32
                and image.size().toTuple() == self._spare_size and len(self._spare) < self.spare_limit()):
            self._spare.append(image)

    def spare_limit(self) -> int:
        """How many tile images are kept for reuse (:data:`SPARE_BYTES` of whole tiles; 0
        before the first slide tile)."""
        if self._spare_size is None:
            return 0
        return max(1, SPARE_BYTES // (4 * self._spare_size[0] * self._spare_size[1]))

    def pending(self) -> int:
        """Requests queued or being read."""
        with self._cond:
            return len(self._queue) + len(self._running)

    def retire(self, provider: TileProvider, when_idle: Callable[[], None] | None = None) -> None:
        """Stop reading from ``provider``; call ``when_idle`` (e.g. ``provider.close``) once no
        worker reads from it any more (at once if none does; otherwise from a worker thread)."""
        with self._cond:
            before = len(self._queue)
            self._queue = deque(r for r in self._queue if r.provider is not provider)
            self.dropped += before - len(self._queue)
            if self._busy.get(id(provider), 0):
                self._retired[id(provider)] = (provider, when_idle)
                return
        if when_idle is not None:
            when_idle()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Drop the queue, let running reads finish (up to ``timeout`` s), stop the threads."""
        with self._cond:
            self._stop = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # --- worker side ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                request = None
                while not self._stop:
                    if self._queue:
                        request = self._queue.popleft()
                        self._running.add(request)
                        pid = id(request.provider)
                        self._busy[pid] = self._busy.get(pid, 0) + 1
                        self._last_busy = time.monotonic()
                        break
                    if not self._wants_spare():
                        self._cond.wait()
                        continue
                    idle = time.monotonic() - self._last_busy
                    if idle >= SPARE_IDLE_S:
                        break  # nothing asked for a while: prepare a tile image
                    self._cond.wait(SPARE_IDLE_S - idle)
                if self._stop:
                    return
            if request is None:  # idle: prepare memory for the next tiles
                self._make_spare()
                continue
            try:
                image = read_tile_image(request, self._take_spare() if request.provider.writes_bgrx else None)
                if request.provider.writes_bgrx and image.width() == image.height() == request.provider.tile_size:
                    self._spare_size = (image.width(), image.height())
            except (LobuleError, ValueError, OSError, MemoryError) as exc:
                self._deliver(self.tileFailed, request, str(exc) or type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - a worker must survive any reader bug
                self._deliver(self.tileFailed, request, f"{type(exc).__name__}: {exc}")
            else:
                self._deliver(self.tileLoaded, request, image)
            finally:
                self._finish(request)

    def _wants_spare(self) -> bool:
        return len(self._spare) < self.spare_limit()

    def _make_spare(self) -> None:
        """Once nothing was asked for :data:`SPARE_IDLE_S`: a tile image with its memory
        touched, so the next tiles on screen are decoded into pages the system has already
        handed out (a new image costs page faults worth about a tile's decoding)."""
        size = self._spare_size
        if size is None:
            return
        image = QImage(size[0], size[1], _RGB32)
        if image.isNull():  # no memory to spare: stop trying
            self._spare_size = None
            return
        image.fill(0xFFFFFFFF)
        self._spare.append(image)

    def _take_spare(self) -> QImage | None:
        try:
            return self._spare.pop()
        except IndexError:
            return None

    def _finish(self, request: TileRequest) -> None:
        closer = None
        with self._cond:
            self._last_busy = time.monotonic()
            self._running.discard(request)
            pid = id(request.provider)
            self._busy[pid] -= 1
            if not self._busy[pid]:
                del self._busy[pid]
                retired = self._retired.pop(pid, None)
                if retired is not None:
                    closer = retired[1]
        if closer is not None:
            closer()

    def _deliver(self, signal, request: TileRequest, payload) -> None:
        with self._cond:
            if self._stop:
                return
            if signal is self.tileLoaded:
                self.loaded += 1
        try:
            signal.emit(request, payload)
        except RuntimeError:  # the loader's Qt object was deleted while we were reading
            pass
