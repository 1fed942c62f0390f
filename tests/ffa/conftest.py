"""Fixtures of the FFA tests: synthetic angiograms and a tiny CNP checkpoint (no real weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def synthetic_angiogram(height: int = 128, width: int = 112, seed: int = 0) -> np.ndarray:
    """(H, W) uint8: a gray fundus disc on black, bright vessels, a dark non-perfused patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (0.45 * min(height, width)) ** 2
    image = np.where(disc, 90 + rng.normal(0, 12, (height, width)), 0)
    for k in range(4):  # vessels
        image[np.abs(yy - (0.6 + 0.25 * k) * xx - 10 * k) < 1.5] = 230
    image[(yy - height * 0.35) ** 2 + (xx - width * 0.3) ** 2 < 12**2] = 25  # CNP patch
    return np.clip(np.where(disc, image, 0), 0, 255).astype(np.uint8)


@pytest.fixture
def angiogram_file(tmp_path) -> Path:
    import cv2

    path = tmp_path / "eye.png"
    cv2.imwrite(str(path), synthetic_angiogram())
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised Enhance LadderNet (base width 2) saved as an ffa-cnp card."""
    import torch

    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model

    torch.manual_seed(0)
    arguments = {"in_channels": 1, "num_classes": 2, "base_width": 2, "dropout": 0.25, "reduction_ratio": 8}
    model = create_model("enhance_laddernet", **arguments)
    card = {
        "name": "tiny-ffa", "task": "ffa-cnp", "architecture": "enhance_laddernet", "arguments": arguments,
        "classes": [{"id": 0, "name": "background"}, {"id": 1, "name": "capillary non-perfusion"}],
        "inference": {"tile_size": 96, "overlap": 48, "threshold": 0.5},
        "training": {"data": ["none: random weights for tests"]}, "metrics": {},
    }
    return save_checkpoint(model, card, tmp_path_factory.mktemp("models") / "tiny-ffa.json")


@pytest.fixture
def make_angiogram():
    """The synthetic angiogram factory, for tests that need arrays of other sizes."""
    return synthetic_angiogram


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Tiny models run fastest on one thread (and do not fight other test workers for cores)."""


def _ophthalmic_dicom(path, pixels):
    """Write (H, W) uint8 pixels as a DICOM Ophthalmic Photography 8 Bit image, 12.5 um/px."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = "1.2.840.10008.5.1.4.1.1.77.1.5.1"  # Ophthalmic Photography 8 Bit Image Storage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "OP"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelSpacing = [0.0125, 0.0125]
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def write_ophthalmic_dicom():
    """The writer of synthetic DICOM ophthalmic photographs."""
    return _ophthalmic_dicom
