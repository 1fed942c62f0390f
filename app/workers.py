"""Run one function on a worker thread and get its result back on the GUI thread."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
            self.relay.failed.emit(error)
        else:
            self.relay.done.emit(result)


_alive: set[_Relay] = set()


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None],
                      on_error: Callable[[BaseException], None]) -> None:
    """Call ``fn()`` on the global QThreadPool; then ``on_done(result)`` or ``on_error(exception)``
    on the GUI thread (queued signal delivery). ``fn`` must not touch widgets."""
    relay = _Relay()
    _alive.add(relay)

    def finish(callback, value) -> None:
        _alive.discard(relay)
        callback(value)

    relay.done.connect(lambda result: finish(on_done, result))
    relay.failed.connect(lambda error: finish(on_error, error))
    QThreadPool.globalInstance().start(_Job(fn, relay))
