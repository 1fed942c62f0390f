"""Reading fundus angiograms: JPEG, PNG, TIFF (8 or 16 bit) and DICOM ophthalmic photographs.

Every reader returns an :class:`Angiogram`: the pixels as stored, plus an 8-bit grayscale view
for the model and an 8-bit RGB view for display. Images with more than 8 bits are stretched
linearly from their minimum to their maximum into 0..255 (the paper's pipeline is 8-bit and its
CLAHE re-normalises the contrast anyway).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError, UnsupportedFormatError

MIN_SIDE = 48
"""Smallest image side (px) accepted: the training patch size of the paper (48x48)."""

MAX_PIXELS = 2**27
"""Largest image accepted (134 megapixels, checked from the file header before decoding):
ultra-widefield angiograms are about 4000x4000 px (16 megapixels)."""

NOISE_CORRELATION = 0.3
"""Correlation of horizontally neighbouring pixels below which an image is warned as noise
(photographs, angiograms included, are above 0.8; independent noise is near 0)."""

SATURATION_LIMIT = 0.25
"""Mean HSV saturation above which an image is colourful (fluorescein angiograms are gray)."""

CHROMATICITY_STD_LIMIT = 0.015
"""Chromaticity spread above which the colour varies across the image (a tinted monochrome
angiogram has one chromaticity everywhere; a colour fundus photo does not)."""

_RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
_DICOM_SUFFIXES = {".dcm", ".dicom"}
SUPPORTED_SUFFIXES = tuple(sorted(_RASTER_SUFFIXES | _TIFF_SUFFIXES | _DICOM_SUFFIXES))


@dataclass(frozen=True)
class Angiogram:
    """An opened image.

    Attributes
    ----------
    path : where it was read from.
    pixels : (H, W) or (H, W, 3) array as stored (uint8, uint16, or float for some DICOM).
    gray8 : (H, W) uint8 grayscale (ITU-R BT.601 luma for colour input).
    rgb8 : (H, W, 3) uint8 for display.
    bit_depth : bits per sample of ``pixels`` (8 or 16 typically).
    um_per_px : pixel size from the file (DICOM Pixel Spacing), or None when the file has none.
    warnings : one-line warnings for the user (e.g. "does not look like an angiogram").
    """

    path: Path
    pixels: np.ndarray
    gray8: np.ndarray
    rgb8: np.ndarray
    bit_depth: int
    um_per_px: float | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.gray8.shape


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale any numeric array to uint8: uint8 unchanged, others stretched min..max -> 0..255.

    A constant image becomes zeros.
    """
    if pixels.dtype == np.uint8:
        return pixels
    data = pixels.astype(np.float64)
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(pixels.shape, np.uint8)
    return np.clip(np.round((data - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def rgb_to_gray(rgb8: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma, Y = 0.299 R + 0.587 G + 0.114 B (BT.601)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb8), cv2.COLOR_RGB2GRAY)


def angiogram_warnings(rgb8: np.ndarray) -> list[str]:
    """Warnings when an RGB image does not look like a fluorescein angiogram.

    FFA images are grayscale (or a single tint). A colour fundus photograph has strong and
    varying colour: mean HSV saturation (over pixels brighter than 10 % of full scale) above
    :data:`SATURATION_LIMIT` and chromaticity standard deviation above
    :data:`CHROMATICITY_STD_LIMIT`.
    """
    import cv2

    if rgb8.ndim != 3:
        return []
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb8), cv2.COLOR_RGB2HSV)
    lit = hsv[..., 2] > 25
    if lit.sum() < 100:
        return []
    saturation = float(hsv[..., 1][lit].mean()) / 255.0
    rgb = rgb8[lit].astype(np.float64) + 1.0
    chroma_std = float((rgb / rgb.sum(axis=1, keepdims=True)).std(axis=0).max())
    if saturation > SATURATION_LIMIT and chroma_std > CHROMATICITY_STD_LIMIT:
        return [
            f"this image does not look like a fluorescein angiogram (strong colour, mean saturation "
            f"{saturation:.2f}); it may be a colour fundus photograph, and CNP results on it are not meaningful"
        ]
    return []


