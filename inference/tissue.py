"""Tissue detection on a low-resolution image of the slide, so that analysis skips glass.

Method (the usual WSI recipe, e.g. TIAToolbox's ``OtsuTissueMasker`` and HistoQC's
"tissue" step): per pixel, the optical density OD = -log10((I + 1) / 256) summed over RGB
(Beer-Lambert: stain absorbs light) and the HSV saturation; Otsu's threshold on each picks
"stained" pixels, with floors (``min_od``, ``min_saturation``) so that a blank slide, whose
Otsu threshold would split camera noise, yields no tissue. Then morphological closing and
opening (radii in um), holes smaller than ``max_hole_area_um2`` filled (lipid droplets and
vessels are tissue), objects smaller than ``min_area_um2`` removed, and the mask dilated by
``margin_um`` so that tissue edges are never clipped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import cv2
import numpy as np

from lobule.inference.errors import InputError


@dataclass(frozen=True)
class TissueSettings:
    """Settings of :func:`detect_tissue` (all lengths in um, areas in um^2).

    Attributes
    ----------
    mpp : resolution the mask is computed at (um per mask pixel); 4 um/px is about 2.5x.
    min_od : OD floor (sum over RGB) below which a pixel is glass whatever Otsu says.
    min_saturation : HSV saturation floor (0-255 scale), same role.
    closing_um, opening_um : radii of the morphological closing (joins fragments) and opening
        (removes dust specks).
    min_area_um2 : tissue pieces smaller than this are dropped (default 0.005 mm^2).
    max_hole_area_um2 : holes inside tissue smaller than this are filled (default 0.1 mm^2).
    margin_um : dilation of the final mask.
    max_side : the mask's longest side in pixels at most (``mpp`` is coarsened for larger
        slides), which bounds memory.
    """

    mpp: float = 4.0
    min_od: float = 0.12
    min_saturation: float = 18.0
    closing_um: float = 16.0
    opening_um: float = 4.0
    min_area_um2: float = 5_000.0
    max_hole_area_um2: float = 100_000.0
    margin_um: float = 24.0
    max_side: int = 4096

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise InputError(f"tissue setting {name} must be a finite number >= 0, got {value!r}")
        if self.mpp <= 0 or self.max_side < 64:
            raise InputError(f"tissue settings need mpp > 0 and max_side >= 64, got {self.mpp!r}, {self.max_side!r}")


@dataclass(frozen=True)
class TissueMask:
    """A binary tissue mask over the whole slide.

    Attributes
    ----------
    mask : (H, W) bool, True on tissue; pixel (i, j) covers level-0 pixels
        [j * downsample, (j + 1) * downsample) x [i * downsample, ...).
    downsample : level-0 pixels per mask pixel (same in x and y).
    mpp : um per mask pixel.
    settings : the settings it was made with.
    slide_size : level-0 (width, height) of the slide; the outline is clipped to it.
    """

    mask: np.ndarray
    downsample: float
    mpp: float
    settings: TissueSettings
    slide_size: tuple[int, int] | None = None

    @property
    def kept_fraction(self) -> float:
        """Share of the slide area that is tissue (0-1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def area_um2(self) -> float:
        """Tissue-mask area in um^2 (coarse: use class-map counts for measurements)."""
        return float(self.mask.sum()) * self.mpp * self.mpp

    def is_empty(self) -> bool:
        return not bool(self.mask.any())

    def covers(self, box: tuple[float, float, float, float]) -> bool:
        """True when the level-0 box (x0, y0, x1, y1) overlaps tissue."""
        x0, y0, x1, y1 = (v / self.downsample for v in box)
        h, w = self.mask.shape
        i0, j0 = max(0, int(np.floor(y0))), max(0, int(np.floor(x0)))
        i1, j1 = min(h, int(np.ceil(y1))), min(w, int(np.ceil(x1)))
        return i1 > i0 and j1 > j0 and bool(self.mask[i0:i1, j0:j1].any())

    def geometry(self):
        """The mask as a valid shapely (Multi)Polygon in level-0 pixels, holes kept (computed
        once); an empty Polygon when there is no tissue. See
        :func:`~lobule.inference.regions.mask_to_geometry` for the outline rule."""
        return self._outline

    @cached_property
    def _outline(self):
        from shapely.geometry import box

        from lobule.inference.regions import as_area, mask_to_geometry

        outline = mask_to_geometry(self.mask, scale=self.downsample)
        if self.slide_size is not None and not outline.is_empty:
            outline = as_area(outline.intersection(box(0, 0, *self.slide_size)))
        return outline

    def overlay_rgba(self, colour: tuple[int, int, int] = (0, 160, 255), alpha: int = 90) -> np.ndarray:
        """(H, W, 4) uint8 RGBA image: ``colour`` at ``alpha`` on tissue, transparent elsewhere."""
        rgba = np.zeros((*self.mask.shape, 4), np.uint8)
        rgba[self.mask] = (*colour, alpha)
        return rgba


def tissue_mask_from_rgb(rgb: np.ndarray, mpp: float, settings: TissueSettings | None = None,
                         downsample: float = 1.0) -> TissueMask:
    """Detect tissue on an (H, W, 3) uint8 RGB image whose pixels are ``mpp`` um wide.

    ``downsample`` is recorded in the result (level-0 px per pixel of ``rgb``).
    """
    settings = settings or TissueSettings()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    od = _OD_LUT[rgb[..., 0]] + _OD_LUT[rgb[..., 1]] + _OD_LUT[rgb[..., 2]]
    saturation = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32)
    stained = (od >= max(settings.min_od, _otsu(od))) | (
        saturation >= max(settings.min_saturation, _otsu(saturation))
    )
    mask = _clean(stained, mpp, settings)
    return TissueMask(mask=mask, downsample=float(downsample), mpp=float(mpp), settings=settings)


