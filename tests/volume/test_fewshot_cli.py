"""``lobule fewshot segment|evaluate`` and ``lobule train fewshot`` end to end (in-process, tiny models)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from skimage.io import imsave

from lobule.inference.cli import run


def _run(argv, capsys):
    code = run(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_segment_writes_a_mask_with_the_input_geometry(tmp_path, nibabel_data, tiny_models, capsys):
    source = nibabel_data / "anatomical.nii"
    raw = nib.load(str(source))
    labels = np.zeros(raw.shape, np.uint8)
    labels[8:20, 10:25, 12] = 1
    mask_path = tmp_path / "support.nii.gz"
    nib.save(nib.Nifti1Image(labels, raw.affine), str(mask_path))
    out = tmp_path / "seg.nii.gz"
    code, stdout, stderr = _run(["fewshot", "segment", str(source), "--support-slice", "12", "--support-mask",
                                 str(mask_path), "--out", str(out), "--model", "tiny-dpcenet",
                                 "--csv", str(tmp_path / "n.csv"), "--organ", "liver"], capsys)
    assert code == 0, stderr
    assert "mL" in stdout and "orientation: the file is LAS" in stderr
    seg = nib.load(str(out))
    assert seg.shape == raw.shape
    np.testing.assert_allclose(seg.affine, raw.affine)
    data = np.asarray(seg.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
    np.testing.assert_array_equal(data[:, :, 12], labels[:, :, 12])  # the support slice is kept
    assert (tmp_path / "n.csv").read_text().startswith("quantity,slice,position_mm,value,unit")
    assert "organ,,,liver," in (tmp_path / "n.csv").read_text() and "liver" in stdout

    # a 2D image of the slice as shown (RAS+: first axis flipped) works too
    plane = (labels[::-1, :, 12] * 255).astype(np.uint8)
    imsave(tmp_path / "slice.png", plane, check_contrast=False)
    out2 = tmp_path / "seg2.nii"
    code, _, stderr = _run(["fewshot", "segment", str(source), "--support-slice", "12", "--support-mask",
                            str(tmp_path / "slice.png"), "--out", str(out2), "--model", "tiny-alpnet"], capsys)
    assert code == 0, stderr
    np.testing.assert_array_equal(np.asarray(nib.load(str(out2)).dataobj)[:, :, 12], labels[:, :, 12])

    code, _, stderr = _run(["fewshot", "segment", str(source), "--support-slice", "12", "--support-mask",
                            str(mask_path), "--out", str(out2), "--model", "tiny-dpcenet", "--no-connected",
                            "--slices", "10:14"], capsys)
    assert code == 0, stderr
    ranged = np.asarray(nib.load(str(out2)).dataobj)
    assert not ranged[:, :, :10].any() and not ranged[:, :, 15:].any()
    code, _, stderr = _run(["fewshot", "segment", str(source), "--support-slice", "12", "--support-mask",
                            str(mask_path), "--out", str(out2), "--model", "tiny-dpcenet", "--slices", "ten"], capsys)
    assert code == 2 and "FIRST:LAST" in stderr


@pytest.mark.parametrize("case,expected", [
    ("empty", "is empty"),
    ("shape", "has shape 5x5x5"),
    ("volume2d", "2D image"),
    ("slice", "outside the volume"),
])
def test_segment_bad_input_is_one_line(tmp_path, nibabel_data, tiny_models, capsys, case, expected):
    source = nibabel_data / "anatomical.nii"
    raw = nib.load(str(source))
    mask = tmp_path / "mask.nii.gz"
    volume_arg, slice_arg = str(source), "12"
    if case == "empty":
        nib.save(nib.Nifti1Image(np.zeros(raw.shape, np.uint8), raw.affine), str(mask))
    elif case == "shape":
        nib.save(nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), raw.affine), str(mask))
    else:
        nib.save(nib.Nifti1Image(np.ones(raw.shape, np.uint8), raw.affine), str(mask))
    if case == "volume2d":
        flat = tmp_path / "flat.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((33, 41), np.int16), raw.affine), str(flat))
        volume_arg = str(flat)
    if case == "slice":
        slice_arg = "40"
    out = tmp_path / "seg.nii.gz"
    code, _, stderr = _run(["fewshot", "segment", volume_arg, "--support-slice", slice_arg, "--support-mask",
                            str(mask), "--out", str(out), "--model", "tiny-dpcenet"], capsys)
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("lobule: error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert all(line.startswith("lobule: ") for line in stderr.splitlines())  # notes and the error, no traceback
    assert not out.exists()


def test_evaluate_writes_protocol_numbers(tmp_path, synthetic_data, tiny_models, capsys):
    out = tmp_path / "eval.json"
    code, stdout, stderr = _run(["fewshot", "evaluate", str(synthetic_data), "--protocol", "setting1", "--out", str(out),
                                 "--model", "tiny-dpcenet", "--same-volume"], capsys)
    assert code == 0, stderr
    result = json.loads(out.read_text())
    assert set(result["dice"]) == {"liver", "right kidney", "mean"}
    assert set(result["dice_per_query"]["liver"]) == {"2", "3"}
    assert result["paper_abd_mri"]["DPCENet"]["mean"] == 77.64
    assert "same_volume" in result and "paper DPCENet" in stdout
    code, _, stderr = _run(["fewshot", "evaluate", str(synthetic_data), "--protocol", "setting1", "--out", str(out),
                            "--model", "tiny-dpcenet", "--update-card", "--record-in", str(tiny_models["tiny-alpnet"])],
                           capsys)
    assert code == 0, stderr
    recorded = json.loads(out.read_text())["dice"]
    for name in ("tiny-dpcenet", "tiny-alpnet"):
        entry = json.loads(tiny_models[name].read_text())["metrics"]["chaos_t2_setting1_dpcenet_folds_0"]
        assert entry["dice_percent"] == recorded and entry["runs"][0]["queries"] == ["2", "3"]
    from lobule.models.checkpoint import load_checkpoint

    load_checkpoint("tiny-dpcenet")  # recording metrics leaves the card loadable
    code, _, stderr = _run(["fewshot", "evaluate", str(synthetic_data), "--protocol", "setting2", "--out", str(out),
                            "--model", "tiny-dpcenet"], capsys)
    assert code == 2 and "trained for Setting 1" in stderr


def test_train_writes_a_card_and_resumes(tmp_path, synthetic_data, capsys):
    card_path = tmp_path / "tiny.json"
    argv = ["train", "fewshot", str(synthetic_data), "--out", str(card_path), "--fold", "0", "--folds", "3",
            "--size", "32", "--depth", "18", "--base-width", "4", "--feature-dim", "8", "--iterations", "4",
            "--batch-size", "1", "--supervised-organs", "right_kidney", "--test-organs", "liver"]
    code, stdout, stderr = _run(argv, capsys)
    assert code == 0, stderr
    card = json.loads(card_path.read_text())
    training = card["training"]
    assert card["task"] == "fewshot" and card["architecture"] == "dpcenet"
    assert training["held_out"] == ["1"] and training["volumes"] == ["2", "3"]
    assert training["iterations_done"] == 4 and training["finished"]
    assert training["reductions_vs_paper"]["depth"] == {"used": 18, "paper": 101}
    assert training["supervised_organs"] == [2] and training["test_organs"] == [1]
    assert (tmp_path / "tiny.safetensors").is_file() and (tmp_path / "tiny.state.safetensors").is_file()
    code, _, stderr = _run(argv[:-6] + ["--iterations", "6", "--supervised-organs", "right_kidney",
                                        "--test-organs", "liver"], capsys)
    assert code == 0 and "resumed at iteration 4" in stderr
    assert json.loads(card_path.read_text())["training"]["iterations_done"] == 6
    code, _, stderr = _run(argv[:-2] + ["--test-organs", "right_kidney"], capsys)
    assert code == 2 and "test organs" in stderr
    code, _, stderr = _run(argv + ["--setting", "2", "--test-organs", "all"], capsys)
    assert code == 2 and "one model per group" in stderr


def test_train_starts_the_encoder_from_given_weights(tmp_path, synthetic_data, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    from lobule.models.registry import create_model

    torch.manual_seed(3)
    backbone = create_model("resnet", depth=18, base_width=4, output_stride=8)
    weights = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(weights))
    card_path = tmp_path / "init.json"
    code, _, stderr = _run(["train", "fewshot", str(synthetic_data), "--out", str(card_path), "--folds", "3",
                            "--size", "32", "--depth", "18", "--base-width", "4", "--feature-dim", "8",
                            "--iterations", "1", "--init", str(weights), "--freeze-backbone", "--arch", "alpnet"], capsys)
    assert code == 0, stderr
    assert f"initialised {len(backbone.state_dict())} encoder tensors" in stderr
    trained = load_file(str(tmp_path / "init.safetensors"))
    frozen = trained["encoder.backbone.layer1.0.conv1.weight"].float()
    torch.testing.assert_close(frozen, backbone.state_dict()["layer1.0.conv1.weight"].half().float())
    assert json.loads(card_path.read_text())["training"]["init"] == str(weights)
