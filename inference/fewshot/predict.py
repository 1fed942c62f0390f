"""Running a few-shot checkpoint on slices: support slice + mask -> organ masks of query slices."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError

DEFAULT_MODEL = "fewshot-mri"


@dataclass
class SlicePredictor:
    """A loaded few-shot model applied to normalised slices.

    Attributes
    ----------
    model : the torch module (eval mode) with ``encode`` / ``predict``.
    size : square input size S the model was trained at; slices are resized to S x S and the
        prediction back to the slice size.
    card : the checkpoint card.
    batch_size : query slices per forward pass.
    """

    model: object
    size: int
    card: dict = field(default_factory=dict)
    device: str = "cpu"
    batch_size: int = 8

    runtime: dict | None = None

    @classmethod
    def from_checkpoint(cls, name_or_path: str | Path = DEFAULT_MODEL, device: str = "cpu",
                        runtime: str = "torch") -> "SlicePredictor":
        """Load a ``task: fewshot`` checkpoint by name or card path through
        :func:`lobule.inference.engine.loader.load_model` (``runtime``: ``torch`` or ``auto``;
        few-shot models run in PyTorch only).

        Raises
        ------
        CheckpointError, UnknownModelError
            Missing or mismatched checkpoint, or one of another task.
        InputError
            For a runtime other than ``torch`` / ``auto``.
        """
        from lobule.inference.engine.device import select_device
        from lobule.inference.engine.loader import load_model

        loaded = load_model(name_or_path, task="fewshot", device=select_device(device), runtime=runtime)
        return cls(model=loaded.module, size=loaded.spec.tile_size, card=loaded.card, device=loaded.device,
                   runtime=loaded.runtime)

    def probabilities(self, support_image: np.ndarray, support_mask: np.ndarray, queries: np.ndarray,
                      cancel=None) -> np.ndarray:
        """Organ probability of each query slice.

        Parameters
        ----------
        support_image : (X, Y) float32 normalised slice (:func:`~lobule.inference.fewshot.preprocess.normalise_volume`).
        support_mask : (X, Y) bool organ mask of the support slice (must not be empty).
        cancel : cancel token (:mod:`lobule.core.cancel`), polled between batches.
        queries : (N, X', Y') float32 normalised slices (any in-plane size).

        Returns
        -------
        (N, X', Y') float32 probabilities in [0, 1].
        """
        import torch
        import torch.nn.functional as F

        from lobule.inference.fewshot.preprocess import resize_stack
        from lobule.core.cancel import check_cancelled

        if not np.any(support_mask):
            raise InputError("the support mask is empty: outline the organ on the support slice")
        s = torch.from_numpy(resize_stack(support_image[None], self.size))[:, None].repeat(1, 3, 1, 1)
        m = torch.from_numpy(resize_stack(support_mask[None].astype(np.float32), self.size, order=1) > 0.5).float()
        if not m.any():  # a very small outline vanishes at the model size: keep its nearest pixels
            m = torch.from_numpy(resize_stack(support_mask[None].astype(np.float32), self.size, order=0)).float()
        out = np.zeros(queries.shape, dtype=np.float32)
        with torch.inference_mode():
            s, m = s.to(self.device), m.to(self.device)
            support_feats = self.model.encode(s)
            for start in range(0, len(queries), self.batch_size):
                check_cancelled(cancel, "segmentation cancelled")
                chunk = queries[start : start + self.batch_size]
                q = torch.from_numpy(resize_stack(chunk, self.size))[:, None].repeat(1, 3, 1, 1).to(self.device)
                n = q.shape[0]
                query_feats = self.model.encode(q)
                logits = self.model.predict(
                    [f.expand(n, *f.shape[1:]) for f in support_feats], m.expand(n, -1, -1), query_feats, q.shape[-2:]
                )
                prob = torch.softmax(logits.float(), dim=1)[:, 1:2]
                prob = F.interpolate(prob, size=tuple(chunk.shape[-2:]), mode="bilinear", align_corners=False)
                out[start : start + n] = prob[:, 0].cpu().numpy()
        return out

    def __call__(self, support_image, support_mask, queries, cancel=None) -> np.ndarray:
        """(N, X, Y) bool organ masks (probability > 0.5)."""
        return self.probabilities(support_image, support_mask, queries, cancel) > 0.5
