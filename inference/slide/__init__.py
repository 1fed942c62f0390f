"""Slide reading: ``open_slide(path, mpp=None)`` picks OpenSlide, tiffslide or the plain-image
reader and returns a :class:`SlideReader` (level-0 (x, y) locations, RGB uint8, thread-safe)."""
from lobule.inference.slide.base import SlideReader
from lobule.inference.slide.factory import open_slide

__all__ = ["SlideReader", "open_slide"]
