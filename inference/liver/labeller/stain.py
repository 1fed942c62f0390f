"""H&E colour phases of an RGB image: white, haematoxylin (blue), eosin (red), residual (other).

Colour deconvolution after Ruifrok & Johnston, "Quantification of histochemical staining by
color deconvolution", Anal. Quant. Cytol. Histol. 23 (2001), through scikit-image's ``rgb2hed``
(its stain matrix is the paper's H, E, DAB vectors; the third, DAB, channel here measures the
colour that is neither haematoxylin nor eosin).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.color import rgb2hed
from skimage.filters import apply_hysteresis_threshold

from lobule.inference.liver.labeller.settings import ColourPhaseSettings


@dataclass(frozen=True)
class StainPhases:
    """Per-pixel colour phases of one image (all arrays (H, W)).

    Attributes
    ----------
    white : bool; bright and untinted (glass, lumen, lipid droplets).
    haematoxylin, eosin, residual : float32 optical densities from ``rgb2hed`` (>= 0).
    density : float32 total optical density, -log10 of the mean RGB transmission; 0 for glass.
    white_threshold : the darkest-channel threshold used for ``white`` (0-255).
    """

    white: np.ndarray
    haematoxylin: np.ndarray
    eosin: np.ndarray
    residual: np.ndarray
    density: np.ndarray
    white_threshold: float


def white_threshold(darkest: np.ndarray, settings: ColourPhaseSettings) -> float:
    """Threshold of the darkest RGB channel that separates white (glass, lumen, droplets) from tissue.

    Glass and lipid droplets form one narrow peak of the darkest-channel histogram (near 200-230
    on the tiles we have), while stained tissue spreads over a long tail below it, which defeats
    Otsu's method. The threshold is the foot of the white peak: the highest level below the peak
    where the (5-level smoothed) histogram drops under ``white_peak_fraction`` of the peak height,
    clipped to ``[white_min, white_max]``. Without a white peak (under 0.5 % of the pixels in
    it) the threshold is ``white_max``.

    Parameters
    ----------
    darkest : (H, W) uint8, ``image.min(axis=2)``.
    """
    histogram = np.bincount(darkest.ravel(), minlength=256).astype(np.float64)
    smooth = np.convolve(histogram, np.ones(5) / 5, mode="same")
    low = int(settings.white_min)
    peak = low + int(np.argmax(smooth[low:]))
    if histogram[max(0, peak - 5):peak + 6].sum() < 0.005 * darkest.size:
        return float(settings.white_max)
    below = np.nonzero(smooth[:peak] < settings.white_peak_fraction * smooth[peak])[0]
    foot = int(below[-1]) + 1 if below.size else low
    return float(np.clip(foot, settings.white_min, settings.white_max))


def stain_phases(image: np.ndarray, settings: ColourPhaseSettings, threshold: float | None = None) -> StainPhases:
    """Split an RGB image into its H&E colour phases.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    settings : thresholds (``white_*``).
    threshold : the white threshold to use (e.g. one measured for the whole slide); None
        measures it on this image (:func:`white_threshold`).

    Returns
    -------
    StainPhases
    """
    darkest = image.min(axis=2)
    chroma = image.max(axis=2).astype(np.int16) - darkest
    if threshold is None:
        threshold = white_threshold(darkest, settings)
    # hysteresis: white areas start where the image is clearly white and extend over their
    # greyer rims (out-of-focus droplet edges) down to ``white_hysteresis`` levels lower
    untinted = np.where(chroma <= settings.white_max_chroma, darkest, 0)
    white = apply_hysteresis_threshold(untinted, threshold - settings.white_hysteresis - 0.5, threshold - 0.5)
    hed = rgb2hed(image).astype(np.float32)
    np.clip(hed, 0, None, out=hed)
    transmission = np.maximum(image.astype(np.float32).mean(axis=2), 1.0) / 255.0
    density = -np.log10(transmission).astype(np.float32)
    return StainPhases(white, hed[..., 0], hed[..., 1], hed[..., 2], density, threshold)
