"""Quantification of one region of a class map (docs/nas.md, "What Lobule measures").

The map is read window by window (whole chunks of the label store, about 2048 px wide); each
window is masked by the region (pixel centres inside the geometry), class pixels are counted
with ``np.bincount`` and objects (lipid droplets, nuclei, hydropic areas) are labelled with
OpenCV and merged across window borders (:class:`ChunkedComponents`), so an object crossing a
chunk border is one object; lipid-class pixels count as droplets only where the glass and shape
rules of :mod:`lobule.inference.liver.quantify.droplet_rules` accept them (judged with a halo around
the window), and touching droplets are cut apart by a distance-transform watershed
(:mod:`lobule.inference.liver.quantify.droplet_split`). Inflammatory foci are single-linkage clusters of inflammatory-nucleus
centroids (scipy ``cKDTree.query_pairs`` + ``connected_components``). No per-pixel Python loops.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from lobule.inference.liver.quantify.components import ChunkedComponents
from lobule.inference.liver.quantify.droplet_rules import droplet_pixels_windowed
from lobule.inference.liver.quantify.droplet_split import split_touching
from lobule.inference.liver.quantify.grades import (
    NOT_GRADED,
    Grade,
    ballooning_grade,
    inflammation_grade,
    nas_sum,
    not_graded,
    steatosis_grade,
)
from lobule.inference.liver.quantify.settings import QuantSettings
from lobule.inference.regions import Rasterizer, Region
from lobule.resources.classes import (
    HYDROPIC,
    INFLAMMATORY_NUCLEI,
    LIVER_CLASSES,
    NORMAL_NUCLEI,
    STEATOSIS,
)

UM2_PER_MM2 = 1e6
_DIAMETER_BINS_UM = (0, 2, 4, 6.5, 10, 15, 20, 30, 50, math.inf)


@dataclass
class RegionResult:
    """Measurements of one region. Areas in um^2 (and mm^2), lengths in um.

    ``classes`` rows: id, key, name, pixels, area_um2, area_mm2, percent_of_tissue (and for
    nucleus classes: components, nuclei_estimate).
    """

    name: str
    region_area_um2: float
    tissue_area_um2: float
    classes: list[dict]
    droplets: dict
    inflammation: dict
    ballooning: dict
    grades: list[Grade]
    settings: QuantSettings
    mpp: float
    extra: dict = field(default_factory=dict)

    @property
    def tissue_area_mm2(self) -> float:
        return self.tissue_area_um2 / UM2_PER_MM2

    @property
    def nas(self) -> dict:
        return nas_sum(self.grades)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "region_area_um2": self.region_area_um2,
            "region_area_mm2": self.region_area_um2 / UM2_PER_MM2,
            "tissue_area_um2": self.tissue_area_um2,
            "tissue_area_mm2": self.tissue_area_mm2,
            "classes": self.classes,
            "steatosis": self.droplets,
            "lobular_inflammation": self.inflammation,
            "ballooning": self.ballooning,
            "grades": [g.as_dict() for g in self.grades],
            "nas": self.nas,
            "label_mpp": self.mpp,
            **self.extra,
        }


def quantify(store, region: Region, settings: QuantSettings | None = None, *,
             cancel: Callable[[], bool] | None = None,
             on_progress: Callable[[int, int], None] | None = None,
             window: int = 2048) -> RegionResult:
    """Measure one region of a label store.

    Parameters
    ----------
    store : a :class:`~lobule.inference.labelstore.LabelStore` (or anything with ``shape``,
        ``mpp``, ``scale``, ``read_labels`` and ``iter_windows``).
    region : geometry in slide level-0 pixels (clip it to the slide first:
        :func:`~lobule.inference.regions.clip_to_slide`).
    settings : thresholds; defaults when None.
    cancel : callable returning True to stop (checked between windows; raises ``Cancelled``).
    on_progress : ``on_progress(windows_done, windows_total)``.
    window : window side in label pixels (rounded to whole chunks).

    Returns
    -------
    RegionResult
    """
    from lobule.inference.engine.runner import Cancelled

    settings = settings or QuantSettings()
    mpp = store.mpp
    px_um2 = mpp * mpp
    raster = Rasterizer(region.geometry, store.scale)
    height, width = store.shape
    bx0, by0, bx1, by1 = region.geometry.bounds if not region.geometry.is_empty else (0, 0, 0, 0)
    s = store.scale
    box = (int(math.floor(bx0 / s)), int(math.floor(by0 / s)),
           int(math.ceil(bx1 / s)) - int(math.floor(bx0 / s)), int(math.ceil(by1 / s)) - int(math.floor(by0 / s)))
    windows = list(store.iter_windows(box, window)) if box[2] > 0 and box[3] > 0 else []
    counts = np.zeros(256, np.int64)
    droplet_px = 0
    region_px = 0
    objects = {c: ChunkedComponents(centroids=c == INFLAMMATORY_NUCLEI)
               for c in (STEATOSIS, NORMAL_NUCLEI, INFLAMMATORY_NUCLEI, HYDROPIC)}
    column = {x: k for k, x in enumerate(sorted({w[0] for w in windows}))}
    row = {y: k for k, y in enumerate(sorted({w[1] for w in windows}))}
    for done, (x, y, w, h) in enumerate(windows):
        if cancel is not None and cancel():
            raise Cancelled("quantification cancelled")
        inside = raster.window((x, y, w, h))
        labels = store.read_labels((x, y, w, h)) if inside.any() else np.zeros((h, w), np.uint8)
        region_px += int(inside.sum())
        counts += np.bincount(labels[inside], minlength=256)
        cell = (row[y], column[x])
        for class_id, components in objects.items():
            mask = (labels == class_id) & inside
            if class_id == STEATOSIS and mask.any():  # droplet rules, then touching vacuoles cut apart
                mask &= droplet_pixels_windowed(store.read_labels, (x, y, w, h), mpp, settings)
                droplet_px += int(mask.sum())
                mask = split_touching(mask, mpp)
            values = _inscribed_radius(mask) if class_id == HYDROPIC and mask.any() else None
            components.add(cell, (x, y), mask, values)
        if on_progress is not None:
            on_progress(done + 1, len(windows))

    tissue_px = int(counts[1:].sum())
    tissue_um2 = tissue_px * px_um2
    tissue_mm2 = tissue_um2 / UM2_PER_MM2
    field_mm2 = settings.field_area_mm2

    def per_mm2(n: float) -> float:
        return n / tissue_mm2 if tissue_mm2 > 0 else 0.0

    droplets = _droplets(objects[STEATOSIS].finish()[0] * px_um2, droplet_px * px_um2,
                         (counts[STEATOSIS] - droplet_px) * px_um2, tissue_um2, settings)
    nuclei = {c: objects[c].finish() for c in (NORMAL_NUCLEI, INFLAMMATORY_NUCLEI)}
    nuclei_counts = {c: _nuclei_estimate(areas * px_um2, settings) for c, (areas, _, _) in nuclei.items()}

    areas3, cx3, cy3 = nuclei[INFLAMMATORY_NUCLEI]
    foci, foci_sizes = _foci(areas3 * px_um2, cx3 * mpp, cy3 * mpp, settings)
    foci_per_mm2 = per_mm2(foci)
    graded = tissue_mm2 > 0 and tissue_mm2 >= settings.grading_min_tissue_mm2
    inflammation = {
        "inflammatory_nuclei_estimate": nuclei_counts[INFLAMMATORY_NUCLEI][1],
        "foci_count": foci,
        "foci_per_mm2": foci_per_mm2,
        "foci_per_200x_field": foci_per_mm2 * field_mm2 if graded else None,
        "field_area_mm2": field_mm2,
        "nuclei_per_focus": foci_sizes,
        "definition": (f"a focus is a single-linkage cluster of >= {settings.focus_min_nuclei} inflammatory "
                       f"nuclei whose centres are within {settings.focus_distance_um:g} um"),
    }

    hydro = objects[HYDROPIC]
    hydro_areas = hydro.finish()[0] * px_um2
    widths = (2.0 * hydro.maxima - 1.0) * mpp if hydro.maxima is not None else np.zeros(len(hydro_areas))
    large = hydro_areas >= settings.ballooning_min_area_um2
    wide = widths >= settings.ballooning_min_width_um
    ballooned = hydro_areas[large & wide]
    balloon_per_mm2 = per_mm2(len(ballooned))
    ballooning = {
        "count": int(len(ballooned)),
        "per_mm2": balloon_per_mm2,
        "per_200x_field": balloon_per_mm2 * field_mm2 if graded else None,
        "area_um2": float(ballooned.sum()),
        "percent_of_tissue": 100.0 * float(ballooned.sum()) / tissue_um2 if tissue_um2 > 0 else 0.0,
        "hydropic_area_um2": float(counts[HYDROPIC] * px_um2),
        "narrow_components_excluded": int((large & ~wide).sum()),
        "definition": (f"a ballooned cell is a hydropic component of >= {settings.ballooning_min_area_um2:g} um^2 "
                       f"holding a disc >= {settings.ballooning_min_width_um:g} um wide"),
    }
    if not graded:
        for part in (inflammation, ballooning):
            part["graded"] = False
            part["not_graded"] = NOT_GRADED

    classes = []
    for c in LIVER_CLASSES:
        row = {
            "id": c.id, "key": c.key, "name": c.name, "pixels": int(counts[c.id]),
            "area_um2": float(counts[c.id] * px_um2), "area_mm2": float(counts[c.id] * px_um2 / UM2_PER_MM2),
            "percent_of_tissue": (100.0 * counts[c.id] / tissue_px if tissue_px and c.id != 0 else None),
        }
        if c.id in nuclei_counts:
            row["components"], row["nuclei_estimate"] = nuclei_counts[c.id]
        classes.append(row)

    grades = [steatosis_grade(droplets["percent_of_tissue"])]
    if graded:
        grades += [inflammation_grade(inflammation["foci_per_200x_field"]),
                   ballooning_grade(ballooning["count"], ballooning["per_200x_field"], settings)]
    else:
        grades += [not_graded("lobular inflammation", "foci per 200x field", "NASH CRN bands per 200x field",
                              tissue_mm2, settings),
                   not_graded("hepatocyte ballooning", "ballooned cells per 200x field",
                              "local threshold per 200x field", tissue_mm2, settings)]
    return RegionResult(region.name, region_px * px_um2, tissue_um2, classes, droplets, inflammation, ballooning,
                        grades, settings, mpp)


def _inscribed_radius(mask: np.ndarray) -> np.ndarray:
    """(h, w) float32 Euclidean distance of each mask pixel to the nearest pixel outside the
    mask (0 outside); its maximum over an object is the radius of the largest disc inside it.
    The window edge does not count as outside (objects crossing it are not cut short)."""
    distance = cv2.distanceTransform(np.pad(mask, 1, mode="edge").astype(np.uint8), cv2.DIST_L2,
                                     cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return np.minimum(distance, float(max(mask.shape)))  # a window full of the class: no zero to measure to


def _droplets(areas_um2: np.ndarray, steatosis_um2: float, excluded_um2: float, tissue_um2: float,
              s: QuantSettings) -> dict:
    diameters = 2.0 * np.sqrt(areas_um2 / math.pi)
    keep = diameters >= s.droplet_min_diameter_um
    diameters, areas = diameters[keep], areas_um2[keep]
    macro = diameters >= s.macro_threshold_um
    hist, _ = np.histogram(diameters, bins=np.array(_DIAMETER_BINS_UM))
    return {
        "area_um2": float(steatosis_um2),
        "excluded_lipid_class_area_um2": float(excluded_um2),
        "percent_of_tissue": 100.0 * steatosis_um2 / tissue_um2 if tissue_um2 > 0 else 0.0,
        "droplet_count": int(len(diameters)),
        "macro_count": int(macro.sum()),
        "micro_count": int((~macro).sum()),
        "macro_area_um2": float(areas[macro].sum()),
        "micro_area_um2": float(areas[~macro].sum()),
        "macro_threshold_um": s.macro_threshold_um,
        "diameter_um": {
            "mean": float(diameters.mean()) if len(diameters) else None,
            "median": float(np.median(diameters)) if len(diameters) else None,
            "p10": float(np.percentile(diameters, 10)) if len(diameters) else None,
            "p90": float(np.percentile(diameters, 90)) if len(diameters) else None,
            "max": float(diameters.max()) if len(diameters) else None,
            "histogram": {"bin_edges_um": [b if math.isfinite(b) else None for b in _DIAMETER_BINS_UM],
                          "counts": hist.astype(int).tolist()},
        },
        "diameters_um": np.round(np.sort(diameters), 3).tolist(),
    }


def _nuclei_estimate(areas_um2: np.ndarray, s: QuantSettings) -> tuple[int, int]:
    """(components, estimated nuclei) of a nucleus class: components below the noise floor are
    dropped; each other counts max(1, round(area / nominal nucleus area)) nuclei."""
    real = areas_um2[areas_um2 >= s.nucleus_min_area_um2]
    return int(len(real)), int(np.maximum(1, np.round(real / s.nucleus_area_um2)).sum())


def _foci(areas_um2: np.ndarray, x_um: np.ndarray, y_um: np.ndarray, s: QuantSettings) -> tuple[int, list[int]]:
    """Number of foci and nuclei per focus: clusters (single linkage at ``focus_distance_um``
    between component centroids) holding >= ``focus_min_nuclei`` estimated nuclei."""
    keep = areas_um2 >= s.nucleus_min_area_um2
    areas_um2, x_um, y_um = areas_um2[keep], x_um[keep], y_um[keep]
    if len(areas_um2) == 0:
        return 0, []
    nuclei = np.maximum(1, np.round(areas_um2 / s.nucleus_area_um2)).astype(np.int64)
    pairs = cKDTree(np.column_stack([x_um, y_um])).query_pairs(s.focus_distance_um, output_type="ndarray")
    n = len(areas_um2)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, cluster = connected_components(graph, directed=False)
    sizes = np.bincount(cluster, weights=nuclei).astype(np.int64)
    foci = np.sort(sizes[sizes >= s.focus_min_nuclei])[::-1]
    return int(len(foci)), foci.tolist()
