"""No tile seams in the class map: on the real demo slide, classes change along the borders of
the tiles' kept cores no more often than elsewhere.

The classical labeller compares pixels with image statistics (white threshold, nuclear-stain
threshold, hyperchromasia cut, tissue density); measured tile by tile they made classes switch
along straight core borders. They are now measured once per slide
(``ClassicalPredictor.prepare``). Small tiles (256 px cores) put many borders into a small
region and keep the test fast.
"""
from __future__ import annotations

import numpy as np
import pytest

BOX = (700, 250, 1470, 1290)  # level-0 px of the demo slide: tissue crossing 3 x 4 core borders
CORE = 256


def border_change_rates(labels: np.ndarray, core: int, box) -> tuple[float, float]:
    """(class-change rate across core borders, rate across every other pixel edge) within ``box``
    (x0, y0, x1, y1 label px), counting only edges with tissue on at least one side."""
    x0, y0, x1, y1 = box
    on_border, elsewhere = [0, 0], [0, 0]
    for axis in (0, 1):
        a = labels[y0:y1, x0:x1]
        first, second = (a[:-1], a[1:]) if axis == 0 else (a[:, :-1], a[:, 1:])
        changed = first != second
        tissue = (first > 0) | (second > 0)
        index = np.arange(changed.shape[axis]) + (y0 if axis == 0 else x0) + 1  # edge before this pixel
        border = (index % core) == 0
        border = border[:, None] if axis == 0 else border[None, :]
        for mask, tally in ((border, on_border), (~border, elsewhere)):
            sel = np.broadcast_to(mask, changed.shape) & tissue
            tally[0] += int(changed[sel].sum())
            tally[1] += int(sel.sum())
    return on_border[0] / max(1, on_border[1]), elsewhere[0] / max(1, elsewhere[1])


@pytest.fixture(scope="module")
def classical_small_tiles(tmp_path_factory, demo_slide):
    pytest.importorskip("lobule.inference.labeller")
    from shapely.geometry import box

    from lobule.app.analysis_worker import restrict_tissue
    from lobule.inference.engine import analyze_slide
    from lobule.inference.engine.predictor import classical_predictor
    from lobule.inference.slide import open_slide
    from lobule.inference.tissue import detect_tissue

    predictor = classical_predictor(tile_size=CORE + 2 * 128, margin=128)
    with open_slide(demo_slide) as slide:
        tissue = restrict_tissue(detect_tissue(slide), box(*BOX))
        result = analyze_slide(slide, predictor, tmp_path_factory.mktemp("seams") / "classical.zarr", tissue=tissue)
    store = result.store
    assert store.attrs["tiling"]["core"] == CORE
    return store, predictor


def test_no_class_switch_along_tile_borders_on_the_demo_slide(classical_small_tiles):
    store, predictor = classical_small_tiles
    labels = np.asarray(store.array(0)[:])
    s = store.scale
    box = tuple(int(round(v / s)) for v in BOX)
    border, elsewhere = border_change_rates(labels, CORE, box)
    assert elsewhere > 0.05  # real tissue: classes change often at this scale
    assert border < 1.25 * elsewhere, (border, elsewhere)
    reference = store.model["slide_reference"]
    assert set(reference) == {"white_threshold", "nuclear_threshold", "dark_cut", "tissue_density"}
    assert all(value is not None for value in reference.values())  # stated in the store and exports


def test_tile_by_tile_statistics_did_make_seams(demo_slide, classical_small_tiles):
    """The same tiles labelled each with its own statistics (the old behaviour): the borders
    stand out. This is what the test above guards against."""
    from shapely.geometry import box

    from lobule.app.analysis_worker import restrict_tissue
    from lobule.inference.engine import slide_mpp
    from lobule.inference.labeller import label_colour_phase
    from lobule.inference.slide import open_slide
    from lobule.inference.tiling import make_grid, read_tile
    from lobule.inference.tissue import detect_tissue

    store, predictor = classical_small_tiles
    labels = np.zeros(store.shape, np.uint8)
    grid = store.attrs["tiling"]
    with open_slide(demo_slide) as slide:
        tissue = restrict_tissue(detect_tissue(slide), box(*BOX))
        tiles = make_grid(slide.dimensions, slide_mpp(slide), predictor.mpp, grid["tile_size"], grid["margin"], tissue)
        for tile in tiles.tiles:
            own = label_colour_phase(read_tile(slide, tiles, tile), predictor.mpp)  # its own statistics
            x, y, w, h = tile.core
            labels[y:y + h, x:x + w] = own[grid["margin"]:grid["margin"] + h, grid["margin"]:grid["margin"] + w]
    s = store.scale
    border, elsewhere = border_change_rates(labels, CORE, tuple(int(round(v / s)) for v in BOX))
    assert border > 1.25 * elsewhere, (border, elsewhere)


def test_neighbouring_tiles_see_the_same_pixels_where_they_overlap(demo_slide):
    """The demo slide is 0.499 um/px, the model grid 0.5: input pixels are resampled. Two
    neighbouring tiles read the same slide positions where their contexts overlap, so they must
    hold the same pixels there (rounding the read origin used to shift them by up to a pixel)."""
    from lobule.inference.engine import slide_mpp
    from lobule.inference.slide import open_slide
    from lobule.inference.tiling import make_grid, read_tile

    with open_slide(demo_slide) as slide:
        grid = make_grid(slide.dimensions, slide_mpp(slide), 0.5, tile_size=384, margin=64)
        assert grid.scale != 1.0
        tiles = {(t.row, t.col): t for t in grid.tiles}
        overlap = grid.tile_size - grid.core  # 2 x margin
        for a, b, axis in (((2, 1), (2, 2), 1), ((2, 2), (3, 2), 0), ((5, 3), (5, 4), 1)):
            first, second = read_tile(slide, grid, tiles[a]), read_tile(slide, grid, tiles[b])
            if axis == 1:
                same = first[:, grid.core:].astype(int) - second[:, :overlap]
            else:
                same = first[grid.core:].astype(int) - second[:overlap]
            assert np.abs(same).max() <= 1, (a, b, np.abs(same).max())
