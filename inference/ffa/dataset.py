"""Finding (image, label) pairs for training and evaluation, and splitting them by patient.

Two layouts are understood:

* one folder per image (the ffa_nonperfusion layout): ``DIR/<sample>/image.*`` with
  ``labelme.json``, ``label.png`` or ``mask.png`` beside it (LabelMe JSON is preferred: it is
  the original annotation);
* two folders: ``IMAGES/<stem>.<ext>`` and ``LABELS/<stem>.{json,png,tif,...}`` (matched by stem;
  a label named ``<stem>_mask`` or ``<stem>_label`` also matches).

The patient of a sample is the part of its name before the first ``-`` or ``_`` (``p02-1_016``
and ``p02-2_018`` are both patient ``p02``): images of one patient never straddle a split.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.ffa.io import SUPPORTED_SUFFIXES

LABEL_NAMES = ("labelme.json", "label.png", "mask.png", "label.tif", "mask.tif")
LABEL_SUFFIXES = (".json", ".png", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class Sample:
    """An image and its label file; ``name`` is the folder name or the image stem."""

    name: str
    image: Path
    label: Path

    @property
    def patient(self) -> str:
        return patient_id(self.name)


def patient_id(name: str) -> str:
    """The patient part of a sample name: everything before the first '-' or '_'."""
    return re.split(r"[-_ ]", name.strip(), maxsplit=1)[0]


def _image_in(folder: Path) -> Path | None:
    for candidate in sorted(folder.iterdir()):
        if candidate.is_file() and candidate.stem == "image" and candidate.suffix.lower() in SUPPORTED_SUFFIXES:
            return candidate
    return None


def find_samples(images: str | Path, labels: str | Path | None = None) -> list[Sample]:
    """All (image, label) pairs under ``images`` (and ``labels``), sorted by name.

    Raises
    ------
    InputError
        If a folder is missing or no pair is found.
    """
    images = Path(images)
    if not images.is_dir():
        raise InputError(f"image folder not found: {images}")
    samples = []
    if labels is None:
        for folder in sorted(p for p in images.iterdir() if p.is_dir()):
            image = _image_in(folder)
            label = next((folder / n for n in LABEL_NAMES if (folder / n).is_file()), None)
            if image is not None and label is not None:
                samples.append(Sample(folder.name, image, label))
    else:
        labels = Path(labels)
        if not labels.is_dir():
            raise InputError(f"label folder not found: {labels}")
        by_stem: dict[str, Path] = {}
        for path in sorted(labels.iterdir()):
            if path.is_file() and path.suffix.lower() in LABEL_SUFFIXES:
                stem = re.sub(r"[_-](mask|label|labels|gt)$", "", path.stem)
                if stem not in by_stem or path.suffix.lower() == ".json":
                    by_stem[stem] = path
        for image in sorted(images.iterdir()):
            if image.is_file() and image.suffix.lower() in SUPPORTED_SUFFIXES and image.stem in by_stem:
                samples.append(Sample(image.stem, image, by_stem[image.stem]))
    if not samples:
        where = f"{images} and {labels}" if labels is not None else f"{images}/<name>/image.* + label"
        raise InputError(f"no image/label pairs found in {where}")
    return samples


def split_by_patient(
    samples: list[Sample], val_patients: list[str], test_patients: list[str]
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """(train, validation, test) with the named patients held out.

    Raises
    ------
    InputError
        If a named patient has no images, or a patient is in both held-out lists.
    """
    known = {s.patient for s in samples}
    for patient in [*val_patients, *test_patients]:
        if patient not in known:
            raise InputError(f"patient {patient!r} has no images; patients: {', '.join(sorted(known))}")
    both = set(val_patients) & set(test_patients)
    if both:
        raise InputError(f"patients in both validation and test: {', '.join(sorted(both))}")
    val = [s for s in samples if s.patient in val_patients]
    test = [s for s in samples if s.patient in test_patients]
    train = [s for s in samples if s.patient not in val_patients and s.patient not in test_patients]
    if not train:
        raise InputError("no training images left after holding out the validation and test patients")
    return train, val, test


def random_patient_split(samples: list[Sample], fractions=(0.6, 0.2, 0.2), seed: int = 0):
    """(val_patients, test_patients) drawn at random (seeded) to approximate ``fractions`` of the
    patients (the paper's 6:2:2), at least one patient each when there are three or more."""
    patients = sorted({s.patient for s in samples})
    order = list(np.random.default_rng(seed).permutation(patients))
    n_val = max(1, round(fractions[1] * len(patients))) if len(patients) >= 3 else 0
    n_test = max(1, round(fractions[2] * len(patients))) if len(patients) >= 3 else 0
    return sorted(str(p) for p in order[:n_val]), sorted(str(p) for p in order[n_val : n_val + n_test])