def noise_warnings(gray8: np.ndarray) -> list[str]:
    """Warnings when a grayscale image has no picture in it: one value everywhere, or pixels
    uncorrelated with their neighbours (random noise, e.g. a 16-bit file of sensor noise).

    The neighbour correlation is Pearson's r between each pixel and the one to its right, on at
    most 512 rows (every k-th row), compared with :data:`NOISE_CORRELATION`.
    """
    if gray8.size == 0 or int(gray8.min()) == int(gray8.max()):
        return ["this image has one value everywhere: there is nothing to segment"]
    rows = gray8[:: max(1, gray8.shape[0] // 512)].astype(np.float64)
    left, right = rows[:, :-1].ravel(), rows[:, 1:].ravel()
    if left.std() == 0 or right.std() == 0:
        return []
    r = float(np.corrcoef(left, right)[0, 1])
    if r < NOISE_CORRELATION:
        return [f"this image looks like random noise (neighbouring pixels correlate r = {r:.2f}, photographs "
                f"> 0.8); CNP results on it are not meaningful"]
    return []


def _as_display(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gray8, rgb8) from (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) pixels of any dtype."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        gray8 = to_uint8(pixels)
        return gray8, np.repeat(gray8[..., None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb8 = to_uint8(pixels[..., :3])
        return rgb_to_gray(rgb8), np.ascontiguousarray(rgb8)
    raise InputError(f"unsupported pixel layout {pixels.shape}: expected grayscale or RGB")


def _bit_depth(pixels: np.ndarray) -> int:
    return int(pixels.dtype.itemsize * 8)


def _read_raster(path: Path) -> np.ndarray:
    import cv2

    size = _header_size(path)
    if size is not None:
        _check_size(path, *size)
    data = np.fromfile(path, dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if pixels is None:
        raise UnsupportedFormatError(f"cannot decode {path.name}: not a readable {path.suffix.lstrip('.').upper()} image")
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels


def _check_size(path: Path, width: int, height: int) -> None:
    """Refuse, from the header, images too small for the model or too large to decode."""
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{path.name} is {width}x{height} px: too small for CNP segmentation (needs at least {MIN_SIDE}x{MIN_SIDE} px)"
        )
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path.name} is {width}x{height} px: too large for an angiogram (at most {MAX_PIXELS / 1e6:.0f} megapixels)"
        )


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a raster image's header (Pillow reads no pixels), or None."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the size is checked here, not by Pillow's bomb warning
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - the decoder will say what is wrong
        return None


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    from lobule.inference.slide.tifftiles import quiet_tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            level = tif.series[0].levels[0]
            sizes = dict(zip(level.axes, level.shape))
            _check_size(path, sizes.get("X", 1), sizes.get("Y", 1))
            pixels = level.asarray()
    except (tifffile.TiffFileError, ValueError, IndexError, KeyError, MemoryError) as exc:
        raise UnsupportedFormatError(f"cannot read {path.name} as TIFF: {' '.join(str(exc).split())[:200]}") from None
    pixels = np.squeeze(pixels)
    if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
        pixels = np.moveaxis(pixels, 0, -1)  # planar RGB
    if pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4):
        pixels = pixels[0]  # a stack: the first frame
    return pixels


def _read_dicom(path: Path) -> tuple[np.ndarray, float | None]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except (InvalidDicomError, AttributeError, OSError, ValueError, RuntimeError, EOFError) as exc:
        raise UnsupportedFormatError(f"cannot read {path.name} as DICOM: {' '.join(str(exc).split())}") from None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    if samples == 1 and pixels.ndim == 3:
        pixels = pixels[0]
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels  # MONOCHROME1: bright = low values
    spacing = getattr(ds, "PixelSpacing", None) or getattr(ds, "ImagerPixelSpacing", None)
    um_per_px = None
    if spacing is not None and len(spacing) >= 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
        um_per_px = float(spacing[0]) * 1000.0 if abs(float(spacing[0]) - float(spacing[1])) < 1e-9 else None
    return pixels, um_per_px


def _sniff(path: Path) -> str:
    """'dicom', 'tiff' or 'raster', from magic bytes (suffixes can lie or be missing)."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return "dicom"
    return "raster"


def read_angiogram(path: str | Path) -> Angiogram:
    """Open an FFA image.

    Parameters
    ----------
    path : JPEG, PNG (8/16 bit, gray or RGB), TIFF (8/16 bit) or DICOM file.

    Returns
    -------
    :class:`Angiogram`, with ``warnings`` set when the image looks like a colour photograph,
    is blank, or looks like random noise (:func:`noise_warnings`).

    Raises
    ------
    InputError
        The file is missing, a folder, empty, smaller than 48x48 px or larger than
        :data:`MAX_PIXELS` (checked from the header before decoding).
    UnsupportedFormatError
        The file cannot be decoded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"image not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name} is empty (0 bytes)")
    kind = _sniff(path)
    um_per_px = None
    if kind == "dicom":
        pixels, um_per_px = _read_dicom(path)
    elif kind == "tiff":
        pixels = _read_tiff(path)
    else:
        pixels = _read_raster(path)
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    try:
        gray8, rgb8 = _as_display(pixels)
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from None
    height, width = gray8.shape
    if min(height, width) < MIN_SIDE:
        raise InputError(
            f"{path.name} is {width}x{height} px: too small for CNP segmentation (needs at least {MIN_SIDE}x{MIN_SIDE} px)"
        )
    warnings = noise_warnings(gray8) + (angiogram_warnings(rgb8) if pixels.ndim == 3 else [])
    return Angiogram(path, pixels, gray8, rgb8, _bit_depth(pixels), um_per_px, tuple(warnings))
