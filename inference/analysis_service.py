"""One whole-slide analysis, headless: the pieces every front end assembles the main job from.

``lobule analyze``, each ``lobule batch`` worker and the GUI's Analyze + Export all run these, so a
slide exports the same four files (``summary.json``, ``regions.csv``, ``classes.geojson``,
``labels.tif``) with the same numbers from every front end:

- :func:`segment_slide`: load the model (or take a loaded one), detect the tissue (restricted to a
  region when one is given), segment it tile by tile into the slide's label store, with progress
  and cancel;
- :func:`default_region`: the region measured when none is drawn or given, the whole tissue
  (named :data:`DEFAULT_REGION_NAME`, classification :data:`DEFAULT_REGION_CLASS`);
- :func:`export_results`: quantify each region of a class map (the model's, or the model's with
  human corrections over it) and write the four files atomically with full provenance, the
  corrections record included (:func:`corrections_record`);
- :func:`analyze_to_folder`: all of it for one slide file (the command line and the cohort workers).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_REGION_NAME = "Whole tissue"
DEFAULT_REGION_CLASS = "Tissue"
TISSUE_COLOUR = (0, 160, 255)


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
    quality : the per-slide quality check (``lobule.inference.liver.quality.slide_quality``).
    """

    out: Path
    slide: dict
    model: dict
    regions: list
    results: list
    run: dict | None
    reused_store: Path | None = None
    quality: dict | None = None


def default_region(tissue, slide_size: tuple[int, int]):
    """The region measured when none is drawn or given: the tissue outline, clipped to the slide.

    Parameters
    ----------
    tissue : a :class:`~lobule.inference.tissue.TissueMask` (``LabelStore.tissue_mask()`` or a
        run's), or None (an empty region).
    slide_size : (width, height) of the slide in level-0 pixels.

    Returns
    -------
    Region named :data:`DEFAULT_REGION_NAME`, classification :data:`DEFAULT_REGION_CLASS`; its
    geometry is empty when no tissue was found.
    """
    from shapely.geometry import Polygon, box

    from lobule.inference.regions import Region, as_area

    geometry = Polygon() if tissue is None or tissue.is_empty() else tissue.geometry()
    if not geometry.is_empty:
        geometry = as_area(geometry.intersection(box(0, 0, *slide_size)))
    return Region(DEFAULT_REGION_NAME, geometry, DEFAULT_REGION_CLASS, TISSUE_COLOUR)


def store_default_region(store, slide_size: tuple[int, int]):
    """:func:`default_region` of a label store (an empty region when the store holds no tissue mask)."""
    return default_region(store.tissue_mask() if "tissue" in store.attrs else None, slide_size)


def restrict_tissue(tissue, geometry):
    """``tissue`` (a :class:`~lobule.inference.tissue.TissueMask`) keeping only the mask pixels
    whose centres lie inside ``geometry`` (shapely, level-0 px)."""
    from lobule.inference.regions import rasterize

    h, w = tissue.mask.shape
    inside = rasterize(geometry, (0, 0, w, h), tissue.downsample)
    return replace(tissue, mask=tissue.mask & inside)


def default_readers() -> int:
    """Tile reader threads of a slide analysis when none is given (CLI, GUI and batch): 1 on
    machines with 2 cores or fewer (measured on 2 cores: with OpenVINO, end to end / bare model
    0.97 with one reader against 0.72 with two, whose decoding took the CPU from the model's
    threads), else 2."""
    return 1 if (os.cpu_count() or 1) <= 2 else 2


