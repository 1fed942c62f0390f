"""Running a CNP checkpoint (LadderNet / Enhance LadderNet) over whole angiograms.

``CNPSegmenter.probability(gray8)`` = preprocessing -> 96x96 tiles with 48 px overlap ->
softmax CNP probability, averaged -> zero outside the field of view. torch is imported when a
segmenter is built, not when this module is imported.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lobule.inference.ffa.patches import OVERLAP, TILE, predict_tiled
from lobule.inference.ffa.preprocess import field_of_view, preprocess

DEFAULT_MODEL = "ffa-cnp"
DEFAULT_THRESHOLD = 0.5
CNP_CLASS = 1


def card_threshold(name_or_path: str = DEFAULT_MODEL) -> float | None:
    """The calibrated operating threshold in a CNP model's card, read without loading weights or
    torch; None when the card cannot be found or read (the error shows when the model is used)."""
    from lobule.models.checkpoint import find_checkpoint, read_card
    from lobule.core.errors import CheckpointError, UnknownModelError

    try:
        card = read_card(find_checkpoint(name_or_path))
    except (CheckpointError, UnknownModelError):
        return None
    value = card.get("inference", {}).get("threshold")
    return float(value) if isinstance(value, (int, float)) and 0.0 < value < 1.0 else None


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' if available, else 'mps' if available, else 'cpu' (see
    :func:`lobule.inference.engine.device.select_device`)."""
    from lobule.inference.engine.device import select_device

    return select_device(device)


@dataclass
class CNPSegmenter:
    """A model plus the settings of its card.

    Attributes
    ----------
    model : torch module mapping (N, 1, H, W) float32 to (N, 2, H, W) logits.
    card : its checkpoint card (``{}`` for an untrained model in tests).
    device : torch device string.
    threshold : probability above which a pixel is CNP (the card's, chosen on validation data).
    tile, overlap : tiling in px.
    """

    model: Any
    card: dict
    device: str = "cpu"
    threshold: float = DEFAULT_THRESHOLD
    tile: int = TILE
    overlap: int = OVERLAP
    batch_size: int = 16

    runtime: dict | None = None

    @classmethod
    def from_checkpoint(cls, name_or_path: str = DEFAULT_MODEL, device: str = "auto",
                        runtime: str = "torch") -> "CNPSegmenter":
        """Load a checkpoint by name (``ffa-cnp``) or card path through
        :func:`lobule.inference.engine.loader.load_model` (``runtime``: ``torch`` or ``auto``;
        FFA models run in PyTorch only).

        Raises
        ------
        CheckpointError, UnknownModelError
            If the checkpoint is missing, does not match its card, or is not an FFA model.
        InputError
            For a runtime other than ``torch`` / ``auto``.
        """
        from lobule.inference.engine.loader import load_model

        loaded = load_model(name_or_path, task="ffa-cnp", device=resolve_device(device), runtime=runtime)
        inference = loaded.card.get("inference", {})
        return cls(loaded.module, loaded.card, loaded.device, float(inference.get("threshold", DEFAULT_THRESHOLD)),
                   loaded.spec.tile_size, int(inference.get("overlap", OVERLAP)), runtime=loaded.runtime)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.model.__class__.__name__))

    def predict_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """(N, 1, T, T) float32 -> (N, T, T) float32 CNP probabilities."""
        import torch

        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device))
            return torch.softmax(logits.float(), dim=1)[:, CNP_CLASS].cpu().numpy()

    def probability(
        self,
        gray8: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
        cancel=None,
    ) -> np.ndarray:
        """CNP probability of every pixel.

        Parameters
        ----------
        gray8 : (H, W) uint8 angiogram (``Angiogram.gray8``).
        progress, cancel : see :func:`lobule.inference.ffa.patches.predict_tiled`.

        Returns
        -------
        (H, W) float32 in [0, 1]; 0 outside the field of view.
        """
        self.model.eval()
        prob = predict_tiled(
            self.predict_tiles, preprocess(gray8), self.tile, self.overlap, self.batch_size, progress, cancel
        )
        prob[~field_of_view(gray8)] = 0.0
        return prob

    def mask(self, probability: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """(H, W) bool CNP mask: ``probability >= threshold`` (the card's threshold by default)."""
        return probability >= (self.threshold if threshold is None else threshold)
