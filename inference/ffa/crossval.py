"""Patient-level cross-validation of CNP segmentation (``lobule train ffa --cv K``).

Protocol
--------
* The patients (name before the first '-' or '_') are sorted by the mean CNP fraction of their
  labels inside the field of view and dealt round-robin into K folds (stratified by CNP burden).
* For each fold, its patients are the test patients. Of the remaining (training) patients,
  ``inner_val`` patients spread over the CNP order are an inner validation split: a network
  trains on the rest, keeps the epoch of best inner-validation AUC-ROC, and its threshold is the
  one maximising pooled F1 on the inner validation images. No test pixel is seen before scoring.
* The classical baseline ("darkness"): ``1 - GaussianBlur(preprocessed image, sigma)`` inside
  the field of view; sigma (by AUC-ROC) and the threshold (by pooled F1) are chosen on all the
  fold's training patients.
* Every metric is counted inside the field of view. Per patient: the patient's images pooled.
  Pooled: confusion counts summed over all folds (each fold at its own threshold); AUC-ROC over
  all out-of-fold probabilities taken together.

Each finished (method, fold) is stored in ``workdir`` (thresholds, epochs, float16 probability
maps), so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.ffa.dataset import Sample, find_samples
from lobule.inference.ffa.io import read_angiogram
from lobule.inference.ffa.labels import LabelClass, read_label
from lobule.inference.ffa.metrics import auc_roc, best_f1_threshold, confusion, scores_from_confusion
from lobule.inference.ffa.preprocess import field_of_view, preprocess

NETWORKS = ("enhance_laddernet", "laddernet")
BASELINE = "darkness"
METHODS = (*NETWORKS, BASELINE)
SIGMAS = (2.0, 4.0, 8.0, 16.0)
"""Candidate Gaussian sigmas (px) of the darkness baseline."""


@dataclass
class Case:
    """One labelled image, loaded: (H, W) uint8 ``gray8``, float32 ``image`` (preprocessed), bool
    ``truth`` and ``field`` (field of view)."""

    name: str
    patient: str
    gray8: np.ndarray
    image: np.ndarray
    truth: np.ndarray
    field: np.ndarray


def load_cases(samples: list[Sample], label_class: LabelClass = None) -> list[Case]:
    """Read and preprocess every sample (labels checked against the image size first)."""
    cases = []
    for s in samples:
        angiogram = read_angiogram(s.image)
        truth = read_label(s.label, label_class, angiogram.shape)
        cases.append(Case(s.name, s.patient, angiogram.gray8, preprocess(angiogram.gray8), truth,
                          field_of_view(angiogram.gray8)))
    return cases


def cnp_order(cases: list[Case]) -> list[str]:
    """Patients sorted by the mean CNP fraction of their images inside the field of view (ties by name)."""
    burden: dict[str, list[float]] = {}
    for c in cases:
        burden.setdefault(c.patient, []).append(float(c.truth[c.field].mean()) if c.field.any() else 0.0)
    return sorted(burden, key=lambda p: (float(np.mean(burden[p])), p))


def assign_folds(cases: list[Case], folds: int) -> list[list[str]]:
    """K lists of test patients: the CNP-ordered patients dealt round-robin.

    Raises
    ------
    InputError
        If K < 2 or there are fewer patients than K + 2 (each fold needs training and inner
        validation patients).
    """
    patients = cnp_order(cases)
    if folds < 2 or len(patients) < folds + 2:
        raise InputError(f"{folds}-fold cross-validation needs K >= 2 and at least K + 2 patients; "
                         f"there are {len(patients)}")
    return [sorted(patients[k::folds]) for k in range(folds)]


def inner_split(train_patients_in_order: list[str], count: int) -> list[str]:
    """``count`` validation patients evenly spread over the CNP order of the training patients."""
    n = len(train_patients_in_order)
    if n < count + 1:
        raise InputError(f"{n} training patients cannot give {count} inner validation patients and a training set")
    picks = sorted({int(round((k + 1) * n / (count + 1))) - 1 for k in range(count)})
    return [train_patients_in_order[i] for i in picks]


def subsample_patients(train_patients_in_order: list[str], count: int | None) -> list[str]:
    """At most ``count`` patients evenly spread over the CNP order (all when ``count`` is None)."""
    if count is None or count >= len(train_patients_in_order):
        return list(train_patients_in_order)
    n = len(train_patients_in_order)
    return [train_patients_in_order[int(i)] for i in np.unique(np.round(np.linspace(0, n - 1, count)).astype(int))]


def _pooled(probabilities, truths, fields):
    return (np.concatenate([p[f] for p, f in zip(probabilities, fields)]),
            np.concatenate([t[f] for t, f in zip(truths, fields)]))


def darkness(image: np.ndarray, field: np.ndarray, sigma: float) -> np.ndarray:
    """The classical CNP score: ``1 - GaussianBlur(image, sigma)``, 0 outside the field of view.

    (H, W) float32 preprocessed image in [0, 1] -> (H, W) float32 in [0, 1].
    """
    import cv2

    score = 1.0 - cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    return np.where(field, np.clip(score, 0.0, 1.0), 0.0).astype(np.float32)


def fit_darkness(train: list[Case]) -> tuple[float, float]:
    """(sigma, threshold) of the darkness score chosen on training cases (AUC-ROC, then F1)."""
    aucs = []
    for sigma in SIGMAS:
        score, truth = _pooled([darkness(c.image, c.field, sigma) for c in train], [c.truth for c in train],
                               [c.field for c in train])
        aucs.append(auc_roc(score, truth))
    sigma = SIGMAS[int(np.nanargmax(aucs))]
    threshold = best_f1_threshold([darkness(c.image, c.field, sigma) for c in train], [c.truth for c in train],
                               [c.field for c in train])
    return sigma, threshold


@dataclass
class FoldResult:
    """A finished (method, fold): its settings and the test probability maps by image name."""

    info: dict
    probabilities: dict[str, np.ndarray]


def _save_fold(folder: Path, result: FoldResult) -> None:
    from lobule.core.atomic import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "probabilities.npz", "wb") as handle:
        np.savez_compressed(handle, **{k: v.astype(np.float16) for k, v in result.probabilities.items()})
    with atomic_write(folder / "fold.json", "w", encoding="utf-8") as handle:
        json.dump(result.info, handle, indent=1, default=float)


def _load_fold(folder: Path) -> FoldResult | None:
    if not (folder / "fold.json").is_file() or not (folder / "probabilities.npz").is_file():
        return None
    info = json.loads((folder / "fold.json").read_text(encoding="utf-8"))
    with np.load(folder / "probabilities.npz") as data:
        return FoldResult(info, {k: data[k].astype(np.float32) for k in data.files})


def _network_fold(method: str, train: list[Case], val: list[Case], test: list[Case], config, network: dict,
                  workdir: Path, log: Callable[[str], None]) -> FoldResult:
    import torch

    from lobule.inference.ffa.predictor import CNPSegmenter, resolve_device
    from lobule.models.registry import create_model
    from lobule.models.train_ffa import train_cnp

    device = resolve_device(network.get("device", "auto"))
    arguments = {"in_channels": 1, "num_classes": 2, "base_width": network["base_width"],
                 "dropout": network["dropout"]}
    if method == "enhance_laddernet":
        arguments["reduction_ratio"] = network["reduction_ratio"]
    torch.manual_seed(config.seed)
    model = create_model(method, **arguments).to(device)

    def validate(net) -> dict:  # epoch selection only: tiles without overlap (a third of the work)
        segmenter = CNPSegmenter(net, {}, device, overlap=0)
        probs = [segmenter.probability(c.gray8) for c in val]
        score, truth = _pooled(probs, [c.truth for c in val], [c.field for c in val])
        return {"auc_roc": auc_roc(score, truth)}

    started = time.monotonic()
    result = train_cnp(model, [c.image for c in train], [c.truth for c in train], [c.field for c in train],
                       validate, config, workdir / "training", log=log)
    segmenter = CNPSegmenter(model, {}, device)
    val_probs = [segmenter.probability(c.gray8) for c in val]
    threshold = best_f1_threshold(val_probs, [c.truth for c in val], [c.field for c in val])
    info = {"threshold": threshold, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "stopped": result.stopped, "inner_validation_auc_roc": result.best_auc,
            "minutes": round((time.monotonic() - started) / 60.0, 2), "arguments": arguments,
            "history": [{"epoch": h["epoch"], "loss": h["loss"], "val_auc_roc": h["val_auc_roc"]}
                        for h in result.history]}
    return FoldResult(info, {c.name: segmenter.probability(c.gray8) for c in test})


def _darkness_fold(train: list[Case], test: list[Case]) -> FoldResult:
    sigma, threshold = fit_darkness(train)
    return FoldResult({"threshold": threshold, "sigma": sigma},
                      {c.name: darkness(c.image, c.field, sigma) for c in test})


def score_method(cases: list[Case], folds: list[FoldResult], fold_patients: list[list[str]]) -> dict:
    """Per-image, per-patient and pooled metrics of one method's out-of-fold predictions."""
    by_name = {c.name: c for c in cases}
    images, patients, totals = [], [], {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    all_scores, all_truth = [], []
    for fold, (result, test_patients) in enumerate(zip(folds, fold_patients)):
        threshold = float(result.info["threshold"])
        for patient in test_patients:
            members = [by_name[n] for n in sorted(result.probabilities) if by_name[n].patient == patient]
            patient_counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
            scores, truths = [], []
            for c in members:
                prob = result.probabilities[c.name]
                counts = confusion(prob >= threshold, c.truth, c.field)
                oracle = best_f1_threshold([prob], [c.truth], [c.field])  # not attainable: the cost of one threshold
                images.append({"name": c.name, "patient": patient, "fold": fold, "threshold": threshold,
                               **scores_from_confusion(counts), "auc_roc": auc_roc(prob, c.truth, c.field),
                               **counts, "cnp_fraction_truth": float(c.truth[c.field].mean()),
                               "cnp_fraction_predicted": float((prob >= threshold)[c.field].mean()),
                               "oracle_threshold": oracle, "oracle_f1": scores_from_confusion(
                                   confusion(prob >= oracle, c.truth, c.field))["f1"]})
                for key in patient_counts:
                    patient_counts[key] += counts[key]
                scores.append(prob[c.field])
                truths.append(c.truth[c.field])
            score, truth = np.concatenate(scores), np.concatenate(truths)
            patients.append({"patient": patient, "fold": fold, "images": len(members), "threshold": threshold,
                             **scores_from_confusion(patient_counts), "auc_roc": auc_roc(score, truth),
                             **patient_counts})
            for key in totals:
                totals[key] += patient_counts[key]
            all_scores.append(score)
            all_truth.append(truth)
    pooled = {**scores_from_confusion(totals),
              "auc_roc": auc_roc(np.concatenate(all_scores), np.concatenate(all_truth)), **totals}
    f1s = [p["f1"] for p in patients if not math.isnan(p["f1"])]
    return {"pooled": pooled, "mean_patient_f1": float(np.mean(f1s)) if f1s else math.nan,
            "patients": patients, "images": images, "folds": [r.info for r in folds]}


def run_crossval(
    images: str | Path,
    labels: str | Path | None,
    label_class: LabelClass,
    folds: int,
    methods: list[str],
    config,
    network: dict,
    workdir: str | Path,
    inner_val: int = 2,
    train_patients: int | None = None,
    only_fold: int | None = None,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Cross-validate ``methods`` over every patient of ``images``.

    Parameters
    ----------
    images, labels, label_class : the data (see :func:`lobule.inference.ffa.dataset.find_samples`).
    folds : K.
    methods : names from :data:`METHODS`.
    config : :class:`lobule.models.train_ffa.FFATrainConfig` of the networks.
    network : ``base_width``, ``dropout``, ``reduction_ratio``, ``device``.
    workdir : folder of the resumable per-fold results (created).
    inner_val : inner validation patients per fold.
    train_patients : use at most this many training patients per fold (learning curve), spread
        over the CNP order; the inner validation patients are picked first.
    only_fold : run just this fold (0-based; to run folds as parallel processes sharing
        ``workdir``) and return None; a later call without it assembles the table.

    Returns
    -------
    dict (JSON-ready after :func:`lobule.inference.ffa.export.json_safe`): protocol, folds and,
    per method, per-image / per-patient / pooled Acc, Se, Sp, F1, AUC-ROC.

    Raises
    ------
    InputError
        Unknown method, too few patients, unreadable data.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    cases = load_cases(find_samples(images, labels), label_class)
    order = cnp_order(cases)
    fold_patients = assign_folds(cases, folds)
    if only_fold is not None and not 0 <= only_fold < folds:
        raise InputError(f"fold {only_fold} does not exist: folds are 0..{folds - 1}")
    workdir = Path(workdir)
    report: dict = {"protocol": __doc__.split("Protocol\n--------\n")[1].split("\n\nEach finished")[0],
                    "folds": [], "methods": {}, "config": {**vars(config), **network, "inner_val": inner_val,
                                                           "train_patients": train_patients}}
    splits = []
    for k, test_patients in enumerate(fold_patients):
        rest = [p for p in order if p not in test_patients]
        val_patients = inner_split(rest, inner_val)
        fit = [p for p in rest if p not in val_patients]
        fit = subsample_patients(fit, None if train_patients is None else max(1, train_patients - inner_val))
        splits.append((test_patients, val_patients, fit))
        report["folds"].append({"fold": k, "test": test_patients, "inner_validation": val_patients,
                                "training": fit})
    for method in methods:
        results = []
        for k, (test_patients, val_patients, fit) in enumerate(splits):
            if only_fold is not None and k != only_fold:
                continue
            folder = workdir / method / f"fold{k}"
            result = _load_fold(folder)
            if result is None:
                started = time.monotonic()
                test = [c for c in cases if c.patient in test_patients]
                if method == BASELINE:
                    result = _darkness_fold([c for c in cases if c.patient in fit + val_patients], test)
                else:
                    result = _network_fold(method, [c for c in cases if c.patient in fit],
                                           [c for c in cases if c.patient in val_patients], test, config, network,
                                           folder, lambda line, m=method, f=k: log(f"{m} fold {f}: {line}"))
                _save_fold(folder, result)
                log(f"{method} fold {k} ({', '.join(test_patients)}): threshold {result.info['threshold']:g}, "
                    f"{(time.monotonic() - started) / 60.0:.1f} min")
            results.append(result)
        if only_fold is not None:
            continue
        report["methods"][method] = score_method(cases, results, [s[0] for s in splits])
        pooled = report["methods"][method]["pooled"]
        log(f"{method}: pooled " + ", ".join(f"{k} {pooled[k]:.3f}" for k in
                                            ("accuracy", "sensitivity", "specificity", "f1", "auc_roc")))
    return None if only_fold is not None else report


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def markdown(report: dict) -> str:
    """The cross-validation tables (pooled, then F1 / AUC-ROC per patient) as Markdown."""
    methods = list(report["methods"])
    lines = ["# FFA CNP: patient-level cross-validation", "", report["protocol"].strip(), "",
             "## Pooled over all patients (field of view)", "",
             "| method | Acc | Se | Sp | F1 | AUC-ROC | mean patient F1 |", "|---|---|---|---|---|---|---|"]
    for m in methods:
        p = report["methods"][m]["pooled"]
        lines.append(f"| {m} | " + " | ".join(_fmt(p[k]) for k in ("accuracy", "sensitivity", "specificity", "f1",
                                                                      "auc_roc"))
                     + f" | {_fmt(report['methods'][m]['mean_patient_f1'])} |")
    lines += ["", "## Per patient (F1 / AUC-ROC; CNP fraction of the field of view in the labels)", "",
              "| patient | fold | CNP fraction | " + " | ".join(methods) + " |",
              "|---|---|---|" + "---|" * len(methods)]
    first = report["methods"][methods[0]]
    fraction: dict[str, list[float]] = {}
    for image in first["images"]:
        fraction.setdefault(image["patient"], []).append(image["cnp_fraction_truth"])
    rows = {m: {p["patient"]: p for p in report["methods"][m]["patients"]} for m in methods}
    for entry in first["patients"]:
        patient = entry["patient"]
        cells = [f"{_fmt(rows[m][patient]['f1'])} / {_fmt(rows[m][patient]['auc_roc'])}" for m in methods]
        lines.append(f"| {patient} | {entry['fold']} | {np.mean(fraction[patient]):.3f} | " + " | ".join(cells) + " |")
    lines += ["", "## Per image: CNP fraction of the field, labelled / predicted, and F1 at the fold's threshold",
              "(oracle: F1 at the image's own best threshold, not attainable; it shows what one global threshold costs)",
              "", "| image | labelled | " + " | ".join(f"{m} predicted | {m} F1 (oracle)" for m in methods) + " |",
              "|---|---|" + "---|---|" * len(methods)]
    per_image = {m: {i["name"]: i for i in report["methods"][m]["images"]} for m in methods}
    for image in first["images"]:
        cells = []
        for m in methods:
            row = per_image[m][image["name"]]
            cells.append(f"{row['cnp_fraction_predicted']:.3f} | {_fmt(row['f1'])} ({_fmt(row['oracle_f1'])})")
        lines.append(f"| {image['name']} | {image['cnp_fraction_truth']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "## Folds", "", "| fold | test | inner validation | training | "
              + " | ".join(f"{m} threshold" for m in methods) + " |", "|---|---|---|---|" + "---|" * len(methods)]
    for k, fold in enumerate(report["folds"]):
        thresholds = [_fmt(report["methods"][m]["folds"][k]["threshold"]) for m in methods]
        lines.append(f"| {k} | {', '.join(fold['test'])} | {', '.join(fold['inner_validation'])} | "
                     f"{', '.join(fold['training'])} | " + " | ".join(thresholds) + " |")
    networks = [m for m in methods if any("history" in f for f in report["methods"][m]["folds"])]
    if networks:
        lines += ["", "## Training per fold (inner-validation AUC-ROC after each epoch; * = the epoch kept)", "",
                  "| method | fold | epochs | best epoch | stopped | inner-validation AUC-ROC by epoch |",
                  "|---|---|---|---|---|---|"]
        for m in networks:
            for k, fold in enumerate(report["methods"][m]["folds"]):
                curve = " ".join(f"{h['val_auc_roc']:.3f}{'*' if h['epoch'] == fold.get('best_epoch') else ''}"
                                 for h in fold.get("history", []))
                lines.append(f"| {m} | {k} | {fold.get('epochs_run', '-')} | {fold.get('best_epoch', '-')} | "
                             f"{fold.get('stopped', '-')} | {curve or '-'} |")
    return "\n".join(lines) + "\n"
