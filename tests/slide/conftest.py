"""Fixtures of the slide-reading tests: small files in every layout open_slide dispatches."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lobule.inference.slide.synthetic import render_he


@pytest.fixture(scope="session")
def he_image() -> np.ndarray:
    """(600, 800, 3) uint8 RGB synthetic H&E content."""
    return render_he((0, 0), (800, 600), 1.0, (800, 600), seed=5)


@pytest.fixture(scope="session")
def ome_tiff(tmp_path_factory, he_image):
    """OME-TIFF with a 3-level SubIFD pyramid (JPEG tiles), PhysicalSize 0.25 um."""
    import tifffile

    image = render_he((0, 0), (2048, 1536), 1.0, (2048, 1536), seed=2)
    path = tmp_path_factory.mktemp("ome") / "pyramid.ome.tif"
    opts = dict(tile=(256, 256), photometric="rgb", compression="jpeg")
    meta = {"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.25, "PhysicalSizeYUnit": "µm"}
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(image, subifds=2, metadata=meta, **opts)
        for k in (2, 4):
            tif.write(cv2.resize(image, (2048 // k, 1536 // k), interpolation=cv2.INTER_AREA), subfiletype=1, **opts)
    return path, image
