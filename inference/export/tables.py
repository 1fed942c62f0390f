"""DIR/regions.csv: one row per region and class."""
from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("region", "class_id", "class_key", "class_name", "pixels", "area_um2", "area_mm2",
           "percent_of_tissue", "components", "nuclei_estimate", "region_area_mm2", "tissue_area_mm2",
           "nas_sum", "grading")


def write_regions_csv(path: str | Path, results) -> Path:
    """Write ``results`` (RegionResult objects) to ``path`` (UTF-8, comma-separated, header).

    ``nas_sum`` is empty and ``grading`` says why when a region is too small to be graded
    ("not graded: region smaller than one 200x field ...")."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for result in results:
            nas = result.nas
            total = "" if nas["grade"] is None else nas["grade"]
            grading = "graded" if nas["grade"] is not None else nas["note"]
            for row in result.classes:
                pct = row["percent_of_tissue"]
                writer.writerow([
                    result.name, row["id"], row["key"], row["name"], row["pixels"],
                    f"{row['area_um2']:.2f}", f"{row['area_mm2']:.6f}", "" if pct is None else f"{pct:.4f}",
                    row.get("components", ""), row.get("nuclei_estimate", ""),
                    f"{result.region_area_um2 / 1e6:.6f}", f"{result.tissue_area_mm2:.6f}", total, grading,
                ])
    return path
