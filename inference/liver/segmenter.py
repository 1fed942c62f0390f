"""Class maps of plain images with a liver model or the classical labeller, and their evaluation.

A :class:`Segmenter` labels one in-memory image of any size at a given mpp: a checkpoint model
resamples the image to its own mpp, predicts overlapping tiles
(:func:`lobule.inference.sliding_window.sliding_window_labels`, softmax scores blended) and
returns the class map at the input size; the classical colour-phase labeller works on the whole
image at its own mpp. :func:`evaluate_set` scores segmenters on an evaluation set of real masks
(``heldout.json``, :mod:`lobule.inference.liver.segdata`): Lobule's own class maps are scored after the
droplet rules that quantification applies (:mod:`lobule.inference.liver.quantify.droplet_rules`), so
the evaluation measures what a user gets; masks made by another tool are scored as they are.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.liver.labeller import CLASSICAL, label_colour_phase
from lobule.inference.liver.quantify.droplet_rules import droplet_pixels
from lobule.inference.liver.segdata import read_label, read_rgb, resample_image, resample_instances
from lobule.inference.sliding_window import sliding_window_labels
from lobule.inference.liver.steatosis_eval import summarise_tiles, tile_measures
from lobule.models.metrics import binary_overlap, pooled_overlap


class Segmenter:
    """Labels images with one model.

    Attributes
    ----------
    name : ``"classical"`` or the checkpoint's name.
    mpp : the model's input mpp (None for the classical labeller, which takes any).
    info : what a report records (kind, card path, weights sha256, architecture).
    droplet_rules : True where lipid-droplet scoring applies the quantification's droplet rules
        (Lobule's own models), False for masks made by another tool.
    """

    def __init__(self, name: str, mpp: float | None, label: Callable[[np.ndarray, float], np.ndarray],
                 info: dict[str, Any], by_name: Callable[[str, tuple[int, int]], np.ndarray] | None = None,
                 droplet_rules: bool = True) -> None:
        self.name = name
        self.mpp = mpp
        self._label = label
        self._by_name = by_name
        self.info = info
        self.droplet_rules = droplet_rules

    def label_item(self, name: str, image: np.ndarray, mpp: float) -> np.ndarray:
        """Class map of an evaluation-set item: read by ``name`` for a mask folder (None where the
        folder has no mask for it: the item is not scored), else :meth:`label`."""
        if self._by_name is not None:
            return self._by_name(name, image.shape[:2])
        return self.label(image, mpp)

    def label(self, image: np.ndarray, mpp: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB at ``mpp`` um/px -> (H, W) uint8 class ids."""
        if not np.isfinite(mpp) or mpp <= 0:
            raise InputError(f"mpp must be a positive number of micrometres per pixel, not {mpp}")
        return self._label(image, mpp)


def classical_segmenter() -> Segmenter:
    """The classical colour-phase labeller (no learned weights)."""
    return Segmenter(CLASSICAL, None, lambda image, mpp: label_colour_phase(image, mpp),
                     {"kind": "classical colour-phase labeller (no learned weights)"})


def mask_folder_segmenter(folder: str) -> Segmenter:
    """Masks made by another tool (e.g. ``benchmarks/liverquant_masks.py``) as a segmenter for
    :func:`evaluate_set`: ``FOLDER/<item name>.png``, nonzero = lipid droplet (class 1).

    Items without a mask in the folder are not scored.

    Raises
    ------
    InputError
        If the folder is missing, or an item's mask is of another size than the image.
    """
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"mask folder not found: {root}")

    def by_name(name: str, shape: tuple[int, int]) -> np.ndarray | None:
        path = root / f"{name}.png"
        if not path.is_file():
            return None  # the tool made no mask for this item (e.g. a nucleus tile): not scored
        mask = read_label(path)
        if mask.shape != tuple(shape):
            raise InputError(f"{path} is {mask.shape[1]}x{mask.shape[0]}, its image {shape[1]}x{shape[0]}")
        return (mask > 0).astype(np.uint8)  # class 1 = lipid droplet

    def label(image: np.ndarray, mpp: float) -> np.ndarray:
        raise InputError(f"masks:{root} only scores evaluation-set items by name")

    return Segmenter(root.name, None, label, {"kind": "masks made by another tool", "folder": root.name}, by_name,
                     droplet_rules=False)


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
    CheckpointError, UnknownModelError, InputError
        From :func:`lobule.inference.engine.loader.load_model`.
    """
    import torch

    from lobule.inference.engine.loader import load_model

    loaded = load_model(name_or_path, task="liver-hne", device=device, runtime=runtime)
    model_mpp = loaded.spec.mpp
    tile = int(tile or loaded.spec.tile_size)
    if tile != loaded.spec.tile_size and loaded.runtime["runtime"] == "openvino":
        loaded = load_model(name_or_path, task="liver-hne", device=device, runtime="torch")
    forward, card, provenance = loaded.forward, loaded.card, loaded.runtime

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
    from lobule.inference.engine.loader import liver_model_name

    if model == CLASSICAL:
        return classical_segmenter()
    if model is not None and model.startswith("masks:"):
        return mask_folder_segmenter(model[len("masks:"):])
    return checkpoint_segmenter(liver_model_name(model), device=select_device(device), **kwargs)


def evaluate_set(segmenter: Segmenter, items: list[dict], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Overlap of a segmenter's class maps with real masks.

    Parameters
    ----------
    items : evaluation-set items (:func:`lobule.inference.liver.segdata.read_evalset`): ``image``,
        ``mask`` (nonzero = positive; instance maps are fine), ``mpp``, ``kind`` and ``positive``
        (the class ids counted as positive: ``[1]`` for lipid droplets, ``[2, 3]`` for nuclei).

    Returns
    -------
    dict: ``by_kind`` ({kind: pooled IoU / Dice / tp / fp / fn over its items}), ``items``
    (per-item overlap), ``seconds``, ``droplet_rules`` (whether the droplet rules applied). Images
    are labelled at their source resolution and mpp; the masks are the originals.
    """
    per_item, started = [], time.perf_counter()
    for item in items:
        image = read_rgb(item["image"])
        truth = read_label(item["mask"])
        if truth.shape != image.shape[:2]:
            raise InputError(f"mask {item['mask']} is not the size of image {item['image']}")
        labels = segmenter.label_item(item["name"], image, float(item["mpp"]))
        if labels is None:
            continue
        if item["kind"].startswith("droplets") and segmenter.droplet_rules:
            predicted = droplet_pixels(labels, float(item["mpp"]))
        else:
            predicted = np.isin(labels, item["positive"])
        if item["kind"].startswith("droplets"):
            overlap = tile_measures(image, predicted, truth, float(item["mpp"]), counts=item["kind"] == "droplets")
        else:
            overlap = binary_overlap(predicted, truth > 0)
        source = item.get("source", item["kind"])
        per_item.append({"name": item["name"], "kind": item["kind"], "source": source, **overlap})
        log(f"{segmenter.name}: {item['name']} {item['kind']} IoU {_fmt(overlap['iou'])} Dice {_fmt(overlap['dice'])}")
    by_kind = {}
    for kind in sorted({p["kind"] for p in per_item}):
        pooled = pooled_overlap(p for p in per_item if p["kind"] == kind)
        by_kind[kind] = {**pooled, "tiles": sum(p["kind"] == kind for p in per_item),
                         "iou": _round(pooled["iou"]), "dice": _round(pooled["dice"])}
    by_source = {f"{source} ({kind})": summarise_tiles(p for p in per_item if p["source"] == source and p["kind"] == kind)
                 for source, kind in sorted({(p["source"], p["kind"]) for p in per_item})}
    for p in per_item:
        p["iou"], p["dice"] = _round(p["iou"]), _round(p["dice"])
        for key in ("steatosis_pct_pred", "steatosis_pct_truth"):
            if p.get(key) is not None:
                p[key] = round(float(p[key]), 3)
    return {"by_kind": by_kind, "by_source": by_source, "items": per_item, "droplet_rules": segmenter.droplet_rules,
            "seconds": round(time.perf_counter() - started, 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
