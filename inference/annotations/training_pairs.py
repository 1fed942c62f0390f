"""Corrections as training data: tile / label pairs with the ignore label outside corrected pixels.

Folder layout (the format ``lobule train segment`` reads, :mod:`lobule.inference.liver.segdata`:
``DATA/train/{images,labels}``, images and label maps with the same stem)::

    OUT/train/images/<slide stem>_x<X>_y<Y>.png   (T, T, 3) RGB uint8 read from the slide at the
                                                   label mpp (the model's input resolution)
    OUT/train/labels/<slide stem>_x<X>_y<Y>.png   (T, T) uint8 class ids where a person corrected
                                                   the pixel, 255 (IGNORE_INDEX) everywhere else
    OUT/val/{images,labels}/...              the held-out tiles, same format
    OUT/pairs.json                           manifest (format ``lobule-pairs/1``): mpp,
                                             tile size, ignore index, class table, slide
                                             identity, the model whose output was corrected,
                                             the corrections store, and per tile its label-pixel
                                             position (X, Y), corrected pixels and split

Tiles are the squares of a regular grid of side T (default 512) over the label map holding at
least ``min_corrected`` corrected pixels (tiles never overlap, so no pixel is in two tiles or in
both splits); a tile reaching past the map's right or bottom edge is padded (white image, ignore
labels). The split
is deterministic: every ``holdout_every``-th tile in raster order (starting with the third) is
``val`` and the rest ``train``, when there are at least ``holdout_every`` tiles. Neighbouring
tiles can share a correction stroke, so ``val`` measures agreement on unseen pixels of the same
slide, not on another slide.

The folder is written atomically (built beside the target, then renamed over it).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lobule.inference.annotations.corrections import CorrectionLayer
from lobule.inference.annotations.edits import read_rgb
from lobule.inference.errors import InputError
from lobule.resources.classes import IGNORE_INDEX, class_table_json

PAIRS_FORMAT = "lobule-pairs/1"


@dataclass(frozen=True)
class PairsExport:
    """What :func:`export_training_pairs` wrote: the folder, its manifest, tiles per split."""

    folder: Path
    manifest: dict
    train: int
    val: int
    corrected_pixels: int


def corrected_tiles(layer: CorrectionLayer, tile: int = 512, min_corrected: int = 64) -> list[tuple[int, int, int]]:
    """(x, y, corrected pixels) of the grid tiles (label px) worth exporting, raster order."""
    candidates = set()
    for x, y, w, h in layer.corrected_windows():
        for ty in range(y // tile, (y + h - 1) // tile + 1):
            for tx in range(x // tile, (x + w - 1) // tile + 1):
                candidates.add((ty, tx))
    out = []
    for ty, tx in sorted(candidates):
        x, y = tx * tile, ty * tile
        count = int(layer.corrected_mask((x, y, tile, tile)).sum())
        if count >= min_corrected:
            out.append((x, y, count))
    return out


def export_training_pairs(layer: CorrectionLayer, slide, out: str | os.PathLike, *, tile: int = 512,
                          min_corrected: int = 64, holdout_every: int = 5) -> PairsExport:
    """Write the corrected areas of ``layer`` as training pairs (see the module docstring).

    Parameters
    ----------
    layer : the corrections (unsaved edits included).
    slide : the :class:`~lobule.inference.slide.base.SlideReader` the corrections belong to.
    out : output folder (replaced atomically if it exists).
    tile : tile side T in label pixels.
    min_corrected : tiles with fewer corrected pixels are left out.
    holdout_every : every k-th tile goes to ``val`` (0 = no held-out tiles).

    Raises
    ------
    InputError
        If there are no corrections, or the slide is not the one the class map was made from.
    """
    out = Path(out)
    info = layer.base.slide
    if info.get("dimensions") and tuple(info["dimensions"]) != tuple(slide.dimensions):
        raise InputError(f"{Path(slide.path).name} ({slide.dimensions[0]} x {slide.dimensions[1]} px) is not the "
                         f"slide these corrections were made on ({info.get('name', '?')})")
    tiles = corrected_tiles(layer, tile, min_corrected)
    if not tiles:
        raise InputError("there are no corrections to export (paint some first)")
    stem = Path(info.get("name") or Path(slide.path).name).stem
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.part-{uuid.uuid4().hex[:8]}"
    for split in ("train", "val"):
        (tmp / split / "images").mkdir(parents=True)
        (tmp / split / "labels").mkdir()
    digest = hashlib.sha256()
    records = []
    try:
        for index, (x, y, count) in enumerate(tiles):
            name = f"{stem}_x{x}_y{y}"
            labels = layer.read_corrections((x, y, tile, tile))
            image = _read_tile(slide, layer, (x, y, tile, tile))
            split = "val" if holdout_every and len(tiles) >= holdout_every and index % holdout_every == 2 else "train"
            _write_png(tmp / split / "images" / f"{name}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            _write_png(tmp / split / "labels" / f"{name}.png", labels)
            digest.update(name.encode())
            digest.update(labels.tobytes())
            records.append({"name": name, "x": x, "y": y, "corrected_pixels": count, "split": split})
        manifest = {
            "format": PAIRS_FORMAT,
            "mpp": layer.mpp,
            "slide_downsample": layer.scale,
            "tile_size": tile,
            "ignore_index": IGNORE_INDEX,
            "classes": class_table_json(),
            "slide": {k: info.get(k) for k in ("name", "path", "sha256_first_mib", "dimensions")},
            "model": layer.base.model,
            "corrections": {"store": str(layer.folder), "labels_sha256": digest.hexdigest(),
                            "corrected_pixels": int(sum(t[2] for t in tiles))},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "tiles": records,
        }
        (tmp / "pairs.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    train = sum(r["split"] == "train" for r in records)
    return PairsExport(out, manifest, train, len(records) - train, manifest["corrections"]["corrected_pixels"])


def _read_tile(slide, layer: CorrectionLayer, window) -> np.ndarray:
    """RGB of a label window; white where the window leaves the label map."""
    x, y, w, h = window
    height, width = layer.shape
    image = np.full((h, w, 3), 255, np.uint8)
    cw, ch = min(w, width - x), min(h, height - y)
    image[:ch, :cw] = read_rgb(slide, (x, y, cw, ch), layer.scale)
    return image


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise InputError(f"cannot write {path}")


def read_pairs(folder: str | os.PathLike, split: str | None = None) -> tuple[dict, list[tuple[np.ndarray, np.ndarray]]]:
    """Read a pairs folder: (manifest, [(image (T, T, 3) uint8 RGB, labels (T, T) uint8), ...]),
    the tiles of ``split`` only if given.

    Raises
    ------
    InputError
        If the folder is not a pairs folder or a file is missing.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "pairs.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder} is not a training pairs folder (no readable pairs.json)") from None
    if manifest.get("format") != PAIRS_FORMAT:
        raise InputError(f"{folder}/pairs.json has format {manifest.get('format')!r}, not {PAIRS_FORMAT}")
    pairs = []
    for record in manifest["tiles"]:
        if split is not None and record["split"] != split:
            continue
        part = folder / record["split"]
        image = cv2.imread(str(part / "images" / f"{record['name']}.png"), cv2.IMREAD_COLOR)
        labels = cv2.imread(str(part / "labels" / f"{record['name']}.png"), cv2.IMREAD_UNCHANGED)
        if image is None or labels is None:
            raise InputError(f"{folder}: tile {record['name']} is missing or unreadable")
        pairs.append((cv2.cvtColor(image, cv2.COLOR_BGR2RGB), labels))
    return manifest, pairs

