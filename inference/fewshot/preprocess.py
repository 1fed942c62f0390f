"""Intensity normalisation and slice resizing shared by training, evaluation and the app.

SSL-ALPNet (Ouyang et al. 2020) z-scores each MR volume; we do the same after clipping to the
0.5th-99.5th percentiles (robust to a few hot voxels), and for CT (Hounsfield units) after
clipping to the abdominal window [-125, 275] HU that SSL-ALPNet uses for CT. Slices are resized
to the model's square input (bilinear), the grey level repeated to 3 channels (docs/models.md).
"""
from __future__ import annotations

import numpy as np

CT_CLIP_HU = (-125.0, 275.0)
PERCENTILES = (0.5, 99.5)


def normalise_volume(data: np.ndarray, modality: str = "") -> np.ndarray:
    """(X, Y, Z) intensities -> float32 z-scores of the clipped volume.

    Parameters
    ----------
    data : (X, Y, Z) array (HU for CT).
    modality : ``"CT"`` selects the HU window; anything else percentile clipping.
    """
    data = np.asarray(data, dtype=np.float32)
    if modality == "CT":
        low, high = CT_CLIP_HU
    else:
        sample = data[::2, ::2, :] if data.ndim == 3 else data
        low, high = (float(v) for v in np.percentile(sample, PERCENTILES))
    clipped = np.clip(data, low, high)
    std = float(clipped.std())
    return ((clipped - float(clipped.mean())) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def resize_stack(slices: np.ndarray, size: int | tuple[int, int], order: int = 1) -> np.ndarray:
    """(N, X, Y) -> (N, size, size) by bilinear (``order=1``) or nearest (``order=0``) sampling.

    Uses torch when available (fast); the output is float32.
    """
    import torch
    import torch.nn.functional as F

    size = (size, size) if isinstance(size, int) else tuple(size)
    tensor = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
    if tuple(tensor.shape[-2:]) == size:
        return tensor[:, 0].numpy()
    mode = "bilinear" if order == 1 else "nearest"
    kwargs = {"align_corners": False} if order == 1 else {}
    return F.interpolate(tensor, size=size, mode=mode, **kwargs)[:, 0].numpy()
