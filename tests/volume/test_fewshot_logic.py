"""Few-shot data logic: folds, chunks, superpixels, episodes, whole-volume segmentation, numbers."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from lobule.inference.errors import InputError
from lobule.inference.fewshot.data import find_cases, fold_split, load_case
from lobule.inference.fewshot.measure import dice, organ_volume_ml, slice_areas_mm2, write_numbers_csv
from lobule.inference.fewshot.organs import parse_organs
from lobule.inference.fewshot.protocol import chunk_of, evaluate_fold, evaluate_same_volume, summarise, support_slices
from lobule.inference.fewshot.segment import connected_to_supports, nearest_support, segment_volume
from lobule.inference.volume import load_volume


def test_ssl_alpnet_folds_of_chaos_ids():
    ids = ["1", "2", "3", "5", "8", "10", "13", "15", "19", "20", "21", "22", "31", "32", "33", "34", "36", "37", "38", "39"]
    train, held = fold_split(list(reversed(ids)), 0)
    assert held == ["1", "2", "3", "5"] and len(train) == 16 and not set(train) & set(held)
    assert fold_split(ids, 4)[1] == ["36", "37", "38", "39"]
    with pytest.raises(InputError):
        fold_split(ids, 5)


def test_chunks_match_relative_positions():
    assert [chunk_of(z, 10, 18) for z in range(10, 19)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert support_slices(np.arange(10, 19)) == [11, 14, 17]
    assert support_slices(np.array([5])) == [5, 5, 5]
    assert parse_organs("upper") == (1, 4) and parse_organs("left_kidney,1") == (1, 3)
    with pytest.raises(InputError, match="unknown organ"):
        parse_organs("pancreas")


def _threshold_predictor(support_image, support_mask, queries):
    """Segments 'what is as bright as the support organ': enough for plumbing tests."""
    level = float(np.median(support_image[support_mask]))
    return queries > level * 0.6


def test_protocol_and_same_volume_on_synthetic_cases(synthetic_data):
    cases = [load_case(c) for c in find_cases(synthetic_data, require_labels=True)]
    result = evaluate_fold(_threshold_predictor, cases, [1])
    assert result["support"] == "1" and result["queries"] == ["2", "3"]
    assert all(v > 0.95 for v in result["dice"]["liver"].values())
    assert summarise(result["dice"])["mean"] > 95
    same = evaluate_same_volume(_threshold_predictor, cases, [1])
    assert set(same["dice"]["liver"]) == {"1", "2", "3"}
    assert min(same["dice_connected"]["liver"].values()) > 0.95
    assert min(same["dice_in_extent"]["liver"].values()) >= min(same["dice"]["liver"].values())


def test_segment_volume_uses_nearest_support_and_connectivity():
    image = np.zeros((10, 10, 9), np.float32)
    image[2:6, 2:6, :] = 1.0  # an organ through every slice
    image[8:10, 8:10, 7] = 1.0  # a look-alike blob, not connected
    supports = {2: image[:, :, 2] > 0.5, 6: image[:, :, 6] > 0.5}
    calls = []

    def predictor(support_image, support_mask, queries):
        calls.append((int(support_mask.sum()), len(queries)))
        return queries > 0.5

    raw = segment_volume(predictor, image, supports, keep_connected=False)
    assert raw[8, 8, 7] and raw[2:6, 2:6, :].all()
    assert sorted(n for _, n in calls) == [3, 4]  # slices 0,1,3,4 -> support 2 (tie 4 -> 2); 5,7,8 -> 6
    kept = segment_volume(predictor, image, supports)
    assert not kept[8, 8, 7] and kept[2:6, 2:6, :].all()
    assert nearest_support(4, [2, 6]) == 2 and nearest_support(5, [2, 6]) == 6
    np.testing.assert_array_equal(connected_to_supports(raw, supports), kept)
    ranged = segment_volume(predictor, image, supports, slice_range=(1, 6))
    assert ranged[:, :, 1:7].any(axis=(0, 1)).all() and not ranged[:, :, [0, 7, 8]].any()
    with pytest.raises(InputError, match="outside the slice range"):
        segment_volume(predictor, image, supports, slice_range=(3, 8))
    with pytest.raises(InputError, match="empty"):
        segment_volume(predictor, image, {3: np.zeros((10, 10), bool)})
    with pytest.raises(InputError, match="outside"):
        segment_volume(predictor, image, {9: supports[2]})


def test_volume_numbers_and_csv(tmp_path, nibabel_data):
    volume = load_volume(nibabel_data / "anatomical.nii")  # 2 mm isotropic
    mask = np.zeros(volume.shape, bool)
    mask[0:5, 0:5, 3:5] = True  # 50 voxels of 8 mm^3
    assert organ_volume_ml(mask, volume) == pytest.approx(0.4)
    areas = slice_areas_mm2(mask, volume)
    assert areas[3] == pytest.approx(100.0) and areas[0] == 0
    assert dice(mask, mask) == 1.0 and dice(mask, ~mask) == 0.0 and dice(mask & False, mask & False) == 1.0
    path = write_numbers_csv(tmp_path / "n.csv", mask, volume, "liver", [3], "tiny")
    rows = list(csv.DictReader(path.open()))
    by = {(r["quantity"], r["slice"]): r for r in rows}
    assert float(by[("organ_volume", "")]["value"]) == pytest.approx(0.4) and by[("organ_volume", "")]["unit"] == "mL"
    assert float(by[("slice_area", "4")]["value"]) == pytest.approx(100.0)
    assert ("support_slice", "3") in by and by[("organ", "")]["value"] == "liver"


def test_superpixels_and_episodes_on_a_real_chaos_volume(chaos_case):
    from lobule.inference.fewshot.data import Case
    from lobule.inference.fewshot.episodes import EpisodeSampler
    from lobule.inference.fewshot.superpixels import superpixels

    image, label = chaos_case
    case = load_case(Case("1", image, label))
    plane = case.image[:, :, 18]
    segments = superpixels(plane)
    assert segments[0, 0] == 0  # air outside the body
    assert 10 < segments.max() < 400
    sizes = np.bincount(segments.ravel())[1:]
    # min_size 400 px: only pieces cut by the body outline are smaller
    assert sizes[sizes >= 400].sum() > 0.9 * sizes.sum()
    sampler = EpisodeSampler([case], 64, supervised_organs=(2, 3), excluded_organs=(1, 4), test_organs=(1, 4))
    kept = set(sampler.pool.slice_index.tolist())
    assert not kept & set(np.flatnonzero(np.isin(case.label, (1, 4)).any(axis=(0, 1))).tolist())  # Setting 2
    s, sm, q, qm = sampler.sample(np.random.default_rng(0), batch=3)
    assert s.shape == (3, 3, 64, 64) and sm.shape == (3, 64, 64) and q.shape == s.shape
    assert ((sm == 0) | (sm == 1)).all() and sm.sum((1, 2)).min() > 0
    with pytest.raises(InputError, match="test organs"):
        EpisodeSampler([case], 64, supervised_organs=(1,), test_organs=(1, 4))