def detect_tissue(slide, settings: TissueSettings | None = None) -> TissueMask:
    """Tissue mask of a slide, computed at about ``settings.mpp`` um/px (coarser for slides
    whose long side would exceed ``settings.max_side`` mask pixels, so memory stays bounded).

    Parameters
    ----------
    slide : a :class:`~lobule.inference.slide.base.SlideReader` with known mpp.

    Raises
    ------
    MissingMppError
        If the slide has no mpp (the mask's morphology is in um).
    """
    from lobule.inference.errors import MissingMppError

    settings = settings or TissueSettings()
    if slide.mpp is None:
        raise MissingMppError(f"{slide.path.name} does not state its pixel size; give it with --mpp")
    mpp0 = float(np.mean(slide.mpp))
    width, height = slide.dimensions
    mask_mpp = max(settings.mpp, max(width, height) * mpp0 / settings.max_side)
    downsample = max(1.0, mask_mpp / mpp0)
    out_w, out_h = max(1, int(np.ceil(width / downsample))), max(1, int(np.ceil(height / downsample)))
    level = slide.best_level_for_downsample(downsample)
    ds_level = slide.level_downsamples[level]
    factor = downsample / ds_level  # level pixels per mask pixel
    image = np.empty((out_h, out_w, 3), np.uint8)
    read_w = max(1, round(out_w * factor))
    for y in range(0, out_h, _STRIP):  # strips: the whole level is never held in memory
        rows = min(_STRIP, out_h - y)
        top, bottom = round(y * factor), max(round(y * factor) + 1, round((y + rows) * factor))
        strip = slide.read_region((0, round(top * ds_level)), level, (read_w, bottom - top))
        image[y : y + rows] = cv2.resize(strip, (out_w, rows), interpolation=cv2.INTER_AREA)
    tissue = tissue_mask_from_rgb(image, mpp0 * downsample, settings, downsample=downsample)
    return TissueMask(tissue.mask, tissue.downsample, tissue.mpp, settings, tuple(slide.dimensions))


_STRIP = 256
_OD_LUT = (-np.log10((np.arange(256, dtype=np.float32) + 1.0) / 256.0)).astype(np.float32)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of a float image (256-bin histogram); +inf for a constant image."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-6:
        return float("inf")
    scaled = ((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    threshold, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return lo + (threshold + 1) * (hi - lo) / 255.0


def _disk(radius_px: float) -> np.ndarray:
    r = max(0, int(round(radius_px)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _clean(stained: np.ndarray, mpp: float, s: TissueSettings) -> np.ndarray:
    mask = stained.astype(np.uint8)
    if s.closing_um > 0:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disk(s.closing_um / mpp))
    if s.opening_um > 0:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disk(s.opening_um / mpp))
    px_area = mpp * mpp
    # fill small holes: background components not touching the border and smaller than the limit
    inverse = (1 - mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inverse, connectivity=4)
    if n > 1:
        h, w = mask.shape
        x, y, bw, bh, area = (stats[:, k] for k in range(5))
        touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
        fill = (~touches) & (area * px_area < s.max_hole_area_um2)
        fill[0] = False
        mask[fill[labels]] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n > 1:
        keep = stats[:, cv2.CC_STAT_AREA] * px_area >= s.min_area_um2
        keep[0] = False
        mask = keep[labels].astype(np.uint8)
    if s.margin_um > 0 and mask.any():
        mask = cv2.dilate(mask, _disk(s.margin_um / mpp))
    return mask.astype(bool)
