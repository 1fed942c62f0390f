"""Quantification against hand-computed values on synthetic class maps."""
from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import Polygon, box

from lobule.inference.errors import InputError
from lobule.inference.labelstore import store_from_array
from lobule.inference.liver.quantify import QuantSettings, quantify
from lobule.inference.regions import Region

MPP = 0.5  # um per label pixel; one pixel = 0.25 um^2


def _square(labels, x, y, side_x, side_y, value):
    labels[y : y + side_y, x : x + side_x] = value


def synthetic_map() -> np.ndarray:
    """600 x 600 px of parenchyma (class 4) with objects of known sizes; the 64-px chunk grid
    of the test store cuts several of them."""
    m = np.full((600, 600), 4, np.uint8)
    # lipid droplets (class 1): 10 px side (25 um^2, d 5.64 um: micro), 20 px (100 um^2, d 11.28:
    # macro, crossing chunk borders at 64), 30 px (225 um^2, macro), one 1-px speck (noise)
    _square(m, 20, 20, 10, 10, 1)
    _square(m, 55, 55, 20, 20, 1)
    _square(m, 100, 20, 30, 30, 1)
    m[5, 300] = 1
    # inflammatory nuclei (class 3), 12 x 12 px = 36 um^2 = 1 nucleus (nominal 38 um^2)
    for k in range(3):  # focus A: 3 nuclei, centres 15 um apart, crossing the border at x = 256
        _square(m, 230 + 30 * k, 300, 12, 12, 3)
    for k in range(2):  # pair B: 2 nuclei only, no focus
        _square(m, 400 + 30 * k, 100, 12, 12, 3)
    for k in range(4):  # chain C: 4 nuclei 18 um apart (single linkage joins them)
        _square(m, 50, 400 + 36 * k, 12, 12, 3)
    _square(m, 500, 500, 24, 19, 3)  # blob D: 456 px = 114 um^2 = 3 nuclei, one focus alone
    _square(m, 560, 30, 12, 12, 3)  # a lone nucleus
    # hydropic (class 5): 20 x 20 = 100 um^2 (counts), 19 x 19 = 90.25 (too small), 30 x 30 = 225
    _square(m, 300, 440, 20, 20, 5)
    _square(m, 360, 440, 19, 19, 5)
    _square(m, 250, 500, 30, 30, 5)
    # normal nuclei (class 2): two 10 x 10 and one touching pair forming a 10 x 25 component
    _square(m, 200, 200, 10, 10, 2)
    _square(m, 450, 300, 10, 10, 2)
    _square(m, 520, 200, 10, 25, 2)
    # a background hole (class 0) of 40 x 40 px
    _square(m, 150, 150, 40, 40, 0)
    return m


@pytest.fixture
def synthetic_store(tmp_path):
    return store_from_array(tmp_path / "s.zarr", synthetic_map(), mpp=MPP, scale=1.0, chunk=64)


# the synthetic map is 0.09 mm^2 with hydropic squares 10-15 um wide: grade it anyway, count them
GRADE_ANYWAY = dict(grading_min_fields=0.0, ballooning_min_width_um=5.0)


def test_hand_computed_values(synthetic_store):
    result = quantify(synthetic_store, Region("all", box(0, 0, 600, 600)), QuantSettings(**GRADE_ANYWAY), window=128)
    px = 0.25
    tissue_px = 600 * 600 - 1600
    assert result.region_area_um2 == 600 * 600 * px
    assert result.tissue_area_um2 == tissue_px * px
    classes = {row["key"]: row for row in result.classes}
    assert sum(row["area_um2"] for row in result.classes if row["id"] != 0) == result.tissue_area_um2
    assert sum(row["percent_of_tissue"] for row in result.classes if row["id"] != 0) == pytest.approx(100.0)
    assert classes["background"]["pixels"] == 1600

    s = result.droplets
    droplet_px = 100 + 400 + 900 + 1
    assert s["area_um2"] == droplet_px * px
    assert s["percent_of_tissue"] == pytest.approx(100 * droplet_px / tissue_px)
    assert (s["droplet_count"], s["macro_count"], s["micro_count"]) == (3, 2, 1)
    assert s["diameters_um"] == pytest.approx([2 * math.sqrt(a / math.pi) for a in (25, 100, 225)], abs=1e-3)
    assert s["macro_area_um2"] == 325 and s["micro_area_um2"] == 25

    inf = result.inflammation
    assert inf["foci_count"] == 3
    assert inf["nuclei_per_focus"] == [4, 3, 3]
    assert inf["inflammatory_nuclei_estimate"] == 3 + 2 + 4 + 3 + 1
    tissue_mm2 = tissue_px * px / 1e6
    assert inf["foci_per_mm2"] == pytest.approx(3 / tissue_mm2)
    field = math.pi * (22 / 20 / 2) ** 2
    assert inf["field_area_mm2"] == pytest.approx(field) and field == pytest.approx(0.95, abs=0.005)
    assert inf["foci_per_200x_field"] == pytest.approx(3 / tissue_mm2 * field)

    b = result.ballooning
    assert b["count"] == 2 and b["area_um2"] == 325
    assert b["per_mm2"] == pytest.approx(2 / tissue_mm2)
    assert b["percent_of_tissue"] == pytest.approx(100 * 325 / (tissue_px * px))

    assert (classes["normal_nuclei"]["components"], classes["normal_nuclei"]["nuclei_estimate"]) == (3, 1 + 1 + 2)

    grades = {g.component: g for g in result.grades}
    assert grades["steatosis"].grade == 0 and grades["steatosis"].value == pytest.approx(100 * droplet_px / tissue_px)
    assert grades["lobular inflammation"].grade == 3  # ~32 foci per field on this tiny map
    assert grades["hepatocyte ballooning"].grade == 2
    assert result.nas["grade"] == 5
    assert all("derived" in g.note for g in result.grades)


