"""The pinned Qt binding does not corrupt reference counts when signals reach Python slots.

PySide6 6.12.0 on Python 3.11 drops one reference to ``True`` per ``Signal.emit()`` and one to
``None`` per Python slot call; after a few thousand events the interpreter aborts
("Fatal Python error: bool_dealloc / none_dealloc"). constraints.txt pins a version without
the bug; this test catches a pin that reintroduces it (on Python >= 3.12 those objects are
immortal and their counts do not move at all).
"""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_emits_and_slot_calls_keep_singleton_refcounts(qtbot):
    emitter = _Emitter()
    calls = []
    emitter.fired.connect(calls.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):
        emitter.fired.emit(i)
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: calls.append(None))
    timer.start()
    qtbot.waitUntil(lambda: len(calls) >= 400, timeout=5000)
    timer.stop()
    assert sys.getrefcount(True) - true_before > -20
    assert sys.getrefcount(None) - none_before > -20
