"""``open_slide(path)``: check the path, recognise the format, pick the backend.

Order: OpenSlide for everything it recognises (vendor formats, generic tiled TIFF), except
OME-TIFF (OpenSlide would see only the first plane of its sub-IFD pyramid); tiffslide for other
tiled/pyramidal TIFFs and as the fallback when OpenSlide fails on a TIFF; the plain-image reader
for PNG/JPEG/BMP/GIF/WebP and non-pyramidal TIFF. Every failure a user can cause raises
:class:`SlideError` (or :class:`UnsupportedFormatError`) with a one-line reason.
"""
from __future__ import annotations

import os
from pathlib import Path

from lobule.inference.errors import SlideError, UnsupportedFormatError
from lobule.inference.slide.base import SlideReader
from lobule.inference.slide.image import LARGE_PLAIN_PIXELS, read_pil_image, read_tiff_image
from lobule.inference.slide.levels import parse_mpp
from lobule.inference.slide.tifftiles import quiet_tifffile
from lobule.inference.slide.wsi import OpenSlideReader, TiffSlideReader, _one_line

# file signatures: (offset, magic, format name)
_TIFF = ((0, b"II*\x00"), (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+"))
_IMAGES = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"BM", "BMP"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
)
_UNSUPPORTED = (
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 (JP2) image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive (unpack it first)"),
    (0, b"\x1f\x8b", "a gzip-compressed file"),
    (128, b"DICM", "a DICOM file that is not a whole-slide image"),
    (344, b"n+1\x00", "a NIfTI volume (open it in the MRI/CT tab)"),
)
_SLIDE_SUFFIXES = {
    ".svs": "an Aperio SVS", ".ndpi": "a Hamamatsu NDPI", ".mrxs": "a MIRAX", ".scn": "a Leica SCN",
    ".bif": "a Ventana BIF", ".vms": "a Hamamatsu VMS", ".vmu": "a Hamamatsu VMU", ".svslide": "a Sakura",
}


def _head(path: Path, size: int = 512) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as error:
        raise SlideError(f"{path}: cannot read ({error.strerror or error})") from None


def _match(head: bytes, table) -> str | None:
    for offset, magic, *name in table:
        if head[offset : offset + len(magic)] == magic:
            return name[0] if name else "TIFF"
    return None


def _dicom_in_folder(folder: Path, scan: int = 200) -> Path | None:
    """A DICOM file of a DICOM-WSI folder (OpenSlide opens the series from any of its files):
    the first ``*.dcm``, else the first of ``scan`` files with the DICM signature."""
    try:
        entries = sorted(entry for entry in folder.iterdir() if entry.is_file())
    except OSError as error:
        raise SlideError(f"{folder}: cannot list folder ({error.strerror or error})") from None
    named = [entry for entry in entries if entry.suffix.lower() == ".dcm"]
    if named:
        return named[0]
    return next((entry for entry in entries[:scan] if _head(entry, 132)[128:132] == b"DICM"), None)


def _check_tiff(path: Path) -> tuple[bool, bool]:
    """(is_ome, is_tiled_or_pyramidal) of a TIFF.

    Raises SlideError if tifffile cannot parse it or image data of its first pages or pyramid
    levels lies beyond the end of the file (a truncated download or copy).
    """
    import tifffile

    size = path.stat().st_size
    truncated = SlideError(f"{path.name}: truncated file ({size} bytes; a TIFF directory lies beyond its end)")
    try:
        with quiet_tifffile() as warnings, tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ValueError("no image in file")
            series = tif.series[0]
            pages = [tif.pages[i] for i in range(min(len(tif.pages), 64))]
            pages += [level.keyframe for level in series.levels]
            end = 0
            for page in pages:
                offsets, counts = getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ())
                if len(offsets):
                    end = max(end, max(o + c for o, c in zip(offsets, counts)))
            tiled = series.keyframe.is_tiled or len(series.levels) > 1
            is_ome = bool(tif.is_ome)
    except Exception as error:  # noqa: BLE001 - any parser failure means a broken TIFF
        if any("offset" in m for m in warnings):
            raise truncated from None
        raise SlideError(f"{path.name}: corrupt TIFF ({_one_line(error)[:200]})") from None
    if any("offset" in m for m in warnings):
        raise truncated
    if end > size:
        raise SlideError(f"{path.name}: truncated file ({size} bytes, its image data needs {end})")
    return is_ome, bool(tiled)


