"""The GUI's one way to run work off the GUI thread: progress, cancel and errors as signals.

A :class:`Job` runs ``fn(job)`` on a worker thread. The function never touches widgets; it may
call ``job.report(...)`` (progress), ``job.say(text)`` (a stage line) and poll
``job.is_cancelled()`` or hand ``job.cancel_event`` to the engine as its cancel token. The
signals arrive on the GUI thread (queued delivery):

- ``progress(tuple)`` : the values given to :meth:`Job.report`;
- ``message(str)`` : a stage line from :meth:`Job.say`;
- ``done(object)`` : the function's result;
- ``failed(object)`` : the exception it raised;
- ``cancelled()`` : it raised :class:`~lobule.core.cancel.Cancelled`, or failed after
  :meth:`Job.cancel` was called.

:func:`start_job` runs a job on the global thread pool (jobs run side by side);
:class:`SerialRunner` runs its jobs one after another on one thread, their callbacks in
submission order (the annotation session's edits must not interleave).

superqt's ``create_worker`` was considered: its progress is what a generator yields, while our
engine, FFA and few-shot code report through callbacks from inside library calls, and it has no
ordered serial mode; these ~170 lines keep one dependency out of the frozen app.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class Job(QObject):
    """One background call of ``fn(job)``; see the module docstring for its signals."""

    progress = Signal(tuple)
    message = Signal(str)
    done = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, fn: Callable[["Job"], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self.cancel_event = threading.Event()
        self._ended = threading.Event()

    # --- from the worker thread ------------------------------------------------------------
    def report(self, *values) -> None:
        """Progress from the worker (e.g. ``report(done, total)`` or ``report(event)``)."""
        self.progress.emit(values)

    def say(self, text: str) -> None:
        """A stage line from the worker."""
        self.message.emit(text)

    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    # --- from the GUI thread ----------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the function to stop (it polls the token; ``cancelled`` follows when it does)."""
        self.cancel_event.set()

    def start(self, pool: QThreadPool | None = None) -> "Job":
        (pool or QThreadPool.globalInstance()).start(_Runnable(self))
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the function returned (window closing only); True if it did."""
        return self._ended.wait(timeout)

    def run(self) -> None:
        """Call the function here, on this thread, emitting the end signal."""
        from lobule.core.cancel import Cancelled

        try:
            result = self._fn(self)
        except Cancelled:
            self._ended.set()
            self.cancelled.emit()
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
            self._ended.set()
            if self.cancel_event.is_set():
                self.cancelled.emit()
            else:
                self.failed.emit(error)
        else:
            self._ended.set()
            self.done.emit(result)


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self) -> None:
        self.job.run()


_alive: set[Job] = set()  # jobs started by start_job, kept until their end signal arrived


def start_job(fn: Callable[[Job], Any], on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None,
              on_progress: Callable[..., None] | None = None,
              on_cancelled: Callable[[], None] | None = None,
              pool: QThreadPool | None = None) -> Job:
    """Run ``fn(job)`` on the thread pool; then ``on_done(result)``, ``on_error(exception)`` or
    ``on_cancelled()`` on the GUI thread; ``on_progress(*values)`` for each :meth:`Job.report`.
    Returns the job (keep it to cancel)."""
    job = Job(fn)
    _alive.add(job)

    def finish(callback, *value) -> None:
        _alive.discard(job)
        if callback is not None:
            callback(*value)

    job.done.connect(lambda result: finish(on_done, result))
    job.failed.connect(lambda error: finish(on_error, error))
    job.cancelled.connect(lambda: finish(on_cancelled))
    if on_progress is not None:
        job.progress.connect(lambda values: on_progress(*values))
    return job.start(pool)


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None],
                      on_error: Callable[[BaseException], None]) -> Job:
    """``fn()`` (no progress, no cancel) through :func:`start_job`."""
    return start_job(lambda job: fn(), on_done, on_error)


class SerialRunner(QObject):
    """Runs ``fn()`` jobs one after another on one thread; callbacks on the GUI thread, in order.

    Signals
    -------
    idleChanged(bool) : True when the last queued job's callback ran, False when a job is queued
        on an idle runner.
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

    def shutdown(self) -> None:
        """Finish the queued jobs and stop the thread (blocks until they are done)."""
        self._closed = True
        self._pool.shutdown(wait=True)
