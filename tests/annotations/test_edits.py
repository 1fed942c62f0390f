"""Editing tools on a class map of the real demo slide: what they change, chunk by chunk, and
that the merged display pyramid stays equal to a pyramid built from scratch."""
from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon

from lobule.inference.annotations import ERASE, NO_CORRECTION
from lobule.inference.errors import InputError
from lobule.inference.labelstore import mode_downsample


def _full(layer, level=0):
    h, w = layer.array(level).shape
    return layer.read_labels((0, 0, w, h), level)


def test_brush_paints_a_disc_of_the_radius_in_um(session):
    layer = session.labels
    r_um = 10.0
    step = session.brush([(1000.0, 1000.0)], 6, radius_um=r_um)
    corrected = layer.corrected_mask((0, 0, layer.shape[1], layer.shape[0]))
    r_px = r_um / layer.mpp
    assert abs(corrected.sum() - math.pi * r_px**2) < 2 * math.pi * r_px  # pixel-centre disc
    ys, xs = np.nonzero(corrected)
    assert abs(xs.mean() + 0.5 - 1000) < 1 and abs(ys.mean() + 0.5 - 1000) < 1
    assert (layer.read_labels((0, 0, layer.shape[1], layer.shape[0]))[corrected] == 6).all()
    assert step.label == "brush: heterochromatic" and len(step.diffs) >= 1


def test_stroke_across_chunks_and_eraser_restores_model_output(session, demo_labels):
    _, model = demo_labels
    layer = session.labels
    stroke = session.begin_stroke(3, radius_um=15)
    boxes = [stroke.add(x, 700 + 0.3 * x) for x in range(200, 1900, 37)]
    assert all(b is not None for b in boxes[1:])
    stroke.finish()
    painted = layer.corrected_mask((0, 0, layer.shape[1], layer.shape[0]))
    assert len({(int(y) // 256, int(x) // 256) for y, x in zip(*np.nonzero(painted))}) > 6  # many chunks
    merged = _full(layer)
    assert (merged[painted] == 3).all() and np.array_equal(merged[~painted], model[~painted])
    session.erase([(x, 700 + 0.3 * x) for x in range(150, 1950, 20)], radius_um=40)
    assert layer.corrected_pixels() == 0
    assert np.array_equal(_full(layer), model)
    assert layer.read_corrections((0, 0, 64, 64)).min() == NO_CORRECTION


def test_polygon_with_hole_and_multipolygon_fill(session):
    layer = session.labels
    holed = Polygon([(100, 100), (500, 100), (500, 400), (100, 400)], [[(200, 200), (300, 200), (300, 300), (200, 300)]])
    session.fill_polygon(holed, 5)
    assert layer.corrected_pixels() == 400 * 300 - 100 * 100
    assert not layer.corrected_mask((200, 200, 100, 100)).any()  # the hole is left alone
    multi = MultiPolygon([Polygon([(1000, 1000), (1010, 1000), (1010, 1010)]),
                          Polygon([(1500, 1500), (1600, 1500), (1600, 1600), (1500, 1600)])])
    session.fill_polygon(multi, 6)
    assert (layer.read_labels((1500, 1500, 100, 100)) == 6).all()


def test_flood_fill_is_bounded_and_magic_wand_follows_colour(session, demo_slide):
    from lobule.inference.slide import open_slide

    layer = session.labels
    model = layer.read_model((0, 0, layer.shape[1], layer.shape[0]))
    y, x = np.argwhere(model == 4)[len(np.argwhere(model == 4)) // 2]
    result = session.flood_fill((x + 0.5, y + 0.5), 6, radius_um=50)
    r = round(50 / layer.mpp)
    mask = layer.corrected_mask((0, 0, layer.shape[1], layer.shape[0]))
    ys, xs = np.nonzero(mask)
    assert result.pixels == mask.sum() > 0
    assert xs.min() >= x - r and xs.max() <= x + r and ys.min() >= y - r and ys.max() <= y + r
    assert (model[mask] == 4).all()
    session.undo()
    with open_slide(demo_slide) as slide:
        wand = session.magic_wand(slide, (x + 0.5, y + 0.5), 6, tolerance=8, radius_um=30)
    assert 0 < wand.pixels <= (2 * round(30 / layer.mpp) + 1) ** 2
    with pytest.raises(InputError):
        session.flood_fill((-50, 10), 6)


def test_merged_pyramid_equals_a_pyramid_built_from_the_merged_map(session):
    rng = np.random.default_rng(1)
    for _ in range(12):
        pts = rng.uniform([0, 0], [2216, 2962], size=(3, 2))
        session.brush(pts, int(rng.integers(0, 7)), radius_um=float(rng.uniform(3, 60)))
    session.erase(rng.uniform([0, 0], [2216, 2962], size=(4, 2)), radius_um=40)
    layer = session.labels
    expected = _full(layer)
    for level in range(1, layer.level_count):
        expected = mode_downsample(expected)
        assert np.array_equal(_full(layer, level), expected), level


def test_bad_class_and_radius_are_refused(session):
    with pytest.raises(InputError, match="class id 9"):
        session.brush([(10, 10)], 9, radius_um=5)
    with pytest.raises(InputError, match="radius"):
        session.brush([(10, 10)], 1, radius_um=0)
    assert ERASE == NO_CORRECTION and not session.dirty


def test_a_model_rerun_keeps_the_corrections_and_rebuilds_the_merged_pyramid(tmp_path, demo_labels, demo_slide):
    from lobule.inference.annotations import AnnotationSession
    from lobule.inference.labelstore import store_from_array

    info, labels = demo_labels
    attrs = {"slide": info, "model": {"name": "m", "weights_sha256": None}}
    store = store_from_array(tmp_path / "m.zarr", labels, mpp=info["mpp"], attrs=attrs)
    s = AnnotationSession.open(demo_slide, store, folder=tmp_path / "a", autosave_s=None)
    s.brush([(600, 600), (1600, 2000)], 5, radius_um=30)
    s.close()
    rerun = store_from_array(tmp_path / "m.zarr", np.full_like(labels, 2), mpp=info["mpp"], attrs=attrs)
    s = AnnotationSession.open(demo_slide, rerun, folder=tmp_path / "a", autosave_s=None)
    try:
        layer = s.labels
        corrected = layer.corrected_mask((0, 0, layer.shape[1], layer.shape[0]))
        assert corrected.sum() > 10_000
        merged = _full(layer)
        assert (merged[corrected] == 5).all() and (merged[~corrected] == 2).all()
        expected = merged
        for level in range(1, layer.level_count):
            expected = mode_downsample(expected)
            assert np.array_equal(_full(layer, level), expected), level
        tile = layer.corrected_region((0, 0), 8.0, (280, 372))
        assert tile.any() and tile[600 // 8 + 2, 600 // 8 + 2]  # stroke start, seen zoomed out
        assert tile.mean() == pytest.approx(corrected.mean(), rel=0.1)
    finally:
        s.close()
