"""Background jobs of the MRI/CT tab (open a volume, run the segmentation) with progress and cancel.

A job runs on the global QThreadPool, never touches widgets, and reports through a relay QObject
whose signals are delivered on the GUI thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class JobRelay(QObject):
    """Signals of one background job: ``progress(done, total)``, ``done(result)``, ``failed(error)``."""

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class _Job(QRunnable):
    def __init__(self, fn: Callable[[JobRelay], Any], relay: JobRelay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn(self.relay)
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
            self.relay.failed.emit(error)
        else:
            self.relay.done.emit(result)


_alive: set[JobRelay] = set()




def start_job(fn: Callable[[JobRelay], Any], on_done: Callable[[Any], None],
              on_error: Callable[[BaseException], None],
              on_progress: Callable[[int, int], None] | None = None) -> JobRelay:
    """Run ``fn(relay)`` on the thread pool; ``fn`` may call ``relay.progress.emit(done, total)`` and
    poll ``relay.cancelled()``. Returns the relay (keep it to cancel)."""
    relay = JobRelay()
    _alive.add(relay)

    def finish(callback, value) -> None:
        _alive.discard(relay)
        callback(value)

    relay.done.connect(lambda result: finish(on_done, result))
    relay.failed.connect(lambda error: finish(on_error, error))
    if on_progress is not None:
        relay.progress.connect(on_progress)
    QThreadPool.globalInstance().start(_Job(fn, relay))
    return relay
