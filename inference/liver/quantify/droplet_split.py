"""Separate touching lipid droplets before they are counted.

Two vacuoles that touch form one connected component of the lipid-droplet class; counted as
components they would be one droplet, and one too large (a false macrovesicular droplet). The
classic separation of touching round objects is a watershed on the distance transform, one
basin per regional maximum of the distance that stands at least ``h`` above its saddle
(h-maxima markers; Soille, "Morphological Image Analysis", 2003, ch. 9). Pixels where two
basins meet are cleared, so an 8-connected labelling of the result gives one component per
droplet and the cut is at most two pixels wide (area measures use the class pixel counts, not
the components, so steatosis percentages do not change).

A maximum is an 8-connected plateau (the reconstruction behind h-maxima uses the 3 x 3
neighbourhood), so markers are labelled 8-connected: a small droplet whose top is two diagonal
pixels of equal height is one droplet (labelled 4-connected it became two, and counts rose:
on the Polito validation tiles the count error fell from 13.9 to 13.1 per tile with this, on the
ISBI training tiles from 53.0 to 47.7).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: height (um) a distance-transform maximum must stand above its saddle to start its own droplet
DEFAULT_H_UM = 1.0
_EIGHT = np.ones((3, 3), bool)


def droplet_pieces(mask: np.ndarray, mpp: float, h_um: float = DEFAULT_H_UM) -> tuple[np.ndarray, int]:
    """Partition a lipid-droplet mask into droplets: one watershed basin of the distance transform
    per h-maximum (module docstring); a component without such a maximum is one piece.

    Parameters
    ----------
    mask : (H, W) bool lipid-droplet pixels. mpp : micrometres per pixel. h_um : marker height (um).

    Returns
    -------
    ((H, W) int32 piece ids, 0 outside ``mask``, every mask pixel in exactly one piece; the piece
    count).

    Raises
    ------
    ValueError
        If ``mask`` is not 2-D or ``mpp`` is not positive.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if not np.isfinite(mpp) or mpp <= 0:
        raise ValueError(f"mpp must be positive, not {mpp}")
    pieces = np.zeros(mask.shape, np.int32)
    if not mask.any():
        return pieces, 0
    h = max(1.0, h_um / mpp)
    distance = ndi.distance_transform_edt(mask)
    components, n = ndi.label(mask, structure=_EIGHT)
    peaks = ndi.maximum(distance, components, np.arange(1, n + 1))
    count = 0
    # Component by component, on its bounding box: the same maxima as on the whole window
    # (components touch only through background, where the distance is 0) and the same basins
    # up to how the watershed breaks ties (0.08 % of the cut pixels moved on 84 real masks),
    # without sorting every pixel of the window; a component whose distance never reaches h + 1 cannot
    # hold two maxima standing h above a saddle (>= 1 inside the mask): it is one piece.
    for index, box in enumerate(ndi.find_objects(components)):
        own = components[box] == index + 1
        if peaks[index] < h + 1:
            count += 1
            pieces[box][own] = count
            continue
        local = np.where(own, distance[box], 0.0)
        markers, found = ndi.label(h_maxima(local, h), structure=_EIGHT)
        basins = watershed(-local, markers, mask=own) if found else np.zeros(own.shape, np.int32)
        rest = own & (basins == 0)  # parts too shallow for a marker (or cut off diagonally)
        if rest.any():
            extra, more = ndi.label(rest, structure=_EIGHT)
            basins = np.where(rest, extra + found, basins)
            found += more
        pieces[box][own] = basins[own] + count
        count += found
    return pieces, count


def split_touching(mask: np.ndarray, mpp: float, h_um: float = DEFAULT_H_UM) -> np.ndarray:
    """Cut touching droplets apart: :func:`droplet_pieces` without the pixels where two pieces
    meet.

    Parameters
    ----------
    mask : (H, W) bool lipid-droplet pixels.
    mpp : micrometres per pixel of ``mask``.
    h_um : marker height in micrometres (see the module docstring).

    Returns
    -------
    (H, W) bool: ``mask`` without the pixels on the watershed lines between droplets.

    Raises
    ------
    ValueError
        If ``mask`` is not 2-D or ``mpp`` is not positive.
    """
    mask = np.asarray(mask, dtype=bool)
    pieces, count = droplet_pieces(mask, mpp, h_um)
    if count <= 1:
        return mask.copy()
    return mask & ~piece_borders(pieces, count)


def piece_borders(pieces: np.ndarray, count: int) -> np.ndarray:
    """(H, W) bool: pixels of a piece with a pixel of another piece among their 8 neighbours."""
    highest = ndi.maximum_filter(pieces, size=3)
    lowest = ndi.minimum_filter(np.where(pieces == 0, count + 1, pieces), size=3)
    return (pieces > 0) & ((highest > pieces) | (lowest < pieces))


def count_droplets(mask: np.ndarray, mpp: float, min_diameter_um: float = 1.0, h_um: float = DEFAULT_H_UM) -> int:
    """Number of droplets in a lipid-droplet mask after :func:`split_touching`: 8-connected
    components whose equivalent diameter (measured after the cut) is at
    least ``min_diameter_um``. (H, W) bool -> int."""
    import cv2

    split = split_touching(mask, mpp, h_um)
    n, _, stats, _ = cv2.connectedComponentsWithStats(split.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    diameters = 2.0 * np.sqrt(stats[1:, cv2.CC_STAT_AREA] * mpp * mpp / np.pi)
    return int(np.count_nonzero(diameters >= min_diameter_um))
