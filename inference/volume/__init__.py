"""MRI/CT volume I/O: NIfTI (nibabel) and DICOM series (pydicom), sliced along the acquisition axis
or a reformatted patient plane.

See :mod:`lobule.inference.volume.volume` for the slicing and orientation convention.
"""
from lobule.inference.volume.dicom import SeriesInfo, list_series, load_dicom_series, pick_series
from lobule.inference.volume.io import (
    binary_from_labels,
    load_support_mask,
    load_volume,
    save_mask_nifti,
)
from lobule.inference.volume.nifti import load_nifti
from lobule.inference.volume.volume import AXES, Volume, oriented_volume

__all__ = [
    "AXES",
    "Volume",
    "oriented_volume",
    "SeriesInfo",
    "list_series",
    "pick_series",
    "load_dicom_series",
    "load_nifti",
    "load_volume",
    "load_support_mask",
    "binary_from_labels",
    "save_mask_nifti",
]
