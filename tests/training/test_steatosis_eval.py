"""Polito patient splits, vacuole label maps, touching-droplet splitting and the per-source
steatosis evaluation (pooled / per-tile Dice, count error, steatosis-% error)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lobule.inference.cli import run
from lobule.inference.liver.quantify.droplet_split import count_droplets, split_touching
from lobule.inference.liver.segdata import polito_patient, polito_splits, read_label, read_rgb, vacuole_label_map, write_png
from lobule.inference.liver.steatosis_eval import summarise_tiles, tile_measures, truth_count


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius ** 2


def test_polito_split_keeps_each_patient_in_one_split_and_is_reproducible():
    names = [f"{1000 + p}_{k}" for p in range(120) for k in range(1 + p % 3)]
    splits = polito_splits(names, test=40, val=20)
    by_patient = {}
    for name, split in splits.items():
        by_patient.setdefault(polito_patient(name), set()).add(split)
    assert all(len(s) == 1 for s in by_patient.values())
    counts = {k: sum(next(iter(s)) == k for s in by_patient.values()) for k in ("heldout", "val", "train")}
    assert counts == {"heldout": 40, "val": 20, "train": 60}
    assert polito_splits(list(reversed(names)), test=40, val=20) == splits
    assert polito_patient("2016T1196_3") == "2016T1196"


def test_vacuole_mask_wins_over_the_labeller_and_pseudo_lipid_outside_it_is_background():
    pseudo = np.full((7, 7), 4, np.uint8)
    pseudo[1:4, 1:4] = 0  # the labeller calls a large vacuole's centre background
    pseudo[6, 6] = 1  # and sees lipid where the expert drew none
    vacuoles = np.zeros((7, 7), bool)
    vacuoles[1:4, 1:4] = True
    labels = vacuole_label_map(pseudo, vacuoles)
    assert (labels[1:4, 1:4] == 1).all()
    assert labels[6, 6] == 0
    assert labels[0, 2] == 255 and labels[4, 2] == 255  # ring just outside the drawn vacuole
    assert labels[5, 5] == 4


def test_touching_vacuoles_are_cut_apart_and_a_single_one_is_not():
    two = _disc((200, 300), (100, 100), 50) | _disc((200, 300), (100, 185), 40)
    assert count_droplets(two, 0.5) == 2
    cut = split_touching(two, 0.5)
    assert cut.sum() > 0.98 * two.sum() and not (cut & ~two).any()
    assert count_droplets(_disc((200, 200), (100, 100), 60), 0.5) == 1
    yy, xx = np.mgrid[:200, :300]
    assert count_droplets(((yy - 100) / 20) ** 2 + ((xx - 150) / 90) ** 2 < 1, 0.5) == 1  # elongated, one
    assert count_droplets(np.zeros((10, 10), bool), 0.5) == 0


def test_tile_measures_and_summary_on_a_synthetic_tile():
    image = np.full((100, 100, 3), (200, 120, 170), np.uint8)
    truth = (_disc((100, 100), (30, 30), 12) | _disc((100, 100), (70, 70), 12)).astype(np.uint8) * 255
    image[truth > 0] = 250
    perfect = tile_measures(image, truth > 0, truth, 0.5)
    assert perfect["dice"] == 1.0 and perfect["count_pred"] == perfect["count_truth"] == 2
    assert perfect["steatosis_pct_pred"] == pytest.approx(perfect["steatosis_pct_truth"])
    half = tile_measures(image, _disc((100, 100), (30, 30), 12), truth, 0.5)
    assert half["count_pred"] == 1 and half["dice"] == pytest.approx(2 / 3, abs=0.01)
    summary = summarise_tiles([perfect, half])
    assert summary["tiles"] == 2 and summary["count_abs_error"] == 0.5
    assert summary["dice_mean"] == pytest.approx((1 + half["dice"]) / 2, abs=1e-3)
    assert summary["steatosis_pct_abs_error"] == pytest.approx(half["steatosis_pct_truth"] / 4, abs=0.01)
    partial = tile_measures(image, truth > 0, truth, 0.5, counts=False)
    assert partial["count_pred"] is None and summarise_tiles([partial])["count_abs_error"] is None


def test_instance_maps_count_their_instances():
    instances = np.zeros((50, 50), np.uint16)
    instances[5:20, 5:20] = 1
    instances[20:35, 5:20] = 2  # touching, but drawn as two droplets
    assert truth_count(instances, 0.25) == 2


def _polito_tiles(shared, count):
    folders = sorted(p for p in (shared / "steatosis_polito").iterdir() if p.is_dir())
    # the tiles with most fat: the hard ones (large vacuoles)
    ranked = sorted(folders[::25], key=lambda p: -int((read_label(p / "fat_mask.png") > 0).sum()))
    return ranked[:count]


def test_evaluate_command_reports_each_source_for_the_labeller_and_for_external_masks(tmp_path, shared_data, capsys):
    if not (shared_data / "steatosis_polito").is_dir() or not (shared_data / "steatosis_isbi2019").is_dir():
        pytest.skip("steatosis_polito / steatosis_isbi2019 not in the shared data")
    tiles = _polito_tiles(shared_data, 2)
    isbi = sorted((shared_data / "steatosis_isbi2019").iterdir())[0]
    items = [{"name": f"polito-{t.name}", "source": "steatosis_polito", "image": str(t / "image.png"),
              "mask": str(t / "fat_mask.png"), "mpp": 0.5, "kind": "droplets", "positive": [1]} for t in tiles]
    items.append({"name": f"steatosis-{isbi.name}", "source": "steatosis_isbi2019", "image": str(isbi / "image.png"),
                  "mask": str(isbi / "droplets.png"), "mpp": 0.25, "kind": "droplets", "positive": [1]})
    evalset = tmp_path / "heldout.json"
    evalset.write_text(json.dumps({"format": "lobule-evalset/1", "items": items}))
    masks = tmp_path / "truth-masks"  # an "external tool" that returns the truth itself
    masks.mkdir()
    for item in items:
        write_png(masks / f"{item['name']}.png", ((read_label(item["mask"]) > 0) * 255).astype(np.uint8))
    code = run(["segment", "--evaluate", str(evalset), "--model", "classical", "--model", f"masks:{masks}",
                "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "steatosis_polito (droplets)" in printed.out and "steatosis_isbi2019 (droplets)" in printed.out
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())["models"]
    exact = report["truth-masks"]["by_source"]["steatosis_polito (droplets)"]
    assert exact["dice"] == 1.0 and exact["count_abs_error"] == 0 and exact["steatosis_pct_abs_error"] == 0
    assert exact["steatosis_pct_truth_mean"] > 1.0
    classical = report["classical"]["by_source"]["steatosis_polito (droplets)"]
    assert classical["tiles"] == 2 and 0.05 < classical["dice"] < 0.99
    assert classical["steatosis_pct_abs_error"] > 0
    isbi_row = report["classical"]["by_source"]["steatosis_isbi2019 (droplets)"]
    assert isbi_row["count_abs_error"] is not None and read_rgb(items[-1]["image"]).shape[0] == 1024
