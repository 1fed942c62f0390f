"""Work of the FFA tab on worker threads (the GUI thread never waits): CNP segmentation with
progress and cancel, and one-shot calls (reading an image or a label, computing the ROC).

The job loads the model on first use (torch is imported there, never by the GUI module) and runs
:meth:`lobule.inference.ffa.predictor.CNPSegmenter.probability` over the image's 96x96 tiles,
reporting ``progress(done, total)`` after each batch and stopping between batches when cancelled.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


@dataclass(frozen=True)
class SegmentationResult:
    """What the worker hands back: the probability map and the segmenter (to reuse)."""

    probability: np.ndarray
    segmenter: object


class SegmentationJob(QObject):
    """One run. Signals arrive on the GUI thread (queued): ``progress(done, total)``,
    ``finished(SegmentationResult)``, ``failed(BaseException)``, ``cancelled()``."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, gray8: np.ndarray, model: str, segmenter=None) -> None:
        super().__init__()
        self._gray8, self._model, self._segmenter = gray8, model, segmenter
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop before its next tile batch."""
        self._cancel.set()

    def start(self) -> None:
        """Queue the job on the global thread pool."""
        QThreadPool.globalInstance().start(_Runner(self))

    def _run(self) -> None:
        from lobule.inference.ffa.patches import Cancelled
        from lobule.inference.ffa.predictor import CNPSegmenter

        try:
            segmenter = self._segmenter
            if segmenter is None or self._model not in (segmenter.name, segmenter.card.get("path")):
                segmenter = CNPSegmenter.from_checkpoint(self._model)
            probability = segmenter.probability(
                self._gray8, progress=lambda done, total: self.progress.emit(done, total),
                cancelled=self._cancel.is_set,
            )
        except Cancelled:
            self.cancelled.emit()
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
            self.failed.emit(error)
        else:
            self.finished.emit(SegmentationResult(probability, segmenter))


class _Runner(QRunnable):
    def __init__(self, job: SegmentationJob) -> None:
        super().__init__()
        self.job = job

    def run(self) -> None:
        self.job._run()




class BackgroundCall(QObject):
    """``fn()`` on the global thread pool; ``done(result)`` or ``failed(error)`` on the GUI thread.

    Keep a reference to the object until one of the signals arrived.
    """

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._fn = fn

    def start(self) -> None:
        QThreadPool.globalInstance().start(_CallRunner(self))

    def _run(self) -> None:
        try:
            result = self._fn()
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the GUI thread
            self.failed.emit(error)
        else:
            self.done.emit(result)


class _CallRunner(QRunnable):
    def __init__(self, call: BackgroundCall) -> None:
        super().__init__()
        self.call = call

    def run(self) -> None:
        self.call._run()
