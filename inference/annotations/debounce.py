"""A daemon thread that does one piece of work once its inputs have been quiet long enough.

The autosaver (:class:`~.autosave.Autosaver`) and the numbers follower
(:class:`~.follow.QuantFollower`) both wait for edits to pause before they act; this is their one
loop. A subclass holds its state under :attr:`_cond`, calls :meth:`_wake` when something changed,
and answers two questions: how long until the work is due (:meth:`_seconds_until_due`, asked with
the lock held) and what the work is (:meth:`_work`, run without the lock).
"""
from __future__ import annotations

import threading


class DebouncedThread:
    """Start/stop of the daemon thread and its wait-until-due loop (module docstring)."""

    thread_name = "lobule-debounced"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False

    def _seconds_until_due(self) -> float | None:
        """Seconds until :meth:`_work` is due (<= 0: now), or None when nothing is pending.
        Called with :attr:`_cond` held."""
        raise NotImplementedError

    def _work(self) -> None:
        """The debounced work (called on the thread, without the lock)."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Let the thread look again (call with :attr:`_cond` held, after changing the state)."""
        self._cond.notify()

    def start(self):
        """Run on a daemon thread until :meth:`stop`; returns self."""
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread after the work in progress (returns at once when called from it)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                wait = self._seconds_until_due()
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
            self._work()