def segment_slide(slide, model: str | None = None, *, predictor=None, region=None, device: str = "auto",
                  runtime: str = "auto", batch_size: int | None = None, readers: int | None = None,
                  cancel: threading.Event | Callable[[], bool] | None = None,
                  on_progress: Callable | None = None, say: Callable[[str], None] | None = None):
    """Segment ``slide``'s tissue (or the tissue inside ``region``) into its label store (blocking).

    Parameters
    ----------
    slide : an open SlideReader with known mpp.
    model : ``"classical"``, an installed checkpoint name or a card path (None: the default
        model); ignored when ``predictor`` is given.
    predictor : a loaded predictor (see ``load_predictor``), or None to load ``model``.
    region : a :class:`~lobule.inference.regions.Region`: segment only the tissue inside it.
    device, runtime : where and how the forward runs (see ``load_predictor``).
    batch_size, readers, cancel, on_progress : see :func:`lobule.inference.engine.analyze_slide`.
    say : called with one-line status messages before each stage (None: silent).

    Returns
    -------
    AnalysisResult; its ``store`` is ``analysis_dir(slide.path) / store_name(predictor.name)``.

    Raises
    ------
    MissingMppError, InputError
        No pixel size, a slide too small to analyse, or a region holding no tissue.
    UnknownModelError, CheckpointError
        If the model cannot be loaded.
    Cancelled
        If ``cancel`` was set; no store remains.
    """
    from lobule.inference.engine import analyze_slide, check_analysable, load_predictor, slide_info
    from lobule.inference.errors import InputError
    from lobule.inference.labelstore import analysis_dir, store_name
    from lobule.inference.tissue import detect_tissue

    tell = say or (lambda text: None)
    check_analysable(slide)  # refuses a slide without mpp (naming --mpp) or too small to analyse
    if predictor is None:
        tell(f"loading the model {model or 'liver-hne'}")
        predictor = load_predictor(model, device, runtime)
    tissue = None
    if region is not None:
        tell("detecting tissue in the region")
        tissue = restrict_tissue(detect_tissue(slide), region.geometry)
        if tissue.is_empty():
            raise InputError(f"region {region.name!r} holds no tissue")
    info = slide_info(slide)
    tell(f"{info['name']}: {slide.dimensions[0]} x {slide.dimensions[1]} px at {info['mpp']:.4g} um/px "
         f"({info['mpp_source']}); segmenting with {predictor.name} on {predictor.device}"
         + _runtime_text(predictor.describe()))
    target = analysis_dir(slide.path) / store_name(predictor.name)
    readers = default_readers() if readers is None else readers
    result = analyze_slide(slide, predictor, target, tissue=tissue, batch_size=batch_size, readers=readers,
                           cancel=cancel, on_progress=on_progress)
    tell(f"tissue: {100 * result.tissue.kept_fraction:.1f} % of the slide, {len(result.grid.tiles)} of "
         f"{result.grid.cell_count} tiles analysed in {result.stats.wall:.1f} s; class map {result.store.path}")
    return result


def corrections_record(labels, store) -> dict:
    """The export's record of human corrections: ``labels`` is what is exported, ``store`` the
    model's class map under it (the same object when nothing was opened for editing).

    Returns
    -------
    dict: ``corrected_label_pixels`` (int), ``store`` (the corrections folder; None without
    corrections), ``note``.
    """
    corrected = labels.corrected_pixels() if labels is not store else 0
    folder = getattr(labels, "folder", None) if corrected else None
    return {"corrected_label_pixels": int(corrected), "store": str(folder) if folder else None,
            "note": "the class map exported is the model output with these human corrections over it"
            if corrected else "no human corrections"}


