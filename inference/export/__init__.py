"""Exports of an analysis, written atomically into one folder DIR:

- ``summary.json``  everything needed to check the numbers later (:mod:`.summary`)
- ``regions.csv``   one row per region and class (:mod:`.tables`)
- ``classes.geojson`` regions and class polygons, QuPath-compatible (:mod:`.geojson`)
- ``labels.tif``    the class map, pyramidal, with mpp (:mod:`.labels_tiff`)
"""
from __future__ import annotations

import json
from pathlib import Path

from lobule.inference.export.geojson import class_features, write_classes_geojson
from lobule.inference.export.labels_tiff import write_labels_tiff
from lobule.inference.export.publish import prepare_output_dir, staged_output
from lobule.inference.export.summary import build_summary
from lobule.inference.export.tables import write_regions_csv

EXPORT_FILES = ("summary.json", "regions.csv", "classes.geojson", "labels.tif")


def export_analysis(out, *, store, regions, results, settings, slide: dict, model: dict, tissue=None,
                    run: dict | None = None, cancel=None, quality: dict | None = None) -> Path:
    """Write the four export files into ``out`` atomically (see :mod:`.publish`).

    Parameters
    ----------
    out : the export folder (created if missing).
    store : LabelStore; regions, results : same-length lists of Region / RegionResult;
    settings : QuantSettings; slide, model : identity dicts; tissue : TissueMask or None;
    run : inference timings; cancel : callable, checked between files (raises ``Cancelled``);
    quality : the slide's quality-control block (:func:`lobule.inference.liver.quality.slide_quality`).

    Returns
    -------
    The folder.

    Raises
    ------
    OSError
        Unwritable folder or full disk; nothing is then left behind.
    """
    from lobule.inference.about import lobule_version as version
    from lobule.core.cancel import Cancelled

    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled("export cancelled")

    out = Path(out)
    summary = build_summary(slide=slide, model=model, store=store, tissue=tissue, regions=regions,
                            results=results, settings=settings, run=run, version=version())
    summary["quality"] = quality
    summary["files"] = list(EXPORT_FILES)
    with staged_output(out) as tmp:
        with open(tmp / "summary.json", "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, allow_nan=False)
            handle.write("\n")
        check()
        write_regions_csv(tmp / "regions.csv", results)
        check()
        write_classes_geojson(tmp / "classes.geojson", store, regions, results)
        check()
        write_labels_tiff(tmp / "labels.tif", store)
        check()
    return out.absolute()


__all__ = ["EXPORT_FILES", "build_summary", "class_features", "export_analysis", "prepare_output_dir",
           "staged_output", "write_classes_geojson", "write_labels_tiff", "write_regions_csv"]
