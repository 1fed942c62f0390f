"""The :class:`Volume`: a 3D scalar image in the voxel order it is sliced in, with its geometry.

Slicing. One-shot segmentation is a 2D method on the slices as they were acquired (the protocol of
"Self-supervision with Superpixels: Training Few-shot Medical Image Segmentation without
Annotation", SSL-ALPNet, cuts each volume along its stored slice axis). So by default a volume is
sliced along its *acquisition* axis: the slice normal of a DICOM series, and for NIfTI the voxel
axis with clearly the largest spacing, else the third voxel axis. The views ``axial``,
``coronal`` and ``sagittal`` reformat it along the patient's S, A or R axis instead.

Voxel order. Whatever the slice axis, axes are only permuted and flipped, never resampled: each
file axis is mapped to the patient axis (R, A, S) it is closest to and flipped to point that way
(``nibabel.io_orientation``), the slice axis is put last and the two in-plane axes keep the
R, A, S order. Slice ``k`` is ``data[:, :, k]``, the index the MRI/CT tab's slider and the CLI's
``--support-slice`` use; it runs towards R, A or S. For an axial file this is plain RAS+ (slices
from feet to head). The app draws axis 0 increasing to the screen's left and axis 1 upwards (the
radiological convention for axial slices); :attr:`Volume.plane_label` says which patient
directions that is. Outputs are written back in the file's own voxel order with the file's
affine (:meth:`Volume.to_source`), so a mask lines up with the input in any viewer.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from nibabel import orientations as _ornt

#: slicing choices: the file's own slice axis, or a reformatted patient plane
AXES = ("acquisition", "axial", "coronal", "sagittal")
#: patient axis (index into R, A, S) that each reformatted plane is sliced along
_PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
_PLANE_NAME = {0: "sagittal", 1: "coronal", 2: "axial"}
#: the largest voxel spacing must exceed the others by this factor to be taken as the slice axis
SPACING_MARGIN = 1.1
#: a slice normal further than this from the nearest patient axis makes the plane "oblique"
OBLIQUE_DEGREES = 20.0


def acquisition_axis(affine: np.ndarray) -> int:
    """File voxel axis the volume was acquired along: the one whose spacing exceeds the other two
    by more than :data:`SPACING_MARGIN`, else the third (NIfTI's slice axis by convention)."""
    spacing = np.sqrt((np.asarray(affine, float)[:3, :3] ** 2).sum(axis=0))
    order = np.argsort(spacing)
    if spacing[order[2]] > SPACING_MARGIN * spacing[order[1]]:
        return int(order[2])
    return 2


def slicing_ornt(affine: np.ndarray, axis: str = "acquisition", slice_axis: int | None = None,
                 oriented: bool = True) -> np.ndarray:
    """(3, 2) nibabel orientation (file axis -> (working axis, flip)) that puts the slice axis of
    ``axis`` last, see the module docstring.

    Parameters
    ----------
    affine : (4, 4) voxel -> RAS+ mm of the file.
    axis : one of :data:`AXES`.
    slice_axis : file axis acquired along (default :func:`acquisition_axis`); only for ``acquisition``.
    oriented : False when the affine states no patient orientation: the voxel axes are then kept
        as stored (no flips), and axial / coronal / sagittal mean slicing along k / j / i.

    Raises
    ------
    ValueError
        If ``axis`` is not one of :data:`AXES`.
    """
    if axis not in AXES:
        raise ValueError(f"unknown slicing axis {axis!r}; choose one of {', '.join(AXES)}")
    if oriented:
        closest = _ornt.io_orientation(affine)  # file axis -> (R/A/S index, flip)
    else:
        closest = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    if axis == "acquisition":
        slice_axis = acquisition_axis(affine) if slice_axis is None else int(slice_axis)
        normal = int(closest[slice_axis, 0])
    else:
        normal = _PLANE_AXIS[axis]
    order = [a for a in range(3) if a != normal] + [normal]
    ornt = closest.copy()
    ornt[:, 0] = [order.index(int(a)) for a in closest[:, 0]]
    return ornt


def _inverse(ornt: np.ndarray) -> np.ndarray:
    inverse = np.zeros_like(ornt)
    for axis, (target, flip) in enumerate(ornt):
        inverse[int(target)] = (axis, flip)
    return inverse


@dataclass(frozen=True)
class Volume:
    """A 3D image in its slicing voxel order (see the module docstring).

    Attributes
    ----------
    data : (X, Y, Z) float32 array, intensities (Hounsfield units for CT, scanner units otherwise);
        ``data[:, :, k]`` is slice ``k``.
    affine : (4, 4) float64, voxel (i, j, k) of ``data`` -> RAS+ millimetres.
    source : the file or folder it came from.
    source_affine : (4, 4) affine of the file's own voxel order (what outputs are written with).
    source_shape : (3,) shape in the file's voxel order.
    ornt : (3, 2) nibabel orientation, file axis -> (axis of ``data``, flip).
    axis : how it is sliced, one of :data:`AXES`.
    slice_axis : the file axis it was acquired along.
    oriented : False when the file gives no patient orientation (NIfTI without qform/sform):
        directions are then named by voxel axes only.
    modality : ``"CT"``, ``"MR"`` or ``""`` (unknown, e.g. NIfTI).
    unit : intensity unit, ``"HU"`` for CT, ``"a.u."`` otherwise.
    notes : one-line remarks the user must be told (orientation, 4D time point, missing slices...).
    description : short human description (series description, file name).
    time_points : number of time points of a 4D source (1 for 3D).
    time_point : the time point shown (0-based).
    nonfinite : voxels that were NaN or infinite in the file (shown as 0).
    """

    data: np.ndarray
    affine: np.ndarray
    source: str
    source_affine: np.ndarray
    source_shape: tuple[int, int, int]
    ornt: np.ndarray = field(default_factory=lambda: np.array([[0, 1], [1, 1], [2, 1]], float))
    axis: str = "acquisition"
    slice_axis: int = 2
    oriented: bool = True
    modality: str = ""
    unit: str = "a.u."
    notes: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    time_points: int = 1
    time_point: int = 0
    nonfinite: int = 0

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
    def axcodes(self) -> tuple[str, str, str]:
        """Patient direction each axis of :attr:`data` runs towards, e.g. ``('R', 'A', 'S')``."""
        return tuple(_ornt.aff2axcodes(self.affine))  # type: ignore[return-value]

    @property
    def plane(self) -> str:
        """``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"`` (slice normal more than
        :data:`OBLIQUE_DEGREES` from every patient axis)."""
        normal = self.affine[:3, 2] / max(float(np.linalg.norm(self.affine[:3, 2])), 1e-12)
        nearest = int(np.argmax(np.abs(normal)))
        if np.degrees(np.arccos(min(1.0, abs(float(normal[nearest]))))) > OBLIQUE_DEGREES:
            return "oblique"
        return _PLANE_NAME[nearest]

    @property
    def plane_label(self) -> str:
        """How a slice is shown, e.g. ``"axial, acquisition plane; A up, R left"``; from the affine,
        or in voxel axes when the file states no orientation."""
        if not self.oriented:
            names = "ijk"
            i, j = (names[int(np.flatnonzero(self.ornt[:, 0] == w)[0])] for w in (0, 1))
            return f"{'acquisition plane' if self.axis == 'acquisition' else self.axis}; voxel axes: {j} up, {i} left (no orientation in the file)"
        codes = self.axcodes
        kind = "acquisition plane" if self.axis == "acquisition" else "reformatted"
        return f"{self.plane}, {kind}; {codes[1]} up, {codes[0]} left"

    @property
    def orientation_note(self) -> str:
        """One line saying how the file is sliced and which way slices are shown."""
        codes = "".join(self.source_axcodes) if self.oriented else "not oriented"
        how = (f"sliced along its acquisition axis (file axis {'ijk'[self.slice_axis]}, {self.spacing[2]:.2f} mm)"
               if self.axis == "acquisition" else f"reformatted to {self.axis} slices (permuted, not resampled)")
        return f"orientation: the file is {codes}; {how}; shown {self.plane_label.split('; ', 1)[1]}"

    def slice(self, k: int) -> np.ndarray:
        """(X, Y) float32 slice ``k``."""
        return self.data[:, :, k]

    def slice_position_mm(self, k: int) -> tuple[str, float]:
        """(patient direction, mm): where slice ``k`` lies along its normal's closest patient axis,
        e.g. ``("S", 12.5)`` for an axial slice."""
        code = self.axcodes[2]  # always R, A or S: axes are flipped to point that way
        return code, float(self.voxel_to_mm((0, 0, k))["RAS".index(code)])

    def voxel_to_mm(self, ijk) -> np.ndarray:
        """RAS+ millimetre coordinates of voxel (i, j, k) (fractional indices allowed)."""
        ijk = np.asarray(ijk, dtype=float)
        return self.affine[:3, :3] @ ijk + self.affine[:3, 3]

    # ------------------------------------------------------------------ orientation
    def to_source(self, array: np.ndarray) -> np.ndarray:
        """An (X, Y, Z) array in this volume's voxel order, returned in the file's voxel order."""
        return np.ascontiguousarray(_ornt.apply_orientation(array, _inverse(self.ornt)))

    def from_source(self, array: np.ndarray) -> np.ndarray:
        """An array of :attr:`source_shape` (the file's voxel order), returned in this volume's order."""
        return np.ascontiguousarray(_ornt.apply_orientation(array, self.ornt))

    def resliced(self, axis: str) -> "Volume":
        """The same volume sliced along ``axis`` (one of :data:`AXES`); notes keep their order,
        the orientation note is replaced."""
        if axis == self.axis:
            return self
        source = self.to_source(self.data)
        notes = tuple(n for n in self.notes if not n.startswith("orientation:"))
        fields = {k: getattr(self, k) for k in ("source", "modality", "unit", "description", "time_points",
                                                "time_point", "nonfinite", "oriented")}
        return oriented_volume(source, self.source_affine, axis=axis, slice_axis=self.slice_axis, notes=notes, **fields)


def oriented_volume(data: np.ndarray, affine: np.ndarray, axis: str = "acquisition", slice_axis: int | None = None,
                    **fields) -> Volume:
    """Build a :class:`Volume` from a file-order array and affine, sliced along ``axis``.

    Parameters
    ----------
    data : (I, J, K) array in the file's voxel order.
    affine : (4, 4) voxel -> RAS+ mm of ``data``.
    axis : one of :data:`AXES` (default: the acquisition axis).
    slice_axis : the file axis acquired along (DICOM: 2, the slice normal); default
        :func:`acquisition_axis`.
    fields : the remaining :class:`Volume` fields (source, modality, unit, notes, description...).

    Raises
    ------
    ValueError
        If ``axis`` is unknown.
    """
    affine = np.asarray(affine, dtype=np.float64)
    slice_axis = acquisition_axis(affine) if slice_axis is None else int(slice_axis)
    ornt = slicing_ornt(affine, axis, slice_axis, oriented=fields.get("oriented", True))
    oriented = _ornt.apply_orientation(data, ornt).astype(np.float32, copy=False)
    volume = Volume(
        data=np.ascontiguousarray(oriented),
        affine=affine @ _ornt.inv_ornt_aff(ornt, data.shape),
        source_affine=affine,
        source_shape=tuple(int(s) for s in data.shape),
        ornt=ornt,
        axis=axis,
        slice_axis=slice_axis,
        **fields,
    )
    if "".join(volume.source_axcodes) != "RAS" or axis != "acquisition" or slice_axis != 2:
        volume = replace(volume, notes=tuple(volume.notes) + (volume.orientation_note,))
    return volume
