"""A DICOM-WSI file without ImageType is refused in plain words, not OpenSlide's internal wording."""
from __future__ import annotations

import pydicom
import pytest

from lobule.inference.slide.factory import open_slide
from lobule.models.errors import LobuleError


def test_dicom_wsi_without_image_type_says_what_is_missing(tmp_path):
    from lobule.inference.slide.synthetic import write_dicom_wsi

    folder = write_dicom_wsi(tmp_path / "wsi", size=(512, 512), mpp=0.5)
    for path in folder.iterdir():
        ds = pydicom.dcmread(str(path))
        del ds.ImageType
        ds.save_as(str(path))
    with pytest.raises(LobuleError) as info:
        open_slide(folder)
    message = str(info.value)
    assert "no ImageType (0008,0008)" in message and "pyramid levels" in message
    assert "flavor" not in message and "\n" not in message
