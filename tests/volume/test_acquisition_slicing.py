"""Slicing along the acquisition: a real CHAOS volume stored axially, with permuted axes and as a
sagittal stack gives the same organ from the support on the same acquisition slice; reformatted
views; DICOM series along their slice normal; support masks in the file's own grid."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from lobule.inference.cli import run
from lobule.inference.errors import VolumeError
from lobule.inference.volume import load_support_mask, load_volume

#: slices of CHAOS volume 1 kept (liver on all of them); the support is the middle one
FIRST, LAST, SUPPORT = 23, 29, 3


def _twins(image: np.ndarray, label: np.ndarray, affine: np.ndarray, folder):
    """Write the same voxels three ways: as stored (axial), with the slice axis first (permuted,
    the affine permuted alike: same anatomy) and relabelled as a sagittal stack (slice axis R)."""
    permuted = affine.copy()
    permuted[:, :3] = affine[:, [2, 0, 1]]
    sagittal = np.eye(4)
    sagittal[:3, 0] = [0.0, -affine[1, 1], 0.0]  # file axis i runs posterior
    sagittal[:3, 1] = [0.0, 0.0, affine[1, 1]]  # j runs superior
    sagittal[:3, 2] = [affine[2, 2], 0.0, 0.0]  # the slices step towards the right
    sagittal[:3, 3] = affine[:3, 3]
    paths = {}
    for name, data, lab, aff in (("axial", image, label, affine),
                                 ("permuted", image.transpose(2, 0, 1), label.transpose(2, 0, 1), permuted),
                                 ("sagittal", image, label, sagittal)):
        paths[name] = (folder / f"{name}.nii", folder / f"{name}_label.nii")
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data), aff), str(paths[name][0]))
        nib.save(nib.Nifti1Image(np.ascontiguousarray(lab), aff), str(paths[name][1]))
    return paths


@pytest.fixture(scope="module")
def chaos_twins(tmp_path_factory, shared_data):
    image_path = shared_data / "chaos_t2_mri" / "image_1.nii.gz"
    if not image_path.is_file():
        pytest.skip("CHAOS volumes (../shared/data/chaos_t2_mri) are not present")
    image = nib.load(str(image_path))
    label = nib.load(str(image_path.with_name("label_1.nii.gz")))
    # keep slices FIRST..LAST (a few seconds of CPU); the affine's origin moves to slice FIRST
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ [0, 0, FIRST] + image.affine[:3, 3]
    crop = np.s_[:, :, FIRST : LAST + 1]
    data = np.asarray(image.dataobj)[crop]
    labels = (np.asarray(label.dataobj)[crop] == 1).astype(np.uint8)  # liver
    return _twins(data, labels, affine, tmp_path_factory.mktemp("twins"))


def test_twins_are_sliced_along_their_acquisition_axis(chaos_twins):
    axial, permuted, sagittal = (load_volume(chaos_twins[n][0]) for n in ("axial", "permuted", "sagittal"))
    assert axial.shape == permuted.shape == sagittal.shape == (256, 256, LAST - FIRST + 1)
    assert (axial.plane, permuted.plane, sagittal.plane) == ("axial", "axial", "sagittal")
    assert permuted.slice_axis == 0 and sagittal.slice_axis == 2
    assert axial.plane_label == "axial, acquisition plane; A up, R left"
    assert sagittal.plane_label == "sagittal, acquisition plane; S up, A left"
    # the acquisition slices are the same pixels in all three
    np.testing.assert_array_equal(permuted.data, axial.data)
    np.testing.assert_array_equal(sagittal.data, axial.data)
    # the reformatted axial view of the sagittal stack cuts across its acquisition slices
    across = sagittal.resliced("axial")
    assert across.plane == "axial" and across.shape == (LAST - FIRST + 1, 256, 256)
    assert across.resliced("acquisition").plane == "sagittal"


def test_same_organ_volume_from_the_same_acquisition_slice(chaos_twins, tmp_path, capsys):
    results = {}
    for name, (image, label) in chaos_twins.items():
        out = tmp_path / f"{name}_seg.nii.gz"
        code = run(["fewshot", "segment", str(image), "--support-slice", str(SUPPORT), "--support-mask", str(label),
                    "--out", str(out), "--organ", "liver"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        millilitres = float(captured.out.split("liver ")[1].split(" mL")[0])
        seg = nib.load(str(out))
        np.testing.assert_allclose(seg.affine, nib.load(str(image)).affine)  # the input's grid and affine
        results[name] = (millilitres, np.asarray(seg.dataobj) > 0)
    reference, axial_mask = results["axial"]
    assert reference > 100.0  # a liver, not an echo of the support slice
    assert results["permuted"][0] == pytest.approx(reference, rel=0.01)
    assert results["sagittal"][0] == pytest.approx(reference, rel=0.01)
    # voxel for voxel, in each file's own grid
    np.testing.assert_array_equal(results["permuted"][1].transpose(1, 2, 0), axial_mask)
    np.testing.assert_array_equal(results["sagittal"][1], axial_mask)
    truth = np.asarray(nib.load(str(chaos_twins["axial"][1])).dataobj) > 0
    dice = 2 * np.count_nonzero(axial_mask & truth) / (np.count_nonzero(axial_mask) + np.count_nonzero(truth))
    assert dice > 0.6


def test_support_mask_in_the_file_grid_one_slice(chaos_twins, tmp_path):
    volume = load_volume(chaos_twins["permuted"][0])
    labels = np.asarray(nib.load(str(chaos_twins["permuted"][1])).dataobj)
    expected = volume.from_source(labels)[:, :, SUPPORT] > 0
    one = tmp_path / "one_slice.nii.gz"  # the file's slice SUPPORT: (256, 256) of file axes j, k
    nib.save(nib.Nifti1Image(labels[SUPPORT], np.eye(4)), str(one))
    np.testing.assert_array_equal(load_support_mask(one, volume, SUPPORT), expected)
    with pytest.raises(VolumeError, match=r"one slice of it 256x256 \(the file's voxel grid\)"):
        nib.save(nib.Nifti1Image(labels[SUPPORT][:100], np.eye(4)), str(one))
        load_support_mask(one, volume, SUPPORT)


def test_dicom_series_is_sliced_along_its_normal(tmp_path, dicom_file):
    """A sagittal series (rows along A, columns along I; slices stepping towards L)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path / "sagittal"
    folder.mkdir()
    uid = generate_uid()
    for index in range(4):
        ds = pydicom.dcmread(str(dicom_file("MR_small.dcm")))
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        ds.ImagePositionPatient = [10.0 + 3.0 * index, -50.0, 60.0]
        ds.SliceThickness = 3.0
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = uid
        ds.InstanceNumber = 4 - index  # stored in reverse order: sorting is by position
        ds.save_as(str(folder / f"s{index}.dcm"), enforce_file_format=True)
    volume = load_volume(folder)
    assert volume.shape == (64, 64, 4) and volume.plane == "sagittal"
    np.testing.assert_allclose(volume.spacing, [0.3125, 0.3125, 3.0], rtol=1e-3)
    assert volume.plane_label == "sagittal, acquisition plane; S up, A left"
    code, position = volume.slice_position_mm(0)
    assert code == "R" and position == pytest.approx(-19.0)  # LPS x 19 mm -> RAS x -19 mm (the leftmost)
    axial = load_volume(folder, axis="axial")
    assert axial.shape == (4, 64, 64) and axial.plane == "axial"  # R (the 4 slices), A, S
    with pytest.raises(VolumeError, match="unknown slicing axis 'oblique'"):
        load_volume(folder, axis="oblique")
