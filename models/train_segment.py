"""Supervised training of a segmentation model on image / label-map pairs with an ignore label.

The liver paper's fine-tuning recipe (the liver paper, table 2; docs/models.md, section 1) is the default:
100,000 iterations, SGD, learning rate 0.01, batch 32, 512x512 crops. Where the paper is silent
we follow DeepLabv3+ (Chen et al. 2018): momentum 0.9, weight decay 1e-4, and the "poly" learning
rate ``lr * (1 - iteration / iterations) ** 0.9``. Pixels labelled 255 (nobody labelled them)
are left out of the cross-entropy, so partial real masks and pseudo-labels combine.

On CUDA the forward pass runs under float16 autocast with a gradient scaler (AMP); on CPU in
float32. The run saves a resumable state (:mod:`lobule.models.train_state`: safetensors, model,
SGD momentum, iteration, random-generator states, loss history; never pickle) every
``save_every`` iterations and at the end; calling :func:`train_segmentation` again with the same
state path continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lobule.core.errors import CheckpointError, LobuleError
from lobule.models.multicrop import IMAGENET_MEAN, IMAGENET_STD
from lobule.models.registry import create_model
from lobule.models.segment_augment import AugmentSettings, augment_sample
from lobule.models.train_state import load_training_state, save_training_state

IGNORE_INDEX = 255
STATE_KIND = "segmentation"
"""``kind`` of this trainer's states (:mod:`lobule.models.train_state`)."""


@dataclass
class SegmentTrainConfig:
    """Every setting of a segmentation run (defaults: the paper's recipe; module docstring).

    ``arguments`` are the architecture's constructor keyword arguments (e.g. ``depth``,
    ``base_width``); ``mean`` / ``std`` the input normalisation in 0-1 units, written into the
    card. ``threads`` sets ``torch.set_num_threads`` when given.
    """

    arch: str = "deformable_deeplabv3plus"
    arguments: dict[str, Any] = field(default_factory=lambda: {"num_classes": 7, "depth": 50})
    iterations: int = 100_000
    batch_size: int = 32
    crop_size: int = 512
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    scale_range: tuple[float, float] = (0.75, 1.25)
    flips: bool = True
    hed_sigma: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    seed: int = 0
    class_weights: tuple[float, ...] | None = None
    dice_weight: float = 0.0
    dice_class: int = 1
    amp: bool = True
    threads: int | None = None

    def augment(self) -> AugmentSettings:
        return AugmentSettings(tuple(self.scale_range), self.flips, self.hed_sigma, self.brightness, self.contrast)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["scale_range"] = list(self.scale_range)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        data["class_weights"] = None if self.class_weights is None else list(self.class_weights)
        return data


#: settings that must agree between a saved state and the run resuming it
_RESUME_FIELDS = ("arch", "arguments", "iterations", "batch_size", "crop_size", "lr")


@dataclass
class TrainResult:
    """What a run produced: the model (float32, eval mode, on CPU) and how it got there."""

    model: torch.nn.Module
    iterations: int
    history: list[dict[str, float]]
    seconds: float
    device: str
    resumed_from: int


