"""One whole-slide analysis, headless, from slide file to export folder.

:func:`analyze_to_folder` is what ``lobule analyze`` runs for one slide and what each
``lobule batch`` worker runs for each slide of a cohort, so both write the same four files
(``summary.json``, ``regions.csv``, ``classes.geojson``, ``labels.tif``) with the same numbers:
open the slide (mpp from the file or given), check it, segment the tissue (or reuse a saved class
map), quantify each region, export atomically.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class AnalysisOutcome:
    """What :func:`analyze_to_folder` wrote.

    Attributes
    ----------
    out : the export folder (absolute).
    slide : slide identity (``slide_info``: name, path, sha256_first_mib, mpp, ...).
    model : the predictor's ``describe()`` (name, weights_sha256, ...).
    regions, results : the quantified regions (level-0 pixels) and their RegionResults, same order.
    run : inference timings in seconds (None when a saved class map was reused).
    reused_store : the saved class map that was reused, or None.
    quality : the per-slide quality check (``lobule.inference.quality.slide_quality``).
    """

    out: Path
    slide: dict
    model: dict
    regions: list
    results: list
    run: dict | None
    reused_store: Path | None = None
    quality: dict | None = None


def analyze_to_folder(
    slide_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    predictor=None,
    model: str | None = None,
    device: str = "auto",
    roi: str | os.PathLike | None = None,
    mpp: float | None = None,
    settings=None,
    batch_size: int | None = None,
    readers: int = 2,
    reuse: bool = False,
    runtime: str = "auto",
    cancel: threading.Event | Callable[[], bool] | None = None,
    on_progress: Callable | None = None,
    say: Callable[[str], None] | None = None,
) -> AnalysisOutcome:
    """Segment a slide's tissue into the seven liver classes, quantify and export to ``out``.

    Every input is checked before anything is written: the output folder, the ROI file, the slide
    (opens, states or is given its mpp), then the model is loaded.

    Parameters
    ----------
    slide_path : whole-slide image (SVS, NDPI, MRXS, TIFF, ...).
    out : export folder (created; files replaced atomically).
    predictor : a loaded predictor (a worker holding the model passes it); when None the
        predictor of ``model`` on ``device`` is loaded (see ``load_predictor``).
    roi : QuPath GeoJSON of the regions to quantify (level-0 pixels); None: the whole tissue.
    mpp : micrometres per level-0 pixel, overriding the file.
    settings : QuantSettings (defaults when None).
    batch_size, readers : tiles per model call (None: from free memory) and reader threads.
    reuse : reuse the saved class map of this slide and model if its weights match.
    runtime : how the forward runs: ``auto``, ``torch``, ``torch-bf16`` or ``openvino`` (see ``load_predictor``).
    cancel : Event or callable; when set the run stops with ``Cancelled`` and leaves no output.
    on_progress : called with each ``ProgressEvent`` of the tile run.
    say : called with one-line status messages (None: silent).

    Returns
    -------
    AnalysisOutcome.

    Raises
    ------
    InputError, SlideError, MissingMppError
        Bad output folder, ROI, slide or missing mpp (one line naming the file and the reason).
    UnknownModelError, CheckpointError
        If the model cannot be loaded.
    Cancelled
        If ``cancel`` was set.
    OSError
        Unwritable output or full disk; nothing is then left in ``out``.
    """
    from lobule.inference.engine import analyze_slide, check_analysable, load_predictor, slide_info
    from lobule.inference.engine.runner import is_cancelled
    from lobule.inference.errors import InputError
    from lobule.inference.export import export_analysis, prepare_output_dir
    from lobule.inference.labelstore import analysis_dir, find_store, store_name
    from lobule.inference.quantify import QuantSettings, quantify
    from lobule.inference.regions import Region, clip_to_slide, read_geojson
    from lobule.inference.slide import open_slide

    tell = say or (lambda text: None)
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    settings = settings if settings is not None else QuantSettings()
    out = prepare_output_dir(out)
    roi_regions = read_geojson(roi) if roi else None

    def stop() -> bool:
        return is_cancelled(cancel)

    with open_slide(slide_path, mpp=mpp) as slide:
        check_analysable(slide)  # refuses a slide without mpp (naming --mpp) or too small to analyse
        regions = [clip_to_slide(region, slide.dimensions) for region in roi_regions] if roi_regions else None
        if predictor is None:
            predictor = load_predictor(model, device, runtime)
        info = slide_info(slide)
        described = predictor.describe()
        store = find_store(slide.path, predictor.name) if reuse else None
        run = None
        reused = None
        if store is not None and store.model.get("weights_sha256") == described.get("weights_sha256"):
            tissue = store.tissue_mask()
            reused = Path(store.path)
            tell(f"reusing the saved class map {store.path}")
        else:
            target = analysis_dir(slide.path) / store_name(predictor.name)
            tell(f"{info['name']}: {slide.dimensions[0]} x {slide.dimensions[1]} px at "
                 f"{info['mpp']:.4g} um/px ({info['mpp_source']}); model {predictor.name} on {predictor.device}"
                 + _runtime_text(described))
            result = analyze_slide(slide, predictor, target, batch_size=batch_size, readers=readers,
                                   cancel=cancel, on_progress=on_progress)
            store, tissue = result.store, result.tissue
            run = result.stats.as_dict()
            tell(f"tissue: {100 * tissue.kept_fraction:.1f} % of the slide, {len(result.grid.tiles)} of "
                 f"{result.grid.cell_count} tiles analysed in {result.stats.wall:.1f} s; class map {store.path}")
        if regions is None:
            region = Region("tissue", tissue.geometry(), "Tissue", (0, 160, 255))
            if tissue.is_empty():
                tell("no tissue found: the results are empty")
            else:
                region = clip_to_slide(region, slide.dimensions)
            regions = [region]
        t0 = time.perf_counter()
        results = [quantify(store, region, settings, cancel=stop) for region in regions]
        if run is not None:
            run["quantify"] = time.perf_counter() - t0
        from lobule.inference.quality import slide_quality

        quality = slide_quality(slide, store)
        export_analysis(out, store=store, regions=regions, results=results, settings=settings, slide=info,
                        model=described, tissue=tissue, run=run, quality=quality, cancel=stop)
    return AnalysisOutcome(out, info, described, regions, results, run, reused, quality)


def _runtime_text(described: dict) -> str:
    """`` (openvino f32, 0.012 % pixels changed vs fp32)`` for the status line, or ``""``."""
    runtime = (described or {}).get("runtime")
    if not runtime:
        return ""
    changed = runtime.get("pixels_changed_vs_fp32")
    agreement = "" if not runtime.get("agreement_tiles") else f", {100 * changed:.3f} % pixels changed vs fp32"
    return f" ({runtime['runtime']} {runtime['precision']}{agreement})"
