"""Provenance records that make a cohort run resumable.

For each case, ``DIR/.lobule-batch/<case>.json`` keeps the key the outputs were made with (sha256
of the slide's first MiB, model name and weights sha256, quantification settings, the mpp and
region file given) and the outcome (status, error line, cohort.csv rows). A re-run skips a case
whose key is unchanged (and, for a success, whose four export files are all there) and reruns it
otherwise.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lobule.core.atomic import atomic_write

RECORD_DIR = ".lobule-batch"
FORMAT = "lobule-batch-provenance/1"


def sha256_first_mib(path: Path) -> str | None:
    """sha256 of the first MiB of a file (of a folder slide's listing); None if unreadable."""
    from lobule.inference.labelstore import slide_fingerprint

    try:
        return slide_fingerprint(path)
    except OSError:
        return None


def file_sha256(path: Path | None) -> str | None:
    """sha256 of a whole (small) file such as a GeoJSON region file; None if absent or unreadable."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def provenance_key(item, model: dict, settings: dict) -> dict:
    """The inputs that decide a case's outputs.

    Parameters
    ----------
    item : CohortSlide.
    model : the predictor's ``describe()`` (name, weights_sha256).
    settings : quantification settings (``QuantSettings.as_dict()``).
    """
    key = {
        "slide_sha256_first_mib": sha256_first_mib(item.slide),
        "model": model.get("name"),
        "weights_sha256": model.get("weights_sha256"),
        "settings": settings,
        "mpp": item.mpp,
        "roi_sha256": file_sha256(item.roi),
    }
    return json.loads(json.dumps(key))  # as it reads back from a record (tuples become lists)


def record_path(out: Path, case: str) -> Path:
    return Path(out) / RECORD_DIR / f"{case}.json"


def read_record(out: Path, case: str) -> dict | None:
    """The saved record of a case, or None when there is none or it is unreadable."""
    try:
        record = json.loads(record_path(out, case).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def write_record(out: Path, case: str, key: dict, outcome: dict) -> None:
    """Save a case's key and outcome atomically (``outcome``: status, error, rows, seconds)."""
    path = record_path(out, case)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump({"format": FORMAT, "case": case, "key": key, **outcome}, handle, indent=1, allow_nan=False)
        handle.write("\n")


def reusable(record: dict | None, key: dict, case_dir: Path, retry_failed: bool = False) -> bool:
    """Whether a saved record answers for this key: same key, a success whose export files all
    exist, or a failure (rerun only with ``retry_failed``). A slide whose first MiB could not be
    read has no key and is always rerun."""
    from lobule.inference.export import EXPORT_FILES

    if record is None or key["slide_sha256_first_mib"] is None or record.get("key") != key:
        return False
    if record.get("status") == "ok":
        return all((Path(case_dir) / name).is_file() for name in EXPORT_FILES)
    return record.get("status") == "failed" and not retry_failed
