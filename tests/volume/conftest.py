"""Fixtures of the MRI/CT tests: pydicom's and nibabel's bundled real files, small DICOM series built
from them, tiny few-shot checkpoints, a small synthetic labelled data folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

CHAOS = "chaos_t2_mri"


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """One intra-op thread: on a shared 2-core machine more threads only spin (restored after)."""


@pytest.fixture(scope="session")
def nibabel_data() -> Path:
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data"


@pytest.fixture(scope="session")
def dicom_file():
    from pydicom.data import get_testdata_file

    return lambda name: Path(get_testdata_file(name))


def write_series(folder: Path, source: Path, z_positions, names=None, series_uid: str | None = None) -> Path:
    """Copies of one real DICOM slice at the given z positions (new SOPInstanceUIDs), like a series."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    for index, z in enumerate(z_positions):
        ds = pydicom.dcmread(str(source))
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, float(z)]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = index + 1
        name = names[index] if names else f"slice_{index:03d}.dcm"
        ds.save_as(str(folder / name), enforce_file_format=True)
    return folder


@pytest.fixture
def make_series():
    return write_series


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    """A randomly initialised tiny DPCENet and ALPNet installed as few-shot checkpoints
    (``tiny-dpcenet``, ``tiny-alpnet``) in a private LOBULE_MODELS_DIR."""
    import torch

    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(folder))
    torch.manual_seed(0)
    cards = {}
    for name, arch, extra in (("tiny-dpcenet", "dpcenet", {}), ("tiny-alpnet", "alpnet", {"pool_window": 2})):
        arguments = {"depth": 18, "base_width": 4, "output_stride": 8, "feature_dim": 8, **extra}
        model = create_model(arch, **arguments).eval()
        card = {
            "name": name, "task": "fewshot", "architecture": arch, "arguments": arguments,
            "classes": [{"id": 0, "name": "background", "colour": [0, 0, 0]}, {"id": 1, "name": "organ", "colour": [255, 0, 0]}],
            "input": {"tile_size": 32, "channels": 3},
            "training": {"setting": 1, "fold": 0, "held_out": ["1", "2", "3"], "test_organs": [1, 2]},
            "metrics": {},
        }
        cards[name] = save_checkpoint(model, card, folder / f"{name}.json")
    return cards


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """Three labelled 24x24x10 volumes: a bright box (label 1) and a dim disc column (label 2)."""
    import nibabel as nib

    folder = tmp_path_factory.mktemp("synthetic_chaos")
    rng = np.random.default_rng(0)
    for case in (1, 2, 3):
        image = rng.normal(100, 5, (24, 24, 10)).astype(np.float32)
        label = np.zeros((24, 24, 10), np.uint8)
        label[4:12, 4:14, 2 : 7 + case % 2] = 1
        xx, yy = np.mgrid[:24, :24]
        disc = (xx - 17) ** 2 + (yy - 16) ** 2 <= 9
        label[disc, 3:9] = 2
        image[label == 1] += 300
        image[label == 2] += 150
        affine = np.diag([-1.5, 1.5, 5.0, 1.0])
        nib.save(nib.Nifti1Image(image.astype(np.int16), affine), str(folder / f"image_{case}.nii.gz"))
        nib.save(nib.Nifti1Image(label, affine), str(folder / f"label_{case}.nii.gz"))
    return folder


@pytest.fixture
def chaos_case(shared_data):
    """(image path, label path) of CHAOS volume 1; skips where ../shared/data is absent."""
    folder = shared_data / CHAOS
    if not (folder / "image_1.nii.gz").is_file():
        pytest.skip("CHAOS volumes are not present")
    return folder / "image_1.nii.gz", folder / "label_1.nii.gz"


@pytest.fixture
def copy_file():
    def copy(source: Path, folder: Path, name: str | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(source, folder / (name or source.name)))

    return copy
