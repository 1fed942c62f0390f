"""CNP area in pixels and, given a scale, in mm^2.

The scale is either the pixel size in micrometres (``um_per_px``; DICOM Pixel Spacing gives it)
or the camera's field of view in degrees across the image width (``fov_degrees``, e.g. 30 or 55
for Heidelberg lenses), converted with 288 um of retina per degree of visual angle (Drasdo &
Fowler 1974, Br J Ophthalmol 58:709, for the emmetropic schematic eye; axial length changes it).
The FFA images we have (ffa_nonperfusion) carry no scale, so mm^2 is only given when the user
provides one.
"""
from __future__ import annotations

import numpy as np

from lobule.inference.errors import InputError

UM_PER_DEGREE = 288.0


def pixel_size_um(width_px: int, um_per_px: float | None = None, fov_degrees: float | None = None) -> float | None:
    """Micrometres per pixel from ``um_per_px`` or from ``fov_degrees`` across ``width_px``.

    Returns None when neither is given.

    Raises
    ------
    InputError
        If both are given, or a value is not positive.
    """
    if um_per_px is not None and fov_degrees is not None:
        raise InputError("give either the pixel size (um/px) or the field of view (degrees), not both")
    if um_per_px is not None:
        if not um_per_px > 0:
            raise InputError(f"pixel size must be positive, got {um_per_px} um/px")
        return float(um_per_px)
    if fov_degrees is not None:
        if not 0 < fov_degrees <= 200:
            raise InputError(f"field of view must be between 0 and 200 degrees, got {fov_degrees}")
        return float(fov_degrees) * UM_PER_DEGREE / float(width_px)
    return None


def cnp_area(mask: np.ndarray, um_per_px: float | None = None, fov_degrees: float | None = None,
             field: np.ndarray | None = None) -> dict[str, float | int | None]:
    """Area of a CNP mask.

    Parameters
    ----------
    mask : (H, W) bool, True = CNP.
    um_per_px, fov_degrees : the scale (see :func:`pixel_size_um`), or neither.
    field : optional (H, W) bool field of view; gives ``cnp_fraction_of_field``.

    Returns
    -------
    dict: ``cnp_area_px`` (int), ``um_per_px`` and ``cnp_area_mm2`` (None without a scale),
    ``cnp_fraction_of_field`` (CNP pixels / field pixels, None without ``field``).
    """
    area_px = int(np.count_nonzero(mask))
    scale = pixel_size_um(mask.shape[1], um_per_px, fov_degrees)
    area_mm2 = None if scale is None else area_px * (scale / 1000.0) ** 2
    fraction = None
    if field is not None and field.any():
        fraction = float(np.count_nonzero(mask & field)) / float(np.count_nonzero(field))
    return {"cnp_area_px": area_px, "um_per_px": scale, "cnp_area_mm2": area_mm2, "cnp_fraction_of_field": fraction}
