"""``lobule train ffa``: data loading, the patient split, the validation callback, the final
evaluation on held-out patients and the checkpoint card, around
:func:`lobule.models.train_ffa.train_cnp`.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lobule.inference.errors import InputError
from lobule.inference.ffa.dataset import Sample, find_samples, random_patient_split, split_by_patient
from lobule.inference.ffa.evaluate import predict_pairs, summarise
from lobule.inference.ffa.export import json_safe
from lobule.inference.ffa.io import read_angiogram
from lobule.inference.ffa.labels import LabelClass, read_label
from lobule.inference.ffa.metrics import best_f1_threshold, pooled_metrics
from lobule.inference.ffa.patches import OVERLAP, TILE
from lobule.inference.ffa.predictor import DEFAULT_THRESHOLD, CNPSegmenter, resolve_device
from lobule.inference.ffa.preprocess import CLAHE_CLIP_LIMIT, CLAHE_TILE_GRID, GAMMA, field_of_view, preprocess

CNP_CLASSES = [
    {"id": 0, "name": "background", "colour": [0, 0, 0]},
    {"id": 1, "name": "capillary non-perfusion", "colour": [255, 40, 40]},
]


@dataclass
class FFATrainRequest:
    """Everything ``lobule train ffa`` was asked to do (JSON-serialisable)."""

    images: str
    out: str
    labels: str | None = None
    label_class: str | int | list | None = None
    architecture: str = "enhance_laddernet"
    base_width: int = 64
    reduction_ratio: int = 8
    dropout: float = 0.25
    val_patients: list[str] = field(default_factory=list)
    test_patients: list[str] = field(default_factory=list)
    workdir: str | None = None
    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    name: str | None = None
    compare: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    command: str = ""
    cv_report: str | None = None


PAPER_RECIPE = {"base_width": 64, "reduction_ratio": 8, "lr": 1e-5, "batch_size": 4, "patch_size": 48,
                "max_epochs": 200, "patience": 8}
"""The Enhance LadderNet paper's numbers (docs/models.md, section 2); a card lists where a run departs from them."""


def deviations(request: FFATrainRequest, config) -> list[str]:
    """Where this run departs from the paper's recipe, one line each."""
    ours = {"base_width": request.base_width, "reduction_ratio": request.reduction_ratio, "lr": config.lr,
            "batch_size": config.batch_size, "patch_size": config.patch_size, "max_epochs": config.max_epochs,
            "patience": config.patience}
    lines = [f"{key}: {ours[key]} (paper: {paper})" for key, paper in PAPER_RECIPE.items()
             if ours[key] != paper and not (key == "reduction_ratio" and request.architecture != "enhance_laddernet")]
    if config.augment != "flips":
        lines.append(f"augmentation: {config.augment} (paper: flips)")
    if config.max_minutes is not None:
        lines.append(f"wall-time budget of {config.max_minutes:g} min per call (paper: none)")
    return lines


RECIPE_KEYS = ("patch_size", "batch_size", "lr", "max_epochs", "patience", "patches_per_epoch", "augment",
               "class_balance", "seed")
"""Settings that must be equal in a cross-validation report and the run whose card quotes it."""


def cross_validation_section(path: str | Path, request: FFATrainRequest, config) -> dict:
    """The card's ``metrics.held_out`` from a ``lobule train ffa --cv`` report of this recipe.

    Gives the pooled and per-patient Acc / Se / Sp / F1 / AUC-ROC (field of view) of
    ``request.architecture`` over patients never trained on, each fold's threshold (chosen on that
    fold's inner validation patients) and the other methods' pooled numbers for comparison.

    Raises
    ------
    InputError
        If the report cannot be read, lacks the architecture, was run on a subset of the training
        patients (learning curve) or with another recipe (one setting named with both values).
    """
    import json

    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        methods, settings = report["methods"], report["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a cross-validation report of lobule train ffa --cv ({exc})") from None
    method = request.architecture
    if method not in methods:
        raise InputError(f"{path}: has no {method} results (it has {', '.join(methods) or 'none'})")
    if settings.get("train_patients") is not None:
        raise InputError(f"{path}: a learning-curve run on {settings['train_patients']} training patients per fold, "
                         "not the full cross-validation")
    ours = {**asdict(config), "base_width": request.base_width, "dropout": request.dropout}
    keys = (*RECIPE_KEYS, "base_width", "dropout") + (("reduction_ratio",) if method == "enhance_laddernet" else ())
    if method == "enhance_laddernet":
        ours["reduction_ratio"] = request.reduction_ratio
    for key in keys:
        if settings.get(key) != ours[key]:
            raise InputError(f"{path}: cross-validated with {key} {settings.get(key)!r}, this run has {ours[key]!r}")
    result = methods[method]
    keep = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc_roc")
    return {
        "measured_on": f"{len(report['folds'])}-fold patient cross-validation",
        "protocol": report.get("protocol", ""),
        "pooled": {k: result["pooled"][k] for k in keep if k in result["pooled"]},
        "mean_patient_f1": result["mean_patient_f1"],
        "patients": [{k: p[k] for k in ("patient", "fold", "images", "threshold", *keep) if k in p}
                     for p in result["patients"]],
        "fold_thresholds": [f["threshold"] for f in result["folds"]],
        "fold_best_epochs": [f.get("best_epoch") for f in result["folds"]],
        "other_methods": {m: {k: r["pooled"][k] for k in keep if k in r["pooled"]}
                          for m, r in methods.items() if m != method},
        "command": report.get("command", ""),
    }


