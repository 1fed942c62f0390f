"""The Analyze button's background run: the flow of ``lobule analyze`` on a worker thread.

:class:`AnalysisRun` loads the predictor, detects the tissue (restricted to a drawn region when
one is given), segments it tile by tile with :func:`lobule.inference.engine.analyze_slide` into
the slide's label store, and reports progress through Qt signals; :meth:`AnalysisRun.cancel`
stops it between batches (no store and no temporary files remain). No widget is touched from
the worker thread.
"""
from __future__ import annotations

import threading
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from lobule.app.errors import error_message


def restrict_tissue(tissue, geometry):
    """``tissue`` (a :class:`~lobule.inference.tissue.TissueMask`) keeping only the mask pixels
    whose centres lie inside ``geometry`` (shapely, level-0 px)."""
    from lobule.inference.regions import rasterize

    h, w = tissue.mask.shape
    inside = rasterize(geometry, (0, 0, w, h), tissue.downsample)
    return replace(tissue, mask=tissue.mask & inside)


def run_analysis(slide, model: str, region=None, device: str = "auto", cancel=None, on_progress=None,
                 on_stage=None, runtime: str | None = None):
    """Segment ``slide`` with ``model`` into its label store (blocking; call on a worker thread).

    Parameters
    ----------
    slide : an open SlideReader with known mpp.
    model : ``"classical"``, an installed checkpoint name or a card path.
    region : a :class:`~lobule.inference.regions.Region` to analyse instead of the whole tissue.
    device, cancel, on_progress : see :func:`lobule.inference.engine.analyze_slide`.
    on_stage : ``on_stage(text)`` before each stage (loading the model, detecting tissue...).
    runtime : model runtime (see :func:`lobule.inference.engine.runtime.build_forward`); None:
        the user's setting (:func:`lobule.app.settings.model_runtime`).

    Returns
    -------
    AnalysisResult (its ``store`` is ``analysis_dir(slide.path) / store_name(model)``).

    Raises
    ------
    MissingMppError, UnknownModelError, CheckpointError, InputError, Cancelled
    """
    from lobule.inference.engine import analyze_slide, load_predictor, slide_mpp
    from lobule.inference.errors import InputError
    from lobule.inference.labelstore import analysis_dir, store_name
    from lobule.inference.tissue import detect_tissue

    stage = on_stage or (lambda text: None)
    slide_mpp(slide)
    from lobule.app.settings import model_runtime

    stage(f"loading the model {model}")
    predictor = load_predictor(model, device, runtime if runtime is not None else model_runtime())
    tissue = None
    if region is not None:
        stage("detecting tissue in the region")
        tissue = restrict_tissue(detect_tissue(slide), region.geometry)
        if tissue.is_empty():
            raise InputError(f"region {region.name!r} holds no tissue")
    else:
        stage("detecting tissue")
    target = analysis_dir(slide.path) / store_name(predictor.name)
    stage(f"segmenting with {predictor.name} on {predictor.device}")
    return analyze_slide(slide, predictor, target, tissue=tissue, cancel=cancel, on_progress=on_progress)


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
