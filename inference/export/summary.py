"""DIR/summary.json: everything docs/nas.md asks an export to carry, so a person can check it later.

Slide file name and sha256 of its first MiB, the mpp used and whether the user supplied it, the
model name and weights sha256, every threshold and setting (tissue detection, tiling,
quantification), each region's geometry (GeoJSON, level-0 pixels, QuPath's convention), the
measurements and derived grades with the values they came from, software version and time.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict

from shapely.geometry import mapping

FORMAT = "lobule-analysis/1"

DEFINITIONS = {
    "coordinates": "slide level-0 pixels, x to the right, y down, origin at the top-left corner (QuPath)",
    "tissue_area": "pixels of the region whose class is not background (class 0), times the label pixel area",
    "percent_of_tissue": "class area / tissue area of the region x 100",
    "equivalent_diameter": "2 * sqrt(area / pi) of a connected component (8-connectivity)",
    "nuclei_estimate": "each nucleus-class component counts max(1, round(area / nucleus_area_um2)) nuclei",
    "field_200x": "field diameter = field_number_mm / objective_magnification mm; area = pi * (d / 2)^2",
    "grades": "derived estimates from the class map (docs/nas.md); not validated against pathologists' scores",
    "per_field_grading": "foci and ballooned cells per 200x field, their grades and the NAS sum are given only "
                         "when the region holds at least settings.grading_min_tissue_mm2 of tissue; smaller "
                         "regions give counts and densities per mm^2 and 'not graded'",
    "ballooned_cell": "hydropic component of at least ballooning_min_area_um2 holding a disc at least "
                      "ballooning_min_width_um wide (largest distance-transform value x 2), so strokes narrower "
                      "than a cell do not count",
    "steatosis_grade": "NASH CRN bands (Kleiner 2005) applied to lipid-droplet area / tissue area; "
                       "not the SAF hepatocyte-count definition",
}


def build_summary(*, slide: dict, model: dict, store, tissue, regions, results, settings, run: dict | None,
                  version: str) -> dict:
    """The summary.json object.

    Parameters
    ----------
    slide : slide identity (``slide_info``): name, sha256_first_mib, mpp, mpp_source...
    model : the predictor's ``describe()``.
    store : the LabelStore analysed.
    tissue : the run's TissueMask (or None).
    regions, results : lists of Region and RegionResult, in the same order.
    settings : QuantSettings.
    run : timings of the inference run, if one happened (None when a saved analysis was reused).
    """
    slide = dict(slide)
    slide["mpp_user_supplied"] = slide.get("mpp_source") == "user"
    tissue_info = None
    if tissue is not None:
        tissue_info = {"kept_fraction": tissue.kept_fraction, "mask_downsample": tissue.downsample,
                       "mask_area_mm2": tissue.area_um2 / 1e6, "settings": asdict(tissue.settings),
                       "found": not tissue.is_empty()}
    return {
        "format": FORMAT,
        "software": {"name": "lobule", "version": version},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "slide": slide,
        "model": model,
        "analysis": {
            "label_mpp": store.mpp,
            "label_downsample": store.scale,
            "label_store": str(store.path),
            "tiling": store.attrs.get("tiling"),
            "tissue": tissue_info,
            "run": run,
        },
        "settings": settings.as_dict(),
        "definitions": DEFINITIONS,
        "regions": [
            {"name": region.name, "classification": region.classification,
             "geometry": mapping(region.geometry) if not region.geometry.is_empty else None,
             "results": result.as_dict()}
            for region, result in zip(regions, results)
        ],
    }
