"""Fine-tune a segmentation checkpoint on a pathologist's corrections, and measure what it
changed on the corrected areas.

Input: a checkpoint card (the *parent*) and a pairs folder from
:func:`~.training_pairs.export_training_pairs` (tiles, labels with 255 outside corrected
pixels). Output: a new checkpoint (card + fp16 safetensors) whose card records

* ``lineage``: the parent (name, card, weights sha256), the corrections used (pairs folder,
  their labels' sha256, slide, corrected pixels, tiles) and when;
* ``metrics.corrections_agreement``: agreement of the parent and of the new model with the
  corrections (fraction of corrected pixels where the model's class equals the corrected class,
  and per-class IoU over corrected pixels), on the ``train`` tiles and on the held-out ``val``
  tiles (unseen pixels of the same slide; no held-out tiles when the export has too few);
* ``training.finetune``: the settings and the call that made it.

Recipe (stated): the segmentation trainer of ``lobule train segment``
(:func:`lobule.models.train_segment.train_segmentation`: SGD with momentum and poly decay,
masked cross-entropy over labelled pixels, so only corrected pixels teach; crops drawn in
proportion to their corrected pixels; flips, 90-degree rotations, HED and brightness/contrast
jitter), started from the parent's weights with fine-tuning settings: lr 1e-3 (the paper's
0.01 / 10), 300 iterations, batch 4, 256 px crops, no zoom (the corrections are at the model's
own mpp). Inputs are normalised as the parent's card says (``input.normalisation``).

This is what the GUI's "Fine-tune on my corrections" runs on a worker thread (``on_progress``
for the progress bar, ``cancel`` for the Cancel button; a cancelled run writes nothing).
``lobule train segment PAIRS --init CARD`` trains on the same folder from the command line.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lobule.inference.annotations.training_pairs import read_pairs
from lobule.inference.errors import InputError
from lobule.core.cancel import CancelFlag, Cancelled, is_cancelled
from lobule.models.normalisation import card_mean_std
from lobule.resources.classes import IGNORE_INDEX, LIVER_CLASSES


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning settings (module docstring). ``threads``: torch CPU threads."""

    iterations: int = 300
    batch_size: int = 4
    crop: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hed_sigma: float = 0.05
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1 or self.crop < 32 or self.lr <= 0:
            raise InputError(f"bad fine-tune settings: {self}")


@dataclass(frozen=True)
class FinetuneProgress:
    """Iterations done of all, seconds since the start (evaluation of the parent included)."""

    iteration: int
    iterations: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.iteration / self.iterations


@dataclass(frozen=True)
class FinetuneResult:
    """The new card's path, and agreement before/after per split (see :func:`agreement`)."""

    card: Path
    before: dict
    after: dict
    seconds: float


def agreement(predictions: list[np.ndarray], labels: list[np.ndarray]) -> dict:
    """Agreement of predicted class maps with corrections over the corrected pixels.

    Parameters
    ----------
    predictions, labels : lists of (H, W) uint8; label 255 = not corrected (ignored).

    Returns
    -------
    dict: ``pixels`` (corrected pixels), ``agreement`` (fraction of them where prediction ==
    correction), ``iou`` (class key -> IoU over corrected pixels, classes present in either),
    ``mean_iou``.
    """
    n = len(LIVER_CLASSES)
    confusion = np.zeros((n, n), np.int64)
    for pred, lab in zip(predictions, labels):
        keep = lab != IGNORE_INDEX
        confusion += np.bincount(lab[keep].astype(np.int64) * n + pred[keep].astype(np.int64),
                                 minlength=n * n).reshape(n, n)
    pixels = int(confusion.sum())
    agree = int(np.trace(confusion))
    iou = {}
    for c in LIVER_CLASSES:
        union = confusion[c.id].sum() + confusion[:, c.id].sum() - confusion[c.id, c.id]
        if union:
            iou[c.key] = float(confusion[c.id, c.id] / union)
    return {"pixels": pixels, "agreement": agree / pixels if pixels else None, "iou": iou,
            "mean_iou": float(np.mean(list(iou.values()))) if iou else None}


