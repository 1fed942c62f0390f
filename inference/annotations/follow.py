"""Quantification that follows edits: region numbers recomputed after a stroke.

:class:`QuantFollower` listens to a session's ``labels_changed`` and ``regions_changed`` and
recomputes, with :func:`lobule.inference.liver.quantify.quantify` on the merged map (corrections over
model output), only the regions an edit touched (a region is touched when its geometry
intersects the changed box) and the regions that were added or reshaped; results of untouched
regions are kept. Work is debounced (``debounce_s`` after the last change) and, on the
follower's thread, a region's computation is abandoned as soon as another change touches it,
so painting never waits for numbers.

Within a touched region the whole region is re-measured: lipid-droplet, nucleus and ballooning
objects can cross chunk borders, and :func:`~lobule.inference.liver.quantify.quantify` labels and
merges them over its full window grid in one pass; re-measuring only the touched windows would
need that function split into per-window accumulation (cacheable) and the final summary.
"""
from __future__ import annotations

import time

from shapely.geometry import box as shapely_box

from lobule.inference.annotations.debounce import DebouncedThread
from lobule.inference.annotations.events import Event
from lobule.inference.liver.quantify import QuantSettings, RegionResult, quantify
from lobule.inference.regions import Region


class QuantFollower(DebouncedThread):
    """Keeps :attr:`results` (region name -> RegionResult) up to date with a session.

    Parameters
    ----------
    session : an :class:`~.session.AnnotationSession`.
    settings : quantification settings (defaults when None).
    default_region : measured when the session has no regions (e.g. the whole tissue, as
        ``lobule analyze`` does); None = nothing then.
    debounce_s : quiet time after a change before recomputing (thread mode).

    Events
    ------
    updated(name, result) : a region's new result (``result`` None when the region was removed).
    """

    thread_name = "lobule-quant-follow"

    def __init__(self, session, settings: QuantSettings | None = None, default_region: Region | None = None,
                 debounce_s: float = 0.3) -> None:
        self.session = session
        self.settings = settings or QuantSettings()
        self.default_region = default_region
        self.debounce_s = float(debounce_s)
        self.results: dict[str, RegionResult] = {}
        self.updated = Event()
        self._known: dict[str, Region] = {}
        self._stale: dict[str, int] = {}
        self._generation = 0
        self._last_change = 0.0
        super().__init__()
        session.labels_changed.connect(self._on_labels)
        session.regions_changed.connect(self._on_regions)
        self._on_regions(session.regions.regions)

    # --- what to recompute ----------------------------------------------------------------------
    def regions(self) -> list[Region]:
        """The regions measured: the session's, or the default region when there are none."""
        regions = list(self.session.regions.regions)
        if not regions and self.default_region is not None:
            regions = [self.default_region]
        return regions

    def _mark(self, names) -> None:
        with self._cond:
            self._generation += 1
            for name in names:
                self._stale[name] = self._generation
            self._last_change = time.monotonic()
            self._wake()

    def _on_labels(self, slide_box) -> None:
        x, y, w, h = slide_box
        changed = shapely_box(x, y, x + w, y + h)
        self._mark([r.name for r in self.regions() if r.geometry.intersects(changed)])

    def _on_regions(self, _regions) -> None:
        current = {r.name: r for r in self.regions()}
        gone = [name for name in self._known if name not in current]
        fresh = [name for name, r in current.items()
                 if name not in self._known or not self._known[name].geometry.equals(r.geometry)]
        self._known = current
        for name in gone:
            with self._cond:
                self._stale.pop(name, None)
            if self.results.pop(name, None) is not None:
                self.updated.emit(name, None)
        self._mark(fresh)

    @property
    def stale(self) -> list[str]:
        """Names of regions whose results are out of date."""
        with self._cond:
            return list(self._stale)

    # --- computing ------------------------------------------------------------------------------
    def refresh(self) -> dict[str, RegionResult]:
        """Recompute every stale region now, on this thread; returns :attr:`results`."""
        while self._compute_one(cancellable=False):
            pass
        return self.results

    def _compute_one(self, cancellable: bool) -> bool:
        from lobule.inference.engine.runner import Cancelled

        with self._cond:
            if not self._stale:
                return False
            name, generation = next(iter(self._stale.items()))
        region = self._known.get(name)
        if region is None:
            with self._cond:
                self._stale.pop(name, None)
            return True

        def cancel() -> bool:
            return cancellable and (self._stop or self._stale.get(name) != generation)

        try:
            result = quantify(self.session.labels, region, self.settings, cancel=cancel)
        except Cancelled:
            return True
        with self._cond:
            if self._stale.get(name) != generation:
                return True  # changed again meanwhile: stays stale
            del self._stale[name]
        self.results[name] = result
        self.updated.emit(name, result)
        return True

    def close(self) -> None:
        """Stop the thread and disconnect from the session."""
        self.stop()
        self.session.labels_changed.disconnect(self._on_labels)
        self.session.regions_changed.disconnect(self._on_regions)

    def _seconds_until_due(self) -> float | None:
        return self._last_change + self.debounce_s - time.monotonic() if self._stale else None

    def _work(self) -> None:
        self._compute_one(cancellable=True)
