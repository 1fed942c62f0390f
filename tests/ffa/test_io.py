"""Opening angiograms: JPEG, PNG and TIFF at 8 and 16 bit, DICOM, RGB; bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from lobule.inference.errors import InputError, UnsupportedFormatError
from lobule.inference.ffa.io import angiogram_warnings, read_angiogram


def test_jpeg_png_and_tiff_8_bit(tmp_path, make_angiogram):
    gray = make_angiogram(100, 120)
    cv2.imwrite(str(tmp_path / "a.png"), gray)
    cv2.imwrite(str(tmp_path / "a.jpg"), gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
    tifffile.imwrite(tmp_path / "a.tif", gray)
    for name in ("a.png", "a.tif"):
        image = read_angiogram(tmp_path / name)
        np.testing.assert_array_equal(image.gray8, gray)
        assert image.bit_depth == 8 and image.rgb8.shape == (100, 120, 3) and image.warnings == ()
    jpeg = read_angiogram(tmp_path / "a.jpg")
    assert jpeg.shape == (100, 120) and np.abs(jpeg.gray8.astype(int) - gray).mean() < 3


def test_sixteen_bit_png_and_tiff_are_stretched_to_8_bit(tmp_path, make_angiogram):
    gray = make_angiogram(96, 96).astype(np.uint16) * 16 + 100  # a 12-bit camera in a 16-bit file
    cv2.imwrite(str(tmp_path / "a.png"), gray)
    tifffile.imwrite(tmp_path / "a.tif", gray)
    for name in ("a.png", "a.tif"):
        image = read_angiogram(tmp_path / name)
        assert image.bit_depth == 16 and image.pixels.dtype == np.uint16
        assert image.gray8.dtype == np.uint8 and image.gray8.min() == 0 and image.gray8.max() == 255
        assert np.corrcoef(image.gray8.ravel(), gray.ravel())[0, 1] > 0.999


def test_rgb_input_becomes_bt601_gray(tmp_path):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    cv2.imwrite(str(tmp_path / "red.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = read_angiogram(tmp_path / "red.png")
    assert image.gray8[0, 0] == round(0.299 * 200)
    np.testing.assert_array_equal(image.rgb8, rgb)


def test_dicom_ophthalmic_photograph_with_pixel_spacing(tmp_path, make_angiogram, write_ophthalmic_dicom):
    gray = make_angiogram(80, 96)
    write_ophthalmic_dicom(tmp_path / "eye.dcm", gray)
    image = read_angiogram(tmp_path / "eye.dcm")
    np.testing.assert_array_equal(image.gray8, gray)
    assert image.um_per_px == pytest.approx(12.5)


def test_dicom_16_bit_signed():
    from pydicom.data import get_testdata_file

    image = read_angiogram(get_testdata_file("CT_small.dcm"))
    assert image.shape == (128, 128) and image.bit_depth == 16 and image.gray8.max() == 255


def test_colour_fundus_photo_is_flagged_and_angiograms_are_not(tmp_path, make_angiogram):
    from skimage.data import retina

    fundus = cv2.resize(retina(), (256, 256), interpolation=cv2.INTER_AREA)
    assert angiogram_warnings(fundus) and "does not look like a fluorescein angiogram" in angiogram_warnings(fundus)[0]
    cv2.imwrite(str(tmp_path / "fundus.jpg"), cv2.cvtColor(fundus, cv2.COLOR_RGB2BGR))
    assert read_angiogram(tmp_path / "fundus.jpg").warnings
    gray = make_angiogram(96, 96)
    assert angiogram_warnings(np.repeat(gray[..., None], 3, 2)) == []
    tinted = np.stack([gray * 0.1, gray * 1.0, gray * 0.3], 2).astype(np.uint8)  # green-tinted monochrome
    assert angiogram_warnings(tinted) == []


def test_bad_inputs_are_one_line_errors(tmp_path):
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((20, 30), np.uint8))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all" * 10)
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 20)
    cases = {
        "tiny.png": (InputError, "30x20 px: too small"),
        "empty.png": (InputError, "empty"),
        "junk.png": (UnsupportedFormatError, "cannot decode"),
        "junk.dcm": (UnsupportedFormatError, "cannot read junk.dcm as DICOM"),
        "missing.png": (InputError, "not found"),
        ".": (InputError, "is a folder"),
    }
    for name, (error, text) in cases.items():
        with pytest.raises(error, match=text) as info:
            read_angiogram(tmp_path / name)
        assert "\n" not in str(info.value)
