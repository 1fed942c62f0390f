"""File > Open / drag and drop send each path to the right tab."""
from __future__ import annotations

import shutil

import pytest

from lobule.app.routing import FFA, SLIDE, VOLUME, route


def test_volumes_images_and_slides_go_to_their_tabs(tmp_path, demo_slide):
    assert route(tmp_path / "case.nii.gz") == VOLUME
    assert route(tmp_path / "case.NII") == VOLUME
    assert route(demo_slide) == SLIDE
    assert route(demo_slide, ffa_current=True) == SLIDE
    assert route(tmp_path / "angio.png") == SLIDE
    assert route(tmp_path / "angio.jpg", ffa_current=True) == FFA
    assert route(tmp_path / "missing.svs") == SLIDE  # the slide reader reports what is wrong
    assert route(tmp_path) == SLIDE  # a folder without DICOM files


def test_dicom_ct_file_and_folder_go_to_the_volume_tab(tmp_path):
    data = pytest.importorskip("pydicom.data")
    ct = data.get_testdata_file("CT_small.dcm")
    assert route(ct) == VOLUME
    shutil.copy(ct, tmp_path / "IM0001")  # DICOM files often have no suffix
    assert route(tmp_path) == VOLUME
