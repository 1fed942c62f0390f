"""Tissue detection and tile reading."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lobule.inference.errors import InputError, MissingMppError
from lobule.inference.tiling import make_grid, read_tile
from lobule.inference.tissue import TissueSettings, detect_tissue, tissue_mask_from_rgb


def test_tissue_found_on_synthetic_blob(array_slide, he_image):
    tissue = detect_tissue(array_slide)
    # the pink ellipse covers pi * 0.38 * 0.36 of the image (~43 %); the mask adds a margin
    truth = np.zeros(he_image.shape[:2], np.uint8)
    h, w = truth.shape
    cv2.ellipse(truth, (w // 2, h // 2), (int(w * 0.38), int(h * 0.36)), 15, 0, 360, 1, -1)
    assert 0.40 < tissue.kept_fraction < 0.55
    mask = cv2.resize(tissue.mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    assert (mask[truth > 0] > 0).mean() > 0.99  # no tissue lost
    assert tissue.geometry().area == pytest.approx(tissue.mask.sum() * tissue.downsample**2, rel=0.02)


def test_blank_and_noise_slides_have_no_tissue(make_slide):
    rng = np.random.default_rng(1)
    blank = np.full((800, 900, 3), 246, np.uint8)
    noisy = np.clip(blank.astype(np.int16) + rng.integers(-4, 5, blank.shape), 0, 255).astype(np.uint8)
    for image in (blank, noisy):
        tissue = detect_tissue(make_slide(image, mpp=0.5))
        assert tissue.is_empty() and tissue.kept_fraction == 0.0
        assert tissue.geometry().is_empty


def test_tissue_needs_mpp_and_valid_settings(make_slide, he_image):
    with pytest.raises(MissingMppError, match="--mpp"):
        detect_tissue(make_slide(he_image, mpp=None))
    with pytest.raises(InputError):
        TissueSettings(min_area_um2=-1)
    with pytest.raises(ValueError):
        tissue_mask_from_rgb(np.zeros((4, 4), np.uint8), 1.0)


def test_demo_slide_tissue(demo_slide):
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as slide:
        tissue = detect_tissue(slide)
    assert 0.3 < tissue.kept_fraction < 0.6  # a skin section over about half of the image
    rgba = tissue.overlay_rgba()
    assert rgba.shape == (*tissue.mask.shape, 4) and (rgba[..., 3] > 0).sum() == tissue.mask.sum()


def test_grid_skips_glass_and_covers_tissue(array_slide):
    tissue = detect_tissue(array_slide)
    full = make_grid(array_slide.dimensions, 0.5, 0.5, 256, 16)
    kept = make_grid(array_slide.dimensions, 0.5, 0.5, 256, 16, tissue=tissue)
    assert full.shape == (1500, 1900) and full.core == 224
    assert len(full.tiles) == full.cell_count == 7 * 9
    assert 0 < len(kept.tiles) < len(full.tiles)
    with pytest.raises(InputError):
        make_grid((100, 100), 0.5, 0.5, 64, 30)


def test_read_tile_resamples_from_the_right_level(pyramid_tiff):
    from lobule.inference.slide import open_slide

    with open_slide(pyramid_tiff) as slide:
        # model at 1.0 um/px on a 0.5 um/px slide: level 1 (downsample 2) read as is
        grid = make_grid(slide.dimensions, 0.5, 1.0, 256, 16)
        tile = grid.tiles[5]
        direct = slide.read_region((round((tile.core[0] - 16) * 2), round((tile.core[1] - 16) * 2)), 1, (256, 256))
        assert np.array_equal(read_tile(slide, grid, tile), direct)
        assert grid.shape == (1536, 2048)
        # 0.75 um/px: 384 level-0 px resampled to 256
        grid = make_grid(slide.dimensions, 0.5, 0.75, 256, 16)
        tile = grid.tiles[5]
        timings = {}
        image = read_tile(slide, grid, tile, timings)
        x0, y0 = round((tile.core[0] - 16) * 1.5), round((tile.core[1] - 16) * 1.5)
        expected = cv2.resize(slide.read_region((x0, y0), 0, (384, 384)), (256, 256), interpolation=cv2.INTER_AREA)
        assert np.array_equal(image, expected)
        assert set(timings) == {"read", "preprocess"}


def test_mask_size_is_capped_for_large_slides(array_slide):
    fine = detect_tissue(array_slide)
    coarse = detect_tissue(array_slide, TissueSettings(max_side=64, closing_um=0, opening_um=0, margin_um=0))
    assert max(coarse.mask.shape) <= 64 and coarse.mpp == pytest.approx(1900 * 0.5 / 64, rel=0.01)
    assert coarse.kept_fraction == pytest.approx(fine.kept_fraction, abs=0.08)
