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
# Plausible scales of a fundus image. Field of view: narrow-field lenses are 15-30 degrees,
# ultra-widefield scanners about 200 degrees; below 5 degrees a photo shows less than the optic
# disc. Pixel size: 0.5 um/px is beyond any fundus camera's optics (retinal capillaries are
# about 5 um wide), 100 um/px would put a whole 45-degree field in 130 px.
FOV_DEGREES_RANGE = (5.0, 200.0)
UM_PER_PX_RANGE = (0.5, 100.0)


def check_scale(um_per_px: float | None = None, fov_degrees: float | None = None) -> None:
    """Check a user-given scale before any work (see :data:`FOV_DEGREES_RANGE`, :data:`UM_PER_PX_RANGE`).

    Raises
    ------
    InputError
        If both are given, or one is not finite or outside its plausible range.
    """
    if um_per_px is not None and fov_degrees is not None:
        raise InputError("give either the pixel size (um/px) or the field of view (degrees), not both")
    if um_per_px is not None:
        low, high = UM_PER_PX_RANGE
        if not low <= um_per_px <= high:  # also False for NaN
            raise InputError(f"pixel size must be between {low:g} and {high:g} um/px for a fundus image, got {um_per_px:g}")
    if fov_degrees is not None:
        low, high = FOV_DEGREES_RANGE
        if not low <= fov_degrees <= high:
            raise InputError(f"field of view must be between {low:g} and {high:g} degrees, got {fov_degrees:g}")


def pixel_size_um(width_px: int, um_per_px: float | None = None, fov_degrees: float | None = None) -> float | None:
    """Micrometres per pixel from ``um_per_px`` or from ``fov_degrees`` across ``width_px``.

    Returns None when neither is given.

    Raises
    ------
    InputError
        If both are given, or a value is outside its plausible range (:func:`check_scale`).
    """
    check_scale(um_per_px, fov_degrees)
    if um_per_px is not None:
        return float(um_per_px)
    if fov_degrees is not None:
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
