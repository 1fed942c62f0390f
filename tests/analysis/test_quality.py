"""Per-slide quality control: Macenko stain distance, model vs labeller on lipid, tissue mix."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.liver.quality import THRESHOLDS, assess, describe, macenko_stains, stain_angle
from lobule.inference.liver.segdata import read_rgb


def test_real_liver_tiles_are_near_the_training_stain_and_a_fluorescence_scan_is_not(shared_data):
    tiles = sorted((shared_data / "steatosis_polito").glob("*/image.png"))[::40]
    if not tiles:
        pytest.skip("steatosis_polito not in the shared data")
    angles = [stain_angle(macenko_stains(read_rgb(t))) for t in tiles]
    assert max(angles) < THRESHOLDS["stain_angle_deg"]
    from lobule.inference.slide import open_slide

    with open_slide(shared_data / "wsi" / "hamamatsu-fluorescence-DAPI.ndpi") as slide:
        thumbnail = slide.thumbnail((512, 512))
    quality = assess([thumbnail], [np.full(thumbnail.shape[:2], 4, np.uint8)], 8.0)
    assert [f["key"] for f in quality["flags"]] == ["stain"]
    assert "H&E" in describe(quality)


def test_macenko_vectors_are_unit_and_haematoxylin_first(shared_data):
    tile = next((shared_data / "steatosis_polito").glob("*/image.png"), None)
    if tile is None:
        pytest.skip("steatosis_polito not in the shared data")
    stains = macenko_stains(read_rgb(tile))
    assert stains.shape == (2, 3)
    assert np.allclose(np.linalg.norm(stains, axis=1), 1.0)
    assert stains[0, 0] > stains[1, 0]  # haematoxylin absorbs more red
    assert macenko_stains(np.full((50, 50, 3), 255, np.uint8)) is None  # blank glass: no estimate


def test_a_map_with_little_hepatocyte_tissue_is_flagged_and_a_liver_like_one_is_not():
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal((190, 110, 160), 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    nuclei = np.full((64, 64), 2, np.uint8)
    nuclei[:10] = 4
    flagged = assess([rgb], [nuclei], 0.5)
    assert not flagged["ok"] and "tissue_mix" in [f["key"] for f in flagged["flags"]]
    assert flagged["measures"]["hepatocyte_share"] == pytest.approx(10 / 64, abs=1e-3)
    liver = np.full((64, 64), 4, np.uint8)
    fine = assess([rgb], [liver], 0.5)
    assert fine["measures"]["hepatocyte_share"] == 1.0 and "tissue_mix" not in [f["key"] for f in fine["flags"]]
    assert describe({"ok": True, "flags": []}).startswith("quality: ok")