def test_result_does_not_depend_on_chunks_or_windows(tmp_path, synthetic_store):
    one_chunk = store_from_array(tmp_path / "one.zarr", synthetic_map(), mpp=MPP, chunk=1024)
    region = Region("all", box(0, 0, 600, 600))
    a = quantify(synthetic_store, region, QuantSettings(**GRADE_ANYWAY), window=64).as_dict()
    b = quantify(one_chunk, region, QuantSettings(**GRADE_ANYWAY), window=4096).as_dict()
    assert a == b


def test_settings_change_the_numbers(synthetic_store):
    region = Region("all", box(0, 0, 600, 600))
    strict = QuantSettings(focus_min_nuclei=4, macro_threshold_um=12.0, ballooning_min_area_um2=200, **GRADE_ANYWAY)
    r = quantify(synthetic_store, region, strict)
    assert r.inflammation["foci_count"] == 1
    assert (r.droplets["macro_count"], r.droplets["micro_count"]) == (1, 2)
    assert r.ballooning["count"] == 1
    close = quantify(synthetic_store, region, QuantSettings(focus_distance_um=16.0))
    assert close.inflammation["nuclei_per_focus"] == [3, 3]  # chain C (18 um apart) falls apart


def test_region_with_hole_and_scale(tmp_path):
    labels = synthetic_map()
    store = store_from_array(tmp_path / "x.zarr", labels, mpp=MPP, scale=2.0, chunk=64)
    # region in slide level-0 px (2 per label px): the left half, with a hole over the droplets
    outer = [(0, 0), (600, 0), (600, 1200), (0, 1200)]
    hole = [(20, 20), (300, 20), (300, 200), (20, 200)]
    result = quantify(store, Region("holed", Polygon(outer, [hole])))
    inside = np.zeros((600, 600), bool)
    inside[:, :300] = True
    inside[10:100, 10:150] = False
    assert result.region_area_um2 == inside.sum() * 0.25
    expected = np.bincount(labels[inside], minlength=7)
    assert [row["pixels"] for row in result.classes] == expected[:7].tolist()
    assert result.droplets["droplet_count"] == 0  # all three droplets are in the hole


def test_empty_region_gives_zeros(synthetic_store):
    result = quantify(synthetic_store, Region("nothing", box(1000, 1000, 1100, 1100)))
    assert result.tissue_area_um2 == 0 and result.inflammation["foci_count"] == 0
    assert [g.grade for g in result.grades] == [0, None, None] and result.nas["grade"] is None


def test_settings_validation_and_cli_strings():
    with pytest.raises(InputError):
        QuantSettings(focus_distance_um=-1)
    with pytest.raises(InputError):
        QuantSettings(focus_min_nuclei=0)
    s = QuantSettings.from_strings(["focus_min_nuclei=5", "field-number-mm=25"])
    assert s.focus_min_nuclei == 5 and s.field_number_mm == 25.0
    assert s.field_area_mm2 == pytest.approx(math.pi * (25 / 20 / 2) ** 2)
    with pytest.raises(InputError, match="unknown setting"):
        QuantSettings.from_strings(["nope=1"])
    with pytest.raises(InputError):
        QuantSettings.from_strings(["focus_min_nuclei=x"])


