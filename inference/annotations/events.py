"""A minimal event (observer) for the annotation model objects, without Qt.

The GUI connects a callback that re-emits a Qt signal (queued onto the GUI thread when the
event fires on a worker thread); tests connect plain functions. Callbacks run on the thread
that fires the event, in the order they were connected; an exception in one callback
propagates to the caller (nothing is swallowed).
"""
from __future__ import annotations

import threading
from collections.abc import Callable


class Event:
    """``connect(callback)``, ``disconnect(callback)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []
        self._lock = threading.Lock()

    def connect(self, callback: Callable) -> Callable:
        """Call ``callback(*args)`` on every :meth:`emit`; returns it (usable as a decorator)."""
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        with self._lock:
            self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(*args)
