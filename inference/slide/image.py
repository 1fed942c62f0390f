"""Plain images (PNG, JPEG, BMP, non-pyramidal TIFF...) served as one-level slides.

The image is decoded once into memory as (H, W, 3) uint8 RGB (greyscale repeated, alpha put on
white, 16-bit and float data scaled by their maximum); zoomed-out views come from the virtual
levels of :class:`LeveledReader`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lobule.inference.errors import SlideError
from lobule.inference.slide.levels import LeveledReader, metadata_mpp, to_rgb8

MAX_PIXELS = 2**28  # larger PNG/JPEG images belong in a pyramidal TIFF (RGB: 0.8 GB in memory)
LARGE_PLAIN_PIXELS = 2**26  # larger non-pyramidal TIFFs are read lazily by tiffslide instead


class ImageReader(LeveledReader):
    """An in-memory image as a one-level slide (plus virtual levels).

    Parameters
    ----------
    path : the image file.
    pixels : (H, W, 3) uint8 RGB.
    vendor : the image format, e.g. ``"png"``.
    mpp : metadata (mpp_x, mpp_y) or None.
    user_mpp : the user override given to ``open_slide``, or None.
    properties : format metadata as strings.
    """

    backend = "image"

    def __init__(self, path: Path, pixels: np.ndarray, vendor: str, mpp=None, user_mpp=None, properties=None):
        self.path = Path(path)
        self._pixels = pixels
        self._pixels.setflags(write=False)
        self._vendor = vendor
        self._mpp = mpp
        self._objective_power = None
        self._properties = dict(properties or {})
        h, w = pixels.shape[:2]
        self._init_levels(((w, h),), (1.0,), user_mpp)

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        return ()

    def associated_image(self, name: str) -> np.ndarray:
        raise KeyError(name)

    def _read_stored(self, location, level, size) -> np.ndarray:
        (x, y), (width, height) = location, size
        h, w = self._pixels.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + width, w), min(y + height, h)
        if x0 == x and y0 == y and x1 == x + width and y1 == y + height:
            return self._pixels[y0:y1, x0:x1].copy()
        out = np.full((height, width, 3), 255, np.uint8)
        if x0 < x1 and y0 < y1:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = self._pixels[y0:y1, x0:x1]
        return out

    def _close(self) -> None:
        self._pixels = np.zeros((0, 0, 3), np.uint8)


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise SlideError(
            f"{path.name}: {width}x{height} px is too large for a plain image; convert it to a pyramidal TIFF"
        )


def read_tiff_image(path: Path, user_mpp=None) -> ImageReader:
    """A non-pyramidal TIFF (first series, first page/plane) as a one-level slide.

    mpp comes from the resolution tags only when their unit is centimetre (a unit of inch is
    nearly always a screen default such as 72 dpi, not a measured pixel size).
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.series[0].levels[0].keyframe if tif.series else tif.pages[0]
            _check_size(path, page.imagewidth, page.imagelength)
            array = page.asarray()
            mpp = None
            if page.tags.get("ResolutionUnit") is not None and page.tags["ResolutionUnit"].value == 3:
                xres, yres = page.get_resolution(tifffile.RESUNIT.MICROMETER)
                mpp = metadata_mpp(1 / xres if xres else None, 1 / yres if yres else None)
            axes = page.axes
    except SlideError:
        raise
    except Exception as error:  # noqa: BLE001 - any parser/decoder failure means a broken file
        raise SlideError(f"{path.name}: truncated or corrupt TIFF ({' '.join(str(error).split())[:200]})") from None
    array = _yxs(array, axes)
    if array.ndim == 3 and array.shape[2] > 4:  # multi-channel without colour meaning: first three
        array = array[..., :3]
    return ImageReader(path, _rgb8(path, array), "tiff", mpp=mpp, user_mpp=user_mpp)


def _yxs(array: np.ndarray, axes: str) -> np.ndarray:
    """(H, W) or (H, W, S) of a TIFF page array with tifffile ``axes`` (e.g. ``"YXS"``,
    ``"SYX"`` planar, ``"ZYX"``): other axes (pages, z, time) at their first plane. Spatial axes
    are never squeezed, so a 1x1 image stays (1, 1, S)."""
    if array.ndim != len(axes):  # unexpected: fall back to the trailing axes
        axes = "".join(a for a in "YXS"[: array.ndim]) if array.ndim <= 3 else "Q" * (array.ndim - 3) + "YXS"
    for index in reversed(range(len(axes))):
        if axes[index] not in "YXS":
            array = np.take(array, 0, axis=index)
    kept = [a for a in axes if a in "YXS"]
    order = [kept.index(a) for a in "YXS" if a in kept]
    return np.transpose(array, order)


def _rgb8(path: Path, array: np.ndarray) -> np.ndarray:
    try:
        return to_rgb8(array)
    except SlideError as error:
        raise SlideError(f"{path.name}: {error}") from None


def read_pil_image(path: Path, user_mpp=None) -> ImageReader:
    """A PNG, JPEG, BMP, GIF or WebP image as a one-level slide, turned upright by its EXIF
    orientation (mpp None: their dpi fields are screen settings, not pixel sizes)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_size(path, *image.size)
            fmt = (image.format or path.suffix.lstrip(".")).lower()
            image.load()
            image = ImageOps.exif_transpose(image)  # camera JPEGs: show them upright
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.asarray(image)
            elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                array = np.asarray(image.convert("RGBA"))
            else:
                array = np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError:
        raise SlideError(f"{path.name}: too large for a plain image; convert it to a pyramidal TIFF") from None
    except UnidentifiedImageError as error:
        raise SlideError(f"{path.name}: {' '.join(str(error).split())[:200]}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise SlideError(f"{path.name}: truncated or corrupt image ({' '.join(str(error).split())[:200]})") from None
    return ImageReader(path, _rgb8(path, array), fmt, user_mpp=user_mpp)
