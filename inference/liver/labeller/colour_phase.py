"""The classical colour-phase labeller: the seven liver classes without learning.

It follows the liver paper's own definition of the classes by H&E colour phase (the liver paper,
section 4.1; docs/models.md, section 1):

- white phase: lipid droplets (class 1: round, closed, surrounded by tissue) versus background /
  lumen (class 0);
- blue phase (haematoxylin): normal nuclei (2) versus hyperchromatic, small, round, clustered
  inflammatory-looking nuclei (3);
- red phase (eosin): parenchyma (4) versus pale, hydropic, ballooning-like areas (5);
- other colours (neither H nor E: brown / yellow pigment): heterochromatic regions (6).

Precedence where phases overlap: white, then nuclei, then off-colour, then the red phase.

Four decisions compare a pixel or a nucleus with a statistic of the image (the white threshold,
the nuclear-stain threshold, the hyperchromasia cut, the median tissue density). Labelled tile by
tile, each tile would measure its own, and a class could switch along a straight tile border. A
:class:`PhaseReference` measured once for a slide (:func:`measure_reference` on a mosaic of
sample tiles) and passed to every tile keeps the decisions the same across tiles.
Everywhere else in Lobule this engine is named ``classical`` (``--model classical``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import remove_small_objects

from lobule.inference.errors import InputError
from lobule.inference.liver.labeller.droplets import droplet_mask
from lobule.inference.liver.labeller.nuclei import (
    classify_nuclei,
    darkness_cut,
    nuclear_stain,
    nuclear_threshold,
    nucleus_instances,
)
from lobule.inference.liver.labeller.settings import ColourPhaseSettings
from lobule.inference.liver.labeller.stain import stain_phases

BACKGROUND, STEATOSIS, PARENCHYMA, HYDROPIC, HETEROCHROMATIC = 0, 1, 4, 5, 6


@dataclass(frozen=True)
class PhaseReference:
    """Image statistics the labeller's decisions compare with, measured once for a slide.

    Attributes (None: measure it on each image)
    ----------
    white_threshold : darkest-channel level (0-255) below which a pixel is not white.
    nuclear_threshold : nuclear-stain optical density above which a pixel may be nucleus.
    dark_cut : mean haematoxylin optical density from which a nucleus is hyperchromatic.
    tissue_density : median total optical density of the red-phase tissue (the pale areas'
        reference).
    """

    white_threshold: float | None = None
    nuclear_threshold: float | None = None
    dark_cut: float | None = None
    tissue_density: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _check_image(image: np.ndarray, mpp: float) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise InputError(f"the classical labeller needs an (H, W, 3) uint8 RGB image, not {image.shape} {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small to label")
    if not np.isfinite(mpp) or mpp <= 0:
        raise InputError(f"mpp must be a positive number of micrometres per pixel, not {mpp}")
    return np.ascontiguousarray(image[..., :3])


def pale_mask(density: np.ndarray, tissue: np.ndarray, mpp: float, settings: ColourPhaseSettings,
              reference: float | None = None) -> np.ndarray:
    """Pale (weakly stained) tissue areas of at least a hepatocyte's size.

    Parameters
    ----------
    density : (H, W) float total optical density.
    tissue : (H, W) bool, the red-phase pixels (tissue that is not nucleus or off-colour).
    reference : the tissue density to compare with (default: the median of ``density[tissue]``).

    Returns
    -------
    (H, W) bool; True where the smoothed density (normalised by the tissue fraction, so white
    neighbours do not pale the tissue) is below ``pale_ratio`` x the median tissue density.
    """
    if tissue.sum() < 16:
        return np.zeros(tissue.shape, dtype=bool)
    sigma = settings.pale_smoothing_um / mpp
    weight = ndi.gaussian_filter(tissue.astype(np.float32), sigma)
    smooth = ndi.gaussian_filter(np.where(tissue, density, 0).astype(np.float32), sigma)
    smooth = smooth / np.maximum(weight, 1e-3)
    if reference is None:
        reference = float(np.median(density[tissue]))
    pale = tissue & (smooth < settings.pale_ratio * reference)
    min_area = int(settings.hydropic_min_area_um2 / mpp**2)
    return remove_small_objects(pale, max_size=max(1, min_area))


def label_colour_phase(image: np.ndarray, mpp: float = 0.5, settings: ColourPhaseSettings | None = None,
                       reference: PhaseReference | None = None) -> np.ndarray:
    """Label an H&E image with the seven liver classes by colour phase and morphology.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB (an alpha channel is dropped), any size.
    mpp : micrometres per pixel of ``image`` (sizes in the settings are in um).
    settings : thresholds; :class:`ColourPhaseSettings` defaults when None.
    reference : slide statistics to decide with (:func:`measure_reference`); None measures them
        on ``image`` itself.

    Returns
    -------
    (H, W) uint8 class ids 0-6 (``lobule.resources.classes``).

    Raises
    ------
    InputError
        If the image is not (H, W, 3) uint8 or ``mpp`` is not positive.
    """
    return _label(image, mpp, settings or ColourPhaseSettings(), reference or PhaseReference())[0]


def measure_reference(image: np.ndarray, mpp: float = 0.5,
                      settings: ColourPhaseSettings | None = None) -> PhaseReference:
    """The statistics :func:`label_colour_phase` measures on ``image`` (e.g. a mosaic of tiles
    sampled over a slide's tissue), to label every tile of the slide with.

    Raises
    ------
    InputError
        As :func:`label_colour_phase`.
    """
    return _label(image, mpp, settings or ColourPhaseSettings(), PhaseReference())[1]


def _label(image: np.ndarray, mpp: float, settings: ColourPhaseSettings,
           reference: PhaseReference) -> tuple[np.ndarray, PhaseReference]:
    """(labels, the statistics used) of one image."""
    image = _check_image(image, mpp)
    phases = stain_phases(image, settings, reference.white_threshold)
    labels = np.full(image.shape[:2], PARENCHYMA, dtype=np.uint8)

    droplets = droplet_mask(phases.white, mpp, settings)
    lumen = phases.white & ~droplets
    lumen = remove_small_objects(lumen, max_size=max(1, int(settings.lumen_min_area_um2 / mpp**2)))
    labels[lumen] = BACKGROUND
    labels[droplets] = STEATOSIS
    tissue = ~(lumen | droplets)

    stain = nuclear_stain(phases.haematoxylin, phases.residual)
    threshold = reference.nuclear_threshold
    if threshold is None:
        threshold = nuclear_threshold(stain, tissue, mpp, settings)
    instances = (nucleus_instances(stain, tissue, mpp, settings, threshold) if threshold is not None
                 else np.zeros(stain.shape, np.int32))
    dark_cut = reference.dark_cut if reference.dark_cut is not None else darkness_cut(instances, stain, settings)
    table = classify_nuclei(instances, stain, mpp, settings, dark_cut)
    nuclei = instances > 0
    labels[nuclei] = table[instances[nuclei]]

    offcolour = tissue & ~nuclei & (phases.residual >= settings.offcolour_min_residual)
    offcolour &= phases.residual > np.maximum(phases.haematoxylin, phases.eosin)
    offcolour = remove_small_objects(offcolour, max_size=max(1, int(settings.offcolour_min_area_um2 / mpp**2)))
    labels[offcolour] = HETEROCHROMATIC

    red = tissue & ~offcolour & ~nuclei
    density = reference.tissue_density
    if density is None and red.sum() >= 16:
        density = float(np.median(phases.density[red]))
    labels[pale_mask(phases.density, red, mpp, settings, density)] = HYDROPIC
    return labels, PhaseReference(phases.white_threshold, threshold, dark_cut, density)
