"""Per-slide quality control: does this slide look like what the liver model learned from?

A class map is only as good as the match between the slide and the training data. Three checks,
each on up to :data:`SAMPLE_WINDOWS` windows of tissue read at the class map's resolution:

- stain: the H&E stain vectors of the slide, estimated by Macenko's method (Macenko et al., "A
  method for normalizing histology slides for quantitative analysis", ISBI 2009: optical density,
  pixels with OD >= 0.15, the plane of the two largest eigenvectors, the 1st and 99th percentile
  angles in it), against reference vectors measured on the real liver training tiles; the larger
  of the two angles (degrees) is the distance;
- white phase: the model's lipid-droplet pixels against the classical colour-phase labeller's
  (Dice); strong disagreement where the labeller sees many droplets means the model is guessing;
- tissue mix: the share of the tissue in hepatocyte classes (steatosis, parenchyma, hydropic);
  liver parenchyma is mostly hepatocytes, and a map that puts most tissue elsewhere (nuclei,
  off-colour) says the tissue or stain is unlike the training data.

The thresholds (:data:`THRESHOLDS`) were set on held-out real liver tiles (Polito, ISBI,
DELINEATE) and on slides that are not H&E liver (the bundled skin demo slide, a fluorescence
scan); the model card of liver-hne gives the measured values.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from lobule.resources.classes import HYDROPIC, PARENCHYMA, STEATOSIS

#: Macenko H and E unit vectors (optical density, RGB order) of the real liver training tiles
#: (median over the 368 steatosis_polito, steatosis_isbi2019 and steatosis_delineate training tiles,
#: whose own angles to it are at most 28.4 degrees, median 4.9; a fluorescence scan stored as RGB
#: measures 55 degrees)
REFERENCE_STAINS = np.array([[0.52, 0.74, 0.43], [0.22, 0.83, 0.51]])

THRESHOLDS = {
    "stain_angle_deg": 30.0,
    "white_phase_dice": 0.25,
    "white_phase_min_share": 0.01,
    "hepatocyte_share": 0.40,
}
SAMPLE_WINDOWS = 6
WINDOW = 512


def macenko_stains(rgb: np.ndarray, beta: float = 0.15, alpha: float = 1.0) -> np.ndarray | None:
    """Macenko H&E stain vectors of RGB pixels.

    Parameters
    ----------
    rgb : (..., 3) uint8 RGB pixels (any shape; tissue pixels, background is dropped by ``beta``).
    beta : optical-density floor (pixels below it in any channel are transparent).
    alpha : percentile (and 100 - alpha) of the angles that give the two extreme stains.

    Returns
    -------
    (2, 3) float unit vectors (haematoxylin first: the one with more red optical density), or
    None when fewer than 100 pixels are stained.
    """
    od = -np.log((rgb.reshape(-1, 3).astype(np.float64) + 1.0) / 256.0)
    od = od[(od > beta).all(axis=1)]
    if len(od) < 100:
        return None
    _, vectors = np.linalg.eigh(np.cov(od.T))
    plane = vectors[:, 1:3]
    projected = od @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, [alpha, 100 - alpha])
    stains = np.stack([plane @ np.array([np.cos(a), np.sin(a)]) for a in (low, high)])
    stains *= np.sign(stains.sum(axis=1, keepdims=True))  # optical density is positive
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    if stains[0, 0] < stains[1, 0]:
        stains = stains[::-1]
    return stains


def stain_angle(stains: np.ndarray, reference: np.ndarray = REFERENCE_STAINS) -> float:
    """Largest angle (degrees) between each stain vector and its reference. (2, 3) -> float."""
    cosines = np.clip(np.sum(stains * reference, axis=1) /
                      (np.linalg.norm(stains, axis=1) * np.linalg.norm(reference, axis=1)), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def assess(rgb_windows: list[np.ndarray], label_windows: list[np.ndarray], mpp: float,
           class_pixels: np.ndarray | None = None) -> dict[str, Any]:
    """The quality block of a slide's summary.

    Parameters
    ----------
    rgb_windows : (h, w, 3) uint8 RGB windows of tissue at the class map's resolution.
    label_windows : the class maps of the same windows ((h, w) uint8 class ids).
    mpp : micrometres per pixel of the windows.
    class_pixels : (>= 7,) pixel count of each class over the analysed tissue (default: from the
        windows).

    Returns
    -------
    dict: ``ok`` (no flag raised), ``flags`` (list of {``key``, ``message``}: plain-language
    sentences), ``measures`` (stain angle in degrees and the estimated vectors, white-phase Dice
    and the labeller's droplet share, hepatocyte share), ``thresholds``.
    """
    from lobule.inference.liver.labeller import label_colour_phase

    measures: dict[str, Any] = {}
    flags: list[dict[str, str]] = []
    if rgb_windows:
        stains = macenko_stains(np.concatenate([w.reshape(-1, 3) for w in rgb_windows]))
        if stains is not None:
            measures["stain_vectors"] = np.round(stains, 3).tolist()
            measures["stain_angle_deg"] = round(stain_angle(stains), 1)
        model_lipid = classical_lipid = both = 0
        pixels = 0
        for rgb, labels in zip(rgb_windows, label_windows):
            classical = label_colour_phase(rgb, mpp)
            a, b = labels == STEATOSIS, classical == STEATOSIS
            model_lipid, classical_lipid = model_lipid + int(a.sum()), classical_lipid + int(b.sum())
            both += int((a & b).sum())
            pixels += labels.size
        measures["white_phase_labeller_share"] = round(classical_lipid / max(pixels, 1), 4)
        total = model_lipid + classical_lipid
        measures["white_phase_dice"] = round(2 * both / total, 3) if total else None
    if class_pixels is None and label_windows:
        class_pixels = np.bincount(np.concatenate([w.ravel() for w in label_windows]), minlength=7)
    if class_pixels is not None:
        tissue = float(np.sum(class_pixels[1:7]))
        if tissue > 0:
            measures["hepatocyte_share"] = round(float(class_pixels[STEATOSIS] + class_pixels[PARENCHYMA] +
                                                       class_pixels[HYDROPIC]) / tissue, 3)
    t = THRESHOLDS
    angle = measures.get("stain_angle_deg")
    if angle is not None and angle > t["stain_angle_deg"]:
        flags.append({"key": "stain", "message": f"the stain is unlike the liver H&E the model learned from "
                      f"(stain vectors {angle:.0f} degrees from the training stain; above {t['stain_angle_deg']:.0f} "
                      "is flagged): check that this is an H&E slide"})
    dice = measures.get("white_phase_dice")
    if (dice is not None and dice < t["white_phase_dice"]
            and measures.get("white_phase_labeller_share", 0) >= t["white_phase_min_share"]):
        flags.append({"key": "white_phase", "message": f"the model and the colour-phase labeller disagree on the "
                      f"lipid droplets (Dice {dice:.2f}, below {t['white_phase_dice']:.2f}): the steatosis numbers "
                      "may be wrong; look at the overlay"})
    share = measures.get("hepatocyte_share")
    if share is not None and share < t["hepatocyte_share"]:
        flags.append({"key": "tissue_mix", "message": f"only {100 * share:.0f} % of the tissue is in hepatocyte "
                      f"classes (liver is mostly hepatocytes; below {100 * t['hepatocyte_share']:.0f} % is "
                      "flagged): this may not be liver, or not tissue the model knows; the grades are not reliable"})
    return {"ok": not flags, "flags": flags, "measures": measures, "thresholds": dict(THRESHOLDS),
            "method": "Macenko stain vectors vs training reference; model vs colour-phase labeller on lipid "
                      "droplets; share of tissue in hepatocyte classes"}


def sample_windows(slide, store, count: int = SAMPLE_WINDOWS, size: int = WINDOW) -> tuple[list, list]:
    """Up to ``count`` windows of ``size`` label pixels with the most tissue, spread over the slide.

    Returns
    -------
    (rgb windows, label windows): (h, w, 3) uint8 RGB read from the slide and resampled to the
    class map's resolution, and the (h, w) uint8 class maps.
    """
    import cv2

    height, width = store.shape
    step = size
    candidates = []
    for y in range(0, max(height - size, 0) + 1, step):
        for x in range(0, max(width - size, 0) + 1, step):
            w, h = min(size, width - x), min(size, height - y)
            labels = store.read_labels((x, y, w, h))
            candidates.append((int(np.count_nonzero(labels)), x, y, w, h, labels))
    candidates.sort(key=lambda c: -c[0])
    rgb_windows, label_windows = [], []
    scale = store.scale
    for filled, x, y, w, h, labels in candidates[:count]:
        if filled == 0:
            break
        level = slide.best_level_for_downsample(scale)
        ds = slide.level_downsamples[level]
        size_level = (max(1, math.ceil(w * scale / ds)), max(1, math.ceil(h * scale / ds)))
        rgb = slide.read_region((int(round(x * scale)), int(round(y * scale))), level, size_level)
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        rgb_windows.append(np.ascontiguousarray(rgb[..., :3]))
        label_windows.append(labels)
    return rgb_windows, label_windows


def slide_quality(slide, store, class_pixels: np.ndarray | None = None) -> dict[str, Any]:
    """:func:`assess` on :func:`sample_windows` of a slide and its class map."""
    rgb_windows, label_windows = sample_windows(slide, store)
    return assess(rgb_windows, label_windows, store.mpp, class_pixels)


def describe(quality: dict[str, Any]) -> str:
    """One line for the CLI / GUI: ``quality: ok`` or ``quality: CHECK - message; message``."""
    if quality.get("ok"):
        return "quality: ok (stain, lipid droplets and tissue mix look like the training data)"
    return "quality: CHECK - " + "; ".join(flag["message"] for flag in quality.get("flags", []))