def _smoke_read(reader: SlideReader) -> None:
    """Decode one pixel of the smallest stored level so a corrupt file fails at open."""
    level = reader.stored_level_count - 1
    w, h = reader.level_dimensions[level]
    ds = reader.level_downsamples[level]
    reader.read_region((int(w // 2 * ds), int(h // 2 * ds)), level, (1, 1))


def _try(backend, path: Path, mpp) -> tuple[SlideReader | None, str | None]:
    """(reader, None) if ``backend`` opens the file and decodes a pixel, else (None, reason)."""
    reader = None
    try:
        with quiet_tifffile():
            reader = backend(path, mpp)
            _smoke_read(reader)
        return reader, None
    except Exception as error:  # noqa: BLE001 - any backend failure becomes a one-line reason
        if reader is not None:
            reader.close()
        return None, _one_line(error)


def _large_tiff(path: Path) -> bool:
    """True for a TIFF whose first image is too large to hold in memory as a plain image
    (tiffslide then reads its strips lazily)."""
    import tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return page.imagewidth * page.imagelength > LARGE_PLAIN_PIXELS
    except Exception:  # noqa: BLE001 - _check_tiff already parsed it; be safe
        return False


#: DICOM-WSI attributes OpenSlide needs, and what each is for
_DICOM_WSI_REQUIRED = (
    ("ImageType", "(0008,0008), which tells pyramid levels (VOLUME) from label and overview images"),
    ("TotalPixelMatrixColumns", "(0048,0006), the width of the whole slide"),
    ("TotalPixelMatrixRows", "(0048,0007), the height of the whole slide"),
    ("Columns", "(0028,0011), the tile width"),
    ("Rows", "(0028,0010), the tile height"),
)


def _dicom_wsi_missing(path: Path) -> str | None:
    """Plain words for a required DICOM-WSI attribute missing from ``path`` (None if all present
    or the header cannot be read)."""
    import pydicom

    try:
        header = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - unreadable: OpenSlide's own message is all there is
        return None
    for keyword, meaning in _DICOM_WSI_REQUIRED:
        if keyword not in header or header.get(keyword) in (None, ""):
            return f"the file has no {keyword} {meaning}"
    return None


def open_slide(path: str | os.PathLike, mpp=None) -> SlideReader:
    """Open a whole-slide image, a DICOM-WSI folder or a plain image as a :class:`SlideReader`.

    Parameters
    ----------
    path : slide file (SVS, NDPI, MRXS, SCN, BIF, Philips/generic/OME TIFF, DICOM), a DICOM-WSI
        folder, or a plain image (PNG, JPEG, BMP, GIF, non-pyramidal TIFF incl. 16-bit/grey).
    mpp : micrometres per level-0 pixel given by the user: one number or (mpp_x, mpp_y). It
        replaces the file's value (``mpp_source == "user"``). Without it a slide that does not
        state its mpp has ``mpp is None``: never assumed.

    Returns
    -------
    SlideReader with ``backend`` ``"openslide"``, ``"tiffslide"`` or ``"image"``.

    Raises
    ------
    SlideError
        Missing path, a folder without DICOM files, empty, unreadable, truncated or corrupt file.
    UnsupportedFormatError
        A readable file in a format none of the backends reads (or an image with a slide suffix).
    InputError
        An invalid ``mpp``.
    """
    import openslide

    if mpp is not None:
        parse_mpp(mpp)
    path = Path(path).expanduser()
    if not path.exists():
        raise SlideError(f"{path}: no such file")
    if path.is_dir():
        dicom = _dicom_in_folder(path)
        if dicom is None:
            raise SlideError(f"{path}: is a folder, not a slide (a DICOM-WSI folder must hold .dcm files)")
        reader = open_slide(dicom, mpp)
        reader.path = path
        return reader
    if path.stat().st_size == 0:
        raise SlideError(f"{path}: empty file (0 bytes)")
    head = _head(path)
    is_dicom = head[128:132] == b"DICM"  # before TIFF: a DICOM preamble may look like a TIFF header
    is_tiff = not is_dicom and _match(head, _TIFF) is not None
    is_ome = tiled = False
    if is_tiff:
        is_ome, tiled = _check_tiff(path)

    error = None
    vendor = None if is_ome else openslide.OpenSlide.detect_format(str(path))
    if vendor is not None:
        reader, error = _try(OpenSlideReader, path, mpp)
        if reader is not None:
            return reader
        if not is_tiff:
            missing = _dicom_wsi_missing(path) if vendor == "dicom" else None
            if missing:
                raise SlideError(f"{path.name}: cannot open this DICOM whole-slide image: {missing}")
            raise SlideError(f"{path.name}: cannot open {vendor} slide: {error}")
    if is_dicom:
        raise UnsupportedFormatError(
            f"{path.name}: a DICOM file that is not a whole-slide image (CT/MR volumes open in the MRI/CT tab)"
        )

    if is_tiff and (tiled or is_ome or error is not None or _large_tiff(path)):
        reader, tiffslide_error = _try(TiffSlideReader, path, mpp)
        if reader is not None:
            return reader
        raise SlideError(f"{path.name}: cannot open slide: {error or tiffslide_error}")

    image_format = _match(head, _IMAGES)
    suffix = path.suffix.lower()
    if suffix in _SLIDE_SUFFIXES and (image_format or is_tiff):
        kind = image_format or "TIFF"
        raise UnsupportedFormatError(
            f"{path.name}: named {suffix} but is a plain {kind} image, not {_SLIDE_SUFFIXES[suffix]} slide; "
            f"rename it to .{kind.lower()} to open it as an image"
        )
    if is_tiff:
        return read_tiff_image(path, mpp)
    if image_format is not None or head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return read_pil_image(path, mpp)
    known = _match(head, _UNSUPPORTED)
    if known is not None:
        raise UnsupportedFormatError(f"{path.name}: unsupported format: {known}")
    raise UnsupportedFormatError(
        f"{path.name}: not a slide or image format Lobule reads (OpenSlide/tiffslide formats, PNG, JPEG, TIFF)"
    )
