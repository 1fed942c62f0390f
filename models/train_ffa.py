"""Training loop of the CNP models (docs/models.md, section 2; the Enhance LadderNet paper, sections 1.2-1.3).

Recipe of the paper: random 48x48 patches of the preprocessed images with random horizontal
and vertical flips, Adam, lr 1e-5, batch 4, up to 200 epochs, early stop after 8 epochs without
a gain in validation AUC-ROC. The paper does not say how many patches make an epoch:
``patches_per_epoch`` (default 10 000) is ours. Loss: two-class cross-entropy (LadderNet's).

The loop knows nothing about files or image formats: it gets arrays and a ``validate``
callable (the inference layer runs the full-image tiled prediction and returns metrics). It is
resumable: after every epoch the model, the Adam state, the random generators and the epoch
history are written to ``workdir/state.safetensors`` (the format of every trainer,
:mod:`lobule.models.train_state`; no pickle), the best weights so far to
``workdir/best.safetensors``; ``resume=True`` continues from there.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lobule.core.atomic import atomic_write
from lobule.core.errors import CheckpointError
from lobule.models.train_state import load_training_state, read_training_meta, save_training_state

STATE_FILE = "state.safetensors"
STATE_KIND = "FFA CNP"
"""``kind`` of this trainer's states (:mod:`lobule.models.train_state`)."""
BEST_WEIGHTS = "best.safetensors"
IGNORE = -100
"""Target value of pixels that do not count in the loss (outside the field of view)."""


@dataclass
class FFATrainConfig:
    """Hyper-parameters (defaults: the paper's, where it gives them)."""

    patch_size: int = 48
    batch_size: int = 4
    lr: float = 1e-5
    max_epochs: int = 200
    patience: int = 8
    patches_per_epoch: int = 10_000
    seed: int = 0
    max_minutes: float | None = None  # wall-time budget of this call; stops resumably
    augment: str = "flips"  # "flips" (the paper), "dihedral+gamma" or "angio" (ours, see PatchSampler)
    class_balance: bool = False  # weight the cross-entropy by inverse class frequency (inside the regions)


@dataclass
class TrainResult:
    """What a training call ended with.

    ``stopped`` is ``"early_stop"`` (patience exhausted), ``"max_epochs"`` or ``"time_budget"``
    (resumable). ``best_state`` holds the float32 weights of the best validation AUC-ROC.
    """

    best_epoch: int
    best_auc: float
    epochs_run: int
    stopped: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)


