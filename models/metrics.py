"""Segmentation metrics: confusion matrix, per-class IoU and Dice, grouped binary overlap.

Definitions (the liver paper, equations 6-7; docs/models.md, section 1):

    IoU  = |A n B| / |A u B|          Dice = 2 |A n B| / (|A| + |B|)

with A the predicted and B the true pixel set of a class. A class that is absent from both the
prediction and the truth has no defined IoU/Dice; it is reported as ``None`` (NaN in arrays) and
left out of the means. Pixels whose truth is ``ignore_index`` (255: nobody labelled them) are
left out of every count.

Plain numpy (torch tensors are accepted and converted), so the same code scores a model, the
classical colour-phase labeller and a saved label folder.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

IGNORE_INDEX = 255


def _as_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def confusion_matrix(pred, truth, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """Pixel confusion matrix.

    Parameters
    ----------
    pred : (...) integer class ids predicted (any shape; numpy array or torch tensor).
    truth : (...) integer true class ids, same shape; ``ignore_index`` marks unlabelled pixels.
    num_classes : C; ids outside ``0..C-1`` in ``truth`` (other than ``ignore_index``) raise.
    ignore_index : truth value to skip, or None.

    Returns
    -------
    (C, C) int64 array ``M`` with ``M[t, p]`` = number of pixels of true class t predicted as p.

    Raises
    ------
    ValueError
        If the shapes differ, or a counted pixel has an id outside ``0..C-1`` in the truth
        (other than ``ignore_index``) or in the prediction.
    """
    pred = _as_numpy(pred).astype(np.int64, copy=False).ravel()
    truth = _as_numpy(truth).astype(np.int64, copy=False).ravel()
    if pred.shape != truth.shape:
        raise ValueError(f"prediction has {pred.size} pixels, truth has {truth.size}")
    if ignore_index is not None:
        keep = truth != ignore_index
        truth, pred = truth[keep], pred[keep]
    for name, ids in (("truth", truth), ("prediction", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"{name} holds class ids outside 0..{num_classes - 1}: {np.unique(ids).tolist()}")
    matrix = np.bincount(truth * num_classes + pred, minlength=num_classes**2)
    return matrix.reshape(num_classes, num_classes).astype(np.int64)


def iou_dice(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU and Dice from a confusion matrix.

    Parameters
    ----------
    matrix : (C, C) confusion matrix from :func:`confusion_matrix` (rows truth, columns prediction).

    Returns
    -------
    iou, dice : (C,) float64 arrays; NaN for a class absent from both truth and prediction.
    """
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    truth = m.sum(axis=1)
    predicted = m.sum(axis=0)
    union = truth + predicted - tp
    total = truth + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(total > 0, 2 * tp / total, np.nan)
    return iou, dice


def binary_overlap(pred_mask, truth_mask, valid=None) -> dict[str, float | int | None]:
    """IoU and Dice of two boolean masks.

    Parameters
    ----------
    pred_mask, truth_mask : (...) bool arrays of one shape (e.g. ``pred == 1`` and ``droplets > 0``).
    valid : optional (...) bool array; only its True pixels are counted.

    Returns
    -------
    dict with ``iou``, ``dice`` (None when both masks are empty), ``tp``, ``fp``, ``fn``.
    """
    pred_mask = _as_numpy(pred_mask).astype(bool)
    truth_mask = _as_numpy(truth_mask).astype(bool)
    if pred_mask.shape != truth_mask.shape:
        raise ValueError(f"mask shapes differ: {pred_mask.shape} vs {truth_mask.shape}")
    if valid is not None:
        valid = _as_numpy(valid).astype(bool)
        pred_mask, truth_mask = pred_mask[valid], truth_mask[valid]
    tp = int(np.count_nonzero(pred_mask & truth_mask))
    fp = int(np.count_nonzero(pred_mask & ~truth_mask))
    fn = int(np.count_nonzero(~pred_mask & truth_mask))
    return overlap_from_counts(tp, fp, fn)


def overlap_from_counts(tp: int, fp: int, fn: int) -> dict[str, float | int | None]:
    """IoU = tp / (tp + fp + fn), Dice = 2 tp / (2 tp + fp + fn); None when the denominator is 0."""
    union = tp + fp + fn
    return {
        "iou": tp / union if union else None,
        "dice": 2 * tp / (2 * tp + fp + fn) if union else None,
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
    }


def pooled_overlap(parts: Iterable[dict]) -> dict[str, float | int | None]:
    """Overlap of several images pooled (counts summed, then IoU/Dice), from :func:`binary_overlap` dicts."""
    tp = fp = fn = 0
    for part in parts:
        tp, fp, fn = tp + part["tp"], fp + part["fp"], fn + part["fn"]
    return overlap_from_counts(tp, fp, fn)


def summarise(matrix: np.ndarray, class_keys: Sequence[str]) -> dict:
    """JSON-ready per-class table and means from a confusion matrix.

    Returns
    -------
    dict with ``per_class`` ({key: {"iou", "dice", "pixels"}}; None where undefined), ``mean_iou``
    and ``mean_dice`` (over classes where defined), ``pixels`` (labelled pixels counted) and
    ``confusion`` (the matrix as nested lists).
    """
    iou, dice = iou_dice(matrix)
    truth = np.asarray(matrix).sum(axis=1)

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(float(value), 4)

    per_class = {
        key: {"iou": clean(iou[i]), "dice": clean(dice[i]), "pixels": int(truth[i])}
        for i, key in enumerate(class_keys)
    }
    return {
        "per_class": per_class,
        "mean_iou": clean(np.nanmean(iou)) if np.isfinite(iou).any() else None,
        "mean_dice": clean(np.nanmean(dice)) if np.isfinite(dice).any() else None,
        "pixels": int(truth.sum()),
        "confusion": np.asarray(matrix).astype(np.int64).tolist(),
    }