def predict_tiles(model, card: dict, images: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    """Class maps of whole tiles with ``model`` (eval mode, card normalisation)."""
    from lobule.inference.engine.predictor import TorchPredictor

    mean, std = card_mean_std(card)
    predictor = TorchPredictor(model, name=card.get("name", "model"), mpp=float((card.get("input") or {}).get(
        "mpp", 0.5)), mean=mean, std=std, device=device)
    return [predictor.predict(image[None])[0] for image in images]


def _evaluate(model, card, pairs_by_split: dict, device: str) -> dict:
    out = {}
    for split, pairs in pairs_by_split.items():
        if pairs:
            preds = predict_tiles(model, card, [p[0] for p in pairs], device)
            out[split] = agreement(preds, [p[1] for p in pairs])
    return out


def finetune(init: str | os.PathLike, pairs: str | os.PathLike, out_card: str | os.PathLike,
             settings: FinetuneSettings | None = None, *, name: str | None = None,
             on_progress: Callable[[FinetuneProgress], None] | None = None,
             on_log: Callable[[str], None] | None = None,
             cancel: CancelFlag = None) -> FinetuneResult:
    """Fine-tune checkpoint ``init`` on the pairs folder ``pairs``; write ``out_card``.

    Parameters
    ----------
    init : parent checkpoint (installed name or card path).
    pairs : folder from :func:`~.training_pairs.export_training_pairs`.
    out_card : ``.../NAME.json`` of the new checkpoint (weights beside it); put it in
        the user's models folder (:func:`lobule.models.folders.user_models_dir`) to make
        it an installed model the user can switch to.
    name : the new model's name (default: the card file's stem).
    on_progress : called before every iteration with the iterations done.
    on_log : the trainer's progress lines (loss, images/s, ETA).
    cancel : cancel token, an Event or a callable (checked every iteration; raises :class:`~lobule.core.cancel.Cancelled`
        and writes nothing).

    Raises
    ------
    InputError, CheckpointError
        Bad pairs folder, no training tiles, unreadable parent.
    """
    import tempfile

    from lobule.models.checkpoint import load_checkpoint, save_checkpoint
    from lobule.models.train_segment import SegmentTrainConfig, train_segmentation

    settings = settings or FinetuneSettings()
    out_card = Path(out_card)
    t_start = time.perf_counter()
    manifest, train = read_pairs(pairs, "train")
    _, val = read_pairs(pairs, "val")
    if not train:
        raise InputError(f"{pairs} holds no training tiles")
    parent_model, parent = load_checkpoint(init, device=settings.device)
    classes = parent.get("classes")
    if classes is not None and len(classes) != len(LIVER_CLASSES):
        raise InputError(f"{parent['name']} predicts {len(classes)} classes; corrections use the "
                         f"{len(LIVER_CLASSES)} liver classes")
    splits = {"train": train, "val": val}
    before = _evaluate(parent_model, parent, splits, settings.device)
    mean, std = card_mean_std(parent)
    config = SegmentTrainConfig(
        arch=parent["architecture"], arguments=dict(parent["arguments"]), iterations=settings.iterations,
        batch_size=settings.batch_size, crop_size=settings.crop, lr=settings.lr, weight_decay=settings.weight_decay,
        scale_range=(1.0, 1.0), hed_sigma=settings.hed_sigma, mean=tuple(map(float, mean)),
        std=tuple(map(float, std)), seed=settings.seed, threads=settings.threads)
    state = parent_model.state_dict()
    calls = [0]

    def stop() -> bool:  # polled by the trainer before every iteration
        if on_progress is not None:
            on_progress(FinetuneProgress(calls[0], settings.iterations, time.perf_counter() - t_start))
        calls[0] += 1
        return is_cancelled(cancel)

    with tempfile.TemporaryDirectory(prefix="lobule-finetune-") as work:
        result = train_segmentation(config, train, Path(work) / "state.safetensors", device=settings.device,
                                    init=lambda model: model.load_state_dict(state), log=on_log or (lambda _: None),
                                    log_every=max(1, settings.iterations // 20), save_every=10**9, stop=stop)
    if result.iterations < settings.iterations:
        raise Cancelled("fine-tuning cancelled")
    if on_progress is not None:
        on_progress(FinetuneProgress(result.iterations, settings.iterations, time.perf_counter() - t_start))
    model = result.model
    after = _evaluate(model, parent, splits, settings.device)

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    card = {k: v for k, v in parent.items() if k not in ("path", "weights", "created", "format", "metrics")}
    card["name"] = name or out_card.stem
    card["lineage"] = {
        "parent": {"name": parent["name"], "card": parent.get("path"),
                   "weights_sha256": (parent.get("weights") or {}).get("sha256")},
        "corrections": {"pairs": str(Path(pairs).resolve()), "labels_sha256": manifest["corrections"]["labels_sha256"],
                        "corrected_pixels": manifest["corrections"]["corrected_pixels"],
                        "store": manifest["corrections"]["store"], "slide": manifest.get("slide"),
                        "model_corrected": manifest.get("model"), "train_tiles": len(train), "val_tiles": len(val)},
        "created": now,
        "method": "fine-tuned on a pathologist's corrections (lobule.inference.annotations.finetune)",
    }
    training = dict(parent.get("training") or {})
    training["finetune"] = {"settings": asdict(settings), "trainer": config.as_dict(),
                            "history": result.history, "seconds": round(result.seconds, 1),
                            "call": "lobule.inference.annotations.finetune.finetune(init, pairs, out_card, settings)",
                            "init": str(init), "pairs": str(pairs)}
    card["training"] = training
    metrics = {"parent_metrics": parent.get("metrics")} if parent.get("metrics") else {}
    metrics["corrections_agreement"] = {
        "before": before, "after": after,
        "measured_on": "corrected pixels of the exported tiles (train: used for fine-tuning; val: held-out tiles "
                       "of the same slide), whole tiles predicted without context margin",
    }
    card["metrics"] = metrics
    out_card.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, card, out_card)
    return FinetuneResult(out_card, before, after, time.perf_counter() - t_start)

