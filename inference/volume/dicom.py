"""DICOM series (a folder of single-frame CT/MR slices) through pydicom.

Slices are grouped by SeriesInstanceUID, sorted by their position along the slice normal
(ImagePositionPatient projected on the cross product of the two ImageOrientationPatient
direction cosines), and stacked; the in-plane spacing comes from PixelSpacing, the slice
spacing from the positions. Pixel data in compressed transfer syntaxes (JPEG, JPEG-LS,
JPEG 2000, RLE) is decoded by pydicom's pixel-data handlers (pylibjpeg plug-ins). CT values are
rescaled to Hounsfield units with RescaleSlope / RescaleIntercept.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from lobule.inference.errors import VolumeError
from lobule.inference.volume.volume import Volume, oriented_volume

#: SOP classes that are never images of a volume: DICOMDIR (Media Storage Directory), presentation
#: states (Grayscale/Colour/Pseudo-colour/Blending ..., 1.2.840.10008.5.1.4.1.1.11.*) and structured
#: reports / key object selections (1.2.840.10008.5.1.4.1.1.88.*)
NON_IMAGE_SOP_PREFIXES = ("1.2.840.10008.1.3.10", "1.2.840.10008.5.1.4.1.1.11.", "1.2.840.10008.5.1.4.1.1.88.")

#: relative deviation of a slice gap from the median gap that counts as uneven spacing
GAP_TOLERANCE = 0.1


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a folder.

    Attributes
    ----------
    uid : SeriesInstanceUID.
    number : SeriesNumber or None.
    description : SeriesDescription (may be empty).
    modality : e.g. ``"CT"``, ``"MR"``.
    files : the slice files, unsorted.
    rows, columns : image size.
    """

    uid: str
    number: int | None
    description: str
    modality: str
    files: tuple[Path, ...]
    rows: int
    columns: int

    def label(self) -> str:
        """One-line human label, e.g. ``#3 MR 'T2 SPIR' 36 slices 256x256``."""
        number = f"#{self.number} " if self.number is not None else ""
        description = f" '{self.description}'" if self.description else ""
        plural = "s" if len(self.files) != 1 else ""
        return f"{number}{self.modality or '?'}{description} {len(self.files)} slice{plural} {self.columns}x{self.rows}"


def _read_header(path: Path):
    try:
        with warnings.catch_warnings():  # pydicom warns about every oddity of foreign files
            warnings.simplefilter("ignore")
            return pydicom.dcmread(str(path), stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError, KeyError):
        return None


def _is_image(ds) -> bool:
    """True for an image object: not a DICOMDIR, presentation state or report, and has Rows/Columns."""
    meta = getattr(ds, "file_meta", None)
    classes = (str(ds.get("SOPClassUID", "")), str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else "")
    if any(uid.startswith(NON_IMAGE_SOP_PREFIXES) for uid in classes if uid):
        return False
    return "Rows" in ds and "Columns" in ds


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series in ``folder`` (files directly inside it), largest first.

    Files that are not DICOM, DICOMDIR files, presentation states, structured reports and other
    objects without an image matrix are skipped (:data:`NON_IMAGE_SOP_PREFIXES`).

    Raises
    ------
    VolumeError
        If the folder does not exist or holds no DICOM image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VolumeError(f"DICOM folder not found: {folder}")
    groups: dict[str, list[tuple[Path, object]]] = defaultdict(list)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        ds = _read_header(Path(entry.path))
        if ds is None or not _is_image(ds):
            continue
        groups[str(ds.get("SeriesInstanceUID", "unknown"))].append((Path(entry.path), ds))
    if not groups:
        raise VolumeError(f"no DICOM images in {folder}")
    series = []
    for uid, items in groups.items():
        first = items[0][1]
        number = first.get("SeriesNumber")
        series.append(
            SeriesInfo(
                uid=uid,
                number=int(number) if number not in (None, "") else None,
                description=str(first.get("SeriesDescription", "")).strip(),
                modality=str(first.get("Modality", "")).strip(),
                files=tuple(p for p, _ in items),
                rows=int(first.Rows),
                columns=int(first.Columns),
            )
        )
    series.sort(key=lambda s: (-len(s.files), s.number if s.number is not None else 1 << 30, s.uid))
    return series