def _load(samples: list[Sample], label_class: LabelClass):
    images, masks, regions = [], [], []
    for s in samples:
        angiogram = read_angiogram(s.image)
        images.append(preprocess(angiogram.gray8))
        masks.append(read_label(s.label, label_class, angiogram.shape))
        regions.append(field_of_view(angiogram.gray8))
    return images, masks, regions


def _triples(samples: list[Sample]):
    return [(s.name, s.image, s.label) for s in samples]


def model_arguments(request: FFATrainRequest) -> dict:
    """Constructor arguments of the requested architecture."""
    args = {"in_channels": 1, "num_classes": 2, "base_width": request.base_width, "dropout": request.dropout}
    if request.architecture == "enhance_laddernet":
        args["reduction_ratio"] = request.reduction_ratio
    return args


def run_training(request: FFATrainRequest, config, log: Callable[[str], None] = print) -> Path:
    """Train, evaluate on the held-out patients and write the checkpoint card.

    Parameters
    ----------
    request : data, architecture, split, output.
    config : :class:`lobule.models.train_ffa.FFATrainConfig`.

    Returns
    -------
    The card path (weights beside it, float16).
    """
    import torch

    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model
    from lobule.models.train_ffa import train_cnp

    if request.threads:
        torch.set_num_threads(request.threads)
    out = Path(request.out)
    if out.suffix != ".json":
        raise InputError(f"--out must name the card, NAME.json (got {out.name})")
    if not out.parent.is_dir():
        raise InputError(f"output folder not found: {out.parent}")
    label_class = request.label_class if not isinstance(request.label_class, list) else tuple(request.label_class)
    held_out = cross_validation_section(request.cv_report, request, config) if request.cv_report else None
    samples = find_samples(request.images, request.labels)
    val_patients, test_patients = request.val_patients, request.test_patients
    if not val_patients and not test_patients:
        val_patients, test_patients = random_patient_split(samples, seed=config.seed)
    train, val, test = split_by_patient(samples, val_patients, test_patients)
    if not val:
        raise InputError("early stopping needs validation images: name --val-patients")
    log(f"{len(train)} training, {len(val)} validation, {len(test)} test images "
        f"(validation patients {', '.join(val_patients)}; test patients {', '.join(test_patients) or 'none'})")
    images, masks, regions = _load(train, label_class)
    device = resolve_device(request.device)
    arguments = model_arguments(request)
    model = create_model(request.architecture, **arguments).to(device)
    val_triples = _triples(val)
    val_cache = {}

    def validate(net) -> dict:
        segmenter = CNPSegmenter(net, {}, device)
        if not val_cache:
            for name, image_path, label_path in val_triples:
                angiogram = read_angiogram(image_path)
                val_cache[name] = (angiogram.gray8, read_label(label_path, label_class, angiogram.shape),
                                   field_of_view(angiogram.gray8))
        probs = [segmenter.probability(g) for g, _, _ in val_cache.values()]
        truths = [t for _, t, _ in val_cache.values()]
        fields = [f for _, _, f in val_cache.values()]
        metrics = pooled_metrics(probs, truths, DEFAULT_THRESHOLD, fields)
        return {k: metrics[k] for k in ("auc_roc", "accuracy", "sensitivity", "specificity", "f1")}

    workdir = Path(request.workdir) if request.workdir else out.with_suffix(".training")
    identity = {"architecture": request.architecture, "arguments": arguments,
                "train": [s.name for s in train], "val": [s.name for s in val]}
    started = time.monotonic()
    result = train_cnp(model, images, masks, regions, validate, config, workdir, request.resume, log, identity)
    minutes = (time.monotonic() - started) / 60.0
    log(f"training stopped ({result.stopped}) after {result.epochs_run} epochs; best validation AUC-ROC "
        f"{result.best_auc:.4f} at epoch {result.best_epoch}")

    with torch.no_grad():  # evaluate exactly the weights that are shipped (float16)
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    segmenter = CNPSegmenter(model, {}, device)
    val_predictions = predict_pairs(segmenter, val_triples, label_class)
    threshold = best_f1_threshold([p.probability for p in val_predictions], [p.truth for p in val_predictions],
                                  [p.field for p in val_predictions])
    metrics = {"validation": {"images": [s.name for s in val], **summarise(val_predictions, threshold)}}
    test_predictions = predict_pairs(segmenter, _triples(test), label_class) if test else []
    if test:
        metrics["test"] = {"images": [s.name for s in test], **summarise(test_predictions, threshold),
                           "at_threshold_0.5": summarise(test_predictions, DEFAULT_THRESHOLD)["pooled"]}
        pooled = metrics["test"]["pooled"]
        log("held-out test (field of view): " + ", ".join(
            f"{k} {pooled[k]:.4f}" for k in ("accuracy", "sensitivity", "specificity", "f1", "auc_roc")))
    if held_out is not None:
        metrics["held_out"] = held_out
    for other in request.compare:
        baseline = CNPSegmenter.from_checkpoint(other, device)
        trained = baseline.card.get("training", {})
        entry = {"model": baseline.name, "architecture": baseline.card["architecture"],
                 "arguments": baseline.card["arguments"], "threshold": baseline.threshold,
                 "training": {k: trained.get(k) for k in ("commands", "stopped", "epochs_run", "best_epoch",
                                                           "best_validation_auc_roc")}}
        if test:
            summary = summarise(predict_pairs(baseline, _triples(test), label_class), baseline.threshold)
            entry["test"] = summary["pooled"]
            entry["test_whole_image"] = summary["pooled_whole_image"]
            entry["test_images"] = summary["images"]
        metrics.setdefault("ablation", []).append(entry)
    name = request.name or out.stem
    commands = [request.command] if request.command else []
    if request.resume and out.is_file():  # keep the history of commands that made this checkpoint
        import json

        try:
            commands = json.loads(out.read_text(encoding="utf-8"))["training"]["commands"] + commands
        except (OSError, ValueError, KeyError, TypeError):
            pass
    trained_minutes = sum(float(h.get("seconds", 0.0)) for h in result.history) / 60.0
    card = {
        "name": name,
        "task": "ffa-cnp",
        "architecture": request.architecture,
        "arguments": arguments,
        "classes": CNP_CLASSES,
        "input": {"channels": 1, "mpp": None, "tile_size": TILE,
                  "preprocessing": {"grayscale": "BT.601 luma", "clahe": {"clip_limit": CLAHE_CLIP_LIMIT,
                                    "tile_grid": list(CLAHE_TILE_GRID)}, "gamma": GAMMA, "scale": "[0, 1]"}},
        "inference": {"tile_size": TILE, "overlap": OVERLAP, "threshold": threshold,
                      "threshold_rule": "maximises pooled F1 on the validation images (candidates 0.01..0.99)",
                      "field_of_view": "probability set to 0 outside the fundus field of view"},
        "training": {
            "data": [{"path": str(Path(request.images)), "labels": request.labels or "beside each image",
                      "label_class": request.label_class,
                      "train": [s.name for s in train], "validation": [s.name for s in val],
                      "test": [s.name for s in test], "split": "by patient (name before the first '-' or '_')"}],
            "commands": commands,
            "deviations_from_paper": deviations(request, config),
            "notes": request.notes,
            "config": asdict(config),
            "stopped": result.stopped,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_validation_auc_roc": result.best_auc,
            "history": result.history,
            "compute": f"{device}, {torch.get_num_threads()} thread(s), {trained_minutes:.1f} min of training epochs "
                       f"in all, {minutes:.1f} min in the last call, "
                       f"torch {torch.__version__}, {platform.processor() or platform.machine()}",
        },
        "metrics": metrics,
    }
    return save_checkpoint(model, json_safe(card), out, dtype="float16")
