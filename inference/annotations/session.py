"""An annotation session: the one object the Slide tab's editing tools talk to (no Qt).

It ties together the corrections layer over the model's class map (:mod:`.corrections`), the
regions (:mod:`.regionset`), the undo history (:mod:`.history`), autosave and recovery
(:mod:`.autosave`) and GeoJSON in/out (:mod:`.geojson_io`). Files live in
``<analysis dir of the slide>/annotations/``::

    corrections.zarr     saved corrections + merged display pyramid
    regions.geojson      saved regions (QuPath GeoJSON)
    recovery/            autosave journal (see :mod:`.autosave`)
    history/             undo diffs spilled to disk beyond the memory budget (temporary)

Threading: every mutating call takes the session lock, so the autosave thread and the caller
never interleave; long calls (import, export, save) may run on a worker thread. Events fire on
the thread that made the change.

Events (each an :class:`~.events.Event`; ``session.labels_changed.connect(callback)``):

``labels_changed(box)``
    box (x, y, w, h) in slide level-0 pixels whose merged labels changed (repaint overlay tiles
    there).
``regions_changed(regions)``
    the new tuple of :class:`~lobule.inference.regions.Region`.
``history_changed()``
    undo/redo availability or labels changed (``history.can_undo``, ``undo_label``...).
``dirty_changed(dirty)``
    True after the first unsaved change, False after a save.
``autosaved(info)``
    dict: ``segment`` (path), ``chunks``, ``time``.
``message(text)``
    one line for the status bar (imports, repairs, dropped undo steps, autosave errors).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from lobule.inference.annotations import edits
from lobule.inference.annotations.chunks import decode
from lobule.inference.annotations.autosave import Autosaver, Journal, RecoveryInfo
from lobule.inference.annotations.corrections import CorrectionLayer
from lobule.inference.annotations.events import Event
from lobule.inference.annotations.geojson_io import ImportReport, read_regions, regions_from_json, \
    regions_to_geojson, write_geojson
from lobule.inference.annotations.history import ChunkDiff, History, Step
from lobule.inference.annotations.regionset import RegionSet
from lobule.inference.errors import InputError
from lobule.inference.labelstore import LabelStore, analysis_dir
from lobule.inference.regions import Region
from lobule.core.atomic import atomic_write
from lobule.resources.classes import LIVER_CLASSES

ANNOTATIONS = "annotations"


def annotations_dir(slide_path: str | os.PathLike, create: bool = True) -> Path:
    """``<analysis dir of the slide>/annotations`` (beside the slide, or the user cache)."""
    return analysis_dir(slide_path, create) / ANNOTATIONS


def _regions_from_text(text: str, source: str) -> list[Region]:
    """Regions of a GeoJSON text written by the session (an empty collection is no regions)."""
    data = json.loads(text)
    return regions_from_json(data, source).regions if data.get("features") else []


def _class_name(value: int) -> str:
    if value == edits.ERASE:
        return "eraser"
    return next(c.key for c in LIVER_CLASSES if c.id == value)


class Stroke:
    """A brush or eraser stroke in progress (mouse down ... mouse up).

    Each :meth:`add` paints the segment from the previous point at once (the overlay updates
    while the mouse moves); :meth:`finish` records the whole stroke as one undo step.
    """

    def __init__(self, session: "AnnotationSession", value: int, radius_um: float) -> None:
        self._session = session
        self.value = edits.check_value(value)
        self.radius_um = float(radius_um)
        self._last: tuple[float, float] | None = None
        self._before: dict = {}
        self.done = False

    def add(self, x: float, y: float) -> tuple[int, int, int, int] | None:
        """Extend the stroke to (x, y) (slide level-0 px). Returns the changed slide box or None."""
        if self.done:
            raise InputError("this stroke is finished")
        points = [(x, y)] if self._last is None else [self._last, (x, y)]
        self._last = (float(x), float(y))
        s = self._session
        with s._lock:
            change = edits.brush(s.labels, points, self.radius_um, self.value)
            for key in change.chunks:
                self._before.setdefault(key, s.labels.corrections.chunk(key))
            return s._apply(change)

    def finish(self) -> Step | None:
        """End the stroke: one undo step (None if it changed nothing)."""
        if self.done:
            return None
        self.done = True
        s = self._session
        with s._lock:
            diffs = [d for key, before in sorted(self._before.items())
                     if (d := ChunkDiff.between(key, before, s.labels.corrections.chunk(key))) is not None]
            if not diffs:
                return None
            tool = "eraser" if self.value == edits.ERASE else f"brush: {_class_name(self.value)}"
            return s._record(Step(tool, diffs))

    def cancel(self) -> None:
        """Undo what the stroke painted so far (Esc during a stroke)."""
        if self.done:
            return
        self.done = True
        s = self._session
        with s._lock:
            box = s.labels.set_chunks(dict(self._before))
            s._journal_chunks(self._before)
            s._labels_box_changed(box)


class AnnotationSession:
    """Corrections, regions, undo, autosave and recovery for one slide's class map.

    Open with :meth:`open`; close with :meth:`close` (saves). See the module docstring for the
    events and files.

    Attributes
    ----------
    labels : :class:`~.corrections.CorrectionLayer`, the merged view to draw and quantify
        (a LabelStore-compatible object) and the corrections layer.
    regions : :class:`~.regionset.RegionSet`.
    history : :class:`~.history.History`.
    recovery : :class:`~.autosave.RecoveryInfo` of unsaved work found at opening (a killed
        session), or None; answer with :meth:`recover` or :meth:`discard_recovery`.
    slide_size : level-0 (width, height) of the slide (for region checks).
    """

    def __init__(self, folder: Path, store: LabelStore, slide_size: tuple[int, int], *,
                 memory_budget: int, disk_budget: int, autosave_s: float | None, max_interval_s: float) -> None:
        self.folder = Path(folder)
        self.slide_size = (int(slide_size[0]), int(slide_size[1]))
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._changes = 0
        self.labels_changed = Event()
        self.regions_changed = Event()
        self.history_changed = Event()
        self.dirty_changed = Event()
        self.autosaved = Event()
        self.message = Event()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.folder / "recovery")
        pending = self.journal.claim()
        try:
            self.labels = CorrectionLayer.open(self.folder / "corrections.zarr", store)
            self.regions = RegionSet(self._load_saved_regions())
        except BaseException:
            self.journal.release()
            raise
        self.regions.changed.connect(self.regions_changed.emit)
        spill = self.folder / "history" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.history = History(memory_budget, disk_budget, spill)
        self.history.changed.connect(self.history_changed.emit)
        self._unjournaled: set = set()
        self._regions_unjournaled = False
        self._edits_unjournaled = 0
        self._dirty = False
        self._closed = False
        self.recovery: RecoveryInfo | None = None
        if self.journal.committing:  # a save was interrupted: finish it from the journal
            self._replay_journal(record=False)
            self.save()
            pending = None
        self.recovery = pending
        self.autosaver: Autosaver | None = None
        if autosave_s is not None:
            self.autosaver = Autosaver(self.autosave, autosave_s, max_interval_s,
                                       on_error=lambda exc: self.message.emit(f"autosave failed: {exc}")).start()

    @classmethod
    def open(cls, slide_path: str | os.PathLike, store: LabelStore, *, slide_size: tuple[int, int] | None = None,
             folder: str | os.PathLike | None = None, memory_budget: int = 256 * 2**20,
             disk_budget: int = 2 * 2**30, autosave_s: float | None = 2.0,
             max_interval_s: float = 30.0) -> "AnnotationSession":
        """Open the annotations of a slide over one of its class maps.

        Parameters
        ----------
        slide_path : the slide file (its analysis folder holds the annotations).
        store : the model's LabelStore of that slide.
        slide_size : level-0 (width, height); default from the store's slide record.
        folder : where the annotation files live (default :func:`annotations_dir`).
        memory_budget, disk_budget : undo history budget in bytes (see :mod:`.history`).
        autosave_s : idle seconds before an autosave; None = no autosave thread (call
            :meth:`autosave` yourself).
        max_interval_s : longest time unsaved work waits during continuous editing.

        Raises
        ------
        InputError
            If another running Lobule is editing these annotations, or the corrections were made
            on another label grid.
        """
        if slide_size is None:
            dims = store.slide.get("dimensions")
            if dims:
                slide_size = (int(dims[0]), int(dims[1]))
            else:
                h, w = store.shape
                slide_size = (round(w * store.scale), round(h * store.scale))
        folder = Path(folder) if folder is not None else annotations_dir(slide_path)
        return cls(folder, store, slide_size, memory_budget=memory_budget, disk_budget=disk_budget,
                   autosave_s=autosave_s, max_interval_s=max_interval_s)

    # --- state ----------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True while there are unsaved changes."""
        return self._dirty

    @property
    def scale(self) -> float:
        """Slide level-0 pixels per label pixel."""
        return self.labels.scale

    def radius_px(self, radius_um: float) -> float:
        """A brush radius in slide level-0 pixels (the size of the cursor preview)."""
        return radius_um / self.labels.mpp * self.labels.scale

    # --- tools ----------------------------------------------------------------------------------
    def begin_stroke(self, value: int, radius_um: float) -> Stroke:
        """Start a brush stroke with a class id (``edits.ERASE`` = eraser)."""
        return Stroke(self, value, radius_um)

    def brush(self, points, value: int, radius_um: float) -> Step | None:
        """A whole stroke at once (points in slide level-0 px); one undo step."""
        stroke = self.begin_stroke(value, radius_um)
        for x, y in points:
            stroke.add(x, y)
        return stroke.finish()

    def erase(self, points, radius_um: float) -> Step | None:
        """Remove corrections along a stroke (the model's output shows again)."""
        return self.brush(points, edits.ERASE, radius_um)

    def fill_polygon(self, geometry, value: int) -> Step | None:
        """Fill a Polygon / MultiPolygon (slide level-0 px) with a class (or erase it)."""
        with self._lock:
            label = "erase polygon" if value == edits.ERASE else f"polygon fill: {_class_name(value)}"
            return self._edit(label, edits.polygon_fill(self.labels, geometry, value))

    def flood_fill(self, point, value: int, radius_um: float = 100.0, connectivity: int = 4) -> edits.FillResult:
        """Fill the connected same-class area under ``point`` within ``radius_um``."""
        with self._lock:
            result = edits.flood_fill(self.labels, point, value, radius_um, connectivity)
            self._edit(f"flood fill: {_class_name(value)}", result.change)
            return result

    def magic_wand(self, slide, point, value: int, tolerance: float = 10.0, radius_um: float = 100.0,
                   ) -> edits.FillResult:
        """Fill the connected similar-colour area under ``point`` (colour read from ``slide``)."""
        with self._lock:
            result = edits.magic_wand(self.labels, slide, point, value, tolerance, radius_um)
            self._edit(f"magic wand: {_class_name(value)}", result.change)
            return result

    # --- undo / redo ----------------------------------------------------------------------------
    def undo(self) -> str | None:
        """Undo the last step; returns its label (None if nothing to undo)."""
        with self._lock:
            step = self.history.undo()
            if step is not None:
                self._apply_step(step, "before")
            return None if step is None else step.label

    def redo(self) -> str | None:
        """Redo the last undone step; returns its label (None if nothing to redo)."""
        with self._lock:
            step = self.history.redo()
            if step is not None:
                self._apply_step(step, "after")
            return None if step is None else step.label

    def _apply_step(self, step: Step, which: str) -> None:
        if step.changes_labels:
            chunks, boxes = {}, {}
            for diff in self.history.diffs(step):
                x, y, w, h = diff.box
                gx, gy, _, _ = self.labels.grid.window(diff.key)
                current = self.labels.corrections.chunk(diff.key).copy()
                current[y : y + h, x : x + w] = diff.pixels(which)
                chunks[diff.key] = current
                boxes[diff.key] = (gx + x, gy + y, w, h)
            box = self.labels.set_chunks(chunks, boxes)
            self._journal_chunks(chunks)
            self._labels_box_changed(box)
        if step.changes_regions:
            self.regions.set(step.regions_before if which == "before" else step.regions_after)
            self._regions_unjournaled = True
        self._touch()

    # --- regions --------------------------------------------------------------------------------
    def add_regions(self, regions, label: str = "add region") -> Step:
        with self._lock:
            return self._set_regions(self.regions.added(regions), label)

    def remove_region(self, name: str) -> Step:
        with self._lock:
            return self._set_regions(self.regions.removed(name), f"remove region {name}")

    def rename_region(self, name: str, new_name: str) -> Step:
        with self._lock:
            return self._set_regions(self.regions.renamed(name, new_name), f"rename region {name}")

    def reshape_region(self, name: str, geometry) -> Step:
        with self._lock:
            return self._set_regions(self.regions.reshaped(name, geometry), f"edit region {name}")

    def import_regions(self, path: str | os.PathLike) -> ImportReport:
        """Add the regions of a QuPath GeoJSON or LabelMe JSON file (one undo step).

        Raises
        ------
        InputError
            For a bad file (see :mod:`.geojson_io`); nothing changes then.
        """
        report = read_regions(path, self.slide_size)
        with self._lock:
            self._set_regions(self.regions.added(report.regions), f"import {report.source}")
        self.message.emit(report.summary())
        return report

    def export_geojson(self, path: str | os.PathLike, class_masks: bool = True,
                       corrections_only: bool = False) -> Path:
        """Write the regions (and their class masks from the merged map) as QuPath GeoJSON."""
        return write_geojson(path, self.regions.regions, self.labels, class_masks=class_masks,
                             corrections_only=corrections_only)

    def _set_regions(self, new: tuple, label: str) -> Step:
        before = self.regions.regions
        self.regions.set(new)
        self._regions_unjournaled = True
        step = self._record(Step(label, [], before, self.regions.regions))
        return step

    # --- saving, autosave, recovery -------------------------------------------------------------
    def autosave(self) -> Path | None:
        """Write what changed since the last autosave as a journal segment (atomic); returns it.

        The session lock is held only to take a snapshot (compressed chunks, regions); the file
        is written after, so edits never wait for the disk. Segments are numbered at the
        snapshot, so recovery applies them in the order the changes were made.
        """
        with self._lock:
            if self._closed or (not self._unjournaled and not self._regions_unjournaled):
                return None
            keys = sorted(self._unjournaled)
            blobs = {key: self.labels.corrections.blob(key) for key in keys}
            regions = json.dumps(regions_to_geojson(self.regions.regions)) if self._regions_unjournaled else None
            edits_count = self._edits_unjournaled
            self._unjournaled.clear()
            self._regions_unjournaled = False
            self._edits_unjournaled = 0
            seq = self.journal.reserve()
        try:
            path = self.journal.write_segment(seq, blobs, regions, edits_count)
        except BaseException:
            with self._lock:
                self._unjournaled.update(keys)
                self._regions_unjournaled = self._regions_unjournaled or regions is not None
                self._edits_unjournaled += edits_count
            raise
        self.autosaved.emit({"segment": str(path), "chunks": len(blobs), "time": time.time()})
        return path

    def save(self) -> None:
        """Save corrections and regions into ``corrections.zarr`` and ``regions.geojson``.

        The journal first receives every unsaved change (so a save interrupted by a kill is
        finished at the next opening), then the chunks are copied; edits may go on meanwhile (on
        another thread) and stay unsaved. Run it off the GUI thread: it writes every changed
        chunk.
        """
        with self._save_lock:
            with self._lock:
                changes = self._changes
                regions = self.regions.regions
            self.autosave()
            upto = self.journal.last_reserved
            self.journal.begin_commit()
            self.labels.save()
            with atomic_write(self.folder / "regions.geojson", "w", encoding="utf-8") as handle:
                json.dump(regions_to_geojson(regions), handle)
            self.journal.end_commit(upto)
            with self._lock:
                if self._changes == changes:
                    self._set_dirty(False)

    def close(self, save: bool = True) -> None:
        """Stop autosave, save (``save=False``: drop the unsaved work and the journal), and
        release the annotations."""
        if self._closed:
            return
        if self.autosaver is not None:
            self.autosaver.stop()
        if save:
            self.save()
        with self._save_lock, self._lock:
            if not save:
                self.journal.discard()
            self._closed = True
            self.history.close()
            shutil.rmtree(self.history.spill_dir, ignore_errors=True)
            self.journal.release()

    def recover(self) -> Step | None:
        """Take back the unsaved work of a killed session (one undo step); None if none."""
        with self._lock:
            if self.recovery is None:
                return None
            step = self._replay_journal(record=True)
            self.message.emit(f"recovered {self.recovery.summary()}")
            self.recovery = None
            return step

    def discard_recovery(self) -> None:
        """Drop the unsaved work of a killed session (back to the last save)."""
        with self._lock:
            if self.recovery is not None:
                self.journal.discard(upto=self.recovery.last_segment)
            self.recovery = None

    def _replay_journal(self, record: bool) -> Step | None:
        upto = self.recovery.last_segment if self.recovery is not None else None
        blobs, regions_json = self.journal.read(upto)
        grid = self.labels.grid
        before = {key: self.labels.corrections.chunk(key) for key in blobs}
        new = {key: decode(blob, grid.chunk) for key, blob in blobs.items()}
        self._labels_box_changed(self.labels.set_chunks(new))
        regions_before = self.regions.regions
        if regions_json is not None:
            self.regions.set(tuple(_regions_from_text(regions_json, "autosave")))
        self._set_dirty(True)
        if not record:
            return None
        diffs = [d for key in sorted(new) if (d := ChunkDiff.between(key, before[key], new[key])) is not None]
        changed_regions = regions_json is not None
        step = Step("recover unsaved work", diffs, regions_before if changed_regions else None,
                    self.regions.regions if changed_regions else None)
        return self.history.push(step)

    def _load_saved_regions(self) -> list[Region]:
        path = self.folder / "regions.geojson"
        if not path.is_file():
            return []
        return _regions_from_text(path.read_text(encoding="utf-8"), path.name)

    # --- internals ------------------------------------------------------------------------------
    def _edit(self, label: str, change: edits.Change) -> Step | None:
        if not change:
            return None
        before = {key: self.labels.corrections.chunk(key) for key in change.chunks}
        self._apply(change)
        diffs = [d for key in sorted(change.chunks)
                 if (d := ChunkDiff.between(key, before[key], change.chunks[key])) is not None]
        return self._record(Step(label, diffs))

    def _apply(self, change: edits.Change) -> tuple[int, int, int, int] | None:
        if not change:
            return None
        box = self.labels.set_chunks(change.chunks, change.boxes)
        self._journal_chunks(change.chunks)
        self._touch()
        return self._labels_box_changed(box)

    def _record(self, step: Step) -> Step:
        self._edits_unjournaled += 1
        self._touch()
        return self.history.push(step)

    def _journal_chunks(self, chunks) -> None:
        self._unjournaled.update(chunks)

    def _touch(self) -> None:
        self._changes += 1
        self._set_dirty(True)
        if self.autosaver is not None:
            self.autosaver.touch()

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def _labels_box_changed(self, box) -> tuple[int, int, int, int] | None:
        if box is None:
            return None
        s = self.labels.scale
        x, y, w, h = box
        x0, y0 = int(x * s), int(y * s)
        slide_box = (x0, y0, int(-(-(x + w) * s // 1)) - x0, int(-(-(y + h) * s // 1)) - y0)
        self.labels_changed.emit(slide_box)
        return slide_box

    def __enter__(self) -> "AnnotationSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
