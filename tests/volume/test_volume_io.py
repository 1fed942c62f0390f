"""Opening volumes: NIfTI (nibabel's real files), DICOM series (pydicom's real files), bad input."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from lobule.inference.errors import VolumeError
from lobule.inference.volume import list_series, load_support_mask, load_volume, save_mask_nifti


def test_nifti_is_reoriented_to_ras_and_says_so(nibabel_data):
    path = nibabel_data / "anatomical.nii"
    raw = nib.load(str(path))
    volume = load_volume(path)
    assert volume.shape == (33, 41, 25)
    np.testing.assert_allclose(volume.spacing, [2.0, 2.0, 2.0])
    assert volume.source_axcodes == ("L", "A", "S")
    assert nib.aff2axcodes(volume.affine) == ("R", "A", "S")
    # LAS -> RAS flips the first axis only
    np.testing.assert_array_equal(volume.data, np.asarray(raw.dataobj, np.float32)[::-1])
    assert any("the file is LAS" in note and "A up, R left" in note for note in volume.notes)
    assert volume.axis == "acquisition" and volume.plane_label == "axial, acquisition plane; A up, R left"
    # same world position for matching voxels
    np.testing.assert_allclose(volume.voxel_to_mm((0, 5, 7)), raw.affine[:3, :3] @ [32, 5, 7] + raw.affine[:3, 3])
    np.testing.assert_array_equal(volume.to_source(volume.data), np.asarray(raw.dataobj, np.float32))


def test_4d_nifti_picks_a_time_point_and_tells(nibabel_data):
    path = nibabel_data / "example4d.nii.gz"
    first = load_volume(path)
    assert first.shape == (128, 96, 24)
    assert any("2 time points" in note and "time point 0" in note for note in first.notes)
    second = load_volume(path, time_point=1)
    assert not np.array_equal(first.data, second.data)
    with pytest.raises(VolumeError, match="time point 5 does not exist"):
        load_volume(path, time_point=5)


def test_2d_inputs_are_refused_in_one_line(tmp_path):
    flat = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 30), np.int16), np.eye(4)), str(flat))
    with pytest.raises(VolumeError, match="2D image") as info:
        load_volume(flat)
    assert "\n" not in str(info.value)
    png = tmp_path / "slice.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(VolumeError, match="2D image"):
        load_volume(png)
    with pytest.raises(VolumeError, match="not found"):
        load_volume(tmp_path / "missing.nii.gz")


def test_single_ct_slice_in_hounsfield_units(dicom_file):
    import pydicom

    path = dicom_file("CT_small.dcm")
    ds = pydicom.dcmread(str(path))
    volume = load_volume(path)
    assert volume.shape == (128, 128, 1) and volume.modality == "CT" and volume.unit == "HU"
    np.testing.assert_allclose(volume.spacing[:2], [0.661468, 0.661468])
    np.testing.assert_allclose(volume.spacing[2], 5.0)
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(volume.to_source(volume.data)[:, :, 0], hu.T)
    # the first voxel of the file lies at ImagePositionPatient (LPS -> RAS flips x and y)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    np.testing.assert_allclose(volume.source_affine[:3, 3], [-x, -y, z], atol=1e-4)


def test_compressed_mr_series_sorted_by_position(tmp_path, dicom_file, make_series):
    """MR_small in five transfer syntaxes (RLE, JPEG-LS, JPEG 2000, big endian, plain) as one series
    in shuffled file order decode to the same pixels, sorted by slice position."""
    import pydicom
    from pydicom.uid import generate_uid

    uid = generate_uid()
    names = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
             "MR_small_bigendian.dcm"]
    z0 = 6.6406
    for index, name in enumerate(names):
        make_series(tmp_path / "mr", dicom_file(name), [z0 + 0.8 * index], names=[f"{9 - index}_{name}"], series_uid=uid)
    volume = load_volume(tmp_path / "mr")
    assert volume.shape == (64, 64, 5)
    np.testing.assert_allclose(volume.spacing, [0.3125, 0.3125, 0.8], atol=1e-6)
    reference = pydicom.dcmread(str(dicom_file("MR_small.dcm"))).pixel_array.T.astype(np.float32)
    source = volume.to_source(volume.data)
    for k in range(5):
        np.testing.assert_array_equal(source[:, :, k], reference)
    assert volume.notes == tuple(n for n in volume.notes if "missing" not in n)


def test_duplicate_copies_of_one_slice(tmp_path, dicom_file, copy_file):
    for name in ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm"):
        copy_file(dicom_file(name), tmp_path / "dup")
    volume = load_volume(tmp_path / "dup")
    assert volume.shape == (64, 64, 1)
    assert any("2 duplicate" in note for note in volume.notes)


def test_missing_slice_warns_and_continues(tmp_path, dicom_file, make_series):
    make_series(tmp_path / "gap", dicom_file("CT_small.dcm"), [0.0, 5.0, 10.0, 20.0, 25.0])
    volume = load_volume(tmp_path / "gap")
    assert volume.shape == (128, 128, 5)
    assert volume.spacing[2] == pytest.approx(5.0)
    assert any("1 slice(s) missing" in note for note in volume.notes)


def test_uneven_spacing_warns(tmp_path, dicom_file, make_series):
    make_series(tmp_path / "uneven", dicom_file("CT_small.dcm"), [0.0, 5.0, 10.0, 16.5, 21.5])
    volume = load_volume(tmp_path / "uneven")
    assert any("uneven slice spacing" in note for note in volume.notes)


def test_mixed_series_are_listed_then_picked(tmp_path, dicom_file, make_series, copy_file):
    make_series(tmp_path / "mixed", dicom_file("CT_small.dcm"), [0.0, 5.0, 10.0])
    copy_file(dicom_file("MR_small.dcm"), tmp_path / "mixed")
    with pytest.raises(VolumeError, match="holds 2 series") as info:
        load_volume(tmp_path / "mixed")
    message = str(info.value)
    assert "\n" not in message and "CT" in message and "MR" in message and "--series" in message
    assert [s.modality for s in list_series(tmp_path / "mixed")] == ["CT", "MR"]
    assert load_volume(tmp_path / "mixed", series=1).shape == (128, 128, 3)
    assert load_volume(tmp_path / "mixed", series="2").modality == "MR"


def test_truncated_dicom_is_a_one_line_error(tmp_path, dicom_file, copy_file):
    copy_file(dicom_file("MR_truncated.dcm"), tmp_path / "broken")
    with pytest.raises(VolumeError, match="cannot decode") as info:
        load_volume(tmp_path / "broken")
    assert "\n" not in str(info.value)
    with pytest.raises(VolumeError, match="no DICOM images"):
        load_volume(tmp_path)


def test_support_mask_shapes_and_errors(tmp_path, nibabel_data):
    from skimage.io import imsave

    volume = load_volume(nibabel_data / "anatomical.nii")
    raw = nib.load(str(nibabel_data / "anatomical.nii"))
    labels = np.zeros(raw.shape, np.uint8)
    labels[10:20, 12:22, 12] = 1  # file order (LAS)
    labels[2:5, 2:5, 12] = 2
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, raw.affine), str(path))
    with pytest.raises(VolumeError, match="several labels"):
        load_support_mask(path, volume, 12)
    mask = load_support_mask(path, volume, 12, label=1)
    np.testing.assert_array_equal(mask, volume.from_source(labels == 1)[:, :, 12])
    assert mask[33 - 20 : 33 - 10, 12:22].all()  # the first axis was flipped
    with pytest.raises(VolumeError, match="empty"):
        load_support_mask(path, volume, 3)
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), str(wrong))
    with pytest.raises(VolumeError, match="has shape 10x10x10; expected the volume's 33x41x25"):
        load_support_mask(wrong, volume, 3)
    png = tmp_path / "slice.png"
    plane = np.zeros((33, 41), np.uint8)
    plane[5:9, 6:30] = 255
    imsave(png, plane, check_contrast=False)
    np.testing.assert_array_equal(load_support_mask(png, volume, 0), plane > 0)
    with pytest.raises(VolumeError, match="outside the volume"):
        load_support_mask(png, volume, 25)
    bad_png = tmp_path / "transposed.png"
    imsave(bad_png, plane.T.copy(), check_contrast=False)
    with pytest.raises(VolumeError, match="slice 0 of the volume is 33x41"):
        load_support_mask(bad_png, volume, 0)


def test_saved_mask_has_the_input_geometry(tmp_path, nibabel_data):
    path = nibabel_data / "anatomical.nii"
    volume = load_volume(path)
    mask = np.zeros(volume.shape, bool)
    mask[3:9, 4:10, 5:7] = True
    out = save_mask_nifti(mask, volume, tmp_path / "mask.nii.gz")
    written = nib.load(str(out))
    source = nib.load(str(path))
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine)
    np.testing.assert_array_equal(np.asarray(written.dataobj) > 0, volume.to_source(mask))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]  # no temporary left


def test_nifti_without_orientation_is_shown_in_voxel_axes(tmp_path):
    data = np.arange(10 * 12 * 5, dtype=np.float32).reshape(10, 12, 5)
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 4.0, 1.0]))
    image.set_qform(None, code=0)
    image.set_sform(None, code=0)
    nib.save(image, str(tmp_path / "plain.nii"))
    volume = load_volume(tmp_path / "plain.nii")
    np.testing.assert_array_equal(volume.data, data)  # no flips from a made-up orientation
    assert volume.plane_label == "acquisition plane; voxel axes: j up, i left (no orientation in the file)"
    assert any("no patient orientation" in note for note in volume.notes)
    sideways = volume.resliced("sagittal")  # along voxel axis i
    assert sideways.shape == (12, 5, 10) and "k up, j left" in sideways.plane_label