def test_chunked_components_equal_whole_map_labelling():
    import cv2

    from lobule.inference.liver.quantify.components import ChunkedComponents

    rng = np.random.default_rng(0)
    mask = cv2.GaussianBlur(rng.random((300, 410)).astype(np.float32), (0, 0), 3) > 0.52
    n, _, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    expected = sorted(zip(stats[1:, 4].tolist(), np.round(centres[1:, 0] + 0.5, 6).tolist()))
    for step in (16, 50, 1000):
        components = ChunkedComponents(centroids=True)
        for row, y in enumerate(range(0, 300, step)):
            for col, x in enumerate(range(0, 410, step)):
                components.add((row, col), (x, y), mask[y : y + step, x : x + step])
        areas, cx, _ = components.finish()
        assert sorted(zip(areas.tolist(), np.round(cx, 6).tolist())) == expected


def test_rates_per_field_and_their_grades_need_one_field_of_tissue(tmp_path, synthetic_store):
    # 0.09 mm^2 of tissue with 3 foci: 32 foci per "field" by extrapolation; not graded
    small = quantify(synthetic_store, Region("small", box(0, 0, 600, 600)))
    assert small.tissue_area_mm2 < small.settings.field_area_mm2
    inf, bal = small.inflammation, small.ballooning
    assert inf["foci_count"] == 3 and inf["foci_per_mm2"] == pytest.approx(3 / small.tissue_area_mm2)
    assert inf["foci_per_200x_field"] is None and bal["per_200x_field"] is None
    assert inf["not_graded"] == bal["not_graded"] == "not graded: region smaller than one 200x field"
    grades = {g.component: g for g in small.grades}
    assert grades["steatosis"].grade == 0  # an area fraction, graded at any size
    for name in ("lobular inflammation", "hepatocyte ballooning"):
        assert grades[name].grade is None and grades[name].value is None
        assert grades[name].note.startswith("not graded: region smaller than one 200x field: 0.0896 mm^2")
    assert small.nas["grade"] is None and small.nas["note"].startswith("not graded")

    # 1.0 mm^2 of tissue (500 x 500 px at 2 um/px) with the same kind of foci: graded
    big_map = np.full((500, 500), 4, np.uint8)
    for fx in (50, 250):  # two foci of 3 nuclei (4 x 4 px = 64 um^2 ~ 2 nuclei each, 8 um apart)
        for k in range(3):
            _square(big_map, fx + 4 * k + k, 100, 4, 4, 3)
    big = store_from_array(tmp_path / "big.zarr", big_map, mpp=2.0, chunk=128)
    result = quantify(big, Region("big", box(0, 0, 500, 500)))
    assert result.tissue_area_mm2 == pytest.approx(1.0)
    assert result.inflammation["foci_count"] == 2
    assert result.inflammation["foci_per_200x_field"] == pytest.approx(2 * result.settings.field_area_mm2)
    assert "not_graded" not in result.inflammation
    assert [g.grade for g in result.grades] == [0, 1, 0] and result.nas["grade"] == 1
    # the threshold is a setting: two fields asked for, the same region is not graded
    two = quantify(big, Region("big", box(0, 0, 500, 500)), QuantSettings(grading_min_fields=2))
    assert two.nas["grade"] is None and "2 200x fields (1.9 mm^2)" in two.grades[1].note


def test_a_stroke_narrower_than_a_cell_is_not_a_ballooned_cell(tmp_path):
    m = np.full((400, 400), 4, np.uint8)
    _square(m, 20, 40, 300, 40, 5)  # a 20 um wide, 150 um long band (3000 um^2): a brush stroke
    _square(m, 40, 200, 60, 60, 5)  # a 30 um wide cell, crossing the 64 px chunk border
    _square(m, 200, 200, 48, 48, 5)  # 24 um wide: narrower than 25 um
    settings = QuantSettings(grading_min_fields=0)
    for chunk, window in ((64, 64), (1024, 4096)):
        store = store_from_array(tmp_path / f"b{chunk}.zarr", m, mpp=MPP, chunk=chunk)
        b = quantify(store, Region("all", box(0, 0, 400, 400)), settings, window=window).ballooning
        assert b["count"] == 1 and b["area_um2"] == 60 * 60 * 0.25
        assert b["narrow_components_excluded"] == 2
    wide_ok = quantify(store, Region("all", box(0, 0, 400, 400)),
                       QuantSettings(grading_min_fields=0, ballooning_min_width_um=19.0)).ballooning
    assert wide_ok["count"] == 3 and wide_ok["narrow_components_excluded"] == 0
