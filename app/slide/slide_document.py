"""An opened slide as the GUI holds it: reader, thumbnail, associated images, user mpp (no Qt)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from lobule.inference.slide import SlideReader, open_slide
from lobule.core.errors import LobuleError

THUMBNAIL_SIZE = (1024, 1024)
ASSOCIATED_SIZE = 360  # long side of associated images kept for display, px


@dataclass
class SlideDocument:
    """A slide opened for viewing.

    Attributes
    ----------
    reader : the slide.
    thumbnail : (H, W, 3) uint8 RGB of the whole slide (long side <= 1024 px).
    associated : name -> (H, W, 3) uint8 RGB, shrunk to <= 360 px, of each associated image
        that could be read; ``associated_errors`` name -> one-line reason for the others.

    The pixel size lives in the reader (``reader.mpp``, ``reader.mpp_source``); a value the user
    types is given to the reader (:meth:`set_user_mpp`), so analyses started from the GUI use it.
    """

    reader: SlideReader
    thumbnail: np.ndarray
    associated: dict[str, np.ndarray] = field(default_factory=dict)
    associated_errors: dict[str, str] = field(default_factory=dict)

    @property
    def mpp(self) -> tuple[float, float] | None:
        """(mpp_x, mpp_y) micrometres per level-0 pixel, or None when unknown."""
        return self.reader.mpp

    @property
    def mpp_source(self) -> str | None:
        """``"metadata"``, ``"user"`` or None."""
        return self.reader.mpp_source

    def set_user_mpp(self, mpp) -> None:
        """Give the pixel size (one number or (x, y) um/px). Raises InputError if invalid."""
        self.reader.set_mpp(mpp)


def load_document(path: str | os.PathLike, mpp=None) -> SlideDocument:
    """Open ``path`` and read what the viewer shows first (runs on a worker thread).

    Raises
    ------
    SlideError, UnsupportedFormatError, InputError
        From :func:`lobule.inference.slide.open_slide`.
    """
    reader = open_slide(path, mpp)
    try:
        thumbnail = reader.thumbnail(THUMBNAIL_SIZE)
        document = SlideDocument(reader, thumbnail)
        for name in reader.associated_image_names:
            try:
                document.associated[name] = _shrink(reader.associated_image(name), ASSOCIATED_SIZE)
            except (LobuleError, KeyError, ValueError) as error:
                document.associated_errors[name] = str(error) or type(error).__name__
    except BaseException:
        reader.close()
        raise
    return document


def _shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(image)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
