"""Refusals in one line before any output: volumes without signal, supports that are empty or the
whole slice; warnings for tiny or ring supports and results on one slice."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from lobule.inference.cli import run
from lobule.inference.errors import InputError
from lobule.inference.fewshot.checks import check_result, check_support
from lobule.inference.fewshot.session import OneShotSession
from lobule.inference.volume import load_volume


def _segment(volume_path, mask_path, out, capsys, *extra):
    code = run(["fewshot", "segment", str(volume_path), "--support-slice", "2", "--support-mask", str(mask_path),
                "--out", str(out), "--model", "tiny-dpcenet", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("fill, reason", [(0.0, "every voxel is 0"), (np.nan, "every voxel is NaN or infinite"),
                                          (417.0, "every voxel is 417")])
def test_volume_without_signal_is_refused(tmp_path, tiny_models, capsys, fill, reason):
    affine = np.diag([1.5, 1.5, 5.0, 1.0])
    path = tmp_path / "blank.nii.gz"
    nib.save(nib.Nifti1Image(np.full((24, 24, 6), fill, np.float32), affine), str(path))
    support = np.zeros((24, 24, 6), np.uint8)
    support[5:15, 5:15, 2] = 1
    nib.save(nib.Nifti1Image(support, affine), str(tmp_path / "support.nii.gz"))
    code, out, err = _segment(path, tmp_path / "support.nii.gz", tmp_path / "seg.nii.gz", capsys)
    assert code == 2 and "mL" not in out
    lines = [line for line in err.splitlines() if line.startswith("lobule: error")]
    assert lines == [f"lobule: error: blank.nii.gz has no signal: {reason}; nothing to segment"]
    assert not (tmp_path / "seg.nii.gz").exists()
    session = OneShotSession(load_volume(path))  # the tab's Run says the same
    session.set_support(2, support[:, :, 2] > 0)
    with pytest.raises(InputError, match="has no signal"):
        session.ready_supports()


def test_support_covering_the_slice_or_empty_is_refused(tmp_path, nibabel_data, tiny_models, capsys):
    source = nibabel_data / "anatomical.nii"
    raw = nib.load(str(source))
    whole = np.zeros(raw.shape, np.uint8)
    whole[:, :, 2] = 1
    whole[0, 0, 2] = 0
    nib.save(nib.Nifti1Image(whole, raw.affine), str(tmp_path / "whole.nii.gz"))
    code, out, err = _segment(source, tmp_path / "whole.nii.gz", tmp_path / "seg.nii.gz", capsys)
    assert code == 2 and "covers 100% of the slice; outline the organ only" in err
    assert not (tmp_path / "seg.nii.gz").exists()
    empty = np.zeros(raw.shape, np.uint8)
    empty[:, :, 5] = 1  # not on the support slice
    nib.save(nib.Nifti1Image(empty, raw.affine), str(tmp_path / "elsewhere.nii.gz"))
    code, out, err = _segment(source, tmp_path / "elsewhere.nii.gz", tmp_path / "seg.nii.gz", capsys)
    assert code == 2 and "on slice 2 is empty" in err


def test_tiny_and_ring_supports_and_one_slice_results_warn(nibabel_data):
    volume = load_volume(nibabel_data / "anatomical.nii")  # 2 mm voxels
    tiny = np.zeros(volume.shape[:2], bool)
    tiny[10:13, 10:13] = True
    assert any("is tiny (9 px, 36 mm²)" in w for w in check_support(volume, 12, tiny))
    yy, xx = np.mgrid[: volume.shape[0], : volume.shape[1]]
    radius = np.hypot(yy - 16, xx - 20)
    ring = (radius <= 12) & (radius >= 9)
    warnings = check_support(volume, 12, ring)
    assert any("is a ring" in w for w in warnings) and not any("tiny" in w for w in warnings)
    assert check_support(volume, 12, radius <= 12) == []
    one = np.zeros(volume.shape, bool)
    one[5:9, 5:9, 12] = True
    assert check_result(one) and "1 slice only" in check_result(one)[0]
    one[5:9, 5:9, 13] = True
    assert check_result(one) == []
