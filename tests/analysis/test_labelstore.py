"""LabelStore: display pyramid, overlay tiles, reopening, atomic writes."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lobule.inference.errors import InputError
from lobule.inference.labelstore import (
    LabelStore,
    LabelStoreWriter,
    analysis_dir,
    find_store,
    mode_downsample,
    store_from_array,
    store_name,
)


def test_mode_downsample_prefers_majority_then_foreground():
    a = np.array([[0, 0, 3, 3, 5, 1],
                  [0, 2, 3, 0, 1, 5]], np.uint8)
    assert mode_downsample(a).tolist() == [[0, 3, 5]]
    a = np.array([[0, 0, 0], [0, 4, 0], [2, 2, 2]], np.uint8)  # odd sizes: edge replicated
    assert mode_downsample(a).tolist() == [[0, 0], [2, 2]]


def test_pyramid_and_read_region(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.repeat(rng.integers(0, 7, (75, 110)), 8, 0), 8, 1).astype(np.uint8)  # 600 x 880
    store = store_from_array(tmp_path / "m.zarr", labels, mpp=0.5, scale=2.0, chunk=128)
    assert store.level_count == 3  # 880 x 600 -> 440 x 300 -> 220 x 150 (longest side <= 256)
    assert store.level_downsamples == (2.0, 4.0, 8.0)
    assert np.array_equal(store.array(1)[...], labels[::2, ::2])  # 2x2 blocks are uniform here
    # slide level-0 px: scale 2 -> a region at downsample 2 is level 0 itself
    assert np.array_equal(store.read_region((200, 100), 2.0, (64, 48)), labels[50:98, 100:164])
    # downsample 16: label level 2 (8), every second pixel
    assert np.array_equal(store.read_region((0, 0), 16.0, (55, 37)), labels[4::8, 4::8][:37, :55])
    # partly outside the map: background there
    tile = store.read_region((1700, 1150), 2.0, (64, 64))
    assert tile.shape == (64, 64) and np.array_equal(tile[:25, :30], labels[575:, 850:])
    assert (tile[25:] == 0).all() and (tile[:, 30:] == 0).all()
    rgba = store.read_rgba((0, 0), 4.0, (100, 80), opacity=0.4, visible=[2, 3])
    lab = store.read_region((0, 0), 4.0, (100, 80))
    assert rgba.shape == (80, 100, 4)
    assert set(np.unique(rgba[..., 3])) <= {0, 102}
    assert np.array_equal(rgba[..., 3] > 0, np.isin(lab, [2, 3]))


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "a.zarr"
    first = store_from_array(target, np.ones((40, 50), np.uint8), mpp=0.5)
    with pytest.raises(RuntimeError):
        with LabelStoreWriter(target, (40, 50), 16, {"mpp": 0.5, "scale": 1.0, "slide": {}, "model": {}}) as w:
            w.write(SimpleNamespace(core=(0, 0, 16, 16)), np.full((16, 16), 3, np.uint8))
            raise RuntimeError("cancelled mid-way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]
    assert (LabelStore.open(first.path).array()[...] == 1).all()  # the old store is intact
    store_from_array(target, np.full((40, 50), 2, np.uint8), mpp=0.5)  # replacing works
    assert (LabelStore.open(target).array()[...] == 2).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]
    with pytest.raises(InputError):
        LabelStore.open(tmp_path)


def test_analysis_is_found_again_beside_the_slide(array_slide, colour_predictor):
    from lobule.inference.engine import analyze_slide

    folder = analysis_dir(array_slide.path)
    assert folder == array_slide.path.parent / "synthetic.png.lobule"
    assert find_store(array_slide.path, "colour-test") is None
    result = analyze_slide(array_slide, colour_predictor, folder / store_name("colour-test"))
    again = find_store(array_slide.path, "colour-test")
    assert again is not None and again.path == result.store.path and again.matches(array_slide)
    assert again.model["name"] == "colour-test" and again.slide["name"] == "synthetic.png"
    assert again.tissue_mask().kept_fraction == pytest.approx(result.tissue.kept_fraction)
    assert find_store(array_slide.path, "other-model") is None


def test_read_only_slide_folder_uses_the_user_cache(demo_slide):
    folder = analysis_dir(demo_slide)  # inside the installed package: never written there
    assert "CMU-1-Small-Region.svs" in folder.name and ".cache" in str(folder)
    assert not (demo_slide.parent / "CMU-1-Small-Region.svs.lobule").exists()
