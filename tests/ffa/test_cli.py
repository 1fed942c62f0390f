"""``lobule ffa predict|evaluate`` and ``lobule train ffa`` end to end on small inputs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lobule.app.cli import main


def test_predict_writes_input_size_0_255_masks_and_numbers(tmp_path, angiogram_file, tiny_checkpoint, capsys):
    second = tmp_path / "second.tif"
    import tifffile

    tifffile.imwrite(second, (cv2.imread(str(angiogram_file), cv2.IMREAD_GRAYSCALE)[:100, :90].astype(np.uint16) * 200))
    out = tmp_path / "out"
    code = main(["ffa", "predict", str(angiogram_file), str(second), "--out", str(out), "--model", str(tiny_checkpoint),
                 "--threshold", "0.5", "--um-per-px", "10", "--overlay"])
    assert code == 0
    mask = cv2.imread(str(out / "eye.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (128, 112) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    assert cv2.imread(str(out / "second.png"), cv2.IMREAD_UNCHANGED).shape == (100, 90)
    assert (out / "eye_overlay.png").is_file()
    numbers = json.loads((out / "cnp_areas.json").read_text())
    row = numbers["images"][0]
    assert row["cnp_area_px"] == int((mask > 0).sum())
    assert row["cnp_area_mm2"] == pytest.approx(row["cnp_area_px"] * 1e-4)
    assert (out / "cnp_areas.csv").read_text().startswith("image,width,height,model,threshold,cnp_area_px")
    assert "eye.png: CNP" in capsys.readouterr().out


def test_predict_bad_inputs_exit_2_with_one_line(tmp_path, angiogram_file, tiny_checkpoint, capsys):
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((16, 16), np.uint8))
    out = tmp_path / "out"
    code = main(["ffa", "predict", str(angiogram_file), str(tmp_path / "tiny.png"), "--out", str(out),
                 "--model", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "too small" in err
    assert not out.exists()  # every input is checked before any output is written
    assert main(["ffa", "predict", str(angiogram_file), "--out", str(angiogram_file.parent),
                 "--model", str(tiny_checkpoint)]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    assert main(["ffa", "predict", str(angiogram_file), "--out", str(out), "--model", "no-such-model"]) == 2
    assert "no installed model" in capsys.readouterr().err


def test_predict_warns_on_a_colour_fundus_photo(tmp_path, tiny_checkpoint, capsys):
    from skimage.data import retina

    path = tmp_path / "fundus.png"
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(retina(), (128, 128)), cv2.COLOR_RGB2BGR))
    assert main(["ffa", "predict", str(path), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]) == 0
    assert "lobule: warning: fundus.png: this image does not look like a fluorescein angiogram" in capsys.readouterr().err


def test_evaluate_writes_the_five_metrics(tmp_path, angiogram_file, tiny_checkpoint, capsys):
    truth = np.zeros((128, 112), np.uint8)
    truth[30:60, 20:50] = 255
    label = tmp_path / "truth.png"
    cv2.imwrite(str(label), truth)
    out = tmp_path / "metrics.json"
    assert main(["ffa", "evaluate", str(angiogram_file), "--labels", str(label), "--out", str(out),
                 "--model", str(tiny_checkpoint)]) == 0
    report = json.loads(out.read_text())
    for key in ("accuracy", "sensitivity", "specificity", "f1", "auc_roc"):
        assert 0.0 <= report["pooled"][key] <= 1.0
    assert report["images"][0]["name"] == "eye"
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), truth[:64, :64])
    assert main(["ffa", "evaluate", str(angiogram_file), "--labels", str(small), "--out", str(out),
                 "--model", str(tiny_checkpoint)]) == 2
    assert "label small.png is 64x64 px but the image is 112x128 px" in capsys.readouterr().err


def test_train_then_resume_writes_a_loadable_card(tmp_path, make_angiogram, tiny_checkpoint, capsys):
    data = tmp_path / "data"
    for k, name in enumerate(["p01-1_001", "p01-2_002", "p02-1_001", "p03-1_004"]):
        folder = data / name
        folder.mkdir(parents=True)
        gray = make_angiogram(96, 96, seed=k)
        cv2.imwrite(str(folder / "image.png"), gray)
        cv2.imwrite(str(folder / "mask.png"), np.where(gray < 40, 255, 0).astype(np.uint8))
    card = tmp_path / "cnp.json"
    args = ["train", "ffa", "--images", str(data), "--out", str(card), "--base-width", "2", "--batch-size", "4",
            "--patches-per-epoch", "8", "--lr", "1e-3", "--val-patients", "p02", "--test-patients", "p03",
            "--threads", "1", "--device", "cpu"]
    assert main([*args, "--epochs", "1"]) == 0
    from lobule.models.train_state import read_training_meta

    state = read_training_meta(tmp_path / "cnp.training" / "state.safetensors")
    assert state["epoch"] == 1 and state["identity"]["train"] == ["p01-1_001", "p01-2_002"]
    assert main([*args, "--epochs", "2", "--resume", "--compare", str(tiny_checkpoint)]) == 0
    assert "resumed at epoch 1" in capsys.readouterr().out
    written = json.loads(card.read_text())
    assert written["training"]["epochs_run"] == 2 and written["task"] == "ffa-cnp"
    assert written["training"]["data"][0]["test"] == ["p03-1_004"]
    assert "lr: 0.001 (paper: 1e-05)" in written["training"]["deviations_from_paper"]
    assert "base_width: 2 (paper: 64)" in written["training"]["deviations_from_paper"]
    assert len(written["training"]["commands"]) == 2 and "--resume" in written["training"]["commands"][1]
    assert set(written["metrics"]["test"]["pooled"]) >= {"accuracy", "sensitivity", "specificity", "f1", "auc_roc"}
    ablation = written["metrics"]["ablation"][0]
    assert ablation["model"] == "tiny-ffa" and set(ablation["test"]) >= {"accuracy", "f1", "auc_roc"}
    from lobule.inference.ffa.predictor import CNPSegmenter

    segmenter = CNPSegmenter.from_checkpoint(str(card), device="cpu")
    assert segmenter.threshold == written["inference"]["threshold"]
    assert main([*args, "--epochs", "3", "--resume", "--base-width", "4"]) == 2
    assert "other settings" in capsys.readouterr().err
