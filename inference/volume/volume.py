"""The :class:`Volume`: a 3D scalar image in a canonical voxel order, with its geometry.

Every volume Lobule opens is reoriented to the closest canonical orientation, RAS+
(``nibabel.as_closest_canonical``: the first voxel axis runs towards patient Right, the second
towards Anterior, the third towards Superior; axes are only permuted and flipped, never
resampled). Slice ``k`` is ``data[:, :, k]``, the index the MRI/CT tab's slider and the CLI's
``--support-slice`` use; for an axial scan it runs from feet to head. Outputs are written back in
the file's own voxel order with the file's affine (:meth:`Volume.to_source`), so a mask lines up
with the input in any viewer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel import orientations as _ornt

CANONICAL_AXES = ("R", "A", "S")


@dataclass(frozen=True)
class Volume:
    """A 3D image in RAS+ voxel order.

    Attributes
    ----------
    data : (X, Y, Z) float32 array, intensities (Hounsfield units for CT, scanner units otherwise).
    affine : (4, 4) float64, voxel (i, j, k) of ``data`` -> RAS+ millimetres.
    source : the file or folder it came from.
    modality : ``"CT"``, ``"MR"`` or ``""`` (unknown, e.g. NIfTI).
    unit : intensity unit, ``"HU"`` for CT, ``"a.u."`` otherwise.
    source_affine : (4, 4) affine of the file's own voxel order (what outputs are written with).
    source_shape : (3,) shape in the file's voxel order.
    notes : one-line remarks the user must be told (orientation, 4D time point, missing slices...).
    description : short human description (series description, file name).
    time_points : number of time points of a 4D source (1 for 3D).
    time_point : the time point shown (0-based).
    """

    data: np.ndarray
    affine: np.ndarray
    source: str
    source_affine: np.ndarray
    source_shape: tuple[int, int, int]
    modality: str = ""
    unit: str = "a.u."
    notes: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    time_points: int = 1
    time_point: int = 0

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """(3,) voxel size in mm along the three voxel axes (column norms of the affine)."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (mm^3 / 1000)."""
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def source_axcodes(self) -> tuple[str, ...]:
        """The file's axis codes, e.g. ``('L', 'A', 'S')``."""
        return tuple(_ornt.aff2axcodes(self.source_affine))

    @property
    def orientation_note(self) -> str:
        """One line saying how the file's axes were reoriented for display and processing."""
        codes = "".join(self.source_axcodes)
        if codes == "RAS":
            return "orientation: the file is RAS+; shown as stored"
        return f"orientation: the file is {codes}; shown reoriented to RAS+ (slices along the third axis, feet to head)"

    def slice(self, k: int) -> np.ndarray:
        """(X, Y) float32 slice ``k`` along the third axis."""
        return self.data[:, :, k]

    def voxel_to_mm(self, ijk) -> np.ndarray:
        """RAS+ millimetre coordinates of voxel (i, j, k) (fractional indices allowed)."""
        ijk = np.asarray(ijk, dtype=float)
        return self.affine[:3, :3] @ ijk + self.affine[:3, 3]

    # ------------------------------------------------------------------ orientation
    def _file_ornt(self) -> np.ndarray:
        return _ornt.io_orientation(self.source_affine)

    def to_source(self, array: np.ndarray) -> np.ndarray:
        """An (X, Y, Z) array in this volume's voxel order, returned in the file's voxel order."""
        canonical = _ornt.axcodes2ornt(CANONICAL_AXES)
        return np.ascontiguousarray(_ornt.apply_orientation(array, _ornt.ornt_transform(canonical, self._file_ornt())))

    def from_source(self, array: np.ndarray) -> np.ndarray:
        """An array of :attr:`source_shape` (the file's voxel order), returned in RAS+ order."""
        return np.ascontiguousarray(_ornt.apply_orientation(array, self._file_ornt()))

    def source_slice_index(self, k: int) -> int | None:
        """Index in the file's own order of canonical slice ``k``, or None when the file's third
        axis is not the canonical third axis (a sagittal or coronal file)."""
        ornt = self._file_ornt()
        if int(ornt[2, 0]) != 2:
            return None
        return k if ornt[2, 1] > 0 else self.source_shape[2] - 1 - k


def canonical_volume(data: np.ndarray, affine: np.ndarray, **fields) -> Volume:
    """Build a :class:`Volume` from a file-order array and affine, reoriented to RAS+.

    Parameters
    ----------
    data : (I, J, K) array in the file's voxel order.
    affine : (4, 4) voxel -> RAS+ mm of ``data``.
    fields : the remaining :class:`Volume` fields (source, modality, unit, notes, description).
    """
    affine = np.asarray(affine, dtype=np.float64)
    ornt = _ornt.io_orientation(affine)
    canonical = _ornt.apply_orientation(data, ornt).astype(np.float32, copy=False)
    new_affine = affine @ _ornt.inv_ornt_aff(ornt, data.shape)
    volume = Volume(
        data=np.ascontiguousarray(canonical),
        affine=new_affine,
        source_affine=affine,
        source_shape=tuple(int(s) for s in data.shape),
        **fields,
    )
    if "".join(volume.source_axcodes) != "RAS":
        volume = _with_notes(volume, (volume.orientation_note,))
    return volume


def _with_notes(volume: Volume, extra: tuple[str, ...]) -> Volume:
    from dataclasses import replace

    return replace(volume, notes=tuple(volume.notes) + tuple(extra))
