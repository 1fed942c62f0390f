"""Patient-level cross-validation: folds by patient, thresholds from training folds only, pooled
and per-patient metrics inside the field of view, resumable per-fold results, the CLI table."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lobule.inference.errors import InputError
from lobule.inference.ffa import crossval
from lobule.inference.ffa.metrics import THRESHOLDS, best_f1_threshold, confusion, scores_from_confusion


@pytest.fixture
def cohort(tmp_path, make_angiogram):
    """Six patients (p1..p6, p2 with two images) in the ffa_nonperfusion layout; CNP = the dark patch."""
    root = tmp_path / "ffa"
    names = ["p1-1_001", "p2-1_001", "p2-2_002", "p3-1_001", "p4-1_001", "p5-1_001", "p6-1_001"]
    for k, name in enumerate(names):
        gray = make_angiogram(96, 96, seed=k)
        folder = root / name
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "image.png"), gray)
        cv2.imwrite(str(folder / "mask.png"), np.where(gray == 25, 255, 0).astype(np.uint8))
    return root


def test_folds_hold_every_patient_once_and_inner_validation_comes_from_training(cohort):
    cases = crossval.load_cases(crossval.find_samples(cohort))
    folds = crossval.assign_folds(cases, 3)
    patients = sorted({c.patient for c in cases})
    assert sorted(p for fold in folds for p in fold) == patients
    order = crossval.cnp_order(cases)
    for fold in folds:
        rest = [p for p in order if p not in fold]
        inner = crossval.inner_split(rest, 2)
        assert len(inner) == 2 and not set(inner) & set(fold)
    with pytest.raises(InputError, match="at least K \\+ 2 patients"):
        crossval.assign_folds(cases, 5)
    assert crossval.subsample_patients(list("abcdefghij"), 3) == ["a", "e", "j"]


def test_best_threshold_maximises_pooled_f1_inside_the_field():
    rng = np.random.default_rng(0)
    prob = rng.random((40, 40)).astype(np.float32)
    truth = prob + rng.normal(0, 0.2, prob.shape) > 0.7
    field = np.ones(prob.shape, bool)
    field[:, :5] = False
    chosen = best_f1_threshold([prob], [truth], [field])
    f1 = {t: scores_from_confusion(confusion(prob >= t, truth, field))["f1"] for t in THRESHOLDS}
    assert f1[chosen] == pytest.approx(max(f1.values()))


def test_darkness_cross_validation_scores_inside_the_field_and_resumes(cohort, tmp_path):
    from lobule.models.train_ffa import FFATrainConfig

    logs: list[str] = []
    report = crossval.run_crossval(cohort, None, None, 3, ["darkness"], FFATrainConfig(), {}, tmp_path / "cv",
                                   log=logs.append)
    result = report["methods"]["darkness"]
    cases = {c.name: c for c in crossval.load_cases(crossval.find_samples(cohort))}
    counted = sum(p["tp"] + p["fp"] + p["tn"] + p["fn"] for p in result["patients"])
    assert counted == sum(int(c.field.sum()) for c in cases.values())  # every FOV pixel once, nothing outside
    assert {p["patient"] for p in result["patients"]} == {c.patient for c in cases.values()}
    assert result["pooled"]["tp"] == sum(p["tp"] for p in result["patients"])
    assert result["pooled"]["auc_roc"] > 0.9  # the dark patch is the darkest thing in these images
    for fold, info in zip(report["folds"], result["folds"]):
        assert not set(fold["test"]) & set(fold["training"] + fold["inner_validation"])
        assert 0 < info["threshold"] < 1 and info["sigma"] in crossval.SIGMAS
    assert sum("darkness fold" in line for line in logs) == 3
    logs.clear()
    again = crossval.run_crossval(cohort, None, None, 3, ["darkness"], FFATrainConfig(), {}, tmp_path / "cv",
                                  log=logs.append)
    assert not any("darkness fold" in line for line in logs)  # loaded from the workdir
    assert again["methods"]["darkness"]["pooled"]["f1"] == pytest.approx(result["pooled"]["f1"])
    table = crossval.markdown(report)
    assert "| darkness |" in table and "| p2 |" in table


def test_network_fold_trains_on_training_patients_only_and_cli_writes_the_table(cohort, tmp_path, capsys):
    from lobule.app.cli import main

    out = tmp_path / "cv.json"
    common = ["train", "ffa", "--images", str(cohort), "--out", str(out), "--cv", "3", "--base-width", "2",
              "--epochs", "1", "--patches-per-epoch", "8", "--batch-size", "8", "--lr", "1e-3", "--augment",
              "angio", "--class-balance", "--threads", "1", "--device", "cpu"]
    assert main([*common, "--cv-methods", "laddernet", "--cv-fold", "1"]) == 0  # one fold, as a parallel worker
    assert not out.exists() and (tmp_path / "cv.cv" / "laddernet" / "fold1" / "fold.json").is_file()
    assert main([*common, "--cv-methods", "laddernet,darkness"]) == 0
    report = json.loads(out.read_text())
    folds = report["methods"]["laddernet"]["folds"]
    assert [f["epochs_run"] for f in folds] == [1, 1, 1]
    assert [[h["epoch"] for h in f["history"]] for f in folds] == [[1], [1], [1]]  # the inner-validation curve
    auc = folds[0]["history"][0]["val_auc_roc"]
    assert f"| laddernet | 0 | 1 | 1 | max_epochs | {auc:.3f}* |" in out.with_suffix(".md").read_text()
    assert all(0 < f["threshold"] < 1 for f in folds)
    assert set(report["methods"]) == {"laddernet", "darkness"}
    assert "| laddernet |" in out.with_suffix(".md").read_text()
    assert main([*common, "--cv-methods", "unet"]) == 2
    assert "unknown method 'unet'" in capsys.readouterr().err


def test_card_quotes_only_a_full_cross_validation_of_its_own_recipe(tmp_path):
    from dataclasses import asdict

    from lobule.inference.ffa.training import FFATrainRequest, cross_validation_section
    from lobule.models.train_ffa import FFATrainConfig

    config = FFATrainConfig(lr=1e-3, batch_size=32, class_balance=True, augment="angio")
    request = FFATrainRequest(images="ffa", out="card.json", architecture="laddernet", base_width=8)
    pooled = {"accuracy": 0.8, "sensitivity": 0.6, "specificity": 0.85, "precision": 0.4, "f1": 0.48, "auc_roc": 0.8,
              "tp": 6, "fp": 9, "tn": 51, "fn": 4}
    patient = {"patient": "p1", "fold": 0, "images": 1, "threshold": 0.4, **pooled}
    report = {"protocol": "by patient", "folds": [{"test": ["p1"]}, {"test": ["p2"]}],
              "config": {**asdict(config), "base_width": 8, "dropout": 0.25, "reduction_ratio": 8, "inner_val": 2,
                         "train_patients": None},
              "methods": {"laddernet": {"pooled": pooled, "mean_patient_f1": 0.4, "patients": [patient],
                                        "folds": [{"threshold": 0.4, "best_epoch": 3}, {"threshold": 0.5, "best_epoch": 2}]},
                          "darkness": {"pooled": {**pooled, "f1": 0.4}, "patients": [], "folds": []}}}
    path = tmp_path / "cv.json"
    path.write_text(json.dumps(report))
    section = cross_validation_section(path, request, config)
    assert section["pooled"]["f1"] == 0.48 and "tp" not in section["pooled"]
    assert section["fold_thresholds"] == [0.4, 0.5] and section["patients"][0]["patient"] == "p1"
    assert section["other_methods"]["darkness"]["f1"] == 0.4
    assert section["measured_on"] == "2-fold patient cross-validation"
    other = FFATrainConfig(lr=1e-4, batch_size=32, class_balance=True, augment="angio")
    with pytest.raises(InputError, match="cross-validated with lr 0.001, this run has 0.0001"):
        cross_validation_section(path, request, other)
    with pytest.raises(InputError, match="has no enhance_laddernet results"):
        cross_validation_section(path, FFATrainRequest(images="ffa", out="c.json", base_width=8), config)
    report["config"]["train_patients"] = 4
    path.write_text(json.dumps(report))
    with pytest.raises(InputError, match="learning-curve run on 4 training patients"):
        cross_validation_section(path, request, config)
    path.write_text("{")
    with pytest.raises(InputError, match="not a cross-validation report"):
        cross_validation_section(path, request, config)
