"""Regions and corrections of the Slide tab's analysis: the :class:`AnalysisEdits` part of
:class:`~lobule.app.slide.analysis_controller.AnalysisController`.

Every call that touches the annotation session (drawn regions, brush strokes, fills, undo and
redo, recovery) is queued on the controller's serial worker; without a session (before the
analysis, or a read-only class map) drawn regions are kept as pending and measured one-off.
"""
from __future__ import annotations

from lobule.app.slide.analysis_session import WHOLE_TISSUE
from lobule.app.common.errors import error_message
from lobule.inference.regions import Region, as_area


class AnalysisEdits:
    """Region and correction methods of the analysis controller (a mixin: it uses the
    controller's ``session``, ``worker``, ``document``, ``pending_regions``, ``results`` and
    signals)."""

    # --- regions ----------------------------------------------------------------------------
    def _on_regions(self, session) -> None:
        if session is self.session:
            self.regionsChanged.emit()

    def add_region(self, geometry, name: str = "Region") -> str | None:
        """Add a drawn region (shapely geometry, level-0 px; clipped to the slide). Returns its
        name, or None when it has no area inside the slide."""
        from lobule.inference.annotations.regionset import unique_name
        from shapely.geometry import box

        if self.document is None:
            return None
        geometry = as_area(as_area(geometry).intersection(box(0, 0, *self.document.reader.dimensions)))
        if geometry.is_empty or geometry.area < 1:
            self.message.emit("The outline has no area inside the slide; no region added")
            return None
        taken = [r.name for r in self.regions()]
        if name == "Region":
            name = unique_name(f"Region {len(self.drawn_regions()) + 1}", taken)
        region = Region(unique_name(name, taken), geometry)
        self.regionAdded.emit(region.name)
        if self.session is not None:
            session = self.session
            self._submit(lambda: session.add_regions([region], f"add region {region.name}"))
        else:
            self.pending_regions.append(region)
            self.regionsChanged.emit()
            self._measure_read_only()
        return region.name

    def remove_region(self, name: str) -> None:
        if name == WHOLE_TISSUE and self.region(name) is self.default_region:
            return
        if self.session is not None:
            session = self.session
            self._submit(lambda: session.remove_region(name))
        else:
            self.pending_regions = [r for r in self.pending_regions if r.name != name]
            self.results.pop(name, None)
            self.regionsChanged.emit()

    def rename_region(self, name: str, new_name: str) -> None:
        if self.session is not None:
            session = self.session
            self._submit(lambda: session.rename_region(name, new_name))
        else:
            from lobule.inference.annotations.regionset import RegionSet

            try:
                self.pending_regions = list(RegionSet(self.pending_regions).renamed(name, new_name))
            except Exception as error:  # noqa: BLE001 - InputError: name taken or empty
                self.failed.emit("Cannot rename the region", error_message(error))
            self.regionsChanged.emit()

    def import_regions(self, path) -> None:
        """Add the regions of a QuPath GeoJSON or LabelMe JSON file (one line on bad input)."""
        from lobule.inference.annotations.geojson_io import read_regions

        path = str(path)
        if self.session is not None:
            session = self.session
            self._submit(lambda: session.import_regions(path), title="Cannot import regions")
        elif self.document is not None:
            size = self.document.reader.dimensions

            def done(report) -> None:
                self.pending_regions += report.regions
                self.regionsChanged.emit()
                self.message.emit(report.summary())
                self._measure_read_only()

            self.worker.submit(lambda: read_regions(path, size), done,
                               lambda error: self.failed.emit("Cannot import regions", error_message(error)))

    def export_regions(self, path) -> None:
        """Write the drawn regions (and, once analysed, their class masks) as QuPath GeoJSON."""
        from lobule.inference.annotations.geojson_io import write_geojson

        path = str(path)
        session, regions = self.session, self.drawn_regions()
        if session is not None:
            job = lambda: session.export_geojson(path)  # noqa: E731
        else:
            job = lambda: write_geojson(path, regions, None, class_masks=False)  # noqa: E731
        self.worker.submit(job, lambda out: self.message.emit(f"Wrote {out}"),
                           lambda error: self.failed.emit("Cannot export regions", error_message(error)))

    # --- editing ----------------------------------------------------------------------------
    def _submit(self, fn, done=None, title: str = "Edit failed") -> None:
        self.worker.submit(fn, done, lambda error: self.failed.emit(title, error_message(error)))

    def begin_stroke(self, value: int, radius_um: float, point) -> None:
        """Start a brush (class id) or eraser (``ERASE``) stroke at ``point`` (level-0 px)."""
        if not self.can_edit:
            return
        session, stroke = self.session, {}
        self._stroke = stroke

        def start() -> None:
            stroke["stroke"] = session.begin_stroke(value, radius_um)
            stroke["stroke"].add(*point)

        self._submit(start)

    def extend_stroke(self, point) -> None:
        stroke = self._stroke
        if stroke is not None:
            self.worker.submit(lambda: "stroke" in stroke and stroke["stroke"].add(*point))

    def end_stroke(self, on_applied=None) -> None:
        """End the stroke; ``on_applied()`` runs on the GUI thread once it is in the class map
        (after the overlay was told which tiles changed)."""
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self.worker.submit(lambda: "stroke" in stroke and stroke["stroke"].finish(),
                               on_applied and (lambda _: on_applied()))

    def cancel_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self.worker.submit(lambda: "stroke" in stroke and stroke["stroke"].cancel())

    def fill_polygon(self, geometry, value: int) -> None:
        if self.can_edit:
            session = self.session
            self._submit(lambda: session.fill_polygon(geometry, value))

    def flood_fill(self, point, value: int, radius_um: float) -> None:
        if self.can_edit:
            session = self.session
            self._submit(lambda: session.flood_fill(point, value, radius_um), self._fill_done)

    def magic_wand(self, point, value: int, tolerance: float, radius_um: float) -> None:
        if self.can_edit:
            session, slide = self.session, self.document.reader
            self._submit(lambda: session.magic_wand(slide, point, value, tolerance, radius_um), self._fill_done)

    def _fill_done(self, result) -> None:
        if result is not None and result.bounded:
            self.message.emit(f"Filled {result.pixels:,} px; the area reaches the fill bound and may go on beyond it")

    def undo(self) -> None:
        if self.session is not None:
            session = self.session
            self._submit(session.undo, lambda label: self.message.emit(f"Undid {label}" if label else "Nothing to undo"))

    def redo(self) -> None:
        if self.session is not None:
            session = self.session
            self._submit(session.redo, lambda label: self.message.emit(f"Redid {label}" if label else "Nothing to redo"))

    def history_labels(self) -> tuple[str | None, str | None]:
        """(undo label, redo label) of the current session."""
        if self.session is None:
            return None, None
        history = self.session.history
        return history.undo_label, history.redo_label

    def recover(self) -> None:
        if self.session is not None:
            session = self.session
            self._submit(session.recover, title="Cannot recover the unsaved work")

    def discard_recovery(self) -> None:
        if self.session is not None:
            session = self.session
            self._submit(session.discard_recovery)

