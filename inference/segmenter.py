"""Class maps of plain images with a liver model or the classical labeller, and their evaluation.

A :class:`Segmenter` labels one in-memory image of any size at a given mpp: a checkpoint model
resamples the image to its own mpp, predicts overlapping tiles
(:func:`lobule.inference.sliding_window.sliding_window_labels`, softmax scores blended) and
returns the class map at the input size; the classical colour-phase labeller works on the whole
image at its own mpp. :func:`evaluate_set` scores segmenters on an evaluation set of real masks
(``heldout.json``, :mod:`lobule.inference.segdata`).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.labeller import CLASSICAL, label_colour_phase
from lobule.inference.segdata import read_label, read_rgb, resample_image, resample_instances
from lobule.inference.sliding_window import sliding_window_labels
from lobule.models.metrics import binary_overlap, pooled_overlap


class Segmenter:
    """Labels images with one model.

    Attributes
    ----------
    name : ``"classical"`` or the checkpoint's name.
    mpp : the model's input mpp (None for the classical labeller, which takes any).
    info : what a report records (kind, card path, weights sha256, architecture).
    """

    def __init__(self, name: str, mpp: float | None, label: Callable[[np.ndarray, float], np.ndarray],
                 info: dict[str, Any]) -> None:
        self.name = name
        self.mpp = mpp
        self._label = label
        self.info = info

    def label(self, image: np.ndarray, mpp: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB at ``mpp`` um/px -> (H, W) uint8 class ids."""
        if not np.isfinite(mpp) or mpp <= 0:
            raise InputError(f"mpp must be a positive number of micrometres per pixel, not {mpp}")
        return self._label(image, mpp)


def classical_segmenter() -> Segmenter:
    """The classical colour-phase labeller (no learned weights)."""
    return Segmenter(CLASSICAL, None, lambda image, mpp: label_colour_phase(image, mpp),
                     {"kind": "classical colour-phase labeller (no learned weights)"})


def checkpoint_segmenter(name_or_path: str, device: str = "cpu", tile: int | None = None, overlap: int = 128,
                         batch_size: int = 4, runtime: str = "torch") -> Segmenter:
    """A checkpoint (installed name or card path) as a segmenter.

    Parameters
    ----------
    device : torch device string.
    tile : tile side at the model's mpp (default: the card's ``input.tile_size``, else 512).
    overlap : pixels shared by neighbouring tiles. batch_size : tiles per forward pass.
    runtime : see :func:`lobule.inference.engine.runtime.build_forward`; exported runtimes take
        the card's tile size only, so another ``tile`` runs in torch.

    Raises
    ------
    CheckpointError, UnknownModelError
        From :func:`lobule.models.checkpoint.load_checkpoint`.
    InputError
        If the card does not give its input mpp, or the runtime cannot run here.
    """
    import torch

    from lobule.inference.engine.runtime import load_forward

    forward, _model, card, provenance = load_forward(name_or_path, device=device, runtime=runtime, task="liver-hne")
    spec = card["input"]
    model_mpp = float(spec["mpp"])
    card_tile = int(spec.get("tile_size", 512))
    tile = int(tile or card_tile)
    if tile != card_tile and provenance["runtime"] == "openvino":
        forward, _model, card, provenance = load_forward(name_or_path, device=device, runtime="torch")

    def scores(batch: np.ndarray) -> np.ndarray:
        logits = forward(batch)
        with torch.inference_mode():
            return torch.softmax(logits, dim=1).cpu().numpy()

    def label(image: np.ndarray, mpp: float) -> np.ndarray:
        scaled = resample_image(image, mpp / model_mpp)
        labels = sliding_window_labels(scaled, scores, tile=tile, overlap=min(overlap, tile // 2),
                                       batch_size=batch_size)
        return labels if labels.shape == image.shape[:2] else resample_instances(labels, image.shape[:2])

    info = {"kind": "checkpoint", "card": card.get("path"), "architecture": card.get("architecture"),
            "weights_sha256": (card.get("weights") or {}).get("sha256"), "mpp": model_mpp, "tile": tile,
            "overlap": overlap, "runtime": provenance}
    return Segmenter(card["name"], model_mpp, label, info)


def load_segmenter(model: str | None, device: str = "auto", **kwargs) -> Segmenter:
    """The segmenter for a ``--model`` value: ``"classical"``, an installed name, a card path, or
    None for the default ``liver-hne`` (if it is not installed the error suggests ``classical``)."""
    from lobule.inference.engine.device import select_device
    from lobule.models.checkpoint import find_checkpoint
    from lobule.models.errors import UnknownModelError

    if model == CLASSICAL:
        return classical_segmenter()
    if model is None:
        try:
            find_checkpoint("liver-hne")
        except UnknownModelError:
            raise UnknownModelError("the liver model liver-hne is not installed; use --model classical "
                                    "(colour-phase labeller) or --model NAME_OR_CARD") from None
        model = "liver-hne"
    return checkpoint_segmenter(model, device=select_device(device), **kwargs)


def evaluate_set(segmenter: Segmenter, items: list[dict], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Overlap of a segmenter's class maps with real masks.

    Parameters
    ----------
    items : evaluation-set items (:func:`lobule.inference.segdata.read_evalset`): ``image``,
        ``mask`` (nonzero = positive; instance maps are fine), ``mpp``, ``kind`` and ``positive``
        (the class ids counted as positive: ``[1]`` for lipid droplets, ``[2, 3]`` for nuclei).

    Returns
    -------
    dict: ``by_kind`` ({kind: pooled IoU / Dice / tp / fp / fn over its items}), ``items``
    (per-item overlap), ``seconds``. Images are labelled at their source resolution and mpp; the
    masks are the originals.
    """
    per_item, started = [], time.perf_counter()
    for item in items:
        image = read_rgb(item["image"])
        mask = read_label(item["mask"]) > 0
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask {item['mask']} is not the size of image {item['image']}")
        labels = segmenter.label(image, float(item["mpp"]))
        overlap = binary_overlap(np.isin(labels, item["positive"]), mask)
        per_item.append({"name": item["name"], "kind": item["kind"], **overlap})
        log(f"{segmenter.name}: {item['name']} {item['kind']} IoU {_fmt(overlap['iou'])} Dice {_fmt(overlap['dice'])}")
    by_kind = {}
    for kind in sorted({p["kind"] for p in per_item}):
        pooled = pooled_overlap(p for p in per_item if p["kind"] == kind)
        by_kind[kind] = {**pooled, "tiles": sum(p["kind"] == kind for p in per_item),
                         "iou": _round(pooled["iou"]), "dice": _round(pooled["dice"])}
    for p in per_item:
        p["iou"], p["dice"] = _round(p["iou"]), _round(p["dice"])
    return {"by_kind": by_kind, "items": per_item, "seconds": round(time.perf_counter() - started, 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
