"""Training label maps from partial real masks plus pseudo-labels, and the prepared folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lobule.inference.errors import InputError
from lobule.inference.liver.labeller import ColourPhaseSettings
from lobule.inference.liver.segdata import (
    droplet_label_map, nucleus_label_map, prepare_shared_data, read_evalset, read_split, resample_instances,
    write_png,
)


def test_complete_droplet_mask_overrides_and_ignores_unconfirmed_pseudo_droplets():
    pseudo = np.array([[4, 1, 1, 0], [4, 4, 2, 0]], np.uint8)
    droplets = np.array([[0, 1, 0, 0], [1, 0, 0, 0]], bool)
    labels = droplet_label_map(pseudo, droplets, complete=True, mpp=0.5)
    assert labels.tolist() == [[4, 1, 255, 0], [1, 4, 2, 0]]


def test_partial_droplet_mask_ignores_white_outside_drawn_droplets():
    pseudo = np.full((9, 9), 4, np.uint8)
    pseudo[0:3, 0:3] = 1  # a droplet nobody drew
    pseudo[6:9, 6:9] = 0  # lumen: may be an undrawn droplet too
    droplets = np.zeros((9, 9), bool)
    droplets[4, 4] = True
    labels = droplet_label_map(pseudo, droplets, complete=False, mpp=1.0)
    assert labels[4, 4] == 1
    assert (labels[0:3, 0:3] == 255).all() and (labels[6:9, 6:9] == 255).all()
    assert labels[3, 1] == 255  # within 1 um of white
    assert labels[0, 8] == 4


def test_real_nuclei_take_a_nucleus_class_and_unconfirmed_pseudo_nuclei_are_ignored():
    pseudo = np.full((20, 20), 4, np.uint8)
    pseudo[15:18, 15:18] = 2  # a nucleus nobody drew
    pseudo[0:2, 0:2] = 1  # a "droplet" in non-liver tissue
    instances = np.zeros((20, 20), np.uint16)
    instances[3:9, 3:9] = 1
    stain = np.full((20, 20), 0.05, np.float32)
    labels = nucleus_label_map(pseudo, instances, stain, 0.5, ColourPhaseSettings())
    assert set(np.unique(labels[3:9, 3:9])) <= {2, 3} and len(np.unique(labels[3:9, 3:9])) == 1
    assert (labels[15:18, 15:18] == 255).all() and (labels[0:2, 0:2] == 255).all()
    assert labels[12, 2] == 4


def test_resample_instances_keeps_ids():
    instances = np.array([[0, 7], [3, 0]], np.uint16)
    big = resample_instances(instances, (4, 4))
    assert big.dtype == np.uint16 and big.tolist() == [[0, 0, 7, 7], [0, 0, 7, 7], [3, 3, 0, 0], [3, 3, 0, 0]]


def _fake_shared_data(root, tiles):
    (root / "steatosis_isbi2019").mkdir(parents=True)
    for i, name in enumerate(["161_1_2_1024", "140_3_4_1024"]):
        folder = root / "steatosis_isbi2019" / name
        folder.mkdir()
        image, labels = tiles[i]
        write_png(folder / "image.png", image)
        write_png(folder / "droplets.png", (labels == 1).astype(np.uint16) * 5)
    miccai = root / "nuclei_miccai2015"
    miccai.mkdir()
    (miccai / "README_training.txt").write_text("image01.png \t\t20x\nimage02.png\t\t\t40x\n")
    for i, name in enumerate(["image01", "image02"]):
        folder = miccai / name
        folder.mkdir()
        image, labels = tiles[2 + i]
        write_png(folder / "image.png", image)
        write_png(folder / "nuclei.png", (labels == 2).astype(np.uint16))


def test_prepare_writes_training_folders_and_a_heldout_set(tmp_path, tiles):
    _fake_shared_data(tmp_path / "shared", tiles)
    out = tmp_path / "data"
    heldout = {"steatosis_isbi2019": ("161_",), "nuclei_miccai2015": ("image02",)}
    index = prepare_shared_data(tmp_path / "shared", out, model_mpp=0.5, heldout=heldout, log=lambda line: None)
    split = read_split(out / "train")
    names = [name for name, _, _ in split]
    assert names == ["nuclei-image01", "steatosis-140_3_4_1024"]
    sizes = {name: image.shape[:2] for name, image, _ in split}
    assert sizes["steatosis-140_3_4_1024"] == (48, 48)  # 96 px at the assumed 0.25 um/px -> 0.5
    assert sizes["nuclei-image01"] == (96, 96)  # 20x = 0.5 um/px already
    for _, _, labels in split:
        assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, 5, 6, 255}
    items = read_evalset(out / "heldout.json")
    assert [(i["name"], i["mpp"], i["positive"]) for i in items] == [
        ("steatosis-161_1_2_1024", 0.25, [1]), ("nuclei-image02", 0.25, [2, 3])]
    assert json.loads((out / "index.json").read_text())["model_mpp"] == 0.5
    assert {i["split"] for i in index["items"]} == {"train", "heldout"}


def test_read_split_errors(tmp_path):
    with pytest.raises(InputError, match="images/ and labels/"):
        read_split(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    write_png(tmp_path / "images" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="no label map"):
        read_split(tmp_path)
    write_png(tmp_path / "labels" / "a.png", np.full((4, 4), 9, np.uint8))
    with pytest.raises(InputError, match="255"):
        read_split(tmp_path)
    with pytest.raises(InputError, match="evaluation set"):
        read_evalset(tmp_path / "missing.json")