def poly_lr(base: float, iteration: int, iterations: int, power: float = 0.9) -> float:
    """``base * (1 - iteration / iterations) ** power`` (DeepLab's "poly" policy)."""
    return base * (1.0 - min(iteration, iterations) / iterations) ** power


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                         weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels.

    Parameters
    ----------
    logits : (N, C, H, W) float. labels : (N, H, W) int64 class ids, ``ignore_index`` = unlabelled.
    weight : optional (C,) float per-class weights (a rare class counts more); the sum is divided
        by the labelled pixel count, not by the summed weights, so weights of 1 give the plain mean.

    Returns
    -------
    Scalar tensor; 0 (with a gradient path) when every pixel is ignored, where
    ``F.cross_entropy(reduction="mean")`` would return NaN.
    """
    total = F.cross_entropy(logits.float(), labels, weight=weight, ignore_index=ignore_index, reduction="sum")
    count = (labels != ignore_index).sum().clamp(min=1)
    return total / count


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, class_id: int,
                   ignore_index: int = IGNORE_INDEX, smooth: float = 1.0) -> torch.Tensor:
    """``1 - Dice`` of one class's softmax probability against its labels, pooled over the batch.

    The soft Dice of V-Net (Milletari et al., "V-Net: Fully convolutional neural networks for
    volumetric medical image segmentation", 3DV 2016): ``1 - (2 sum(p t) + s) / (sum p + sum t + s)``
    over the labelled pixels, ``p`` the class probability, ``t`` 1 where the label is the class,
    ``s`` = ``smooth``. Pooled over the whole batch like the pooled Dice the model is judged by, so
    crops without the class still penalise every pixel predicted as it (false positives).

    Parameters
    ----------
    logits : (N, C, H, W) float. labels : (N, H, W) int64, ``ignore_index`` = unlabelled.
    class_id : the class scored. smooth : additive smoothing (pixels).

    Returns
    -------
    Scalar tensor in [0, 1); 0 when nothing is labelled or predicted as the class.
    """
    probability = torch.softmax(logits.float(), dim=1)[:, class_id]
    valid = labels != ignore_index
    p = probability[valid]
    t = (labels[valid] == class_id).float()
    return 1.0 - (2.0 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)


class CropSampler:
    """Random augmented crops of in-memory (image, labels) pairs, an image chosen with probability
    proportional to its labelled pixel count."""

    def __init__(self, samples: Sequence[tuple[np.ndarray, np.ndarray]], crop_size: int,
                 augment: AugmentSettings, rng: np.random.Generator) -> None:
        if not samples:
            raise LobuleError("no training samples")
        self.samples = samples
        self.crop_size = crop_size
        self.augment = augment
        self.rng = rng
        weights = np.array([np.count_nonzero(labels != IGNORE_INDEX) for _, labels in samples], dtype=np.float64)
        if weights.sum() == 0:
            raise LobuleError("every pixel of the training data is labelled 255 (ignore): nothing to learn")
        self.weights = weights / weights.sum()

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(size, T, T, 3) uint8 images and (size, T, T) uint8 labels."""
        images, labels = [], []
        for index in self.rng.choice(len(self.samples), size=size, p=self.weights):
            image, label = augment_sample(*self.samples[index], self.crop_size, self.augment, self.rng)
            images.append(image)
            labels.append(label)
        return np.stack(images), np.stack(labels)


def to_input(images: np.ndarray, mean: Sequence[float], std: Sequence[float], device: str) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 normalised ``(x / 255 - mean) / std``, computed
    as inference computes it (:func:`lobule.models.normalisation.scale_bias`)."""
    from lobule.models.normalisation import scale_bias

    scale, bias = (torch.from_numpy(v).to(device).view(1, 3, 1, 1) for v in scale_bias(mean, std))
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    return torch.addcmul(bias, x, scale).contiguous()  # NCHW (the permuted view is channels-last); the fused
    # multiply-add of the inference forward (TorchForward), so both see the same numbers


def build_model(config: SegmentTrainConfig) -> torch.nn.Module:
    """The registered architecture ``config.arch`` with ``config.arguments``.

    Raises
    ------
    UnknownModelError
        For an unknown architecture (the message lists the valid names).
    LobuleError
        For constructor arguments the architecture does not take.
    """
    try:
        return create_model(config.arch, **config.arguments)
    except TypeError as exc:
        raise LobuleError(f"bad arguments for {config.arch}: {exc}") from None


def _check_resume(meta: dict[str, Any], config: SegmentTrainConfig, path: Path) -> None:
    saved = meta.get("config", {})
    mine = config.as_dict()
    for key in _RESUME_FIELDS:
        if saved.get(key) != mine.get(key):
            raise CheckpointError(f"training state {path.name} was made with {key}={saved.get(key)!r}, "
                                  f"this run has {key}={mine.get(key)!r}; use another work folder or the same settings")


def train_segmentation(config: SegmentTrainConfig, samples: Sequence[tuple[np.ndarray, np.ndarray]],
                       state_path: str | os.PathLike, device: str = "cpu",
                       init: Callable[[torch.nn.Module], None] | None = None,
                       log: Callable[[str], None] = print, log_every: int = 10, save_every: int = 200,
                       stop: Callable[[], bool] | None = None,
                       snapshot: Callable[[torch.nn.Module, int], None] | None = None,
                       snapshot_every: int = 0) -> TrainResult:
    """Train (or resume training) a segmentation model.

    Parameters
    ----------
    config : the run's settings.
    samples : (image (H, W, 3) uint8, labels (H, W) uint8 with 255 = ignore) pairs at the
        model's mpp; any sizes (crops smaller than ``crop_size`` are padded with ignore).
    state_path : the resumable state file; if it exists the run continues from it (its settings
        must agree with ``config`` on architecture, arguments, iterations, batch, crop, lr).
    device : torch device string (``"cpu"``, ``"cuda"``...).
    init : called on a fresh model before training (e.g. load ``--init`` / ``--backbone``
        weights); not called when resuming.
    log : receives the progress lines (``iter 120/2000 loss 0.8123 lr 9.47e-03 3.1 img/s eta 9m``).
    log_every, save_every : iterations between progress lines / state saves.
    stop : polled every iteration; when it returns True the state is saved and training stops.
    snapshot, snapshot_every : ``snapshot(model, iteration)`` is called every ``snapshot_every``
        iterations (0 = never), e.g. to keep weights for choosing the iteration on a validation set.

    Returns
    -------
    TrainResult (the model on CPU, float32, eval mode).

    Raises
    ------
    CheckpointError
        If the state file does not fit this model or run.
    """
    if config.threads:
        torch.set_num_threads(int(config.threads))
    state_path = Path(state_path)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    use_amp = bool(config.amp) and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    rng = np.random.default_rng(config.seed)
    iteration, history, seconds = 0, [], 0.0
    if state_path.is_file():
        meta = load_training_state(state_path, {"model": model}, {"sgd": optimizer}, kind=STATE_KIND)
        _check_resume(meta, config, state_path)
        iteration, history, seconds = int(meta["iteration"]), list(meta["history"]), float(meta["seconds"])
        rng.bit_generator.state = meta["numpy_rng"]
        torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
        if use_amp and meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        log(f"resumed from {state_path} at iteration {iteration}/{config.iterations}")
    elif init is not None:
        init(model)
    resumed_from = iteration
    sampler = CropSampler(samples, config.crop_size, config.augment(), rng)
    weight = None if config.class_weights is None else torch.tensor(config.class_weights, dtype=torch.float32,
                                                                     device=device)

    def save() -> None:
        meta = {"iteration": iteration, "history": history, "seconds": seconds, "config": config.as_dict(),
                "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state().tolist(),
                "scaler": scaler.state_dict() if use_amp else None, "device": device}
        save_training_state(state_path, {"model": model}, {"sgd": optimizer}, meta, kind=STATE_KIND)

    model.train()
    window_loss, window_images, window_start = 0.0, 0, time.perf_counter()
    while iteration < config.iterations:
        if stop is not None and stop():
            log(f"stopped at iteration {iteration}; resume with the same command")
            break
        started = time.perf_counter()
        lr = poly_lr(config.lr, iteration, config.iterations, config.poly_power)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, labels = sampler.batch(config.batch_size)
        x = to_input(images, config.mean, config.std, device)
        y = torch.from_numpy(labels).to(device).long()
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            logits = model(x)
        loss = masked_cross_entropy(logits, y, weight=weight)
        if config.dice_weight:
            loss = loss + config.dice_weight * soft_dice_loss(logits, y, config.dice_class)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise LobuleError(f"loss became {value} at iteration {iteration}; lower --lr")
        seconds += time.perf_counter() - started
        window_loss += value * len(images)
        window_images += len(images)
        if iteration % log_every == 0 or iteration == config.iterations:
            elapsed = time.perf_counter() - window_start
            rate = window_images / max(elapsed, 1e-9)
            mean_loss = window_loss / max(window_images, 1)
            history.append({"iteration": iteration, "loss": round(mean_loss, 5), "lr": lr,
                            "images_per_s": round(rate, 3)})
            eta = (config.iterations - iteration) * config.batch_size / max(rate, 1e-9)
            log(f"iter {iteration}/{config.iterations} loss {mean_loss:.4f} lr {lr:.2e} "
                f"{rate:.2f} img/s eta {_duration(eta)}")
            window_loss, window_images, window_start = 0.0, 0, time.perf_counter()
        if iteration % save_every == 0:
            save()
        if snapshot is not None and snapshot_every and iteration % snapshot_every == 0:
            model.eval()
            snapshot(model, iteration)
            model.train()
    save()
    model = model.float().cpu().eval()
    return TrainResult(model, iteration, history, seconds, device, resumed_from)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
