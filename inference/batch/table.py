"""DIR/cohort.csv: one row per slide (one per region when a slide's region file has several).

Each row's numbers are read back from the case's ``summary.json``, so the table equals the
per-slide exports by construction.
"""
from __future__ import annotations

import csv
from pathlib import Path

from lobule.core.atomic import atomic_write

COLUMNS = (
    "case", "slide", "region", "sha256_first_mib", "mpp", "tissue_mm2",
    "steatosis_percent", "steatosis_grade",
    "foci_per_200x_field", "inflammation_grade",
    "ballooned_per_200x_field", "ballooning_grade",
    "nas_sum", "qc_flags", "model", "weights_sha256", "seconds", "status", "reused", "error", "notes",
)
_GRADE_COLUMNS = {  # summary grade component -> (value column, grade column)
    "steatosis": ("steatosis_percent", "steatosis_grade"),
    "lobular inflammation": ("foci_per_200x_field", "inflammation_grade"),
    "hepatocyte ballooning": ("ballooned_per_200x_field", "ballooning_grade"),
}


def qc_flags(summary: dict, results: dict) -> list[str]:
    """Quality flags of one region: the summary's own ``qc`` flags (if the analysis made any), plus
    ``no-tissue`` (nothing but background) and ``mpp-given`` (pixel size from the user, not the file)."""
    flags = []
    qc = summary.get("qc")
    if isinstance(qc, dict):
        flags += [str(name) for name, value in qc.items() if value]
    elif isinstance(qc, list):
        flags += [str(flag) for flag in qc]
    if not results.get("tissue_area_mm2"):
        flags.append("no-tissue")
    if summary.get("slide", {}).get("mpp_user_supplied"):
        flags.append("mpp-given")
    return flags


def rows_from_summary(summary: dict, *, case: str, slide: str, seconds: float, notes: str = "") -> list[dict]:
    """cohort.csv rows of one analysed case from its summary.json object."""
    model = summary.get("model", {})
    rows = []
    for region in summary.get("regions", []):
        results = region["results"]
        row = {
            "case": case, "slide": slide, "region": region["name"],
            "sha256_first_mib": summary["slide"]["sha256_first_mib"], "mpp": summary["slide"]["mpp"],
            "tissue_mm2": results["tissue_area_mm2"],
            "nas_sum": results["nas"]["grade"], "qc_flags": ";".join(qc_flags(summary, results)),
            "model": model.get("name"), "weights_sha256": model.get("weights_sha256") or "",
            "seconds": round(seconds, 2), "status": "ok", "error": "", "notes": notes,
        }
        for grade in results["grades"]:
            value_col, grade_col = _GRADE_COLUMNS[grade["component"]]
            row[value_col] = grade["value"]
            row[grade_col] = grade["grade"]
        rows.append(row)
    return rows


def failure_row(*, case: str, slide: str, sha: str | None, model: dict, seconds: float, status: str,
                error: str, notes: str = "", mpp: float | None = None) -> dict:
    """The cohort.csv row of a case that did not finish (``status`` failed or cancelled)."""
    return {"case": case, "slide": slide, "region": "", "sha256_first_mib": sha or "", "mpp": mpp or "",
            "model": model.get("name"), "weights_sha256": model.get("weights_sha256") or "",
            "seconds": round(seconds, 2), "status": status, "error": error, "notes": notes}


def write_cohort_csv(path: Path, rows: list[dict]) -> None:
    """Write cohort.csv atomically (columns :data:`COLUMNS`; missing values empty)."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: "" if row.get(name) is None else row.get(name) for name in COLUMNS})
