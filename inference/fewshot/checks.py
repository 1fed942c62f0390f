"""Checks of a one-shot segmentation's inputs and result: refusals (raise) and warnings (returned).

A volume without signal or a support mask that is the whole slice would still give a number (the
support echoed back, e.g. "organ 39.2 mL"); these are refused with one line instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from lobule.inference.errors import InputError
from lobule.inference.volume import Volume

#: a support covering more than this fraction of its slice is refused (an outline of the organ never does)
MAX_SUPPORT_FRACTION = 0.9
#: supports below this many voxels or this area get a warning (the model sees slices at 128-256 px)
TINY_SUPPORT_VOXELS = 30
TINY_SUPPORT_MM2 = 100.0
#: a support whose filled outline is this much larger than the painted mask is called a ring
RING_FILL_RATIO = 1.3


def _name(volume: Volume) -> str:
    return Path(volume.source).name or volume.source


def check_signal(volume: Volume) -> None:
    """Refuse a volume with no signal (all NaN/infinite, or one constant value).

    Raises
    ------
    InputError
        One line naming the file and what is wrong.
    """
    data = volume.data
    if data.size and volume.nonfinite >= data.size:
        raise InputError(f"{_name(volume)} has no signal: every voxel is NaN or infinite; nothing to segment")
    low, high = (float(v) for v in (data.min(), data.max())) if data.size else (0.0, 0.0)
    if high <= low:
        raise InputError(f"{_name(volume)} has no signal: every voxel is {low:g}; nothing to segment")


def check_support(volume: Volume, k: int, mask: np.ndarray) -> list[str]:
    """Refuse an unusable support mask of slice ``k``; return warnings about a doubtful one.

    Parameters
    ----------
    volume : the volume (for the slice's pixels and spacing).
    k : the support slice.
    mask : (X, Y) bool support mask.

    Returns
    -------
    One-line warnings: a tiny support, a ring (an outline whose inside is not painted).

    Raises
    ------
    InputError
        An empty mask, a mask covering more than :data:`MAX_SUPPORT_FRACTION` of the slice, or a
        support slice without signal.
    """
    count = int(np.count_nonzero(mask))
    if count == 0:
        raise InputError(f"the support mask of slice {k} is empty: outline the organ there or remove the support")
    fraction = count / mask.size
    if fraction > MAX_SUPPORT_FRACTION:
        raise InputError(f"the support mask of slice {k} covers {100 * fraction:.0f}% of the slice; "
                         "outline the organ only, not the whole slice")
    plane = volume.slice(k)
    if float(plane.max()) <= float(plane.min()):
        raise InputError(f"slice {k} of {_name(volume)} has no signal (every pixel is {float(plane.min()):g}); "
                         "choose a slice showing the organ")
    warnings = []
    area = count * float(volume.spacing[0] * volume.spacing[1])
    if count < TINY_SUPPORT_VOXELS or area < TINY_SUPPORT_MM2:
        warnings.append(f"the support of slice {k} is tiny ({count} px, {area:.0f} mm²): "
                        "outline the whole organ on that slice")
    filled = int(np.count_nonzero(ndi.binary_fill_holes(mask)))
    if filled > RING_FILL_RATIO * count:
        warnings.append(f"the support of slice {k} is a ring: its inside ({filled - count} px) is not painted; "
                        "fill the outline so the organ is the support")
    return warnings


def check_result(mask: np.ndarray) -> list[str]:
    """One-line warnings about an (X, Y, Z) result: empty, or covering a single slice."""
    slices = int(np.count_nonzero(mask.any(axis=(0, 1))))
    if slices == 0:
        return ["the result is empty"]
    if slices == 1 and mask.shape[2] > 1:
        return ["the result covers 1 slice only: the model found the organ on no other slice; "
                "check the support outline and the organ's slice range"]
    return []
