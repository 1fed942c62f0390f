"""Evaluating a CNP segmenter on labelled images: per-image and pooled Acc, Se, Sp, F1, AUC-ROC.

Metrics are computed inside the field of view (the retina; the black surround of a fundus
image is excluded, as in LadderNet's DRIVE protocol) and, for comparison, over whole images.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.ffa.io import read_angiogram
from lobule.inference.ffa.labels import LabelClass, read_label
from lobule.inference.ffa.metrics import binary_metrics, pooled_metrics
from lobule.inference.ffa.preprocess import field_of_view


@dataclass
class Prediction:
    """One evaluated image: its name, probability map, truth and field of view (all (H, W))."""

    name: str
    probability: np.ndarray
    truth: np.ndarray
    field: np.ndarray


def predict_pairs(
    segmenter,
    pairs: list[tuple[str, Path, Path]],
    label_class: LabelClass = None,
    progress: Callable[[str], None] | None = None,
) -> list[Prediction]:
    """Run ``segmenter`` over (name, image, label) triples; labels are checked for size first."""
    results = []
    for name, image_path, label_path in pairs:
        image = read_angiogram(image_path)
        truth = read_label(label_path, label_class, image.shape)
        probability = segmenter.probability(image.gray8)
        results.append(Prediction(name, probability, truth, field_of_view(image.gray8)))
        if progress is not None:
            progress(name)
    return results


def summarise(predictions: list[Prediction], threshold: float) -> dict:
    """Per-image and pooled metrics, inside the field of view and over whole images."""
    images = []
    for p in predictions:
        row = {"name": p.name, **binary_metrics(p.probability, p.truth, threshold, p.field)}
        row["cnp_fraction_truth"] = float(p.truth[p.field].mean()) if p.field.any() else None
        images.append(row)
    probs = [p.probability for p in predictions]
    truths = [p.truth for p in predictions]
    return {
        "threshold": threshold,
        "region": "field of view",
        "pooled": pooled_metrics(probs, truths, threshold, [p.field for p in predictions]),
        "pooled_whole_image": pooled_metrics(probs, truths, threshold),
        "images": images,
    }
