"""State of the FFA tab without Qt: the opened angiogram, its preprocessing, the CNP probability
map, the threshold, the scale, an optional ground truth and what follows from them (mask, area,
metrics, ROC). The tab's widgets only show this object and call its methods; long steps (reading,
prediction, AUC) run on worker threads through the pure functions below."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.ffa.io import Angiogram, read_angiogram
from lobule.inference.ffa.labels import DEFAULT_CLASS, label_choices, read_label
from lobule.inference.ffa.metrics import auc_roc, confusion, roc_curve, scores_from_confusion
from lobule.inference.ffa.preprocess import field_of_view, preprocess
from lobule.inference.ffa.quantify import cnp_area


@dataclass(frozen=True)
class LoadedImage:
    """What the loader worker hands to the GUI thread."""

    angiogram: Angiogram
    preprocessed: np.ndarray  # (H, W) float32 in [0, 1]
    field: np.ndarray  # (H, W) bool


@dataclass(frozen=True)
class RocResult:
    """Threshold-free evaluation of a probability map against a truth mask (inside the field)."""

    auc: float
    fpr: np.ndarray
    tpr: np.ndarray


def load_image(path: str | Path) -> LoadedImage:
    """Read and preprocess an angiogram (runs on a worker thread)."""
    angiogram = read_angiogram(path)
    return LoadedImage(angiogram, preprocess(angiogram.gray8), field_of_view(angiogram.gray8))


def load_truth_choices(path: str | Path, shape: tuple[int, int], label_class=None):
    """(truth, path, choices, chosen): the classes the label file holds (see
    :func:`lobule.inference.ffa.labels.label_choices`) and the mask of ``label_class``, or when
    None of :func:`default_truth_class` (runs on a worker thread).

    Raises
    ------
    InputError
        Unreadable file, or a mask of another size than ``shape``.
    """
    choices = label_choices(path)
    if not choices:  # an empty mask: no CNP anywhere
        return read_label(path, None, shape), Path(path), [(None, "no labelled pixels")], None
    if label_class is None:
        label_class = default_truth_class(path, [value for value, _ in choices], shape)
    return read_label(path, label_class, shape), Path(path), choices, label_class


def default_truth_class(path: str | Path, values: list, shape: tuple[int, int]):
    """The CNP class of a label file when the user has not chosen one: LabelMe "NP"; else, for
    a class map with a LabelMe ``*.json`` beside it that outlines "NP", the class whose mask
    agrees best (IoU) with those polygons (the ffa_nonperfusion ``label.png`` is index 2, and
    its folder's class list names the colours the other way round); else the first class."""
    if DEFAULT_CLASS in values:
        return DEFAULT_CLASS
    path = Path(path)
    if len(values) > 1:
        for sibling in sorted(path.parent.glob("*.json")):
            try:
                outline = read_label(sibling, DEFAULT_CLASS, shape)
            except InputError:
                continue
            if not outline.any():
                continue
            ious = []
            for value in values:
                mask = read_label(path, value, shape)
                union = np.logical_or(mask, outline).sum()
                ious.append(np.logical_and(mask, outline).sum() / union if union else 0.0)
            return values[int(np.argmax(ious))]
    return values[0]


def evaluate_roc(probability: np.ndarray, truth: np.ndarray, field: np.ndarray) -> RocResult:
    """AUC-ROC and the ROC curve inside the field of view (runs on a worker thread)."""
    fpr, tpr, _ = roc_curve(probability, truth, field)
    return RocResult(auc_roc(probability, truth, field), fpr, tpr)


@dataclass
class FFADocument:
    """Everything the FFA tab shows.

    Attributes
    ----------
    image : the loaded angiogram, or None.
    probability : (H, W) float32 CNP probability, or None before segmentation.
    threshold : a pixel is CNP when ``probability >= threshold``.
    um_per_px, fov_degrees : the scale (at most one set); None = areas in px only.
    truth : (H, W) bool ground truth, or None.
    roc : AUC and curve of ``probability`` vs ``truth``, or None.
    model_name : the model that made ``probability``.
    """

    image: LoadedImage | None = None
    probability: np.ndarray | None = None
    threshold: float = 0.5
    um_per_px: float | None = None
    fov_degrees: float | None = None
    truth: np.ndarray | None = None
    truth_path: Path | None = None
    roc: RocResult | None = None
    model_name: str = ""
    warnings: list[str] = field(default_factory=list)

    def set_image(self, loaded: LoadedImage) -> None:
        """A new image: forget the previous results and ground truth."""
        self.image = loaded
        self.probability = None
        self.truth = None
        self.truth_path = None
        self.roc = None
        self.warnings = list(loaded.angiogram.warnings)
        if loaded.angiogram.um_per_px is not None and self.fov_degrees is None:
            self.um_per_px = loaded.angiogram.um_per_px

    def set_probability(self, probability: np.ndarray, model_name: str, threshold: float | None = None) -> None:
        self.probability = probability
        self.model_name = model_name
        self.roc = None
        if threshold is not None:
            self.threshold = threshold

    def set_truth(self, truth: np.ndarray, path: Path) -> None:
        self.truth = truth
        self.truth_path = Path(path)
        self.roc = None

    @property
    def stem(self) -> str:
        return self.image.angiogram.path.stem if self.image is not None else "ffa"

    def mask(self) -> np.ndarray | None:
        """(H, W) bool CNP mask at the current threshold, or None before segmentation."""
        if self.probability is None:
            return None
        return self.probability >= self.threshold

    def area(self) -> dict | None:
        """CNP area (px, mm^2 given a scale, fraction of the field), or None."""
        mask = self.mask()
        if mask is None or self.image is None:
            return None
        return cnp_area(mask, self.um_per_px, self.fov_degrees, self.image.field)

    def threshold_metrics(self) -> dict | None:
        """Acc, Se, Sp, precision, F1 at the current threshold inside the field, plus AUC when
        known; None without both a prediction and a ground truth."""
        mask = self.mask()
        if mask is None or self.truth is None or self.image is None:
            return None
        metrics = scores_from_confusion(confusion(mask, self.truth, self.image.field))
        metrics["auc_roc"] = self.roc.auc if self.roc is not None else None
        return metrics

    def numbers(self) -> dict:
        """The row exported as CSV / JSON."""
        row: dict = {"image": str(self.image.angiogram.path) if self.image else None,
                     "model": self.model_name, "threshold": self.threshold}
        if self.image is not None:
            row["height"], row["width"] = self.image.angiogram.shape
        row.update(self.area() or {})
        metrics = self.threshold_metrics()
        if metrics is not None:
            row["ground_truth"] = str(self.truth_path)
            row.update(metrics)
        row["warnings"] = " | ".join(self.warnings)
        return row
