"""Slide reading: ``open_slide(path)`` picks OpenSlide, tiffslide or the plain-image reader.

Implementation lives in the modules of this folder (owned by the slide-I/O work).
"""
from lobule.inference.slide.base import SlideReader

__all__ = ["SlideReader"]
