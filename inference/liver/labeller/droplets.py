"""White phase: lipid droplets versus background / lumen, by shape and surroundings.

A lipid droplet (macro- or microvesicular steatosis) is a round, closed white hole surrounded by
tissue; lumens (sinusoids, vessels, bile ducts) and the empty space outside the tissue are white
too but large, irregular, open into each other, or reach the image border. A white blob that
fails as a whole may be several touching droplets: it is split by a watershed on its distance
transform with h-maxima markers (the classic separation of touching round objects; Soille,
"Morphological Image Analysis", 2003, ch. 9) and each piece is judged again.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import disk, h_maxima, opening, remove_small_holes
from skimage.segmentation import watershed

from lobule.inference.liver.labeller.settings import ColourPhaseSettings


def clean_white(white: np.ndarray, mpp: float) -> np.ndarray:
    """Open the white mask by a 0.5 um disc (cuts hair-thin white bridges) and fill specks of
    less than a 1 um-radius disc inside white areas. (H, W) bool -> (H, W) bool."""
    cleaned = opening(white, disk(max(1, int(round(0.5 / mpp)))))
    return remove_small_holes(cleaned, max_size=max(4, int(np.pi * (1.0 / mpp) ** 2)))


def split_pieces(cleaned: np.ndarray, mpp: float, settings: ColourPhaseSettings) -> np.ndarray:
    """Watershed pieces of the white mask, one per h-maximum of the distance transform.

    Parameters
    ----------
    cleaned : (H, W) bool white mask (:func:`clean_white`).
    mpp : micrometres per pixel.

    Returns
    -------
    (H, W) int32 piece labels (0 outside white); a maximum must rise ``droplet_split_um`` above
    the saddle to its neighbour to start its own piece.
    """
    distance = ndi.distance_transform_edt(cleaned)
    markers, _ = ndi.label(h_maxima(distance, settings.droplet_split_um / mpp))
    pieces = watershed(-distance, markers, mask=cleaned)
    orphans = cleaned & (pieces == 0)  # slivers without a maximum stay one piece each
    if orphans.any():
        extra, _ = ndi.label(orphans)
        pieces[orphans] = extra[orphans] + pieces.max()
    return pieces.astype(np.int32)


class _Judge:
    """Applies the droplet criteria of :func:`droplet_mask` to regions of one label image."""

    def __init__(self, white: np.ndarray, mpp: float, settings: ColourPhaseSettings) -> None:
        self.white = white
        self.settings = settings
        self.min_area = np.pi * (settings.droplet_min_diameter_um / (2 * mpp)) ** 2
        self.max_area = np.pi * (settings.droplet_max_diameter_um / (2 * mpp)) ** 2
        self.ring_px = max(1, int(round(1.5 / mpp)))

    def accepted(self, labels: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        """(max_label + 1,) bool: which regions of ``labels`` are droplets; only regions where
        ``candidates[label]`` is True are judged (all when None)."""
        height, width = labels.shape
        areas = np.bincount(labels.ravel())
        droplet_sized = areas <= self.max_area
        droplet_sized[0] = False
        result = np.zeros(len(areas), dtype=bool)
        s = self.settings
        for region in regionprops(labels):
            if candidates is not None and not candidates[region.label]:
                continue
            if not self.min_area <= region.area <= self.max_area:
                continue
            r0, c0, r1, c1 = region.bbox
            if r0 == 0 or c0 == 0 or r1 == height or c1 == width:
                # a cut outline: its perimeter says nothing; ask for a more convex piece whose cut is
                # no longer than a disc's cut through its centre (1.5 x the equivalent diameter)
                rows, cols = region.coords[:, 0], region.coords[:, 1]
                contact = np.count_nonzero((rows == 0) | (rows == height - 1) | (cols == 0) | (cols == width - 1))
                if (region.solidity < s.droplet_border_min_solidity
                        or contact > 1.5 * region.equivalent_diameter_area):
                    continue
            else:
                circularity = min(1.0, 4 * np.pi * region.area / max(region.perimeter, 1e-6) ** 2)
                if region.solidity < s.droplet_min_solidity or circularity < s.droplet_min_circularity:
                    continue
            p = self.ring_px
            rr0, cc0, rr1, cc1 = max(0, r0 - p), max(0, c0 - p), min(height, r1 + p), min(width, c1 + p)
            local = labels[rr0:rr1, cc0:cc1]
            own = local == region.label
            ring = ndi.binary_dilation(own, iterations=p) & ~own
            if not ring.any():
                continue
            neighbours = local[ring]
            closed = (neighbours == 0) & ~self.white[rr0:rr1, cc0:cc1][ring]
            closed |= (neighbours != 0) & droplet_sized[neighbours]
            result[region.label] = closed.mean() >= s.droplet_min_tissue_ring
        return result


def droplet_mask(white: np.ndarray, mpp: float, settings: ColourPhaseSettings) -> np.ndarray:
    """Lipid-droplet pixels among the white ones.

    Parameters
    ----------
    white : (H, W) bool white-phase mask.
    mpp : micrometres per pixel.
    settings : ``droplet_*`` thresholds.

    Returns
    -------
    (H, W) bool; True on accepted droplets.

    A white region is a droplet when its equivalent diameter is within
    ``[droplet_min_diameter_um, droplet_max_diameter_um]``, its solidity and circularity reach the
    settings' minima (a region cut by the image border: solidity >= ``droplet_border_min_solidity``
    and a cut at most 1.5 x its equivalent diameter long, as a disc cut through its centre), and at least ``droplet_min_tissue_ring`` of a 1.5 um ring around it is tissue or
    another droplet-sized piece. Connected white regions are judged whole first; the ones that
    fail are split (:func:`split_pieces`) and their pieces judged.
    """
    cleaned = clean_white(white, mpp)
    judge = _Judge(white, mpp, settings)
    components, _ = ndi.label(cleaned)
    whole = judge.accepted(components)
    mask = whole[components]
    rest = cleaned & ~mask
    if rest.any():
        pieces = split_pieces(rest, mpp, settings)
        mask |= judge.accepted(pieces)[pieces]
    return mask
