"""Acc, Se, Sp, F1 and AUC-ROC against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lobule.inference.ffa.metrics import (
    auc_roc,
    best_f1_threshold,
    binary_metrics,
    confusion,
    pooled_metrics,
    roc_curve,
)


def test_confusion_and_scores_by_hand():
    truth = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], bool)
    prob = np.array([[0.9, 0.2, 0.7, 0.1], [0.3, 0.0, 0.4, 0.6]])
    # at 0.5: predicted positives (0,0) (0,2) (1,3): TP 2 (0,0),(1,3); FP 1 (0,2); FN 1 (0,1); TN 4
    assert confusion(prob >= 0.5, truth) == {"tp": 2, "fp": 1, "tn": 4, "fn": 1}
    m = binary_metrics(prob, truth, 0.5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    # AUC: positives 0.9, 0.2, 0.6 vs negatives 0.7, 0.1, 0.3, 0.0, 0.4: pairs won 5 + 2 + 4 = 11 of 15
    assert m["auc_roc"] == pytest.approx(11 / 15)


def test_auc_ties_count_half_and_degenerate_cases():
    assert auc_roc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1], bool)) == pytest.approx(0.5)
    assert auc_roc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == pytest.approx(0.75)
    assert math.isnan(auc_roc(np.array([0.1, 0.2]), np.array([1, 1], bool)))
    m = binary_metrics(np.zeros((2, 2)), np.zeros((2, 2), bool), 0.5)
    assert math.isnan(m["sensitivity"]) and m["specificity"] == 1.0


def test_valid_region_restricts_every_count():
    truth = np.array([1, 0, 1, 0], bool)
    prob = np.array([0.9, 0.8, 0.1, 0.2])
    valid = np.array([True, True, False, False])
    m = binary_metrics(prob, truth, 0.5, valid)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 0, 0)
    assert m["auc_roc"] == pytest.approx(1.0)


def test_roc_curve_trapezoid_equals_auc():
    rng = np.random.default_rng(0)
    truth = rng.random(5000) < 0.3
    scores = np.clip(rng.normal(0.4 + 0.3 * truth, 0.2), 0, 1).round(3)
    fpr, tpr, thresholds = roc_curve(scores, truth, max_points=100000)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc_roc(scores, truth), abs=1e-9)
    fpr_small, _, _ = roc_curve(scores, truth, max_points=50)
    assert len(fpr_small) <= 52


def test_pooled_metrics_and_best_threshold():
    truths = [np.array([1, 0], bool), np.array([1, 1, 0], bool)]
    probs = [np.array([0.8, 0.3]), np.array([0.6, 0.2, 0.1])]
    pooled = pooled_metrics(probs, truths, 0.5)
    assert (pooled["tp"], pooled["fn"], pooled["tn"], pooled["fp"]) == (2, 1, 2, 0)
    assert best_f1_threshold(probs, truths) == pytest.approx(0.11)  # the lowest that catches 0.2 but not 0.1
    assert best_f1_threshold(probs, truths, candidates=[0.05, 0.15, 0.5]) == pytest.approx(0.15)
