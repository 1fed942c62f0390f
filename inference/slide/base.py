"""The slide reader interface every backend implements.

Conventions (docs/architecture.md): locations are (x, y) in level-0 pixels, sizes are
(width, height), images are (H, W, 3) uint8 RGB. Readers are safe to call from several threads.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class SlideReader(ABC):
    """A whole-slide image (or a plain image served as a one-level slide).

    Attributes (read-only)
    ----------------------
    path : the file (or folder, for DICOM-WSI / MIRAX) that was opened.
    backend : ``"openslide"``, ``"tiffslide"`` or ``"image"``.
    level_count : number of levels, including downsampled levels the reader builds and caches
        for slides stored with fewer levels than a viewer needs.
    level_dimensions : ((width, height), ...) per level, level 0 first.
    level_downsamples : (float, ...) level-0 pixels per level pixel, per level.
    mpp : (mpp_x, mpp_y) micrometres per level-0 pixel, or None when unknown. Never guessed.
    mpp_source : ``"metadata"``, ``"user"`` (given to :func:`open_slide`) or None.
    objective_power : scanning objective magnification (e.g. 20.0) or None.
    vendor : format/vendor name (e.g. ``"aperio"``) or None.
    properties : all backend metadata as strings.
    associated_image_names : names of associated images (``"thumbnail"``, ``"label"``, ``"macro"``...).
    """

    path: Path
    backend: str

    # --- metadata ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def level_dimensions(self) -> tuple[tuple[int, int], ...]: ...

    @property
    @abstractmethod
    def level_downsamples(self) -> tuple[float, ...]: ...

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 (width, height)."""
        return self.level_dimensions[0]

    @property
    def stored_level_count(self) -> int:
        """Number of levels stored in the file; levels from this index on are virtual (built
        by the reader by 2x area averaging of the level above, and cached)."""
        return self.level_count

    def is_virtual_level(self, level: int) -> bool:
        """True for a level built by the reader, not stored in the file."""
        return level >= self.stored_level_count

    @property
    @abstractmethod
    def mpp(self) -> tuple[float, float] | None: ...

    @property
    @abstractmethod
    def mpp_source(self) -> str | None: ...

    def set_mpp(self, mpp: float | tuple[float, float]) -> None:
        """Give the micrometres per level-0 pixel (one number or (mpp_x, mpp_y)), e.g. entered
        by the user for a slide without it; afterwards ``mpp_source == "user"``.

        Raises InputError for a value that is not one or two positive finite numbers.
        """
        raise NotImplementedError

    @property
    @abstractmethod
    def objective_power(self) -> float | None: ...

    @property
    @abstractmethod
    def vendor(self) -> str | None: ...

    @property
    @abstractmethod
    def properties(self) -> Mapping[str, str]: ...

    @property
    @abstractmethod
    def associated_image_names(self) -> tuple[str, ...]: ...

    @abstractmethod
    def associated_image(self, name: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB associated image. Raises KeyError for an unknown name."""

    # --- pixels -----------------------------------------------------------------------------
    @abstractmethod
    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        """Read pixels of one level.

        Parameters
        ----------
        location : (x, y) top-left corner in level-0 pixels (may lie outside the slide).
        level : pyramid level, 0 <= level < level_count.
        size : (width, height) in pixels of ``level``.

        Returns
        -------
        (height, width, 3) uint8 RGB; area outside the slide is white (255).

        Raises
        ------
        ValueError
            For a level out of range or a non-positive size.
        SlideError
            If the file cannot be decoded there (corrupt or truncated data).
        """

    def stored_tile_size(self, level: int) -> tuple[int, int] | None:
        """(width, height) of the tiles ``level`` is stored in, where this reader decodes them
        itself (a read aligned to them decodes each stored tile once, for that read alone);
        None where the backend assembles regions in its own way."""
        return None

    def read_region_bgrx(self, location: tuple[int, int], level: int, out: np.ndarray) -> None:
        """Read pixels of one level for display, as B, G, R, 255 bytes.

        The pixels of :meth:`read_region` (``location`` and ``level`` as there, the size given by
        ``out``) in the byte order of a 32-bit ``0xffRRGGBB`` screen image on a little-endian
        machine, so a viewer can decode into its image memory without a conversion. Backends
        with direct tile access decode straight into that layout; this default converts the RGB.

        Parameters
        ----------
        out : (height, width, 4) uint8, C-contiguous; overwritten.

        Raises
        ------
        ValueError, SlideError
            As :meth:`read_region`; also ValueError for an ``out`` of another shape or dtype.
        """
        import cv2

        height, width = bgrx_shape(out)
        cv2.cvtColor(self.read_region(location, level, (width, height)), cv2.COLOR_RGB2BGRA, dst=out)

    def best_level_for_downsample(self, downsample: float) -> int:
        """The highest-resolution level whose downsample is <= ``downsample`` (level 0 if none)."""
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= downsample * 1.0001:
                best = level
        return best

    def thumbnail(self, max_size: tuple[int, int] = (512, 512)) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the whole slide fitting in ``max_size`` (width, height),
        aspect ratio kept, read from the smallest sufficient level (never the full level 0 of a
        large slide)."""
        import cv2

        width, height = self.dimensions
        scale = max(width / max_size[0], height / max_size[1], 1.0)
        level = self.best_level_for_downsample(scale)
        lw, lh = self.level_dimensions[level]
        image = self.read_region((0, 0), level, (lw, lh))
        target = (max(1, round(width / scale)), max(1, round(height / scale)))
        if (lw, lh) != target:
            image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
        return image

    # --- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:  # pragma: no cover - backends override
        """Release file handles. Reading after close raises SlideError."""

    def __enter__(self) -> "SlideReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"{type(self).__name__}({self.path.name!r}, {w}x{h}, levels={self.level_count}, mpp={self.mpp})"


def bgrx_shape(out: np.ndarray) -> tuple[int, int]:
    """(height, width) of a display buffer for :meth:`SlideReader.read_region_bgrx`.

    Raises ValueError unless ``out`` is a writable, C-contiguous (height, width, 4) uint8
    array with height and width > 0.
    """
    if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 4
            and out.flags.c_contiguous and out.flags.writeable and out.shape[0] > 0 and out.shape[1] > 0):
        shape = getattr(out, "shape", None)
        raise ValueError(f"expected a writable C-contiguous (height, width, 4) uint8 array, got {shape}")
    return out.shape[0], out.shape[1]