def pick_series(folder: str | Path, series: str | int | None = None) -> SeriesInfo:
    """Choose one series of ``folder``: the only one, or the one ``series`` names (1-based index
    in :func:`list_series` order, SeriesNumber as ``#N``, or SeriesInstanceUID).

    Raises
    ------
    VolumeError
        If the folder holds several series and ``series`` is None (the message lists them), or
        ``series`` matches none.
    """
    found = list_series(folder)
    if series is None:
        if len(found) == 1:
            return found[0]
        listing = "; ".join(f"{i}) {s.label()}" for i, s in enumerate(found, 1))
        raise VolumeError(f"{Path(folder).name} holds {len(found)} series, pick one (--series N): {listing}")
    key = str(series).strip()
    if key.isdigit() and 1 <= int(key) <= len(found):
        return found[int(key) - 1]
    for s in found:
        if key == s.uid or (key.startswith("#") and s.number is not None and key[1:] == str(s.number)):
            return s
    listing = "; ".join(f"{i}) {s.label()}" for i, s in enumerate(found, 1))
    raise VolumeError(f"no series {key!r} in {Path(folder).name}; available: {listing}")


def load_dicom_series(path: str | Path, series: str | int | None = None, axis: str = "acquisition") -> Volume:
    """Read a DICOM series as a :class:`Volume`, sliced along its slice normal by default.

    Parameters
    ----------
    path : a folder holding the series, or one file of it (its folder is scanned for the rest of
        the series).
    series : which series when the folder holds several (see :func:`pick_series`).
    axis : ``acquisition`` (the slice normal) or a reformatted ``axial`` / ``coronal`` / ``sagittal`` view.

    Raises
    ------
    VolumeError
        Several series and none chosen, slices of different sizes or orientations, multi-frame
        or colour images, undecodable (truncated, unsupported) pixel data.
    """
    path = Path(path)
    if path.is_file():
        ds = _read_header(path)
        if ds is None:
            raise VolumeError(f"{path.name} is not a DICOM file")
        if series is None:
            series = str(ds.get("SeriesInstanceUID", "unknown"))
        path = path.parent
    info = pick_series(path, series)
    notes: list[str] = []
    datasets = []
    for file in info.files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                datasets.append(pydicom.dcmread(str(file)))
        except Exception as exc:
            raise VolumeError(f"cannot read DICOM {file.name}: {exc}") from None
    first = datasets[0]
    if int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise VolumeError(
            f"{info.files[0].name} is a multi-frame (enhanced) DICOM; only series of single-frame slices are supported, "
            "convert it to NIfTI (e.g. with dcm2niix)"
        )
    if int(first.get("SamplesPerPixel", 1)) != 1:
        raise VolumeError(f"series {info.label()} holds colour images, not a CT/MR volume")
    sizes = Counter((int(d.Rows), int(d.Columns)) for d in datasets)
    if len(sizes) > 1:
        raise VolumeError(f"series {info.label()} mixes image sizes {sorted(sizes)}; cannot stack it")
    row_cos, col_cos, pixel_spacing = _in_plane_geometry(first, notes)
    for d in datasets[1:]:
        iop = d.get("ImageOrientationPatient")
        if iop is not None and not np.allclose(np.asarray(iop, float), np.r_[row_cos, col_cos], atol=1e-3):
            raise VolumeError(f"series {info.label()} mixes slice orientations; cannot stack it")
    normal = np.cross(row_cos, col_cos)
    datasets, positions = _sort_slices(datasets, normal, notes)
    slice_step = _slice_spacing(positions, first, notes)

    planes = []
    for d in datasets:
        planes.append(_decode(d))
    data = np.stack([p.T for p in planes], axis=-1)  # (columns, rows, slices) = (i, j, k)
    origin_lps = np.asarray(datasets[0].get("ImagePositionPatient", [0.0, 0.0, 0.0]), dtype=float)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_cos * pixel_spacing[1]  # i: along a row, column spacing
    affine_lps[:3, 1] = col_cos * pixel_spacing[0]  # j: down a column, row spacing
    affine_lps[:3, 2] = normal * slice_step
    affine_lps[:3, 3] = origin_lps
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # DICOM LPS -> RAS
    modality = str(first.get("Modality", "")).strip()
    unit = "HU" if modality == "CT" else "a.u."
    description = info.label()
    return oriented_volume(
        data, affine, axis=axis, slice_axis=2, source=str(path), modality=modality, unit=unit, notes=tuple(notes),
        description=description,
    )


