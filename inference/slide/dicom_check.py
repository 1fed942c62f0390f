"""Plain-words reasons why OpenSlide cannot open a DICOM whole-slide image.

OpenSlide's DICOM reader fails with its internal wording ("Couldn't get image flavor") when a
file lacks an attribute it relies on. :func:`missing_wsi_attributes` reads the header with
pydicom (no pixel data) and names what is missing, so the user learns which tag to fix.
"""
from __future__ import annotations

from pathlib import Path

WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage

# attribute -> what it tells a reader, in the user's words
_REQUIRED = {
    "ImageType": "whether the file is the slide itself, its label or its overview",
    "TotalPixelMatrixColumns": "the slide's width in pixels",
    "TotalPixelMatrixRows": "the slide's height in pixels",
    "Rows": "the tile height",
    "Columns": "the tile width",
    "SamplesPerPixel": "the number of colour channels",
}


def missing_wsi_attributes(path: str | Path) -> str | None:
    """A one-line reason naming the attributes a DICOM whole-slide image lacks, or None when
    the file is not a readable DICOM-WSI or lacks nothing Lobule checks."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not readable by pydicom either: keep OpenSlide's reason
        return None
    if str(getattr(ds, "SOPClassUID", "")) != WSI_SOP_CLASS:
        return None
    missing = [name for name in _REQUIRED if name not in ds or ds[name].value in (None, "", [])]
    if not missing:
        image_type = [str(v).upper() for v in ds.ImageType]
        if len(image_type) < 3 or image_type[2] not in ("VOLUME", "LABEL", "OVERVIEW", "THUMBNAIL"):
            shown = "\\".join(image_type)
            return (f"a DICOM whole-slide image whose ImageType {shown} does not say VOLUME, "
                    "LABEL, OVERVIEW or THUMBNAIL (its third value)")
        return None
    words = "; ".join(f"{name} ({_REQUIRED[name]})" for name in missing)
    return f"a DICOM whole-slide image without {words}: the scanner or converter left it out"
