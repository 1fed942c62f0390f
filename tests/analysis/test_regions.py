"""Regions: QuPath-style GeoJSON in and out, rasterisation, outlines, clipping."""
from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from lobule.inference.errors import InputError
from lobule.inference.regions import (
    Region,
    clip_to_slide,
    feature_collection,
    mask_to_geometry,
    rasterize,
    read_geojson,
)

HOLED = Polygon([(100, 100), (900, 100), (900, 700), (100, 700)], [[(300, 300), (500, 300), (500, 500), (300, 500)]])
MULTI = MultiPolygon([box(1000, 100, 1200, 300), Polygon([(1300, 100), (1500, 100), (1400, 300)])])


def test_geojson_round_trip_holed_polygon_and_multipolygon(tmp_path):
    regions = [Region("portal area", HOLED, "Region*", (0, 0, 180)), Region("two pieces", MULTI)]
    path = tmp_path / "regions.geojson"
    path.write_text(json.dumps(feature_collection([r.to_feature() for r in regions])))
    back = read_geojson(path)
    assert [r.name for r in back] == ["portal area", "two pieces"]
    assert back[0].geometry.equals(HOLED) and len(back[0].geometry.interiors) == 1
    assert back[1].geometry.equals(MULTI) and back[1].geometry.geom_type == "MultiPolygon"
    assert back[0].classification == "Region*" and back[0].colour == (0, 0, 180)
    feature = regions[0].to_feature()
    assert feature["properties"]["objectType"] == "annotation"
    assert feature["properties"]["classification"] == {"name": "Region*", "color": [0, 0, 180]}


def test_qupath_shapes_of_files(tmp_path):
    geometry = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}
    variants = {
        "feature": {"type": "Feature", "geometry": geometry, "properties": {"classification": {"name": "Tumor"}}},
        "bare": geometry,
        "list": [{"type": "Feature", "geometry": geometry, "properties": {"name": "a"}},
                 {"type": "Feature", "geometry": geometry, "properties": {"name": "a"}},
                 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}],
    }
    names = {}
    for key, data in variants.items():
        (tmp_path / f"{key}.json").write_text(json.dumps(data))
        names[key] = [r.name for r in read_geojson(tmp_path / f"{key}.json")]
    assert names == {"feature": ["Tumor"], "bare": ["region 1"], "list": ["a", "a (2)"]}


def test_self_intersecting_freehand_is_repaired(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    (tmp_path / "b.json").write_text(json.dumps(bowtie))
    region = read_geojson(tmp_path / "b.json")[0]
    assert region.geometry.is_valid and region.geometry.area == pytest.approx(50)


@pytest.mark.parametrize("content", ["not json", '{"type": "Point", "coordinates": [1, 2]}',
                                     '{"features": []}', '{"type": "FeatureCollection", "features": []}'])
def test_bad_region_files(tmp_path, content):
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(InputError):
        read_geojson(tmp_path / "r.json")
    with pytest.raises(InputError, match="not found"):
        read_geojson(tmp_path / "missing.json")


def test_clip_to_slide():
    inside = clip_to_slide(Region("r", box(-50, -50, 100, 100)), (1000, 800))
    assert inside.geometry.bounds == (0, 0, 100, 100)
    with pytest.raises(InputError, match="outside the slide"):
        clip_to_slide(Region("far", box(2000, 2000, 2100, 2100)), (1000, 800))


def test_rasterize_uses_pixel_centres():
    mask = rasterize(HOLED, (0, 0, 1000, 800), scale=4.0)  # 250 x 200 grid of 4-px pixels
    assert mask[25:175, 25:225].sum() == 150 * 200 - 50 * 50
    assert mask.sum() == 150 * 200 - 50 * 50
    circle = Point(50.3, 40.7).buffer(20, 128)
    yy, xx = np.mgrid[:100, :100] + 0.5
    assert np.array_equal(rasterize(circle, (0, 0, 100, 100)), (xx - 50.3) ** 2 + (yy - 40.7) ** 2 < 400)
    assert np.array_equal(rasterize(circle, (30, 20, 40, 40)), rasterize(circle, (0, 0, 100, 100))[20:60, 30:70])


def test_mask_outline_round_trip():
    rng = np.random.default_rng(3)
    import cv2

    mask = cv2.GaussianBlur(rng.random((120, 160)).astype(np.float32), (0, 0), 2) > 0.53
    mask[5, 5] = True  # an isolated pixel
    mask[100, 10:40] = True  # a 1-px line
    geometry = mask_to_geometry(mask, scale=3.0, offset=(30.0, 60.0))
    assert geometry.is_valid
    assert np.array_equal(rasterize(geometry, (10, 20, 160, 120), scale=3.0), mask)