def _in_plane_geometry(ds, notes: list[str]) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    iop = ds.get("ImageOrientationPatient")
    if iop is None or len(iop) != 6:
        notes.append("slices carry no ImageOrientationPatient: axial orientation assumed")
        row_cos, col_cos = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    else:
        values = np.asarray(iop, dtype=float)
        row_cos, col_cos = values[:3] / np.linalg.norm(values[:3]), values[3:] / np.linalg.norm(values[3:])
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is None or len(spacing) != 2 or min(float(s) for s in spacing) <= 0:
        notes.append("slices carry no PixelSpacing: 1 mm pixels assumed, sizes in mm are not real")
        pixel_spacing = (1.0, 1.0)
    else:
        pixel_spacing = (float(spacing[0]), float(spacing[1]))
    return row_cos, col_cos, pixel_spacing


def _sort_slices(datasets, normal: np.ndarray, notes: list[str]):
    """Sort by position along ``normal``; drop repeated instances; return (datasets, positions)."""
    have_position = all("ImagePositionPatient" in d for d in datasets)
    if have_position:
        keyed = [(float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)), d) for d in datasets]
    else:
        if len(datasets) > 1:
            notes.append("slices carry no ImagePositionPatient: sorted by InstanceNumber, spacing from SliceThickness")
        keyed = [(float(d.get("InstanceNumber", i) or i), d) for i, d in enumerate(datasets)]
    keyed.sort(key=lambda item: item[0])
    kept, positions, seen_uids, duplicates, stacked = [], [], set(), 0, 0
    for position, d in keyed:
        uid = str(d.get("SOPInstanceUID", id(d)))
        if uid in seen_uids:
            duplicates += 1
            continue
        seen_uids.add(uid)
        if have_position and positions and abs(position - positions[-1]) < 1e-3:
            stacked += 1
            continue
        kept.append(d)
        positions.append(position)
    if duplicates:
        notes.append(f"{duplicates} duplicate copies of the same slice ignored")
    if stacked:
        notes.append(
            f"{stacked} images share a slice position with another (echoes or time points?): the first at each position is used"
        )
    if not have_position:
        thickness = float(kept[0].get("SpacingBetweenSlices", kept[0].get("SliceThickness", 1.0)) or 1.0)
        positions = [i * thickness for i in range(len(kept))]
    return kept, np.asarray(positions, dtype=float)


def _slice_spacing(positions: np.ndarray, first, notes: list[str]) -> float:
    """Median gap between slices; uneven or missing slices are reported, not fatal."""
    if len(positions) < 2:
        value = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        return float(value) if float(value) > 0 else 1.0
    gaps = np.diff(positions)
    step = float(np.median(gaps))
    uneven = np.abs(gaps - step) > GAP_TOLERANCE * step
    if uneven.any():
        missing = int(np.sum(np.maximum(np.round(gaps[uneven] / step) - 1, 0)))
        where = ", ".join(f"{positions[i]:.1f}-{positions[i + 1]:.1f} mm" for i in np.flatnonzero(uneven)[:3])
        if missing:
            notes.append(
                f"about {missing} slice(s) missing (gaps at {where}); continuing with {step:.2f} mm spacing, "
                "distances and volumes across the gaps are approximate"
            )
        else:
            notes.append(
                f"uneven slice spacing ({gaps.min():.2f}-{gaps.max():.2f} mm); continuing with the median {step:.2f} mm"
            )
    return step


def _decode(ds) -> np.ndarray:
    """Pixel values of one slice, rescaled (HU for CT), as float32 (rows, columns)."""
    name = Path(getattr(ds, "filename", "") or "slice").name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as exc:  # truncated data, missing decoder plug-in, corrupt stream
        raise VolumeError(f"cannot decode the pixels of {name}: {' '.join(str(exc).split())}") from None
    if pixels.ndim != 2:
        raise VolumeError(f"{name} holds a {pixels.ndim}D pixel array; expected one grey-level slice")
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return pixels.astype(np.float32) * slope + intercept
