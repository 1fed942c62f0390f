"""DICOM folders holding several series: no dialog offscreen (one line naming the series and
--series), --series picks one; DICOMDIR, presentation-state and structured-report objects are
not read as images."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pydicom
import pytest
from pydicom.uid import generate_uid

from lobule.inference.volume import list_series, load_volume

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"  # Grayscale Softcopy Presentation State Storage


@pytest.fixture
def mixed_folder(tmp_path, dicom_file, make_series):
    """A CT series of 3 slices, one MR slice, a DICOMDIR, an SR document and a presentation state
    (made from an image header, so it even has Rows/Columns)."""
    folder = make_series(tmp_path / "mixed", dicom_file("CT_small.dcm"), [0.0, 5.0, 10.0])
    shutil.copy(dicom_file("MR_small.dcm"), folder / "mr.dcm")
    shutil.copy(dicom_file("dicomdirtests/DICOMDIR"), folder / "DICOMDIR")
    shutil.copy(dicom_file("test-SR.dcm"), folder / "report.dcm")
    state = pydicom.dcmread(str(dicom_file("MR_small.dcm")))
    state.SOPClassUID = state.file_meta.MediaStorageSOPClassUID = GSPS
    state.SOPInstanceUID = state.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    state.SeriesInstanceUID = generate_uid()
    state.save_as(str(folder / "state.dcm"), enforce_file_format=True)
    return folder


def test_only_image_series_are_listed(mixed_folder):
    found = list_series(mixed_folder)
    assert [(s.modality, len(s.files)) for s in found] == [("CT", 3), ("MR", 1)]
    assert load_volume(mixed_folder, series="2").modality == "MR"


def test_view_never_waits_on_a_dialog_and_series_picks(mixed_folder, tmp_path, qapp):
    png = tmp_path / "shot.png"
    out = subprocess.run([sys.executable, "-m", "lobule.app.cli", "view", str(mixed_folder), "--screenshot", str(png),
                          "--size", "900x600"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lobule: error: mixed holds 2 series, pick one (--series N)")
    assert "1) " in lines[0] and "CT" in lines[0] and "2) " in lines[0] and "MR" in lines[0]
    assert not png.exists()

    from lobule.app.cli import main

    assert main(["view", str(mixed_folder), "--screenshot", str(png), "--series", "1", "--size", "900x600"]) == 0
    assert png.is_file()
