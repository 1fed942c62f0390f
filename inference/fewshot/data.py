"""Folders of labelled volumes (``image_K.nii.gz`` + ``label_K.nii.gz``, as CHAOS / SSL-ALPNet) and
the SSL-ALPNet volume folds."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.fewshot.preprocess import normalise_volume
from lobule.inference.volume import Volume, load_volume

_IMAGE = re.compile(r"^image_(\w+?)\.nii(\.gz)?$")


@dataclass(frozen=True)
class Case:
    """One volume of a data folder. ``label_path`` is None for unlabelled volumes."""

    case_id: str
    image_path: Path
    label_path: Path | None


@dataclass
class LoadedCase:
    """A case sliced along its acquisition axis (:func:`~lobule.inference.volume.load_volume`; RAS+ for
    the axial CHAOS volumes): ``volume`` (raw), ``image`` (X, Y, Z) float32 normalised,
    ``label`` (X, Y, Z) uint8 or None."""

    case_id: str
    volume: Volume
    image: np.ndarray
    label: np.ndarray | None

    def organ_slices(self, organ: int) -> np.ndarray:
        """Sorted indices of slices holding ``organ`` (empty without labels)."""
        if self.label is None:
            return np.zeros(0, dtype=int)
        return np.flatnonzero((self.label == organ).any(axis=(0, 1)))


def _sort_key(case_id: str):
    return (0, int(case_id), "") if case_id.isdigit() else (1, 0, case_id)


def find_cases(data_dir: str | Path, require_labels: bool = False) -> list[Case]:
    """Cases of ``data_dir`` sorted by numeric id.

    Raises
    ------
    InputError
        If the folder is missing, holds no ``image_K.nii(.gz)``, or labels are required and missing.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"data folder not found: {data_dir}")
    cases = []
    for path in data_dir.iterdir():
        match = _IMAGE.match(path.name)
        if not match:
            continue
        case_id = match.group(1)
        label = next((p for p in (data_dir / f"label_{case_id}.nii.gz", data_dir / f"label_{case_id}.nii") if p.is_file()), None)
        if require_labels and label is None:
            raise InputError(f"{path.name} has no label_{case_id}.nii.gz beside it")
        cases.append(Case(case_id, path, label))
    if not cases:
        raise InputError(f"no image_K.nii.gz volumes in {data_dir}")
    return sorted(cases, key=lambda c: _sort_key(c.case_id))


def load_case(case: Case) -> LoadedCase:
    """Read, reorient and normalise a case (label voxels reoriented like the image)."""
    import nibabel as nib

    volume = load_volume(case.image_path)
    label = None
    if case.label_path is not None:
        raw = np.asarray(nib.load(str(case.label_path)).dataobj)
        if tuple(raw.shape) != tuple(volume.source_shape):
            raise InputError(f"{case.label_path.name} has shape {raw.shape}, its image {volume.source_shape}")
        label = volume.from_source(raw.astype(np.uint8))
    return LoadedCase(case.case_id, volume, normalise_volume(volume.data, volume.modality), label)


def fold_split(case_ids: list[str], fold: int, folds: int = 5) -> tuple[list[str], list[str]]:
    """SSL-ALPNet's cross-validation: ids sorted numerically, cut into ``folds`` consecutive
    groups; returns (training ids, held-out ids of ``fold``).

    Raises
    ------
    InputError
        If ``fold`` is out of range or a fold would be empty.
    """
    ids = sorted(case_ids, key=_sort_key)
    if not 0 <= fold < folds:
        raise InputError(f"fold {fold} does not exist (0..{folds - 1})")
    if len(ids) < folds:
        raise InputError(f"{len(ids)} volumes cannot be split into {folds} folds")
    bounds = np.linspace(0, len(ids), folds + 1).round().astype(int)
    held = ids[bounds[fold] : bounds[fold + 1]]
    return [i for i in ids if i not in held], held
