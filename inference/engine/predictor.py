"""Predictors: what the engine runs on a batch of tiles.

A predictor maps a batch of RGB tiles at its own mpp to class ids of the same size; the engine
does not care whether it is a torch model or a function (the classical labeller). This is the
TIAToolbox split: the architecture's ``infer_batch`` apart from the engine's batching,
stitching and saving.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lobule.inference.engine.loader import DEFAULT_LIVER_MODEL as DEFAULT_MODEL  # noqa: F401 - the engine's export


@runtime_checkable
class Predictor(Protocol):
    """What the engine needs from a model.

    Attributes
    ----------
    name : shown in progress and exports.
    mpp : um per input pixel the predictor expects.
    tile_size : input side in pixels (square tiles).
    margin : context pixels per side whose predictions are discarded when stitching.
    device : torch device string the predictor runs on (``"cpu"`` for plain functions).
    """

    name: str
    mpp: float
    tile_size: int
    margin: int
    device: str

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        """(N, T, T, 3) uint8 RGB -> (N, T, T) uint8 class ids. Must be deterministic."""

    # Optional: ``predict_scores(tiles)`` (N, T, T, 3) uint8 -> (N, C, T, T) float class
    # probabilities. A predictor that has it gets its overlapping tiles blended on scores
    # (lobule.inference.engine.blend) instead of its cores' labels stitched.

    def bytes_per_tile(self) -> int:
        """Estimated working memory per tile in a batch (bytes, on ``device``)."""

    def describe(self) -> dict[str, Any]:
        """What an export records about the model (name, kind, weights sha256, card...)."""


class FunctionPredictor:
    """A per-image function as a predictor (e.g. the classical colour-phase labeller).

    Parameters
    ----------
    function : ``f(image (H, W, 3) uint8, mpp) -> (H, W)`` class ids.
    mpp : um per pixel the tiles are read at.
    tile_size, margin : tile side and discarded context per side (pixels).
    info : extra fields for :meth:`describe`.
    """

    device = "cpu"

    def __init__(self, function: Callable[[np.ndarray, float], np.ndarray], *, name: str, mpp: float = 0.5,
                 tile_size: int = 1024, margin: int = 64, info: dict | None = None) -> None:
        self.function = function
        self.name = name
        self.mpp = float(mpp)
        self.tile_size = int(tile_size)
        self.margin = int(margin)
        self._info = dict(info or {})

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(self.function(tile, self.mpp), dtype=np.uint8) for tile in tiles])

    def bytes_per_tile(self) -> int:
        return self.tile_size * self.tile_size * 64  # float temporaries of a numpy pipeline

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "function", "mpp": self.mpp, "tile_size": self.tile_size,
                "margin": self.margin, "weights_sha256": None, **self._info}


class TorchPredictor:
    """A segmentation ``nn.Module`` as a predictor, run by one of the runtimes of
    :mod:`lobule.inference.engine.runtime` (PyTorch fp32 by default).

    Input normalisation ``(x / 255 - mean) / std`` per channel (mean, std in 0-1 units; values
    above 1 are taken as 0-255 units), as one fused multiply-add on the uint8 tiles. On GPUs the
    model runs in ``channels_last`` memory format under autocast (float16); on CPU in float32
    (exact, deterministic) unless another runtime was chosen. Logits smaller than the input are
    bilinearly resized before the class ids are taken (``max(dim=1).indices``: the first of tied
    classes, like ``argmax``, without its strided pass over the class axis).
    """

    def __init__(self, model, *, name: str, mpp: float, tile_size: int = 512, margin: int = 64,
                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), device: str = "cpu",
                 info: dict | None = None, forward=None, runtime: dict | None = None) -> None:
        from lobule.inference.engine.runtime import TorchForward

        self.name = name
        self.mpp = float(mpp)
        self.tile_size = int(tile_size)
        self.margin = int(margin)
        self.device = device
        self._info = dict(info or {})
        self.forward = forward if forward is not None else TorchForward(model, mean, std, device)
        self.runtime = dict(runtime or {"runtime": self.forward.runtime, "precision": self.forward.precision})
        self.model = model
        self._bytes_per_tile: int | None = None

    @classmethod
    def from_checkpoint(cls, name_or_path: str, device: str = "cpu", margin: int | None = None,
                        runtime: str = "torch") -> "TorchPredictor":
        """Load an installed checkpoint (name or card path) for inference on ``device`` with
        ``runtime`` (see :func:`lobule.inference.engine.runtime.build_forward`).

        ``margin`` defaults to the card's (:class:`~lobule.inference.engine.loader.InputSpec`: an
        eighth of the tile size, 64 px of a 512 tile: each kept core of 384 px has 32 um of
        context at 0.5 um/px; 1.78 tiles' work per core area).
        """
        from lobule.inference.engine.loader import load_model

        loaded = load_model(name_or_path, task="liver-hne", device=device, runtime=runtime)
        spec = loaded.spec
        return cls(
            loaded.module, name=loaded.name, mpp=spec.mpp, tile_size=spec.tile_size,
            margin=spec.margin if margin is None else margin, mean=spec.mean, std=spec.std, device=device,
            info=loaded.describe(), forward=loaded.forward, runtime=loaded.runtime,
        )

    def predict(self, tiles: np.ndarray) -> np.ndarray:
        import torch

        logits = self.forward(tiles)
        with torch.inference_mode():
            return logits.max(dim=1).indices.to(torch.uint8).cpu().numpy()

    def predict_scores(self, tiles: np.ndarray) -> np.ndarray:
        """(N, T, T, 3) uint8 RGB -> (N, C, T, T) softmax probabilities (float32 on CPU,
        float16 from a GPU: half the transfer; the blend sums in float32)."""
        import torch

        logits = self.forward(tiles)
        with torch.inference_mode():
            probs = torch.softmax(logits.float(), dim=1)
            if logits.device.type != "cpu":
                probs = probs.half()
            return probs.cpu().numpy()

    def bytes_per_tile(self) -> int:
        """Measured on CUDA with one probe tile (peak allocation); estimated elsewhere."""
        if self._bytes_per_tile is None:
            self._bytes_per_tile = self._probe()
        return self._bytes_per_tile

    def _probe(self) -> int:
        import torch

        if not self.device.startswith("cuda"):
            params = sum(p.numel() for p in self.model.parameters())
            return int(self.tile_size**2 * 3 * 4 * 200 + params)  # rough activation estimate
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        self.predict(np.zeros((1, self.tile_size, self.tile_size, 3), np.uint8))
        torch.cuda.synchronize(self.device)
        return int(max(1, torch.cuda.max_memory_allocated(self.device) - before) * 1.3)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mpp": self.mpp, "tile_size": self.tile_size, "margin": self.margin,
                "device": self.device, **self._info, "runtime": dict(self.runtime)}


class ClassicalPredictor(FunctionPredictor):
    """The classical colour-phase labeller with statistics measured once per slide.

    :meth:`prepare` measures the labeller's image statistics (white threshold, nuclear-stain
    threshold, hyperchromasia cut, tissue density: :class:`~lobule.inference.liver.labeller.PhaseReference`)
    on a mosaic of centre crops of up to ``samples`` tiles spread over the slide's tissue, and
    every tile is then labelled with them: without it each tile measured its own, and classes
    switched along straight tile borders.
    """

    samples = 4
    crop = 640  # side of each sampled crop, label pixels

    def __init__(self, *, mpp: float, tile_size: int, margin: int, info: dict) -> None:
        super().__init__(self._label, name="classical", mpp=mpp, tile_size=tile_size, margin=margin, info=info)
        self.reference = None

    def _label(self, image: np.ndarray, mpp: float) -> np.ndarray:
        from lobule.inference.liver.labeller import label_colour_phase

        return label_colour_phase(image, mpp, reference=self.reference)

    def prepare(self, slide, grid) -> None:
        """Measure the slide's statistics from sample tiles of ``grid`` (read from ``slide``)."""
        from lobule.inference.liver.labeller import measure_reference
        from lobule.inference.tiling import read_tile

        self.reference = None
        tiles = grid.tiles
        if not tiles:
            return
        picks = sorted({int(round(i)) for i in np.linspace(0, len(tiles) - 1, min(self.samples, len(tiles)))})
        crops = []
        for index in picks:
            tile = tiles[index]
            image = read_tile(slide, grid, tile)
            _, _, w, h = tile.core
            side = min(self.crop, w, h)
            cx, cy = grid.margin + w // 2, grid.margin + h // 2
            crops.append(image[cy - side // 2: cy - side // 2 + side, cx - side // 2: cx - side // 2 + side])
        side = max(max(c.shape[:2]) for c in crops)  # edge tiles give smaller crops: pad them with glass
        crops = [np.pad(c, ((0, side - c.shape[0]), (0, side - c.shape[1]), (0, 0)), constant_values=255)
                 for c in crops]
        while len(crops) % 2:
            crops.append(np.full_like(crops[0], 255))
        mosaic = np.concatenate([np.concatenate(crops[k:k + 2], axis=1) for k in range(0, len(crops), 2)], axis=0)
        self.reference = measure_reference(mosaic, self.mpp)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["slide_reference"] = None if self.reference is None else self.reference.as_dict()
        return info


def classical_predictor(mpp: float = 0.5, tile_size: int = 1536, margin: int = 128) -> ClassicalPredictor:
    """The classical colour-phase labeller (``--model classical``) as a predictor.

    Its decisions use image statistics (measured once per slide by
    :meth:`ClassicalPredictor.prepare`) and whether a white area reaches the image border, so it
    gets large tiles with a wide margin (64 um at 0.5 um/px, more than a macrovesicular droplet):
    a droplet in a kept core is seen whole.
    """
    return ClassicalPredictor(mpp=mpp, tile_size=tile_size, margin=margin,
                              info={"kind": "classical colour-phase labeller (no learned weights)"})


def load_predictor(model: str | None = None, device: str = "auto", runtime: str = "torch") -> Predictor:
    """The predictor for a ``--model`` value.

    Parameters
    ----------
    model : ``"classical"``, an installed checkpoint name, a card path, or None for the default
        (``liver-hne``).
    device : ``auto``, ``cpu``, ``cuda`` or ``mps`` (see :func:`select_device`).
    runtime : ``auto``, ``torch``, ``torch-bf16`` or ``openvino`` (see
        :func:`lobule.inference.engine.runtime.build_forward`; ignored by ``classical``).

    Raises
    ------
    UnknownModelError
        If the default model is not installed (the message suggests ``--model classical``) or
        the name matches nothing.
    """
    from lobule.inference.engine.device import select_device

    if model == "classical":
        return classical_predictor()
    from lobule.inference.engine.loader import liver_model_name

    return TorchPredictor.from_checkpoint(liver_model_name(model), device=select_device(device), runtime=runtime)
