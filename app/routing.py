"""Which tab opens a path: MRI/CT volumes, FFA images or slides (no Qt, no pixel reading)."""
from __future__ import annotations

import os
from pathlib import Path

SLIDE, FFA, VOLUME = "slide", "ffa", "volume"

#: Plain image formats an FFA angiogram comes in; they go to the FFA tab when it is the current one.
FFA_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})

#: DICOM SOP class "VL Whole Slide Microscopy Image Storage": a DICOM-WSI slide, not a volume.
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"

#: DICOM SOP classes "Ophthalmic Photography 8 / 16 Bit Image Storage": fundus photos and angiograms (FFA tab).
OPHTHALMIC_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.77.1.5.1", "1.2.840.10008.5.1.4.1.1.77.1.5.2"})


def route(path: str | os.PathLike, ffa_current: bool = False) -> str:
    """The tab for ``path``: :data:`VOLUME`, :data:`FFA` or :data:`SLIDE`.

    - ``.nii`` / ``.nii.gz``, and DICOM files or folders that are not whole-slide images: MRI/CT;
    - DICOM ophthalmic photographs: FFA;
    - plain images (PNG, JPEG, TIFF...) while the FFA tab is current: FFA;
    - everything else (including missing paths, whose error the slide reader reports): Slide.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return VOLUME
    if path.is_dir():
        dicom = _first_dicom(path)
        return SLIDE if dicom is None or _is_wsi_dicom(dicom) else VOLUME
    if path.is_file() and (path.suffix.lower() == ".dcm" or _has_dicom_magic(path)):
        if _sop_class(path) in OPHTHALMIC_SOP_CLASSES:
            return FFA
        return SLIDE if _is_wsi_dicom(path) else VOLUME
    if ffa_current and path.suffix.lower() in FFA_IMAGE_SUFFIXES:
        return FFA
    return SLIDE


def _has_dicom_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _first_dicom(folder: Path) -> Path | None:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.is_file() and (entry.suffix.lower() == ".dcm" or _has_dicom_magic(entry)):
            return entry
    return None


def _is_wsi_dicom(path: Path) -> bool:
    return _sop_class(path) == WSI_SOP_CLASS


def _sop_class(path: Path) -> str:
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"], force=True)
    except Exception:  # noqa: BLE001 - unreadable: let the volume reader say what is wrong
        return ""
    return str(getattr(header, "SOPClassUID", ""))
