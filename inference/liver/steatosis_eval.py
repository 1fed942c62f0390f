"""Per-tile steatosis measures of a predicted lipid-droplet mask against a real one.

The Polito liver steatosis challenge (M. Salvi et al.) scores a method per tile by segmentation
overlap, by the error of the vacuole count and by the error of the steatosis percentage; the
same three are measured here, per tile, so they can be summarised per source:

- Dice = 2 tp / (2 tp + fp + fn) of the lipid-droplet pixels;
- count: droplets with an equivalent diameter >= the quantification's smallest counted droplet
  (``QuantSettings.droplet_min_diameter_um``, 3 um), touching droplets cut apart by the
  distance-transform watershed of :mod:`lobule.inference.liver.quantify.droplet_split` (the predicted
  mask and a binary truth mask alike; a truth instance map counts its instances);
- steatosis % = droplet area / tissue area * 100, the tissue being the tile's tissue mask
  (:func:`lobule.inference.tissue.tissue_mask_from_rgb`) joined with the true droplets, the same
  denominator for the prediction and the truth.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from lobule.inference.liver.quantify.droplet_split import count_droplets
from lobule.inference.liver.quantify.settings import QuantSettings
from lobule.models.metrics import binary_overlap, pooled_overlap

MIN_DIAMETER_UM = QuantSettings().droplet_min_diameter_um


def truth_count(mask: np.ndarray, mpp: float) -> int:
    """Droplets of a truth mask: the instances of an instance map (not uint8, or more than one
    nonzero id), else the watershed count of the binary mask; equivalent diameter >= MIN_DIAMETER_UM.
    (H, W) integer -> int."""
    ids = np.unique(mask[mask > 0])
    if mask.dtype != np.uint8 or ids.size > 1:
        areas = np.bincount(mask.ravel().astype(np.int64))[ids.astype(np.int64)]
        diameters = 2.0 * np.sqrt(areas * mpp * mpp / math.pi)
        return int(np.count_nonzero(diameters >= MIN_DIAMETER_UM))
    return count_droplets(mask > 0, mpp, MIN_DIAMETER_UM)


def tile_measures(image: np.ndarray, predicted: np.ndarray, truth: np.ndarray, mpp: float,
                  counts: bool = True) -> dict[str, Any]:
    """Overlap, counts and steatosis % of one tile.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB (for the tissue mask). predicted : (H, W) bool lipid-droplet
    pixels. truth : (H, W) integer mask (nonzero = droplet; an instance map is fine).
    mpp : micrometres per pixel. counts : False for partial masks (undrawn droplets make counts
    and percentages meaningless); those fields are then None.

    Returns
    -------
    dict: ``iou``, ``dice``, ``tp``, ``fp``, ``fn`` (:func:`binary_overlap`), ``count_pred``,
    ``count_truth``, ``steatosis_pct_pred``, ``steatosis_pct_truth``.
    """
    from lobule.inference.tissue import tissue_mask_from_rgb

    positive = truth > 0
    result: dict[str, Any] = binary_overlap(predicted, positive)
    result.update(count_pred=None, count_truth=None, steatosis_pct_pred=None, steatosis_pct_truth=None)
    if counts:
        tissue = tissue_mask_from_rgb(image, mpp).mask | positive
        area = max(int(np.count_nonzero(tissue)), 1)
        result["count_pred"] = count_droplets(predicted, mpp, MIN_DIAMETER_UM)
        result["count_truth"] = truth_count(truth, mpp)
        result["steatosis_pct_pred"] = 100.0 * np.count_nonzero(predicted & tissue) / area
        result["steatosis_pct_truth"] = 100.0 * np.count_nonzero(positive) / area
    return result


def summarise_tiles(tiles: Iterable[dict]) -> dict[str, Any]:
    """Summary of :func:`tile_measures` results of one source.

    Returns
    -------
    dict: ``tiles``; ``iou``, ``dice`` pooled over the tiles (counts summed); ``dice_mean`` and
    ``dice_sd`` over tiles where Dice is defined (a tile with no droplet in truth or prediction
    has none); ``count_abs_error`` (mean |predicted - true count|), ``steatosis_pct_abs_error``
    (mean |predicted - true steatosis %|, percentage points) and ``steatosis_pct_truth_mean``,
    None where the source has no counts.
    """
    tiles = list(tiles)
    pooled = pooled_overlap(tiles)
    dice = np.array([t["dice"] for t in tiles if t["dice"] is not None], dtype=np.float64)
    counted = [t for t in tiles if t.get("count_pred") is not None]

    def mean(values) -> float | None:
        values = list(values)
        return round(float(np.mean(values)), 4) if values else None

    return {
        "tiles": len(tiles),
        "iou": None if pooled["iou"] is None else round(pooled["iou"], 4),
        "dice": None if pooled["dice"] is None else round(pooled["dice"], 4),
        "dice_mean": round(float(dice.mean()), 4) if dice.size else None,
        "dice_sd": round(float(dice.std(ddof=1)), 4) if dice.size > 1 else None,
        "count_abs_error": mean(abs(t["count_pred"] - t["count_truth"]) for t in counted),
        "steatosis_pct_abs_error": mean(abs(t["steatosis_pct_pred"] - t["steatosis_pct_truth"]) for t in counted),
        "steatosis_pct_truth_mean": mean(t["steatosis_pct_truth"] for t in counted),
        "tp": pooled["tp"], "fp": pooled["fp"], "fn": pooled["fn"],
    }
