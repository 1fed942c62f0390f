"""Blue phase: nuclei, and their split into normal and inflammatory-looking (hyperchromatic) ones.

Nuclei are the haematoxylin-dense objects of the image. Inflammatory cells (lymphocytes and the
like) have small, round, dark (hyperchromatic) nuclei and gather in clusters (lobular
inflammation foci, docs/nas.md); hepatocyte nuclei are larger, paler and round with a visible
nucleolus. :func:`classify_nuclei` applies that rule to any instance map, so the same decision
labels the labeller's own nuclei and real nucleus masks drawn by people (pseudo-labels for
training, :mod:`lobule.inference.liver.segdata`).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.measure import regionprops
from skimage.morphology import disk, opening, remove_small_holes, remove_small_objects
from skimage.segmentation import watershed

from lobule.inference.liver.labeller.settings import ColourPhaseSettings

NORMAL, INFLAMMATORY = 2, 3


def nuclear_stain(haematoxylin: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Optical density of everything that is not eosin: haematoxylin plus the residual channel.

    Nuclei are haematoxylin-dense in a textbook stain, but over- or differently developed stains
    turn them maroon or brown (several steatosis_isbi2019 tiles), which moves their density into
    the residual (DAB) channel of the Ruifrok-Johnston deconvolution. (H, W) float32.
    """
    return haematoxylin + residual


def _smoothed(stain: np.ndarray, mpp: float, settings: ColourPhaseSettings) -> np.ndarray:
    sigma = settings.nucleus_smoothing_um / mpp
    return ndi.gaussian_filter(stain, sigma) if sigma >= 0.3 else stain


def nuclear_threshold(stain: np.ndarray, tissue: np.ndarray, mpp: float,
                      settings: ColourPhaseSettings) -> float | None:
    """The nuclear-stain threshold of :func:`nucleus_instances` measured on one image: Otsu's
    threshold of the smoothed stain within the tissue, clipped to ``[nuclear_stain_min,
    nuclear_stain_max]``; None when the tissue holds too little to measure."""
    values = _smoothed(stain, mpp, settings)[tissue]
    if values.size < 16 or values.max() <= values.min():
        return None
    step = max(1, int(np.sqrt(values.size / 262144)))
    return float(np.clip(threshold_otsu(values[::step]), settings.nuclear_stain_min, settings.nuclear_stain_max))


def nucleus_instances(stain: np.ndarray, tissue: np.ndarray, mpp: float,
                      settings: ColourPhaseSettings, threshold: float | None = None) -> np.ndarray:
    """Nucleus instances: compact, nucleus-sized objects dense in nuclear stain.

    Parameters
    ----------
    stain : (H, W) float32 nuclear-stain optical density (:func:`nuclear_stain`).
    tissue : (H, W) bool; where nuclei may be (not white).
    mpp : micrometres per pixel.

    Returns
    -------
    (H, W) int32 instance labels (0 = no nucleus); touching nuclei split by a distance-transform
    watershed. The stain is thresholded (Otsu within the tissue, clipped to
    ``[nuclear_stain_min, nuclear_stain_max]``) and opened by a disc of
    ``nucleus_opening_um`` radius, which removes cell membranes and fibres thinner than a nucleus.
    ``threshold`` : a stain threshold to use instead (one measured for the whole slide, so that
    tiles of one slide agree: :func:`nuclear_threshold`).
    """
    smooth = _smoothed(stain, mpp, settings)
    if threshold is None:
        threshold = nuclear_threshold(stain, tissue, mpp, settings)
        if threshold is None:
            return np.zeros(stain.shape, dtype=np.int32)
    elif not tissue.any():
        return np.zeros(stain.shape, dtype=np.int32)
    mask = (smooth > threshold) & tissue
    mask = opening(mask, disk(max(1, int(round(settings.nucleus_opening_um / mpp)))))
    min_area = int(np.pi * (settings.nucleus_min_diameter_um / (2 * mpp)) ** 2)
    mask = remove_small_objects(mask, max_size=max(1, min_area))
    mask = remove_small_holes(mask, max_size=max(4, 4 * min_area))
    distance = ndi.distance_transform_edt(mask)
    components, _ = ndi.label(mask)
    min_distance = max(1, int(round(2.5 / mpp)))
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    instances = watershed(-distance, markers, mask=mask)
    orphans = mask & (instances == 0)
    if orphans.any():
        extra, _ = ndi.label(orphans)
        instances[orphans] = extra[orphans] + instances.max()
    return instances.astype(np.int32)


