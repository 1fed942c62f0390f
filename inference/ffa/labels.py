"""Ground-truth CNP masks from the label formats in use: LabelMe JSON polygons, palette PNGs
with a chosen class, RGB colour labels, and binary masks (0/1, 0/255, 16-bit).

The class is chosen with ``label_class``:

* a name (``"NP"``): the LabelMe shape label; for a palette / colour PNG, looked up in a
  ``class_dict.csv`` (``name,r,g,b``) beside the label or in up to two parent folders;
* an integer: the palette index, or the value in a gray class-id map;
* an ``(r, g, b)`` tuple: the colour in a palette or RGB label.

A palette PNG whose ``class_dict.csv`` row order disagrees with the palette (the csv says a
class is row k but its colour is palette index j != k) is ambiguous and refused, with the two
readings named: the ffa_nonperfusion data set has exactly this defect (its LabelMe polygons show
that the rows are right and the colours swapped).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError

DEFAULT_CLASS = "NP"
"""LabelMe label of capillary non-perfusion in the ffa_nonperfusion data (huapu4/FFA)."""

LabelClass = str | int | tuple[int, int, int] | None
AREA_SHAPES = {"polygon", "rectangle", "circle"}


def parse_label_class(text: str | None) -> LabelClass:
    """CLI text -> label class: ``"2"`` -> 2, ``"128,0,0"`` -> (128, 0, 0), else the name."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    if text.strip().isdigit():
        return int(text)
    return text


def _check_shape(mask: np.ndarray, path: Path, shape: tuple[int, int] | None) -> np.ndarray:
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise InputError(
            f"label {path.name} is {mask.shape[1]}x{mask.shape[0]} px but the image is {shape[1]}x{shape[0]} px"
        )
    return mask


def read_labelme(path: Path, label_class: LabelClass = DEFAULT_CLASS, shape: tuple[int, int] | None = None):
    """Rasterise the LabelMe polygons (and rectangles, circles) labelled ``label_class``.

    Polygons are filled like LabelMe's own ``shape_to_mask`` (PIL ``ImageDraw.polygon`` with
    outline), so the result equals masks exported by ``labelme_json_to_dataset``.

    Returns
    -------
    (H, W) bool, H and W from the JSON's ``imageHeight`` / ``imageWidth`` (or ``shape``).
    """
    from PIL import Image, ImageDraw

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        shapes = doc["shapes"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path.name} is not a LabelMe JSON file: {exc}") from None
    height = doc.get("imageHeight") or (shape[0] if shape else None)
    width = doc.get("imageWidth") or (shape[1] if shape else None)
    if not height or not width:
        raise InputError(f"{path.name} does not give imageHeight/imageWidth and no image size is known")
    name = DEFAULT_CLASS if label_class is None else label_class
    names = sorted({str(s.get("label")) for s in shapes})
    if not isinstance(name, str):
        raise InputError(f"{path.name} is LabelMe JSON: choose the class by its label name ({', '.join(names)})")
    if shapes and name not in names:
        raise InputError(f"{path.name} has no shapes labelled {name!r}; labels present: {', '.join(names)}")
    canvas = Image.new("L", (int(width), int(height)), 0)
    draw = ImageDraw.Draw(canvas)
    for item in shapes:
        if item.get("label") != name or (item.get("shape_type") or "polygon") not in AREA_SHAPES:
            continue
        points = [tuple(map(float, p)) for p in item.get("points", [])]
        kind = item.get("shape_type") or "polygon"
        if kind == "polygon" and len(points) >= 3:
            draw.polygon(points, outline=1, fill=1)
        elif kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
        elif kind == "circle" and len(points) == 2:
            (cx, cy), (px, py) = points
            r = float(np.hypot(px - cx, py - cy))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    return _check_shape(np.asarray(canvas, bool), path, shape)


def find_class_dict(path: Path) -> Path | None:
    """``class_dict.csv`` beside ``path`` or in one of its two parent folders."""
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        candidate = folder / "class_dict.csv"
        if candidate.is_file():
            return candidate
    return None


