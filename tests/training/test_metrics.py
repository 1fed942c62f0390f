"""Metrics against values computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.models.metrics import binary_overlap, confusion_matrix, iou_dice, pooled_overlap, summarise


def test_confusion_matrix_iou_dice_by_hand():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    m = confusion_matrix(pred, truth, 3)
    # rows truth, columns prediction; the 255 pixel is not counted
    assert m.tolist() == [[1, 1, 0], [1, 2, 0], [1, 0, 1]]
    iou, dice = iou_dice(m)
    # class 0: tp 1, truth 2, predicted 3 -> IoU 1/4, Dice 2/5
    # class 1: tp 2, truth 3, predicted 3 -> IoU 2/4, Dice 4/6
    # class 2: tp 1, truth 2, predicted 1 -> IoU 1/2, Dice 2/3
    assert iou == pytest.approx([0.25, 0.5, 0.5])
    assert dice == pytest.approx([0.4, 2 / 3, 2 / 3])


def test_absent_class_is_undefined_and_left_out_of_means():
    m = confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)
    summary = summarise(m, ["a", "b", "c"])
    assert summary["per_class"]["c"] == {"iou": None, "dice": None, "pixels": 0}
    assert summary["mean_iou"] == 1.0 and summary["pixels"] == 3


def test_bad_ids_raise():
    with pytest.raises(ValueError, match="truth"):
        confusion_matrix(np.array([0]), np.array([7]), 7)
    with pytest.raises(ValueError, match="prediction"):
        confusion_matrix(np.array([9]), np.array([0]), 7)
    with pytest.raises(ValueError, match="pixels"):
        confusion_matrix(np.zeros(3), np.zeros(4), 7)


def test_binary_and_pooled_overlap():
    a = binary_overlap(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert (a["tp"], a["fp"], a["fn"]) == (1, 1, 1)
    assert a["iou"] == pytest.approx(1 / 3) and a["dice"] == pytest.approx(0.5)
    b = binary_overlap(np.array([1, 1], bool), np.array([1, 1], bool))
    pooled = pooled_overlap([a, b])
    assert pooled["iou"] == pytest.approx(3 / 5) and pooled["dice"] == pytest.approx(6 / 8)
    assert binary_overlap(np.zeros(3, bool), np.zeros(3, bool))["iou"] is None
    valid = np.array([True, False, True, True])
    assert binary_overlap(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool), valid)["fp"] == 0
