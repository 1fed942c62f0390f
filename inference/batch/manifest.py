"""The slides of a cohort: a folder of slides or a CSV manifest.

A manifest is a CSV file with a header row. Columns: ``slide`` (required; a path relative to the
manifest's folder, or absolute), and optional ``case`` (output sub-folder name; default the slide
file's stem), ``mpp`` (micrometres per level-0 pixel, overriding the file), ``roi`` (QuPath
GeoJSON of the regions to quantify, relative like ``slide``) and ``notes`` (copied to cohort.csv).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from lobule.inference.errors import InputError

COLUMNS = ("slide", "case", "mpp", "roi", "notes")
# Files a folder input takes as slides (a MIRAX's data folder beside its .mrxs is not listed).
SLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide", ".tif", ".tiff")
_CASE_OK = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class CohortSlide:
    """One slide of a cohort.

    Attributes
    ----------
    slide : absolute path of the slide file.
    case : output sub-folder name (letters, digits, ``._+-``; unique in the cohort).
    mpp : um per level-0 pixel given by the user, or None (the file's).
    roi : absolute path of a GeoJSON region file, or None (the whole tissue).
    notes : free text copied to cohort.csv.
    """

    slide: Path
    case: str
    mpp: float | None = None
    roi: Path | None = None
    notes: str = ""


def case_name(text: str) -> str:
    """A safe folder name for a case: runs of other characters become ``_``; no leading dot."""
    name = _CASE_OK.sub("_", text.strip()).lstrip(".")
    return name or "case"


def read_cohort(source: str | Path) -> list[CohortSlide]:
    """The slides of a folder (its slide files, not recursive, sorted by name) or a CSV manifest.

    Raises
    ------
    InputError
        If ``source`` is missing, holds no slide, or the manifest is malformed (unknown column, no
        ``slide`` column, empty slide, mpp not a positive number, duplicate case); the message
        names the file, the line and the reason.
    """
    source = Path(source).expanduser().absolute()
    if source.is_dir():
        items = [CohortSlide(path, case_name(path.stem)) for path in sorted(source.iterdir())
                 if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in SLIDE_SUFFIXES]
        if not items:
            raise InputError(f"{source}: no slide files ({', '.join(SLIDE_SUFFIXES)}) in this folder")
    elif source.is_file():
        items = _read_manifest(source)
    else:
        raise InputError(f"cohort input not found: {source}")
    _check_unique(items, source)
    return items


def _read_manifest(path: Path) -> list[CohortSlide]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path.name}: cannot read the manifest ({exc})") from None
    if "slide" not in header:
        raise InputError(f"{path.name}: the manifest needs a header row with a 'slide' column "
                         f"(optional: {', '.join(COLUMNS[1:])})")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise InputError(f"{path.name}: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    items = []
    for line, raw in enumerate(rows, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        if not row.get("slide"):
            raise InputError(f"{path.name} line {line}: empty 'slide'")
        slide = (path.parent / row["slide"]).absolute()
        mpp = None
        if row.get("mpp"):
            try:
                mpp = float(row["mpp"])
            except ValueError:
                mpp = float("nan")
            if not (mpp > 0 and mpp < 1000):
                raise InputError(f"{path.name} line {line}: mpp {row['mpp']!r} is not a positive number of um per pixel")
        roi = (path.parent / row["roi"]).absolute() if row.get("roi") else None
        case = case_name(row.get("case") or slide.stem)
        items.append(CohortSlide(slide, case, mpp, roi, row.get("notes", "")))
    if not items:
        raise InputError(f"{path.name}: the manifest lists no slide")
    return items


def _check_unique(items: list[CohortSlide], source: Path) -> None:
    seen: dict[str, CohortSlide] = {}
    for item in items:
        if item.case in seen:
            raise InputError(f"{source.name}: {seen[item.case].slide.name} and {item.slide.name} both give case "
                             f"{item.case!r}; name the cases in a manifest's 'case' column")
        seen[item.case] = item
