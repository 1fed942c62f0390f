"""Opening volumes (NIfTI file or DICOM series), reading support masks, writing masks."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from lobule.inference.errors import VolumeError
from lobule.inference.volume.dicom import load_dicom_series
from lobule.inference.volume.nifti import is_nifti, load_nifti
from lobule.inference.volume.volume import AXES, Volume
from lobule.core.atomic import atomic_path

#: file endings of plain 2D images (a slice, never a volume)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_volume(path: str | Path, series: str | int | None = None, time_point: int | None = None,
                axis: str = "acquisition") -> Volume:
    """Open a NIfTI file, a DICOM file's series, or a DICOM series folder as a :class:`Volume`.

    Parameters
    ----------
    path : ``.nii`` / ``.nii.gz`` file, a folder of DICOM slices, or one DICOM file.
    series : which DICOM series when the folder holds several (1-based index, ``#SeriesNumber``
        or SeriesInstanceUID).
    time_point : for 4D NIfTI, the time point (default 0).
    axis : slice along the ``acquisition`` axis (default) or a reformatted ``axial``, ``coronal``
        or ``sagittal`` view (see :mod:`lobule.inference.volume.volume`).

    Raises
    ------
    VolumeError
        Missing path, a 2D image, an unreadable file, several series without a choice, etc.
        The message is one line.
    """
    path = Path(path)
    if axis not in AXES:
        raise VolumeError(f"unknown slicing axis {axis!r}; choose one of {', '.join(AXES)}")
    if not path.exists():
        raise VolumeError(f"volume not found: {path}")
    if path.is_dir():
        return load_dicom_series(path, series, axis=axis)
    if path.stat().st_size == 0:
        raise VolumeError(f"{path.name} is empty")
    if is_nifti(path):
        return load_nifti(path, time_point, axis=axis)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VolumeError(
            f"{path.name} is a 2D image, not a volume; give a NIfTI file (.nii, .nii.gz) or a DICOM series folder"
        )
    return load_dicom_series(path, series, axis=axis)


def load_support_mask(path: str | Path, volume: Volume, slice_index: int, label: int | None = None) -> np.ndarray:
    """The support mask of slice ``slice_index`` of ``volume``.

    Parameters
    ----------
    path : a NIfTI in the file's own voxel grid: of the volume's shape (only the given slice is
        read; it is reoriented like the volume), or one slice of it (the file's shape without
        the axis being sliced, optionally with that axis of length 1); or a 2D image (PNG, TIFF)
        of the slice as the app shows it: an (X, Y) array equal in layout to ``volume.slice(k)``.
    volume : the volume the mask belongs to.
    slice_index : slice ``k`` of the volume (along the axis in use, as ``volume.slice``).
    label : which value is the organ when the mask holds several labels (e.g. a label map);
        None accepts any non-zero value when only one is present.

    Returns
    -------
    (X, Y) bool array.

    Raises
    ------
    VolumeError
        Missing or unreadable file, wrong shape, slice out of range, several labels and none
        chosen, or an empty mask on that slice.
    """
    path = Path(path)
    if not 0 <= slice_index < volume.shape[2]:
        raise VolumeError(f"support slice {slice_index} is outside the volume (slices 0..{volume.shape[2] - 1})")
    if not path.is_file():
        raise VolumeError(f"support mask not found: {path}")
    slice_shape = volume.shape[:2]
    if is_nifti(path):
        try:
            array = np.asanyarray(nib.load(str(path)).dataobj)
        except Exception as exc:
            raise VolumeError(f"cannot read support mask {path.name}: {exc}") from None
        array = np.squeeze(array) if array.ndim > 3 else array
        file_axis = int(np.flatnonzero(volume.ornt[:, 0] == 2)[0])  # the file axis being sliced
        one_slice = tuple(s for a, s in enumerate(volume.source_shape) if a != file_axis)
        if array.ndim == 3 and tuple(array.shape) == tuple(volume.source_shape):
            plane = volume.from_source(np.asarray(array))[:, :, slice_index]
        elif (array.ndim == 3 and array.shape[file_axis] == 1 and np.squeeze(array, file_axis).shape == one_slice) \
                or (array.ndim == 2 and tuple(array.shape) == one_slice):
            plane = _file_plane_to_slice(np.asarray(array).reshape(one_slice), volume, file_axis)
        else:
            raise VolumeError(
                f"support mask {path.name} has shape {_fmt(array.shape)}; expected the volume's {_fmt(volume.source_shape)} "
                f"or one slice of it {_fmt(one_slice)} (the file's voxel grid)"
            )
    else:
        plane = _read_image(path)
        if plane.ndim == 3:  # RGB(A) drawing: any channel non-zero
            plane = plane[..., :3].max(axis=-1) if plane.shape[-1] in (3, 4) else plane
        if plane.ndim != 2 or tuple(plane.shape) != slice_shape:
            raise VolumeError(
                f"support mask {path.name} has shape {_fmt(plane.shape)}; slice {slice_index} of the volume is {_fmt(slice_shape)}"
            )
    return binary_from_labels(plane, label, f"support mask {path.name} on slice {slice_index}")


def _file_plane_to_slice(plane: np.ndarray, volume: Volume, file_axis: int) -> np.ndarray:
    """A plane in the file's grid (the file's axes without ``file_axis``) in the layout of ``volume.slice``."""
    stacked = np.expand_dims(plane, file_axis)  # a one-slice volume in file order
    return np.asarray(volume.from_source(stacked))[:, :, 0]


def binary_from_labels(plane: np.ndarray, label: int | None, what: str) -> np.ndarray:
    """(X, Y) bool organ mask from a binary or label plane.

    Raises
    ------
    VolumeError
        If the plane holds several non-zero values and ``label`` is None, or the result is empty.
    """
    plane = np.asarray(plane)
    if label is not None:
        mask = plane == label
        if not mask.any():
            present = ", ".join(str(int(v)) for v in np.unique(plane) if v != 0) or "none"
            raise VolumeError(f"{what} has no voxel of label {label} (labels present: {present})")
        return mask
    values = np.unique(plane[plane != 0])
    if values.size == 0:
        raise VolumeError(f"{what} is empty: outline the organ on that slice")
    if values.size > 1 and not (plane.dtype == bool or set(values.tolist()) <= {1, 255}):
        listed = ", ".join(str(int(v)) if float(v).is_integer() else f"{v:g}" for v in values[:8])
        raise VolumeError(f"{what} holds several labels ({listed}); choose the organ with --label")
    return plane != 0


def _read_image(path: Path) -> np.ndarray:
    from skimage.io import imread

    try:
        return np.asarray(imread(str(path)))
    except Exception as exc:
        raise VolumeError(f"cannot read support mask {path.name}: {exc}") from None


def _fmt(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def save_mask_nifti(mask: np.ndarray, volume: Volume, path: str | Path, label: int = 1) -> Path:
    """Write an (X, Y, Z) mask (``volume``'s voxel order) as a uint8 NIfTI in the input's own voxel order and affine,
    atomically.

    Parameters
    ----------
    mask : (X, Y, Z) bool or integer array matching ``volume.shape``.
    label : value written for the organ (the background is 0) when ``mask`` is bool.

    Raises
    ------
    VolumeError
        If the mask does not match the volume's shape.
    """
    if tuple(mask.shape) != volume.shape:
        raise VolumeError(f"mask shape {_fmt(mask.shape)} does not match the volume {_fmt(volume.shape)}")
    values = mask.astype(np.uint8) * np.uint8(label) if mask.dtype == bool else mask.astype(np.uint8)
    image = nib.Nifti1Image(volume.to_source(values), volume.source_affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(volume.source_affine, code=1)
    image.set_sform(volume.source_affine, code=1)
    path = Path(path)
    suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
    with atomic_path(path) as tmp:
        # nibabel picks compression from the file name, so write under a name with the real suffix
        named = tmp.with_name(tmp.name + suffix)
        nib.save(image, str(named))
        named.replace(tmp)
    return path
