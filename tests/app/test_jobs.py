"""The GUI's one job runner: results, progress, errors and cancellation arrive as signals on the
GUI thread; the serial runner keeps submission order and says when it is idle."""
from __future__ import annotations

import threading

import pytest

from lobule.app.common.jobs import SerialRunner, start_job
from lobule.core.cancel import Cancelled, check_cancelled


def test_a_job_reports_progress_and_its_result_on_the_gui_thread(qtbot):
    gui = threading.current_thread()
    seen = []

    def work(job):
        assert threading.current_thread() is not gui
        for i in range(3):
            job.report(i + 1, 3)
        return "map"

    done = []
    job = start_job(work, done.append, pytest.fail, lambda d, t: seen.append((d, t, threading.current_thread())))
    qtbot.waitUntil(lambda: done == ["map"], timeout=5000)
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(thread is gui for _, _, thread in seen)
    assert job.wait(1)


def test_errors_and_cancellation_are_told_apart(qtbot):
    errors, cancelled = [], []
    start_job(lambda job: 1 / 0, pytest.fail, errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], ZeroDivisionError)

    started = threading.Event()

    def long_work(job):
        started.set()
        while True:  # polls the token the engine, FFA and few-shot code poll
            check_cancelled(job.cancel_event, "analysis cancelled")
            job.cancel_event.wait(0.01)

    job = start_job(long_work, pytest.fail, pytest.fail, on_cancelled=lambda: cancelled.append(True))
    assert started.wait(5)
    job.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=5000)

    # a failure after Cancel was pressed is a cancellation, not an error shown to the user
    job = start_job(lambda job: (job.cancel_event.wait(5), 1 / 0), pytest.fail, pytest.fail,
                    on_cancelled=lambda: cancelled.append("late"))
    job.cancel()
    qtbot.waitUntil(lambda: cancelled == [True, "late"], timeout=5000)


def test_serial_runner_keeps_order_and_reports_idle(qtbot):
    runner = SerialRunner("test-serial")
    order, threads, idle = [], set(), []
    runner.idleChanged.connect(idle.append)
    for i in range(20):
        runner.submit(lambda i=i: (threads.add(threading.get_ident()), i)[1], order.append)
    runner.submit(lambda: (_ for _ in ()).throw(Cancelled("stop")), pytest.fail, lambda e: order.append(type(e)))
    assert not runner.is_idle()
    qtbot.waitUntil(runner.is_idle, timeout=5000)
    assert order == [*range(20), Cancelled] and len(threads) == 1
    assert idle[0] is False and idle[-1] is True
    runner.shutdown()
    assert runner.submit(lambda: 1) is None
