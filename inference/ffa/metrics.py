"""Pixel-wise metrics of a binary segmentation (the Enhance LadderNet paper, section 1.4, equations 2-5):

* accuracy    Acc = (TP + TN) / (TP + TN + FP + FN)
* sensitivity Se  = TP / (TP + FN)       (recall)
* specificity Sp  = TN / (TN + FP)
* F1              = 2 P R / (P + R), P = TP / (TP + FP), R = Se
* AUC-ROC: area under the ROC curve of the probabilities, computed exactly as the
  Mann-Whitney statistic with mid-ranks for ties.

Undefined ratios (0 / 0, e.g. sensitivity of an image without CNP) are NaN in Python and
``null`` in JSON. Metrics can be restricted to a region (``valid``, e.g. the field of view).
"""
from __future__ import annotations

import math

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def confusion(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, int]:
    """TP, FP, TN, FN counts of bool arrays of equal shape (within ``valid`` if given)."""
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def scores_from_confusion(counts: dict[str, int]) -> dict[str, float]:
    """accuracy, sensitivity, specificity, precision, f1 from TP/FP/TN/FN."""
    tp, fp, tn, fn = counts["tp"], counts["fp"], counts["tn"], counts["fn"]
    precision = _ratio(tp, tp + fp)
    sensitivity = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)  # = 2PR/(P+R), defined also when P or R is 0
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "precision": precision,
        "f1": f1,
    }


def auc_roc(scores: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Exact area under the ROC curve (Mann-Whitney U / (P N), mid-ranks for ties).

    NaN when all pixels are of one class.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth, bool)
    if valid is not None:
        scores, truth = scores[valid], truth[valid]
    scores, truth = scores.ravel(), truth.ravel()
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)
    u = ranks[truth].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def roc_curve(
    scores: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None, max_points: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: (false positive rate, true positive rate, thresholds), from (0, 0) to (1, 1).

    A pixel is called positive when its score is >= the threshold. At most ``max_points``
    thresholds (quantiles of the scores) are kept for plotting.
    """
    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth, bool)
    if valid is not None:
        scores, truth = scores[valid], truth[valid]
    scores, truth = scores.ravel(), truth.ravel()
    n_pos = int(truth.sum())
    positives, negatives = max(n_pos, 1), max(truth.size - n_pos, 1)
    thresholds = np.unique(scores)
    if thresholds.size > max_points:
        thresholds = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, max_points)))
    thresholds = thresholds[::-1]
    order = np.argsort(scores)
    sorted_scores, sorted_truth = scores[order], truth[order]
    cum_pos = np.concatenate([[0], np.cumsum(sorted_truth)])
    below = np.searchsorted(sorted_scores, thresholds, side="left")  # count of scores < threshold
    tp = n_pos - cum_pos[below]
    fp = (scores.size - below) - tp
    tpr = np.concatenate([[0.0], tp / positives, [1.0]])
    fpr = np.concatenate([[0.0], fp / negatives, [1.0]])
    return fpr, tpr, np.concatenate([[np.inf], thresholds, [-np.inf]])


def binary_metrics(
    probability: np.ndarray, truth: np.ndarray, threshold: float, valid: np.ndarray | None = None
) -> dict[str, float | int]:
    """All metrics of a probability map against a truth mask.

    Parameters
    ----------
    probability : (H, W) float in [0, 1].
    truth : (H, W) bool.
    threshold : a pixel is CNP when ``probability >= threshold``.
    valid : optional (H, W) bool region to evaluate (e.g. the field of view).

    Returns
    -------
    dict with accuracy, sensitivity, specificity, precision, f1, auc_roc (floats, NaN when
    undefined), tp, fp, tn, fn (ints) and threshold.
    """
    counts = confusion(np.asarray(probability) >= threshold, truth, valid)
    result: dict[str, float | int] = {**scores_from_confusion(counts), "auc_roc": auc_roc(probability, truth, valid)}
    result.update(counts)
    result["threshold"] = float(threshold)
    return result


def pooled_metrics(
    probabilities: list[np.ndarray], truths: list[np.ndarray], threshold: float, valids: list[np.ndarray] | None = None
) -> dict[str, float | int]:
    """:func:`binary_metrics` over all pixels of several images taken together."""
    if valids is None:
        valids = [np.ones(t.shape, bool) for t in truths]
    probability = np.concatenate([p[v] for p, v in zip(probabilities, valids)])
    truth = np.concatenate([np.asarray(t, bool)[v] for t, v in zip(truths, valids)])
    return binary_metrics(probability, truth, threshold)


THRESHOLDS = np.round(np.arange(0.01, 0.991, 0.01), 2)
"""Candidate operating thresholds 0.01, 0.02, ..., 0.99 (class-balanced networks and the darkness
score put their F1 optimum anywhere in (0, 1))."""


def best_f1_threshold(
    probabilities: list[np.ndarray], truths: list[np.ndarray], valids: list[np.ndarray] | None = None,
    candidates: np.ndarray | None = None,
) -> float:
    """The threshold (from ``candidates``, default :data:`THRESHOLDS`) maximising F1 of the pooled
    pixels (inside ``valids``, e.g. the fields of view); a pixel is positive when probability >= t.
    Ties go to the lowest candidate. One sort of the pooled scores, then counts per candidate."""
    candidates = THRESHOLDS if candidates is None else np.asarray(candidates, np.float64)
    if valids is None:
        valids = [np.ones(np.shape(t), bool) for t in truths]
    score = np.concatenate([np.asarray(p)[v] for p, v in zip(probabilities, valids)])
    truth = np.concatenate([np.asarray(t, bool)[v] for t, v in zip(truths, valids)])
    order = np.argsort(score, kind="stable")
    cum = np.concatenate([[0], np.cumsum(truth[order])])
    below = np.searchsorted(score[order], candidates, side="left")  # pixels under each candidate
    positives = int(truth.sum())
    tp = positives - cum[below]
    fp = (score.size - below) - tp
    fn = positives - tp
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), -1.0)
    return float(candidates[int(np.argmax(f1))])
