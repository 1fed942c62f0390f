"""Input normalisation of RGB models, defined once for training and inference.

A card's ``input.normalisation`` gives per-channel ``mean`` and ``std`` in 0-1 units (values above
1 are taken as 0-255 units); a uint8 image ``x`` enters the network as ``(x / 255 - mean) / std``,
computed as one fused multiply-add ``x * scale + bias`` so an exported graph can take uint8 in.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IDENTITY_MEAN = (0.0, 0.0, 0.0)
IDENTITY_STD = (1.0, 1.0, 1.0)


def scale_bias(mean: Sequence[float] = IDENTITY_MEAN, std: Sequence[float] = IDENTITY_STD) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, bias)`` (float32, shape (C,)) with ``x * scale + bias ==
    (x / 255 - mean) / std`` for uint8 ``x``; mean and std in 0-1 units (values above 1 are taken
    as 0-255 units)."""
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    if mean.max() > 1.0 or std.max() > 1.0:
        mean, std = mean / 255.0, std / 255.0
    return (1.0 / (255.0 * std)).astype(np.float32), (-mean / std).astype(np.float32)


def card_mean_std(card: dict) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of a card's ``input.normalisation`` (identity when the card gives none)."""
    norm = (card.get("input") or {}).get("normalisation") or {}
    return tuple(norm.get("mean", IDENTITY_MEAN)), tuple(norm.get("std", IDENTITY_STD))
