"""Pyramidal whole-slide backends: OpenSlide (C library, vendor formats) and tiffslide
(pure Python on tifffile/zarr, for TIFF flavours OpenSlide lacks, e.g. OME-TIFF)."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from lobule.inference.errors import SlideError
from lobule.inference.slide.levels import LeveledReader, level_origin, metadata_mpp, to_rgb8
from lobule.inference.slide.tifftiles import openslide_tiles, tiffslide_tiles


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def _strings(properties) -> dict[str, str]:
    return {str(k): str(v) for k, v in properties.items() if v is not None}


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_UM_PER_UNIT = {"pm": 1e-6, "Å": 1e-4, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}


def ome_mpp(ome_xml: str | None) -> tuple[float, float] | None:
    """(mpp_x, mpp_y) from the first image's ``Pixels PhysicalSizeX/Y`` of an OME-XML string
    (units converted to micrometres; the OME default unit is µm), or None."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(ome_xml or "")
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None

    def size(axis):
        value = _number(pixels.get(f"PhysicalSize{axis}"))
        factor = _UM_PER_UNIT.get(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        return None if value is None or factor is None else value * factor

    return metadata_mpp(size("X"), size("Y"))


class OpenSlideReader(LeveledReader):
    """A slide read with OpenSlide (SVS, NDPI, MIRAX, Philips, SCN, BIF, DICOM-WSI, generic TIFF...).

    One OpenSlide handle serves all threads: the C library is thread-safe and ctypes releases
    the GIL during reads, so reads run in parallel. OpenSlide puts a handle into a permanent
    error state after a decode failure; the failing read raises :class:`SlideError` and the
    handle is reopened so later reads of intact areas still work.
    """

    backend = "openslide"

    def __init__(self, path: Path, mpp=None):
        import openslide

        self._openslide = openslide
        self.path = self._file = Path(path)  # path may be set to a DICOM-WSI folder by open_slide
        self._handle_lock = threading.Lock()
        self._slide = openslide.OpenSlide(str(self._file))
        props = self._slide.properties
        self._properties = _strings(props)
        self._mpp = metadata_mpp(props.get("openslide.mpp-x"), props.get("openslide.mpp-y"))
        self._objective_power = _number(props.get("openslide.objective-power"))
        self._vendor = props.get("openslide.vendor")
        self._associated = tuple(self._slide.associated_images.keys())
        tile_sizes = [
            (int(props.get(f"openslide.level[{i}].tile-width", 0)), int(props.get(f"openslide.level[{i}].tile-height", 0)))
            for i in range(self._slide.level_count)
        ]
        self._tiles = openslide_tiles(self._file, self._vendor, self._slide.level_dimensions, tile_sizes)
        self._init_levels(self._slide.level_dimensions, self._slide.level_downsamples, mpp)

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        return self._associated

    def associated_image(self, name: str) -> np.ndarray:
        if name not in self._associated:
            raise KeyError(name)
        try:
            image = self._slide.associated_images[name]
        except self._openslide.OpenSlideError as error:
            self._reopen()
            raise SlideError(f"{self.path.name}: cannot read associated image {name!r}: {_one_line(error)}") from None
        return to_rgb8(np.asarray(image))

    def _read_stored(self, location, level, size) -> np.ndarray:
        if self._tiles is not None and self._tiles.handles(level):
            return self._tiles.read(level, level_origin(location, self._downsamples[level]), size)
        slide = self._slide
        try:
            image = slide.read_region(location, level, size)
        except self._openslide.OpenSlideError as error:
            self._reopen(slide)
            raise SlideError(f"{self.path.name}: cannot decode level {level} at {location}: {_one_line(error)}") from None
        return to_rgb8(np.asarray(image))

    def _reopen(self, failed=None) -> None:
        """Replace a handle that OpenSlide put into its error state (once per failed handle)."""
        with self._handle_lock:
            if failed is not None and failed is not self._slide:
                return
            try:
                self._slide = self._openslide.OpenSlide(str(self._file))
            except self._openslide.OpenSlideError:
                pass  # keep the failed handle: its reads keep raising SlideError

    def _close(self) -> None:
        if self._tiles is not None:
            self._tiles.close()
        self._slide.close()


class TiffSlideReader(LeveledReader):
    """A slide read with tiffslide (tifffile + zarr): OME-TIFF, and TIFFs OpenSlide rejects.

    tiffslide keeps one file handle per thread, so concurrent reads are safe.
    """

    backend = "tiffslide"

    def __init__(self, path: Path, mpp=None):
        import tiffslide

        self.path = Path(path)
        self._slide = tiffslide.TiffSlide(str(self.path))
        props = self._slide.properties
        self._properties = _strings(props)
        self._mpp = metadata_mpp(props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y"))
        if self._mpp is None and self._slide.ts_tifffile.is_ome:
            self._mpp = ome_mpp(self._slide.ts_tifffile.ome_metadata)
        self._objective_power = _number(props.get("tiffslide.objective-power"))
        self._vendor = props.get("tiffslide.vendor") or ("ome-tiff" if self._slide.ts_tifffile.is_ome else "generic-tiff")
        self._associated = tuple(self._slide.associated_images.keys())
        series = self._slide.ts_tifffile.series[int(props.get("tiffslide.series-index") or 0)]
        # tifffile hands out the raw components of Aperio's YCbCr JPEG 2000 (33003) tiles
        self._ycbcr = tuple(level.keyframe.compression == 33003 for level in series.levels)
        self._scale = self._value_scale()
        self._tiles = tiffslide_tiles(self.path, self._slide.ts_tifffile, int(props.get("tiffslide.series-index") or 0))
        self._init_levels(self._slide.level_dimensions, self._slide.level_downsamples, mpp)

    def _value_scale(self) -> float | None:
        """Value mapped to white for non-uint8 slides, from the smallest stored level, so every
        region of the slide is scaled alike (None for uint8)."""
        level = self._slide.level_count - 1
        w, h = self._slide.level_dimensions[level]
        cw, ch = min(w, 4096), min(h, 4096)  # the centre of a large single level is enough
        ds = self._slide.level_downsamples[level]
        origin = (int((w - cw) // 2 * ds), int((h - ch) // 2 * ds))
        sample = self._slide.read_region(origin, level, (cw, ch), as_array=True)
        if sample.dtype == np.uint8:
            return None
        if sample.dtype.kind == "f":
            top = float(np.nanmax(sample))
            return 1.0 if top <= 1.0 else top
        return float(max(int(sample.max()), 1))

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        return self._associated

    def associated_image(self, name: str) -> np.ndarray:
        if name not in self._associated:
            raise KeyError(name)
        try:
            image = self._slide.associated_images[name]
        except Exception as error:  # noqa: BLE001 - any decoder failure is a corrupt file
            raise SlideError(f"{self.path.name}: cannot read associated image {name!r}: {_one_line(error)}") from None
        return to_rgb8(np.asarray(image))

    def _read_stored(self, location, level, size) -> np.ndarray:
        if self._tiles is not None and self._tiles.handles(level):
            return self._tiles.read(level, level_origin(location, self._downsamples[level]), size)
        try:
            array = self._slide.read_region(location, level, size, as_array=True, padding=True)
        except Exception as error:  # noqa: BLE001 - any decoder failure is a corrupt file
            raise SlideError(f"{self.path.name}: cannot decode level {level} at {location}: {_one_line(error)}") from None
        rgb = to_rgb8(array, self._scale)
        if self._ycbcr[level]:
            rgb = cv2.cvtColor(np.ascontiguousarray(rgb[..., [0, 2, 1]]), cv2.COLOR_YCrCb2RGB)
        # tiffslide pads with black: paint the area outside the level white
        rx, ry = self._slide._read_region_loc_transform(location, level)
        lw, lh = self._slide.level_dimensions[level]
        width, height = size
        if rx < 0 or ry < 0 or rx + width > lw or ry + height > lh:
            if not rgb.flags.writeable:
                rgb = rgb.copy()
            rgb[: max(0, min(height, -ry))] = 255
            rgb[max(0, lh - ry) :] = 255
            rgb[:, : max(0, min(width, -rx))] = 255
            rgb[:, max(0, lw - rx) :] = 255
        return rgb

    def _close(self) -> None:
        if self._tiles is not None:
            self._tiles.close()
        self._slide.close()
