"""Window / level presets for displaying CT and MR slices.

CT presets are the usual radiology windows in Hounsfield units (width, level): abdomen (soft
tissue) 400/40, liver 150/30, lung 1500/-600 (Radiopaedia, "Windowing (CT)"). MR intensities
have no absolute scale, so "MRI automatic" takes the 1st and 99th percentiles of the volume.
"""
from __future__ import annotations

import numpy as np

#: name -> (width, level) in HU
CT_PRESETS: dict[str, tuple[float, float]] = {
    "CT abdomen": (400.0, 40.0),
    "CT liver": (150.0, 30.0),
    "CT lung": (1500.0, -600.0),
}
AUTO = "MRI automatic"
PRESET_NAMES = (AUTO, *CT_PRESETS)


def window_levels(preset: str, data: np.ndarray) -> tuple[float, float]:
    """Display range (low, high) of ``preset`` for the volume ``data``.

    Raises
    ------
    KeyError
        If the preset is unknown.
    """
    if preset == AUTO:
        return auto_levels(data)
    width, level = CT_PRESETS[preset]
    return level - width / 2.0, level + width / 2.0


def auto_levels(data: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """Percentile display range of ``data`` (a strided sample for speed on large volumes)."""
    sample = data[::2, ::2, :] if data.ndim == 3 else data
    lo, hi = np.percentile(sample, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def default_preset(modality: str) -> str:
    """``CT abdomen`` for CT, ``MRI automatic`` for anything else."""
    return "CT abdomen" if modality == "CT" else AUTO