def export_results(out: str | os.PathLike, *, slide, store, regions: list, settings=None, labels=None,
                   quality: dict | None = None, run: dict | None = None,
                   cancel: threading.Event | Callable[[], bool] | None = None):
    """Quantify ``regions`` of a class map and write the four export files into ``out`` atomically.

    Parameters
    ----------
    out : export folder (created; files replaced atomically).
    slide : the open SlideReader the class map belongs to.
    store : the model's LabelStore (its ``model`` block is the export's provenance).
    regions : Regions (level-0 px) to quantify, in export order.
    settings : QuantSettings (defaults when None).
    labels : the class map measured and exported: ``store``, or a merged view with human
        corrections over it (an annotation session's ``labels``); None: ``store``.
    quality : the slide's quality block (None: checked here, :func:`lobule.inference.liver.quality.slide_quality`).
    run : timings of the inference run that made ``store`` (None when it was reused); the
        quantification time is added as ``run["quantify"]``.
    cancel : Event or callable, checked between regions and files (raises ``Cancelled``).

    Returns
    -------
    (folder, results): the absolute export folder and the RegionResults, same order as ``regions``.

    Raises
    ------
    InputError
        If ``out`` is not a usable folder.
    Cancelled
        If ``cancel`` was set; nothing is left in ``out``.
    OSError
        Unwritable output or full disk; nothing is then left in ``out``.
    """
    from lobule.inference.engine import slide_info
    from lobule.inference.engine.runner import is_cancelled
    from lobule.inference.export import export_analysis, prepare_output_dir
    from lobule.inference.liver.quality import slide_quality
    from lobule.inference.liver.quantify import QuantSettings, quantify

    def stop() -> bool:
        return is_cancelled(cancel)

    settings = settings if settings is not None else QuantSettings()
    labels = labels if labels is not None else store
    out = prepare_output_dir(out)
    t0 = time.perf_counter()
    results = [quantify(labels, region, settings, cancel=stop) for region in regions]
    if run is not None:
        run["quantify"] = time.perf_counter() - t0
    if quality is None:
        quality = slide_quality(slide, store)
    model = {**store.model, "corrections": corrections_record(labels, store)}
    folder = export_analysis(out, store=labels, regions=regions, results=results, settings=settings,
                             slide=slide_info(slide), model=model, tissue=store.tissue_mask(), run=run,
                             quality=quality, cancel=stop)
    return folder, results


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
    readers: int | None = None,
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
    from lobule.inference.engine import check_analysable, load_predictor, slide_info
    from lobule.inference.errors import InputError
    from lobule.inference.export import prepare_output_dir
    from lobule.inference.labelstore import find_store
    from lobule.inference.liver.quality import slide_quality
    from lobule.inference.regions import clip_to_slide, read_geojson
    from lobule.inference.slide import open_slide

    tell = say or (lambda text: None)
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    out = prepare_output_dir(out)
    roi_regions = read_geojson(roi) if roi else None

    with open_slide(slide_path, mpp=mpp) as slide:
        check_analysable(slide)  # refuses a slide without mpp (naming --mpp) or too small to analyse
        regions = [clip_to_slide(region, slide.dimensions) for region in roi_regions] if roi_regions else None
        if predictor is None:
            predictor = load_predictor(model, device, runtime)
        described = predictor.describe()
        store = find_store(slide.path, predictor.name) if reuse else None
        run = None
        reused = None
        if store is not None and store.model.get("weights_sha256") == described.get("weights_sha256"):
            reused = Path(store.path)
            tell(f"reusing the saved class map {store.path}")
        else:
            result = segment_slide(slide, predictor=predictor, batch_size=batch_size, readers=readers,
                                   cancel=cancel, on_progress=on_progress, say=tell)
            store, run = result.store, result.stats.as_dict()
        if regions is None:
            region = store_default_region(store, slide.dimensions)
            if region.geometry.is_empty:
                tell("no tissue found: the results are empty")
            regions = [region]
        quality = slide_quality(slide, store)
        out, results = export_results(out, slide=slide, store=store, regions=regions, settings=settings,
                                      quality=quality, run=run, cancel=cancel)
        info = slide_info(slide)
    return AnalysisOutcome(out, info, described, regions, results, run, reused, quality)


def _runtime_text(described: dict) -> str:
    """`` (openvino f32, 0.012 % pixels changed vs fp32)`` for the status line, or ``""``."""
    runtime = (described or {}).get("runtime")
    if not runtime:
        return ""
    changed = runtime.get("pixels_changed_vs_fp32")
    agreement = "" if not runtime.get("agreement_tiles") else f", {100 * changed:.3f} % pixels changed vs fp32"
    return f" ({runtime['runtime']} {runtime['precision']}{agreement})"
