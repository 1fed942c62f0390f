"""One whole-slide analysis: tissue mask -> tile grid -> batched inference -> label store.

This is the call the GUI's Analyze button and ``lobule analyze`` share. It blocks; the GUI runs
it in a worker thread with ``on_progress`` emitting a signal and ``cancel`` set by the Cancel
button.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.engine.runner import CancelFlag, Cancelled, ProgressEvent, RunStats, is_cancelled, run_tiles
from lobule.inference.errors import InputError, MissingMppError
from lobule.inference.labelstore import LabelStore, LabelStoreWriter, slide_fingerprint
from lobule.inference.tiling import TileGrid, make_grid
from lobule.inference.tissue import TissueMask, TissueSettings, detect_tissue


@dataclass
class AnalysisResult:
    """What :func:`analyze_slide` made: the committed store, the tissue mask, the grid and the
    run's timings."""

    store: LabelStore
    tissue: TissueMask
    grid: TileGrid
    stats: RunStats


def slide_mpp(slide) -> float:
    """The slide's um per level-0 pixel (mean of x and y).

    Raises
    ------
    MissingMppError
        If the slide does not state it; the message names ``--mpp``.
    """
    if slide.mpp is None:
        raise MissingMppError(
            f"{Path(slide.path).name} does not state its pixel size (mpp); give it with --mpp "
            "(e.g. --mpp 0.25 for 40x, 0.5 for 20x scans)"
        )
    return float(np.mean(slide.mpp))


# A slide narrower than this (level-0 px) holds no tissue worth quantifying: 64 px at 0.5 um/px
# is 32 um, about two hepatocytes; a 1x1 image would otherwise report "parenchyma 100 %".
MIN_ANALYSIS_SIDE = 64


def check_analysable(slide) -> float:
    """The slide's mpp (:func:`slide_mpp`) after checking it can be analysed at all.

    Raises
    ------
    MissingMppError
        If the slide does not state its mpp.
    InputError
        If a side is shorter than :data:`MIN_ANALYSIS_SIDE` px ("too small to analyse").
    """
    width, height = slide.dimensions
    if min(width, height) < MIN_ANALYSIS_SIDE:
        raise InputError(
            f"{Path(slide.path).name}: {width}x{height} px is too small to analyse "
            f"(at least {MIN_ANALYSIS_SIDE}x{MIN_ANALYSIS_SIDE} px)"
        )
    return slide_mpp(slide)


def slide_info(slide) -> dict:
    """Slide identity recorded in stores and exports."""
    return {
        "name": Path(slide.path).name,
        "path": str(Path(slide.path).resolve()),
        "sha256_first_mib": slide_fingerprint(slide.path),
        "dimensions": list(slide.dimensions),
        "mpp": slide_mpp(slide),
        "mpp_source": slide.mpp_source,
        "vendor": slide.vendor,
        "objective_power": slide.objective_power,
    }


def analyze_slide(
    slide,
    predictor,
    store_path: str | os.PathLike,
    *,
    tissue_settings: TissueSettings | None = None,
    tissue: TissueMask | None = None,
    batch_size: int | None = None,
    readers: int = 2,
    cancel: CancelFlag = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> AnalysisResult:
    """Segment the tissue of a slide and save the class map as a :class:`LabelStore`.

    Parameters
    ----------
    slide : a SlideReader with known mpp.
    predictor : see :class:`~lobule.inference.engine.predictor.Predictor`.
    store_path : the ``.zarr`` folder to create (replaced atomically if it exists); usually
        ``analysis_dir(slide.path) / store_name(predictor.name)``.
    tissue_settings, batch_size, readers, cancel, on_progress : see :func:`detect_tissue` and
        :func:`run_tiles`.
    tissue : a tissue mask to use instead of detecting one (e.g. restricted to a drawn region).

    Returns
    -------
    AnalysisResult. A slide without tissue gives an all-background store (not an error).

    Raises
    ------
    MissingMppError
        If the slide does not state its mpp.
    InputError
        If the slide is too small to analyse (:func:`check_analysable`).
    Cancelled
        If ``cancel`` was set; no store and no temporary files remain.
    """
    mpp = check_analysable(slide)
    if tissue is None:
        tissue = detect_tissue(slide, tissue_settings)
    if is_cancelled(cancel):
        raise Cancelled("analysis cancelled")
    grid = make_grid(slide.dimensions, mpp, predictor.mpp, predictor.tile_size, predictor.margin, tissue)
    prepare = getattr(predictor, "prepare", None)
    if prepare is not None:  # slide-wide statistics, the same for every tile (no seams between tiles)
        prepare(slide, grid)
    attrs = {
        "mpp": grid.mpp,
        "scale": grid.scale,
        "slide": slide_info(slide),
        "model": predictor.describe(),
        "tiling": {"tile_size": grid.tile_size, "margin": grid.margin, "core": grid.core,
                   "tiles_predicted": len(grid.tiles), "cells": grid.cell_count,
                   # how overlapping tiles are joined (lobule.inference.engine.blend)
                   "blend": "scores" if hasattr(predictor, "predict_scores") else "core labels"},
    }
    from lobule.resources.classes import class_table_json

    attrs["classes"] = class_table_json()
    Path(store_path).parent.mkdir(parents=True, exist_ok=True)
    with LabelStoreWriter(store_path, grid.shape, grid.core, attrs, tissue=tissue) as writer:
        stats = run_tiles(slide, grid, predictor, writer.write, batch_size=batch_size, readers=readers,
                          cancel=cancel, on_progress=on_progress)
        if is_cancelled(cancel):
            raise Cancelled("analysis cancelled")
        store = writer.commit()
    return AnalysisResult(store, tissue, grid, stats)
