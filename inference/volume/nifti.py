"""NIfTI volumes (``.nii``, ``.nii.gz``) through nibabel."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from lobule.inference.errors import VolumeError
from lobule.inference.volume.volume import Volume, oriented_volume

_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001}


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def load_nifti(path: str | Path, time_point: int | None = None, axis: str = "acquisition") -> Volume:
    """Read a NIfTI file as a :class:`Volume` sliced along ``axis``.

    Parameters
    ----------
    path : ``.nii`` or ``.nii.gz`` file.
    time_point : for a 4D file, the index along the fourth axis to use (default 0; the choice is
        stated in :attr:`Volume.notes`).
    axis : ``acquisition`` (the voxel axis of clearly largest spacing, else the third) or a
        reformatted ``axial`` / ``coronal`` / ``sagittal`` view (:mod:`~lobule.inference.volume.volume`).

    Raises
    ------
    VolumeError
        If the file cannot be read, is 2D (an image, not a volume), has more than 4 dimensions, or
        ``time_point`` is out of range.
    """
    path = Path(path)
    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError, zlib errors...
        raise VolumeError(f"cannot read NIfTI {path.name}: {exc}") from None
    shape = tuple(int(s) for s in image.shape)
    notes: list[str] = []
    count, t = 1, 0
    # trailing singleton dimensions beyond the third (e.g. (X, Y, Z, 1)) are not time points
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 3:
        raise VolumeError(
            f"{path.name} is a 2D image ({'x'.join(map(str, shape))}), not a volume; "
            "give a 3D NIfTI or a DICOM series folder"
        )
    if len(shape) > 4:
        raise VolumeError(f"{path.name} has {len(shape)} dimensions ({'x'.join(map(str, shape))}); only 3D and 4D volumes are supported")
    try:
        if len(shape) == 4:
            count = shape[3]
            t = 0 if time_point is None else int(time_point)
            if not 0 <= t < count:
                raise VolumeError(f"{path.name} has {count} time points (0..{count - 1}); time point {t} does not exist")
            data = np.asarray(image.dataobj[..., t], dtype=np.float32).reshape(shape[:3])
            notes.append(f"4D volume with {count} time points: showing time point {t} (choose another with --time-point or the tab's time point box)")
        else:
            data = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except VolumeError:
        raise
    except Exception as exc:
        raise VolumeError(f"cannot read the voxels of {path.name}: {exc}") from None
    affine = np.asarray(image.affine, dtype=np.float64)
    spatial_unit = image.header.get_xyzt_units()[0] if hasattr(image.header, "get_xyzt_units") else "unknown"
    if spatial_unit in _UNIT_TO_MM and spatial_unit != "mm":
        factor = _UNIT_TO_MM[spatial_unit]
        affine = affine.copy()
        affine[:3, :] *= factor
        notes.append(f"spatial unit of the file is {spatial_unit}; converted to mm")
    elif spatial_unit not in _UNIT_TO_MM:
        notes.append("the file does not state its spatial unit; millimetres assumed")
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise VolumeError(f"{path.name} has no usable voxel-to-world affine")
    finite = np.isfinite(data)
    nonfinite = int(data.size - np.count_nonzero(finite))
    if nonfinite:
        data = np.where(finite, data, 0.0).astype(np.float32)
        notes.append(f"{nonfinite} voxels are NaN or infinite; shown as 0")
    modality, unit = _guess_modality(data)
    if modality == "CT":
        notes.append("intensities look like Hounsfield units (minimum near -1024): CT windows offered")
    header = image.header
    oriented = not (isinstance(header, nib.Nifti1Header)  # NIfTI-2 headers are Nifti1Header subclasses
                    and int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0)
    if not oriented:
        notes.append("the file states no patient orientation (qform and sform codes 0): directions are voxel axes")
    return oriented_volume(
        data, affine, axis=axis, source=str(path), modality=modality, unit=unit, notes=tuple(notes),
        description=path.name, time_points=count, time_point=t, nonfinite=nonfinite, oriented=oriented,
    )


def _guess_modality(data: np.ndarray) -> tuple[str, str]:
    """NIfTI does not store the modality; a minimum near -1024 (air in HU) suggests CT."""
    low = float(np.percentile(data, 0.5)) if data.size else 0.0
    if -1100.0 <= low <= -900.0:
        return "CT", "HU"
    return "", "a.u."