def darkness_cut(instances: np.ndarray, haematoxylin: np.ndarray, settings: ColourPhaseSettings) -> float | None:
    """The hyperchromasia cut of :func:`classify_nuclei` measured on one image (None without
    nuclei): the ``inflammatory_darkness_quantile`` of the nuclei's mean haematoxylin, at least
    ``inflammatory_min_darkness``."""
    regions = regionprops(np.asarray(instances).astype(np.int32), intensity_image=haematoxylin)
    if not regions:
        return None
    darkness = np.array([r.intensity_mean for r in regions], dtype=np.float64)
    return float(max(np.quantile(darkness, settings.inflammatory_darkness_quantile), settings.inflammatory_min_darkness))


def classify_nuclei(instances: np.ndarray, haematoxylin: np.ndarray, mpp: float,
                    settings: ColourPhaseSettings, dark_cut: float | None = None) -> np.ndarray:
    """Class (2 normal, 3 inflammatory) of every nucleus of an instance map.

    Parameters
    ----------
    instances : (H, W) integer instance labels, 0 = no nucleus (the labeller's own, or a real
        nucleus mask such as nuclei_miccai2015's ``nuclei.png``).
    haematoxylin : (H, W) float haematoxylin optical density.
    mpp : micrometres per pixel.

    Returns
    -------
    (max_id + 1,) uint8 lookup table: ``table[instances]`` is the class map (0 where no nucleus).

    A nucleus is inflammatory when it is hyperchromatic (mean haematoxylin above both the
    ``inflammatory_darkness_quantile`` of the image's nuclei and ``inflammatory_min_darkness``),
    small (equivalent diameter <= ``inflammatory_max_diameter_um``), and either round
    (solidity >= ``inflammatory_min_solidity``) or clustered (>= ``cluster_min_neighbours`` other
    nuclei centres within ``cluster_radius_um``). ``dark_cut`` : a darkness cut to use instead
    of the image's own (one measured for the whole slide: :func:`darkness_cut`).
    """
    instances = np.asarray(instances)
    table = np.zeros(int(instances.max()) + 1, dtype=np.uint8)
    regions = regionprops(instances.astype(np.int32), intensity_image=haematoxylin)
    if not regions:
        return table
    labels = np.array([r.label for r in regions])
    darkness = np.array([r.intensity_mean for r in regions], dtype=np.float64)
    diameter = np.array([r.equivalent_diameter_area for r in regions]) * mpp
    solidity = np.array([r.solidity for r in regions])
    centres = np.array([r.centroid for r in regions]) * mpp
    neighbours = np.array([len(n) - 1 for n in cKDTree(centres).query_ball_point(centres, settings.cluster_radius_um)])
    if dark_cut is None:
        dark_cut = max(np.quantile(darkness, settings.inflammatory_darkness_quantile), settings.inflammatory_min_darkness)
    dark = darkness >= dark_cut
    small = diameter <= settings.inflammatory_max_diameter_um
    round_ = solidity >= settings.inflammatory_min_solidity
    clustered = neighbours >= settings.cluster_min_neighbours
    inflammatory = dark & small & (round_ | clustered)
    table[labels] = np.where(inflammatory, INFLAMMATORY, NORMAL)
    return table
