"""The Analyze button's background run: :func:`lobule.inference.analysis_service.segment_slide`
(the class-map step of ``lobule analyze``) on a worker thread.

:class:`AnalysisRun` reports stages and progress through Qt signals; :meth:`AnalysisRun.cancel`
stops it between batches (no store and no temporary files remain). No widget is touched from
the worker thread.
"""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from lobule.app.errors import error_message
from lobule.inference.analysis_service import restrict_tissue  # noqa: F401 - re-exported for callers of the GUI run


def run_analysis(slide, model: str, region=None, device: str = "auto", cancel=None, on_progress=None,
                 on_stage=None, runtime: str | None = None):
    """:func:`~lobule.inference.analysis_service.segment_slide` with the user's runtime setting
    (:func:`lobule.app.settings.model_runtime`) when ``runtime`` is None (blocking; call on a
    worker thread). ``on_stage(text)`` is told each stage."""
    from lobule.app.settings import model_runtime
    from lobule.inference.analysis_service import segment_slide

    return segment_slide(slide, model, region=region, device=device,
                         runtime=runtime if runtime is not None else model_runtime(),
                         cancel=cancel, on_progress=on_progress, say=on_stage)


class AnalysisRun(QObject):
    """One analysis on a worker thread.

    Signals
    -------
    stage(str) : what the run is doing now.
    progress(object) : a :class:`~lobule.inference.engine.ProgressEvent` after each batch.
    finished(object) : the :class:`~lobule.inference.engine.AnalysisResult`.
    failed(str) : one-line reason.
    cancelled() : stopped by :meth:`cancel`; nothing was written.
    """

    stage = Signal(str)
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, slide, model: str, region=None, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.slide, self.model, self.region, self.device = slide, model, region, device
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lobule-analyze", daemon=True)
        self.done = False

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Stop at the next batch boundary (``cancelled`` follows)."""
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ended (window closing only); True if it did."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        from lobule.inference.engine import Cancelled

        try:
            result = run_analysis(self.slide, self.model, self.region, self.device, cancel=self._cancel,
                                  on_progress=self.progress.emit, on_stage=self.stage.emit)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as error:  # noqa: BLE001 - any failure is shown in one line, never a crash
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.failed.emit(error_message(error))
        else:
            self.finished.emit(result)
