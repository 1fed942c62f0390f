"""classes.geojson sized for QuPath: outlines within half a pixel, coordinates with 2 decimals,
classification colours from the overlay palette."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import shapely

from lobule.inference.export.geojson import class_features, compact_geometry
from lobule.inference.labelstore import store_from_array
from lobule.inference.regions import Region, mask_to_geometry, rasterize
from lobule.resources.classes import DEFAULT_PALETTE, PALETTES, set_palette


def _blobs(seed=3, shape=(300, 400)) -> np.ndarray:
    """Round and ragged blobs (lipid-droplet-like), some close together, one with a hole."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(40):
        cy, cx, r = rng.uniform(20, shape[0] - 20), rng.uniform(20, shape[1] - 20), rng.uniform(3, 18)
        mask |= ((yy - cy) / rng.uniform(0.7, 1.3)) ** 2 + (xx - cx) ** 2 <= r * r
    mask &= rng.random(shape) > 0.02  # pinholes make ragged, holed outlines
    mask[150:160, 200:210] = False
    return mask


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_compact_outline_is_within_half_a_pixel_and_valid(scale):
    mask = _blobs()
    exact = mask_to_geometry(mask, scale=scale, offset=(1000.0, 2000.0))
    compact = compact_geometry(exact, tolerance=0.5 * scale)
    assert compact.is_valid and not compact.is_empty
    assert compact.hausdorff_distance(exact) <= 0.5 * scale + 0.01
    assert shapely.get_num_coordinates(compact) < 0.6 * shapely.get_num_coordinates(exact)
    assert compact.area == pytest.approx(exact.area, rel=0.02)
    text = shapely.to_geojson(compact)
    assert not re.search(r"\d\.\d{3}", text)  # at most 2 decimals
    # pixel centres still fall on the same side for all but a few edge pixels
    back = rasterize(compact, (int(1000 / scale), int(2000 / scale), mask.shape[1], mask.shape[0]), scale)
    assert (back != mask).mean() < 0.01


def test_class_features_use_the_palette_in_use(tmp_path):
    labels = np.zeros((64, 64), np.uint8)
    labels[10:30, 10:30] = 1  # steatosis
    labels[40:50, 5:60] = 4  # parenchyma
    store = store_from_array(tmp_path / "s.zarr", labels, mpp=0.5)
    region = Region("all", shapely.box(0, 0, 64, 64))
    try:
        for name in PALETTES:
            set_palette(name)
            features = class_features(store, region)
            colours = {f["properties"]["classification"]["name"]: f["properties"]["classification"]["color"]
                       for f in features}
            assert colours == {"steatosis": list(PALETTES[name][1]), "parenchyma": list(PALETTES[name][4])}
            for feature in features:
                assert json.loads(feature["geometry"])["type"] in ("Polygon", "MultiPolygon")
    finally:
        set_palette(DEFAULT_PALETTE)
    with pytest.raises(ValueError, match="unknown overlay palette 'pink'"):
        set_palette("pink")
