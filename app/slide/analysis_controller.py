"""The analysis state of the Slide tab: class map, corrections, regions, numbers, exports.

:class:`AnalysisController` is the glue between the headless parts and the widgets. For the
slide shown it holds

- the model's :class:`~lobule.inference.labelstore.LabelStore` (restored when the slide is
  reopened, or made by :meth:`analyze`),
- the :class:`~lobule.inference.annotations.AnnotationSession` over it (corrections, regions,
  undo, autosave and recovery); its merged view is what the overlay draws and what is measured,
- the class-overlay :class:`~lobule.app.slide.tile_layer.TileLayer` in the slide view,
- a :class:`~lobule.inference.annotations.follow.QuantFollower` that re-measures the whole
  tissue and every drawn region after each change, on its own thread.

Regions and corrections are its :class:`~lobule.app.slide.analysis_edits.AnalysisEdits` part; opening a
saved analysis is :mod:`lobule.app.slide.analysis_session`; Analyze runs
:func:`lobule.inference.analysis_service.segment_slide` and Export
:func:`lobule.inference.analysis_service.export_results`, as ``lobule analyze`` does.

Threads: every call that touches the session (brush segments, fills, undo, regions, opening,
closing, exporting) goes through one :class:`~lobule.app.common.jobs.SerialRunner` in order;
the analysis runs as its own :class:`~lobule.app.common.jobs.Job` (:func:`~lobule.app.slide.analysis_worker.run_analysis`); the
session's and the follower's events are relayed to the GUI thread through queued signals. The
widgets only call methods and listen to signals.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from lobule.app.slide.analysis_edits import AnalysisEdits
from lobule.app.slide.analysis_session import WHOLE_TISSUE, follower_class, model_names, open_session, restore_session
from lobule.app.slide.analysis_worker import run_analysis
from lobule.app.common.errors import error_message
from lobule.app.common.jobs import Job, SerialRunner
from lobule.app.slide.label_layer import label_layer
from lobule.inference.regions import Region
from lobule.resources.classes import LIVER_CLASSES


class AnalysisController(AnalysisEdits, QObject):
    """Analysis, corrections and quantification of the slide shown in ``view``.

    Signals
    -------
    stateChanged() : a store, session or run appeared or went (refresh enabled states).
    stage(str) : what the running analysis does now.
    progress(object) : a :class:`~lobule.inference.engine.ProgressEvent`.
    regionsChanged() : :meth:`regions` changed.
    regionAdded(str) : a region was drawn or added by :meth:`add_region` (its name; it is listed
        by :meth:`regions` once ``regionsChanged`` follows).
    resultChanged(str) : ``results[name]`` changed (or was removed).
    historyChanged() : undo / redo availability changed.
    recoveryOffered(str) : unsaved work of a killed session was found (its summary); answer
        with :meth:`recover` or :meth:`discard_recovery`.
    message(str) : a passing note for the status bar.
    failed(str, str) : title, one-line reason of a failed action.
    exported(str) : the export folder written.
    qualityChanged(object) : the slide's quality-control block (dict, see
        :mod:`lobule.inference.liver.quality`) or None while it is being checked.
    """

    stateChanged = Signal()
    stage = Signal(str)
    progress = Signal(object)
    regionsChanged = Signal()
    regionAdded = Signal(str)
    resultChanged = Signal(str)
    historyChanged = Signal()
    recoveryOffered = Signal(str)
    message = Signal(str)
    failed = Signal(str, str)
    exported = Signal(str)
    qualityChanged = Signal(object)

    _labels = Signal(object, object)  # session, slide box (x, y, w, h)
    _regions = Signal(object)  # session
    _history = Signal(object)  # session
    _note = Signal(object, str)  # session or follower, text
    _result = Signal(object, str, object)  # follower, region name, RegionResult | None

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.worker = SerialRunner("lobule-annotations", self)
        self.worker.idleChanged.connect(lambda _: self.stateChanged.emit())
        self.document = None
        self.store = None
        self.quality = None  # the slide's quality-control block, once checked
        self.session = None
        self.layer = None
        self.run: Job | None = None
        self.default_region: Region | None = None
        self.pending_regions: list[Region] = []
        self.results: dict = {}
        self.settings = None  # QuantSettings, made on first use (the import pulls in scipy)
        self.opacity = 0.5
        self.hidden_classes: set[int] = set()
        self.last_export: Path | None = None
        #: the folder an export is being written to (None when no export is in flight)
        self.exporting: Path | None = None
        self.run_stats: dict[str, dict] = {}  # class-map path -> timings of the run that made it here
        self.preferred_model: str | None = None
        self._follower = None
        self._token = itertools.count(1)
        self._current = 0
        self._restoring = False
        self._stroke = None
        self._labels.connect(self._on_labels)
        self._regions.connect(self._on_regions)
        self._history.connect(lambda session: session is self.session and self.historyChanged.emit())
        self._note.connect(lambda source, text: source in (self.session, self._follower) and self.message.emit(text))
        self._result.connect(self._on_result)

    # --- state ------------------------------------------------------------------------------
    @property
    def labels(self):
        """The class map shown and measured: the merged map (corrections over model output),
        the model's map alone when the annotations could not be opened, or None."""
        return self.session.labels if self.session is not None else self.store

    @property
    def running(self) -> bool:
        return self.run is not None

    @property
    def can_edit(self) -> bool:
        return self.session is not None and self.run is None

    def regions(self) -> list[Region]:
        """The regions measured: the whole tissue (once analysed) and the drawn ones."""
        drawn = list(self.session.regions.regions) if self.session is not None else list(self.pending_regions)
        if self.default_region is not None and all(r.name != WHOLE_TISSUE for r in drawn):
            drawn.insert(0, self.default_region)
        return drawn

    def drawn_regions(self) -> list[Region]:
        return [r for r in self.regions() if r is not self.default_region]

    def region(self, name: str) -> Region | None:
        return next((r for r in self.regions() if r.name == name), None)

    def is_idle(self) -> bool:
        """True when nothing is running or waiting: no analysis, no restore, no queued edit,
        and every region's numbers are up to date."""
        if self.run is not None or self._restoring or not self.worker.is_idle():
            return False
        follower = self._follower
        if follower is not None:
            if follower.stale:
                return False
            # every result the follower made has reached this (GUI) thread
            return all(r.name in self.results and follower.results.get(r.name) is self.results[r.name]
                       for r in self.regions())
        if self.store is not None:  # read-only class map: measured by one-off jobs
            return all(r.name in self.results for r in self.regions())
        return True

    # --- slide --------------------------------------------------------------------------------
    def set_document(self, document) -> None:
        """Show ``document``'s saved analysis, if any (None: no slide)."""
        self._teardown()
        self.document = document
        self.pending_regions = []
        self._current = next(self._token)
        if document is not None:
            token = self._current
            reader = document.reader
            names = self._restore_order()
            self._restoring = True
            self.worker.submit(lambda: restore_session(reader.path, reader.dimensions, names),
                               lambda opened: self._on_opened(token, opened, restored=True),
                               lambda error: self._on_open_failed(token, error))
        self.regionsChanged.emit()
        self.stateChanged.emit()

    def _restore_order(self) -> list[str]:
        names = model_names()
        preferred = self.preferred_model
        return ([preferred] if preferred in names else []) + [n for n in names if n != preferred]

    def _on_opened(self, token: int, opened, restored: bool = False) -> None:
        self._restoring = False
        if token != self._current:
            if opened is not None and opened[1] is not None:  # the slide changed meanwhile
                self.worker.submit(opened[1].close)
            self.stateChanged.emit()
            return
        if opened is not None:
            self._install(*opened)
            if restored:
                store = opened[0]
                self.stage.emit(f"Saved class map of {store.model.get('name')} ({store.attrs.get('created', '?')}) "
                                "restored; Analyze runs the model again")
        self.stateChanged.emit()

    def _on_open_failed(self, token: int, error: BaseException) -> None:
        self._restoring = False
        if token == self._current:
            self.failed.emit("Cannot open the saved analysis", error_message(error))
        self.stateChanged.emit()

    def _install(self, store, session, default_region: Region, read_only: str | None) -> None:
        self.store, self.session, self.default_region = store, session, default_region
        self._check_quality(store)
        self.layer = label_layer(self.labels, opacity=self.opacity, visible_classes=self._visible_classes())
        self.view.add_layer(self.layer)
        if session is None:
            self.message.emit(f"The class map is shown read-only: {read_only}")
            self._measure_read_only()
            self.regionsChanged.emit()
            return
        session.labels_changed.connect(lambda box, s=session: self._labels.emit(s, box))
        session.regions_changed.connect(lambda _regions, s=session: self._regions.emit(s))
        session.history_changed.connect(lambda s=session: self._history.emit(s))
        session.message.connect(lambda text, s=session: self._note.emit(s, text))
        self._start_follower()
        if self.pending_regions:
            regions, self.pending_regions = self.pending_regions, []
            self._submit(lambda: session.add_regions(regions, "add regions drawn before the analysis"))
        if session.recovery is not None:
            self.recoveryOffered.emit(session.recovery.summary())
        self.regionsChanged.emit()
        self.historyChanged.emit()

    def _check_quality(self, store) -> None:
        """Check the slide against the training data (worker thread); ``qualityChanged`` follows."""
        reader = self.document.reader
        self.quality = None
        self.qualityChanged.emit(None)

        def job() -> dict:
            from lobule.inference.liver.quality import slide_quality

            return slide_quality(reader, store)

        def done(quality: dict) -> None:
            if self.store is store:
                self.quality = quality
                self.qualityChanged.emit(quality)

        self.worker.submit(job, done, lambda error: None)

    def _start_follower(self) -> None:
        follower = follower_class()(self.session, self.quant_settings(), self.default_region, debounce_s=0.25)
        follower.updated.connect(lambda name, result, f=follower: self._result.emit(f, name, result))
        self._follower = follower
        self.results = {}
        follower.start()

    def _measure_read_only(self) -> None:
        """Without a session (read-only class map): measure the regions that have no numbers."""
        store, settings = self.store, self.quant_settings()
        missing = [r for r in self.regions() if r.name not in self.results]
        if store is None or self.session is not None or not missing:
            return

        def job() -> dict:
            from lobule.inference.liver.quantify import quantify

            return {r.name: quantify(store, r, settings) for r in missing}

        def done(results: dict) -> None:
            if store is self.store and self.session is None:
                for name, result in results.items():
                    self.results[name] = result
                    self.resultChanged.emit(name)
                self.stateChanged.emit()

        self._submit(job, done, title="Cannot measure the regions")

    def _teardown(self) -> None:
        """Drop the current slide's analysis state (the session is saved and closed on the
        worker thread)."""
        if self.run is not None:
            self.run.cancel()
            self.run = None
        self._drop_session()

    def _drop_session(self) -> None:
        if self.layer is not None:
            self.view.remove_layer(self.layer)
            self.layer = None
        follower, session = self._follower, self.session
        self._follower = self.session = self.store = self.default_region = None
        self._stroke = None
        self.results = {}
        if follower is not None or session is not None:
            def close() -> None:
                if follower is not None:
                    follower.close()
                if session is not None:
                    session.close(save=True)

            self.worker.submit(close, on_error=lambda error: self.failed.emit("Cannot save the corrections",
                                                                               error_message(error)))
        self.regionsChanged.emit()
        self.historyChanged.emit()

    # --- analysis ------------------------------------------------------------------------------
    def analyze(self, model: str, region: Region | None = None) -> bool:
        """Start analysing the whole tissue (or ``region``) with ``model``; False if it cannot
        start (no slide, a run in progress, no pixel size: ``failed`` says why)."""
        if self.document is None or self.run is not None:
            return False
        if self.document.mpp is None:
            self.failed.emit("Cannot analyse", f"{self.document.reader.path.name} does not state its pixel size; "
                                               "enter it in the yellow bar above the slide first")
            return False
        reader, token = self.document.reader, self._current
        run = Job(lambda job: run_analysis(reader, model, region, cancel=job.cancel_event, on_progress=job.report,
                                           on_stage=job.say))
        run.message.connect(self.stage)
        run.progress.connect(lambda values: self.progress.emit(*values))
        run.done.connect(lambda result: self._on_analysis_done(run, token, result))
        run.failed.connect(lambda error: self._on_analysis_end(run, "Analysis failed", error_message(error)))
        run.cancelled.connect(lambda: self._on_analysis_end(run, None, "Analysis cancelled; nothing was saved"))
        self.run = run
        self.preferred_model = model
        run.start()
        self.stateChanged.emit()
        return True

    def cancel_analysis(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.stage.emit("cancelling after the current batch...")

    def _on_analysis_end(self, run: Job, title: str | None, text: str) -> None:
        if run is not self.run:
            return
        self.run = None
        self.stage.emit(text if title is None else f"{title}: {text}")
        if title is None:
            self.message.emit(text)
        else:
            self.failed.emit(title, text)
        self.stateChanged.emit()

    def _on_analysis_done(self, run: Job, token: int, result) -> None:
        if run is not self.run or token != self._current:
            return
        self.run = None
        stats = result.stats
        self.run_stats[str(result.store.path)] = stats.as_dict()
        text = (f"Analysed {stats.tiles} tiles in {stats.wall:.1f} s with {result.store.model.get('name')} "
                f"({100 * result.tissue.kept_fraction:.1f} % of the slide is tissue)")
        self.stage.emit(text)
        self.message.emit(text)
        self._drop_session()  # saves the corrections and regions of the previous class map first
        reader = self.document.reader
        self._restoring = True
        self.worker.submit(lambda: open_session(reader.path, result.store, reader.dimensions),
                           lambda opened: self._on_opened(token, opened),
                           lambda error: self._on_open_failed(token, error))
        self.stateChanged.emit()

    # --- overlay ----------------------------------------------------------------------------
    def _visible_classes(self) -> set[int]:
        return {c.id for c in LIVER_CLASSES if c.id != 0 and c.id not in self.hidden_classes}

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        if self.layer is not None:
            self.layer.opacity = self.opacity

    def refresh_colours(self) -> None:
        """Redraw the overlay after the palette changed (:func:`lobule.resources.classes.set_palette`)."""
        if self.layer is not None:
            self.layer.invalidate()

    def set_overlay_visible(self, visible: bool) -> None:
        if self.layer is not None:
            self.layer.visible = visible

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        (self.hidden_classes.discard if visible else self.hidden_classes.add)(class_id)
        if self.layer is not None:
            self.layer.provider.visible_classes = self._visible_classes()
            self.layer.invalidate()

    def _on_labels(self, session, box) -> None:
        if session is self.session and self.layer is not None:
            x, y, w, h = box
            self.layer.invalidate((x, y, x + w, y + h))

    # --- numbers ----------------------------------------------------------------------------
    def _on_result(self, follower, name: str, result) -> None:
        if follower is not self._follower:
            return
        if result is None:
            self.results.pop(name, None)
        else:
            self.results[name] = result
        self.resultChanged.emit(name)
        self.stateChanged.emit()

    def quant_settings(self):
        """The :class:`~lobule.inference.liver.quantify.QuantSettings` in use."""
        if self.settings is None:
            from lobule.inference.liver.quantify import QuantSettings

            self.settings = QuantSettings()
        return self.settings

    def set_settings(self, settings) -> None:
        """Measure with ``settings`` from now on (every region is measured again)."""
        self.settings = settings
        if self.session is not None:
            old = self._follower
            self._start_follower()
            if old is not None:
                self.worker.submit(old.close)
            for region in self.regions():
                self.resultChanged.emit(region.name)
        self.stateChanged.emit()

    # --- export -----------------------------------------------------------------------------
    def export(self, folder) -> bool:
        """Write summary.json, regions.csv, classes.geojson and labels.tif into ``folder`` (on
        the worker thread; ``exported`` or ``failed`` follows). False without an analysis, and
        while another export is still being written (one export at a time: a second one would
        queue behind it and could ask to replace files that are half written)."""
        if self.store is None or self.document is None:
            return False
        if self.exporting is not None:
            self.message.emit(f"An export to {self.exporting} is still being written; wait for it to finish.")
            return False
        labels, store, reader, settings = self.labels, self.store, self.document.reader, self.quant_settings()
        quality = self.quality
        run_stats = self.run_stats.get(str(store.path))
        regions = self.regions()
        self.exporting = Path(folder)
        self.message.emit(f"Exporting to {folder}...")
        self.stateChanged.emit()

        def job() -> Path:
            from lobule.inference.analysis_service import export_results

            run = dict(run_stats) if run_stats is not None else None
            return export_results(folder, slide=reader, store=store, labels=labels, regions=regions,
                                  settings=settings, quality=quality, run=run)[0]

        def done(out: Path) -> None:
            self.exporting = None
            self.last_export = out
            self.exported.emit(str(out))
            self.message.emit(f"Exported summary.json, regions.csv, classes.geojson and labels.tif to {out}")
            self.stateChanged.emit()

        def failed(error: BaseException) -> None:
            self.exporting = None
            self.failed.emit("Export failed", error_message(error))
            self.stateChanged.emit()

        self.worker.submit(job, done, failed)
        return True

    # --- closing ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel a run, save and close the session, stop the worker (the window closes)."""
        run = self.run
        if run is not None:
            run.cancel()
            self.run = None
        self._current = next(self._token)
        self._drop_session()
        self.worker.shutdown()
        if run is not None:
            run.wait(30)