class PatchSampler:
    """Random square patches whose centres lie in a region of interest, with random flips.

    Parameters
    ----------
    images : list of (H, W) float32 preprocessed images (H, W >= patch size).
    masks : list of (H, W) bool targets (True = CNP).
    regions : list of (H, W) bool: where patch centres may fall (e.g. the field of view).
    patch_size : side in px.
    rng : numpy Generator (its state is saved for resuming).
    augment : ``"flips"``: random horizontal and vertical flips (the paper);
        ``"dihedral+gamma"``: also a random multiple of 90 degrees of rotation and a random gamma
        ``patch ** exp(u)``, u uniform in [-0.3, 0.3] (ours, for very small training sets);
        ``"angio"``: flips, a rotation by a uniform random angle (bilinear image, nearest-neighbour
        target), contrast x[0.8, 1.2] and brightness +[-0.1, 0.1] about the patch mean, then
        gamma ``exp(u)``, u in [-0.3, 0.3] (ours: angiograms differ in exposure and dye phase).

    An image is drawn with probability proportional to its region's area, then a centre
    uniformly inside the region; the patch is shifted to lie inside the image. Target pixels
    outside the region are :data:`IGNORE` (-100, cross-entropy's ignore_index), so the black
    surround of a fundus image does not count in the loss.
    """

    AUGMENTATIONS = ("flips", "dihedral+gamma", "angio")

    def __init__(self, images, masks, regions, patch_size: int, rng: np.random.Generator,
                 augment: str = "flips") -> None:
        if augment not in self.AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(self.AUGMENTATIONS)}, got {augment!r}")
        self.images, self.patch = images, patch_size
        self.masks = [np.where(r, np.asarray(m, np.int64), IGNORE) for m, r in zip(masks, regions)]
        self.rng = rng
        self.augment = augment
        self.centres = [np.flatnonzero(r) for r in regions]
        for image, centres in zip(images, self.centres):
            if min(image.shape) < patch_size:
                raise ValueError(f"an image of {image.shape} is smaller than the {patch_size} px patch")
            if centres.size == 0:
                raise ValueError("an image has an empty sampling region")
        sizes = np.array([c.size for c in self.centres], np.float64)
        self.weights = sizes / sizes.sum()

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(count, 1, P, P) float32 patches and (count, P, P) int64 targets."""
        p = self.patch
        xs = np.empty((count, 1, p, p), np.float32)
        ys = np.empty((count, p, p), np.int64)
        which = self.rng.choice(len(self.images), size=count, p=self.weights)
        for k, i in enumerate(which):
            image, mask = self.images[i], self.masks[i]
            h, w = image.shape
            flat = self.centres[i][self.rng.integers(self.centres[i].size)]
            cy, cx = divmod(int(flat), w)
            y0 = min(max(cy - p // 2, 0), h - p)
            x0 = min(max(cx - p // 2, 0), w - p)
            if self.augment == "angio":
                patch, target = self._rotated(image, mask, cy, cx)
            else:
                patch, target = image[y0 : y0 + p, x0 : x0 + p], mask[y0 : y0 + p, x0 : x0 + p]
            if self.rng.random() < 0.5:
                patch, target = patch[:, ::-1], target[:, ::-1]
            if self.rng.random() < 0.5:
                patch, target = patch[::-1], target[::-1]
            if self.augment == "dihedral+gamma":
                turns = int(self.rng.integers(4))
                patch, target = np.rot90(patch, turns), np.rot90(target, turns)
                patch = np.power(patch, np.float32(np.exp(self.rng.uniform(-0.3, 0.3))))
            elif self.augment == "angio":
                mean = float(patch.mean())
                patch = (patch - mean) * self.rng.uniform(0.8, 1.2) + mean + self.rng.uniform(-0.1, 0.1)
                patch = np.power(np.clip(patch, 0.0, 1.0), np.float32(np.exp(self.rng.uniform(-0.3, 0.3))))
            xs[k, 0] = patch
            ys[k] = target
        return xs, ys


    def _rotated(self, image: np.ndarray, mask: np.ndarray, cy: int, cx: int) -> tuple[np.ndarray, np.ndarray]:
        """The P x P patch centred at (cy, cx), rotated by a uniform random angle; pixels that
        come from outside the image are 0 in the patch and :data:`IGNORE` in the target."""
        import cv2

        p = self.patch
        angle = float(self.rng.uniform(0.0, 360.0))
        rotation = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0)
        rotation[:, 2] += [p / 2.0 - 0.5 - cx, p / 2.0 - 0.5 - cy]  # the centre lands mid-patch
        patch = cv2.warpAffine(image, rotation, (p, p), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        target = cv2.warpAffine(mask.astype(np.float32), rotation, (p, p), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=float(IGNORE))
        return patch, target.astype(np.int64)


def class_weights(masks: list[np.ndarray], regions: list[np.ndarray]) -> np.ndarray:
    """(2,) float32 inverse-frequency weights ``n / (2 n_c)`` of background and CNP inside the
    regions (1, 1 when a class is absent)."""
    positives = sum(int(np.count_nonzero(np.asarray(m, bool) & r)) for m, r in zip(masks, regions))
    total = sum(int(np.count_nonzero(r)) for r in regions)
    if positives == 0 or positives == total:
        return np.ones(2, np.float32)
    return np.array([total / (2.0 * (total - positives)), total / (2.0 * positives)], np.float32)


def _save_state(workdir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    save_training_state(workdir / STATE_FILE, {"model": model}, {"adam": optimizer}, meta,
                        tensors={"torch_rng": torch.get_rng_state()}, kind=STATE_KIND)


def _load_state(
    workdir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, identity: dict[str, Any]
) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"nothing to resume in {workdir}: {STATE_FILE} missing")
    try:
        if read_training_meta(path, STATE_KIND).get("identity", {}) != json.loads(json.dumps(identity, default=float)):
            raise CheckpointError(
                f"the training state in {workdir} was made with other settings (architecture, arguments or "
                "data split); start a new --workdir"
            )
        tensors: dict[str, torch.Tensor] = {}
        meta = load_training_state(path, {"model": model}, {"adam": optimizer}, tensors=tensors, kind=STATE_KIND)
    except CheckpointError as exc:
        raise CheckpointError(str(exc) if str(workdir) in str(exc) else f"{workdir}: {exc}") from None
    torch.set_rng_state(tensors["torch_rng"])
    return meta


def _save_best(workdir: Path, model: nn.Module) -> None:
    from safetensors.torch import save as save_bytes

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(workdir / BEST_WEIGHTS, "wb") as handle:
        handle.write(save_bytes(state))


def load_best(workdir: str | Path) -> dict[str, torch.Tensor]:
    """The best weights saved by :func:`train_cnp` in ``workdir`` (float32 state dict)."""
    from safetensors.torch import load_file

    path = Path(workdir) / BEST_WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"no best weights in {workdir}")
    return load_file(str(path))


def train_cnp(
    model: nn.Module,
    images: list[np.ndarray],
    masks: list[np.ndarray],
    regions: list[np.ndarray],
    validate: Callable[[nn.Module], dict[str, float]],
    config: FFATrainConfig,
    workdir: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    identity: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on random patches until validation AUC-ROC stops improving.

    Parameters
    ----------
    model : a registry model mapping (N, 1, P, P) to (N, 2, P, P) logits (on CPU or a device).
    images, masks, regions : training arrays, see :class:`PatchSampler`.
    validate : called with the model (in eval mode) after every epoch; returns a dict with at
        least ``"auc_roc"`` (on the validation images).
    config : hyper-parameters.
    workdir : folder for the resumable state (created).
    resume : continue from the state in ``workdir``.
    log : receives one line per epoch.
    identity : JSON facts (architecture, arguments, data) stored in the state; a resume with
        different facts is refused.

    Returns
    -------
    :class:`TrainResult`; the model is left holding the best weights.

    Raises
    ------
    CheckpointError
        ``resume`` without a readable state, or with a state of another model / setting.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    identity = identity or {}
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    epoch, best_auc, best_epoch, stale, history = 0, -math.inf, 0, 0, []
    if resume:
        meta = _load_state(workdir, model, optimizer, identity)
        rng.bit_generator.state = meta["numpy_rng"]
        epoch, best_auc, best_epoch, stale = meta["epoch"], meta["best_auc"], meta["best_epoch"], meta["stale"]
        history = meta["history"]
        for group in optimizer.param_groups:
            group["lr"] = config.lr
        log(f"resumed at epoch {epoch} (best AUC-ROC {best_auc:.4f} at epoch {best_epoch})")
    sampler = PatchSampler(images, masks, regions, config.patch_size, rng, config.augment)
    weight = torch.from_numpy(class_weights(masks, regions)).to(device) if config.class_balance else None
    started = time.monotonic()
    stopped = "max_epochs"
    steps = max(1, math.ceil(config.patches_per_epoch / config.batch_size))
    while epoch < config.max_epochs:
        if stale >= config.patience:
            stopped = "early_stop"
            break
        if config.max_minutes is not None and time.monotonic() - started > 60.0 * config.max_minutes:
            stopped = "time_budget"
            break
        model.train()
        epoch_start, loss_sum = time.monotonic(), 0.0
        for _ in range(steps):
            xs, ys = sampler.sample(config.batch_size)
            logits = model(torch.from_numpy(xs).to(device))
            loss = F.cross_entropy(logits, torch.from_numpy(ys).to(device), weight=weight, ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach())
        epoch += 1
        model.eval()
        metrics = validate(model)
        auc = float(metrics["auc_roc"])
        improved = auc > best_auc
        if improved:
            best_auc, best_epoch, stale = auc, epoch, 0
            _save_best(workdir, model)
        else:
            stale += 1
        record = {"epoch": epoch, "loss": loss_sum / steps, "seconds": round(time.monotonic() - epoch_start, 1)}
        record.update({f"val_{k}": v for k, v in metrics.items()})
        history.append(record)
        log(
            f"epoch {epoch}: loss {record['loss']:.4f}, val AUC-ROC {auc:.4f}"
            f"{' (best)' if improved else f', {stale} without gain'}, {record['seconds']} s"
        )
        _save_state(
            workdir,
            model,
            optimizer,
            {
                "identity": identity,
                "config": asdict(config),
                "epoch": epoch,
                "best_auc": best_auc,
                "best_epoch": best_epoch,
                "stale": stale,
                "history": history,
                "numpy_rng": rng.bit_generator.state,
            },
        )
    else:
        stopped = "early_stop" if stale >= config.patience else "max_epochs"
    best_state = load_best(workdir) if best_epoch else {k: v.detach().cpu() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return TrainResult(best_epoch, best_auc, epoch, stopped, history, best_state)
