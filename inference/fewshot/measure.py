"""Organ volume and slice areas of a mask, Dice, and the numbers CSV."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lobule.inference.volume import Volume
from lobule.core.atomic import atomic_write


def organ_volume_ml(mask: np.ndarray, volume: Volume) -> float:
    """Volume of an (X, Y, Z) mask in millilitres (voxel count x voxel size)."""
    return float(np.count_nonzero(mask)) * volume.voxel_volume_ml


def slice_areas_mm2(mask: np.ndarray, volume: Volume) -> np.ndarray:
    """(Z,) area of the mask in each slice in mm^2."""
    spacing = volume.spacing
    return mask.reshape(-1, mask.shape[2]).sum(axis=0).astype(float) * float(spacing[0] * spacing[1])


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice 2|X n Y| / (|X| + |Y|) in [0, 1]; 1.0 when both are empty."""
    a, b = np.count_nonzero(prediction), np.count_nonzero(truth)
    if a + b == 0:
        return 1.0
    return 2.0 * np.count_nonzero(np.logical_and(prediction, truth)) / (a + b)


def write_numbers_csv(path: str | Path, mask: np.ndarray, volume: Volume, organ: str, supports: list[int],
                      model: str) -> Path:
    """Write the organ's numbers as a long-format CSV, atomically.

    Columns: ``quantity, slice, position_mm, value, unit``. Rows: ``organ_volume`` (mL), then one
    ``slice_area`` (mm^2) per slice holding the organ, ``position_mm`` the slice's RAS+ coordinate
    along the patient axis its normal is closest to (S for axial slices; the ``slice_axis`` row
    names it with the plane). Support slices are listed as ``support_slice`` rows; the input, organ
    and model as ``source`` / ``organ`` / ``model`` rows.
    """
    path = Path(path)
    areas = slice_areas_mm2(mask, volume)
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["quantity", "slice", "position_mm", "value", "unit"])
        writer.writerow(["source", "", "", volume.source, ""])
        writer.writerow(["organ", "", "", organ, ""])
        writer.writerow(["model", "", "", model, ""])
        code = volume.slice_position_mm(0)[0]
        kind = "acquisition" if volume.axis == "acquisition" else "reformatted"
        writer.writerow(["slice_axis", "", "", f"{volume.plane} slices ({kind}), position along {code}", ""])
        writer.writerow(["organ_volume", "", "", f"{organ_volume_ml(mask, volume):.3f}", "mL"])
        for k in supports:
            writer.writerow(["support_slice", k, f"{volume.slice_position_mm(k)[1]:.2f}", "", ""])
        for k in np.flatnonzero(areas):
            writer.writerow(["slice_area", int(k), f"{volume.slice_position_mm(int(k))[1]:.2f}", f"{areas[k]:.2f}", "mm2"])
    return path
