"""QuPath GeoJSON and LabelMe in/out: round trip unchanged, repairs reported, bad input refused in
one line with the current regions untouched."""
from __future__ import annotations

import json

import numpy as np
import pytest

from shapely.geometry import box

from lobule.inference.annotations.geojson_io import read_regions, regions_to_geojson, write_geojson
from lobule.inference.errors import InputError
from lobule.inference.regions import Region
from lobule.resources.classes import LIVER_CLASSES

QUPATH = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "id": "0b7c6f36-5b4e-4c52-9a52-1f0d4a0c2b11",
         "geometry": {"type": "Polygon", "coordinates": [
             [[200, 300], [1400, 300], [1400, 1500], [200, 1500], [200, 300]],
             [[600, 700], [900, 700], [900, 1000], [600, 1000], [600, 700]]]},
         "properties": {"objectType": "annotation", "name": "portal tract",
                        "classification": {"name": "Tumor", "color": [200, 0, 0]}, "isLocked": False}},
        {"type": "Feature", "id": "5f0e2c4e-93a1-4b8b-8f3a-6d2f3c9e7a10",
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[1500.5, 1600.25], [2100, 1600.25], [2100, 2500], [1500.5, 2500], [1500.5, 1600.25]]],
             [[[100, 2000], [700, 2000], [400, 2600], [100, 2000]]]]},
         "properties": {"objectType": "annotation", "name": "lobules",
                        "classification": {"name": "Region*", "color": [0, 0, 180]},
                        "measurements": {"Area": 1.0}}},
    ],
}


def _write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_qupath_holed_polygon_and_multipolygon_round_trip_unchanged(session, tmp_path):
    source = _write(tmp_path / "qupath.geojson", QUPATH)
    report = session.import_regions(source)
    assert report.summary() == "read 2 regions from qupath.geojson"
    assert session.regions.names() == ["portal tract", "lobules"]
    portal = session.regions.get("portal tract")
    assert portal.geometry.geom_type == "Polygon" and len(portal.geometry.interiors) == 1
    assert portal.geometry.area == 1200 * 1200 - 300 * 300
    assert portal.classification == "Tumor" and portal.colour == (200, 0, 0)
    assert session.regions.get("lobules").geometry.geom_type == "MultiPolygon"
    out = session.export_geojson(tmp_path / "out.geojson", class_masks=False)
    assert json.loads(out.read_text()) == QUPATH


def test_class_masks_export_and_reimport_ignores_them(session, tmp_path):
    session.import_regions(_write(tmp_path / "q.geojson", QUPATH))
    session.fill_polygon(box(300, 400, 500, 600), 6)
    data = json.loads(session.export_geojson(tmp_path / "c.geojson", corrections_only=True).read_text())
    detections = [f for f in data["features"] if f["properties"]["objectType"] == "detection"]
    assert [f["properties"]["classification"]["name"] for f in detections] == ["heterochromatic"]
    assert detections[0]["properties"]["corrected"] is True
    again = read_regions(tmp_path / "c.geojson", session.slide_size)
    assert regions_to_geojson(again.regions) == QUPATH and len(again.skipped) == 1
    # merged class masks of a small region: every class present in it, as detections
    session.add_regions([Region("small", box(250, 350, 550, 650))])
    small = [r for r in session.regions if r.name == "small"]
    data = json.loads(write_geojson(tmp_path / "m.geojson", small, session.labels).read_text())
    names = {f["properties"]["classification"]["name"] for f in data["features"][1:]}
    present = {c.key for c in LIVER_CLASSES if c.id and (session.labels.read_labels((250, 350, 300, 300)) == c.id).any()}
    assert names == present and "heterochromatic" in names


def test_self_intersection_is_repaired_and_reported(tmp_path):
    bowtie = {"type": "Feature", "geometry": {"type": "Polygon",
                                              "coordinates": [[[0, 0], [100, 100], [100, 0], [0, 100], [0, 0]]]},
              "properties": {"name": "bow tie"}}
    report = read_regions(_write(tmp_path / "b.geojson", bowtie), (2220, 2967))
    geometry = report.regions[0].geometry
    assert geometry.is_valid and geometry.area == pytest.approx(5000)
    assert report.repaired == ["bow tie"] and "repaired invalid outline of 'bow tie' (make_valid)" in report.summary()


def test_labelme_polygons_of_the_real_ffa_labels(shared_data):
    path = sorted((shared_data / "ffa_nonperfusion").glob("*/labelme.json"))[0]
    data = json.loads(path.read_text())
    report = read_regions(path, (data["imageWidth"], data["imageHeight"]))
    polygons = [s for s in data["shapes"] if s["shape_type"] == "polygon" and len(s["points"]) >= 3]
    assert len(report.regions) + len(report.skipped) == len(polygons)
    assert {r.classification for r in report.regions} <= {s["label"] for s in polygons}
    assert report.regions[0].name == polygons[0]["label"]
    assert report.regions[1].name == f"{polygons[1]['label']} (2)"


def test_100000_vertex_polygon_is_read(tmp_path):
    t = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    r = 800 + 30 * np.sin(500 * t)
    ring = np.c_[1100 + r * np.cos(t), 1400 + r * np.sin(t)].tolist()
    path = _write(tmp_path / "big.geojson", {"type": "Polygon", "coordinates": [ring + [ring[0]]]})
    report = read_regions(path, (2220, 2967))
    assert report.max_vertices == 100_001 and report.regions[0].name == "region 1"


@pytest.mark.parametrize("content, message", [
    ("", "big.geojson is empty"),
    ("  \n", "is empty"),
    ('{"type": "FeatureCollection", "features": [', "is not valid JSON (line 1, column"),
    ('{"hello": 1}', "neither GeoJSON"),
    ('{"type": "Point", "coordinates": [1, 2]}', "holds no Polygon or MultiPolygon"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1]]]}', "unreadable geometry"),
    ('{"type": "Polygon", "coordinates": [[[5000, 5000], [6000, 5000], [6000, 6000], [5000, 5000]]]}',
     "lies outside the slide (2220 x 2967 px)"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [9000, 0], [9000, 900], [0, 0]]]}', "beyond the slide"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [NaN, 0], [90, 90], [0, 0]]]}', "non-finite"),
])
def test_bad_input_one_line_and_current_work_untouched(session, tmp_path, content, message):
    session.import_regions(_write(tmp_path / "good.geojson", QUPATH))
    before = session.regions.regions
    steps = len(session.history)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        session.import_regions(_write(tmp_path / "big.geojson", content))
    assert "\n" not in str(info.value)
    assert session.regions.regions == before and len(session.history) == steps


def test_slightly_outside_is_clipped_and_missing_file_is_one_line(tmp_path):
    path = _write(tmp_path / "edge.geojson", {"type": "Polygon", "coordinates": [[[2000, 10], [2250, 10],
                                                                                   [2250, 200], [2000, 10]]]})
    report = read_regions(path, (2220, 2967))
    assert report.clipped == ["region 1"] and report.regions[0].geometry.bounds[2] == 2220
    with pytest.raises(InputError, match="not found"):
        read_regions(tmp_path / "nope.geojson")
