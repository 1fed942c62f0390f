"""Writing CNP results: the mask PNG (0/255, image size), an overlay PNG, and the numbers as
CSV and JSON. Every write is atomic (a crash leaves the old file or none)."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lobule.core.atomic import atomic_write

OVERLAY_COLOUR = (255, 40, 40)


def _png_bytes(array: np.ndarray) -> bytes:
    import cv2

    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV fails only on impossible shapes
        raise ValueError(f"cannot encode an array of shape {array.shape} as PNG")
    return encoded.tobytes()


def write_mask_png(mask: np.ndarray, path: str | Path) -> Path:
    """(H, W) bool -> 8-bit gray PNG with 0 (background) and 255 (CNP)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(_png_bytes(np.where(mask, 255, 0).astype(np.uint8)))
    return path


def overlay(rgb8: np.ndarray, mask: np.ndarray, colour=OVERLAY_COLOUR, alpha: float = 0.45,
            outline: bool = True) -> np.ndarray:
    """The image with CNP tinted in ``colour`` and its outline drawn: (H, W, 3) uint8."""
    import cv2

    out = rgb8.astype(np.float32).copy()
    tint = np.asarray(colour, np.float32)
    out[mask] = (1.0 - alpha) * out[mask] + alpha * tint
    out = out.astype(np.uint8)
    if outline:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
    return out


def write_overlay_png(rgb8: np.ndarray, mask: np.ndarray, path: str | Path) -> Path:
    """Write :func:`overlay` as an RGB PNG."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(_png_bytes(overlay(rgb8, mask)))
    return path


def json_safe(value: Any) -> Any:
    """NaN / inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: Any, path: str | Path) -> Path:
    """Strict JSON (NaN written as null), indented, atomic."""
    path = Path(path)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(json_safe(data), handle, indent=2, allow_nan=False)
        handle.write("\n")
    return path


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """One row per dict; columns are the union of keys in first-seen order; None -> empty."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in json_safe(row).items()})
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    return path