def read_class_dict(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """Rows of a ``name,r,g,b`` csv, in file order."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append((row["name"].strip(), (int(row["r"]), int(row["g"]), int(row["b"]))))
            except (KeyError, ValueError, AttributeError):
                raise InputError(f"{path} is not a name,r,g,b class table") from None
    return rows


def _palette(image) -> np.ndarray:
    return np.asarray(image.getpalette() or [], np.int64).reshape(-1, 3)


def _palette_index(image, path: Path, label_class: LabelClass) -> int:
    """The palette index a class denotes in a palette PNG."""
    palette = _palette(image)
    if isinstance(label_class, int):
        return label_class
    if isinstance(label_class, tuple):
        hits = np.flatnonzero((palette == np.asarray(label_class)).all(axis=1))
        if hits.size == 0:
            raise InputError(f"colour {label_class} is not in the palette of {path.name}")
        return int(hits[0])
    table_path = find_class_dict(path)
    if table_path is None:
        raise InputError(
            f"{path.name} is a palette PNG and there is no class_dict.csv to look up {label_class!r}: "
            "give the palette index (e.g. --label-class 1) or the colour (e.g. --label-class 128,0,0)"
        )
    table = read_class_dict(table_path)
    names = [n for n, _ in table]
    if label_class not in names:
        raise InputError(f"{table_path.name} has no class {label_class!r}; classes: {', '.join(names)}")
    row = names.index(label_class)
    colour = table[row][1]
    hits = np.flatnonzero((palette == np.asarray(colour)).all(axis=1))
    if hits.size == 0:
        raise InputError(f"{table_path.name} gives {label_class} the colour {colour}, which is not in {path.name}'s palette")
    index = int(hits[0])
    if index != row:
        raise InputError(
            f"{table_path.name} is ambiguous for {path.name}: {label_class} is row {row} but its colour {colour} "
            f"is palette index {index}; choose the class by index (--label-class {row} or {index}) "
            "or use the LabelMe JSON"
        )
    return index


def read_label(path: str | Path, label_class: LabelClass = None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth CNP mask.

    Parameters
    ----------
    path : LabelMe ``.json``, palette PNG, RGB colour label, or binary / class-id mask
        (PNG, TIFF, JPEG-free formats; any bit depth).
    label_class : see the module docstring; None means ``"NP"`` for LabelMe and "any non-zero
        pixel" for binary masks.
    shape : (H, W) of the image the label belongs to; a different size is an error.

    Returns
    -------
    (H, W) bool, True = CNP.

    Raises
    ------
    InputError
        Missing or unreadable file, an unknown or ambiguous class, a multi-class map without a
        class, or a size different from ``shape`` (one line naming both sizes).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label not found: {path}")
    if path.suffix.lower() == ".json":
        return read_labelme(path, label_class, shape)
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read label {path.name}: {exc}") from None
    if image.mode == "P":
        indices = np.asarray(image)
        present = np.unique(indices)
        if label_class is None and present.size <= 2 and present[0] == 0:
            return _check_shape(indices > 0, path, shape)  # a binary mask saved with a palette
        index = _palette_index(image, path, DEFAULT_CLASS if label_class is None else label_class)
        return _check_shape(indices == index, path, shape)
    if image.mode in ("RGB", "RGBA"):
        pixels = np.asarray(image.convert("RGB"))
        if isinstance(label_class, tuple):
            return _check_shape((pixels == np.asarray(label_class, np.uint8)).all(axis=2), path, shape)
        if (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all():
            pixels = pixels[..., 0]
        else:
            raise InputError(f"{path.name} is a colour label: choose the class by colour (e.g. --label-class 128,0,0)")
    else:
        pixels = np.asarray(image)
        if pixels.ndim == 3:
            pixels = pixels[..., 0]
    if isinstance(label_class, int):
        return _check_shape(pixels == label_class, path, shape)
    values = np.unique(pixels)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        raise InputError(
            f"{path.name} has {values.size} distinct values ({', '.join(map(str, values[:6]))}"
            f"{'...' if values.size > 6 else ''}); give the CNP value with --label-class"
        )
    return _check_shape(pixels > 0, path, shape)


MAX_CHOICES = 32
"""More distinct values than this are not a class map (e.g. a photograph), no choice is offered."""


def label_choices(path: str | Path) -> list[tuple[LabelClass, str]]:
    """The classes a label file holds, for a chooser: ``(label_class, description)`` pairs in
    which ``label_class`` can be passed to :func:`read_label`.

    LabelMe JSON: one per shape label (``"NP"``); palette PNG: one per palette index present
    other than 0, described by its colour and share of the image; gray or RGB class maps: one
    per non-zero value or non-black colour. A binary mask gives one choice.

    Raises
    ------
    InputError
        Missing or unreadable file, or more than :data:`MAX_CHOICES` values (not a class map).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            shapes = json.loads(path.read_text(encoding="utf-8"))["shapes"]
            names = sorted({str(s.get("label")) for s in shapes})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path.name} is not a LabelMe JSON file: {exc}") from None
        return [(n, f"LabelMe label {n}") for n in names]
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read label {path.name}: {exc}") from None
    if image.mode in ("RGB", "RGBA"):
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        colours, counts = np.unique(pixels, axis=0, return_counts=True)
        keep = colours.any(axis=1)
        if keep.sum() > MAX_CHOICES:
            raise InputError(f"{path.name} has {int(keep.sum())} colours: not a label image")
        return [(tuple(int(v) for v in c), f"colour {','.join(map(str, c))} ({100.0 * n / pixels.shape[0]:.1f} %)")
                for c, n in zip(colours[keep], counts[keep])]
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    values, counts = np.unique(pixels, return_counts=True)
    keep = values != 0
    if keep.sum() > MAX_CHOICES:
        raise InputError(f"{path.name} has {int(keep.sum())} distinct values: not a label image")
    palette = _palette(image) if image.mode == "P" else None
    choices: list[tuple[LabelClass, str]] = []
    for value, count in zip(values[keep], counts[keep]):
        share = f"{100.0 * count / pixels.size:.1f} %"
        if palette is not None and value < len(palette):
            colour = ",".join(str(int(c)) for c in palette[value])
            choices.append((int(value), f"palette index {value}, colour {colour} ({share})"))
        else:
            choices.append((int(value), f"value {value} ({share})"))
    return choices
