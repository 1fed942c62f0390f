"""One background thread that runs submitted jobs in order; results come back on the GUI thread.

The analysis GUI sends every change of the annotation session (brush segments, fills, undo,
region edits, opening and closing the session) through one :class:`SerialWorker`: the jobs
touch the same on-disk stores and must not interleave, and none of them may block the GUI
thread (they read and write chunks).
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal


class SerialWorker(QObject):
    """Runs ``fn()`` jobs one after another on a single thread.

    Signals
    -------
    idleChanged(bool) : True when the last queued job finished, False when a job is queued on
        an idle worker.
    """

    idleChanged = Signal(bool)
    _finished = Signal(object, object, object)  # job callbacks (on_done, on_error), result, error

    def __init__(self, name: str = "lobule-serial", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending = 0
        self._closed = False
        self._finished.connect(self._on_finished)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> Future | None:
        """Queue ``fn``; afterwards ``on_done(result)`` or ``on_error(exception)`` run on the GUI
        thread, in submission order. Returns the future (None once shut down)."""
        if self._closed:
            return None
        self._pending += 1
        if self._pending == 1:
            self.idleChanged.emit(False)
        callbacks = (on_done, on_error)

        def job():
            try:
                result = fn()
            except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
                self._finished.emit(callbacks, None, error)
                return None
            self._finished.emit(callbacks, result, None)
            return result

        return self._pool.submit(job)

    def _on_finished(self, callbacks, result, error) -> None:
        self._pending -= 1
        on_done, on_error = callbacks
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        if self._pending == 0:
            self.idleChanged.emit(True)

    def is_idle(self) -> bool:
        """True when no job is queued or running (and its callback has run)."""
        return self._pending == 0

    def run_now(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker after the queued jobs and wait for it (window closing only:
        this blocks the calling thread)."""
        if self._closed:
            return fn()
        return self._pool.submit(fn).result()

    def shutdown(self) -> None:
        """Finish the queued jobs and stop the thread (blocks until they are done)."""
        self._closed = True
        self._pool.shutdown(wait=True)
