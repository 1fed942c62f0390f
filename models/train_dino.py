"""DINO pretraining of the ResNet backbone on unlabelled tiles (liver paper section 3.1, docs/models.md).

:class:`DinoTrainer` does one optimisation step at a time (multi-crop, student/teacher forward,
loss, AdamW step with scheduled learning rate and weight decay, EMA teacher update);
:func:`train_dino` runs epochs over a tile dataset, saves a resumable state and writes the
backbone checkpoint card (task ``"backbone"``, architecture ``"resnet"``: the teacher's backbone,
which DINO uses for downstream tasks) that segmentation training starts from
(:func:`lobule.models.pretrained.load_pretrained_backbone`).

Defaults are the paper's (ResNet-50, 100 epochs, AdamW, lr 5e-4, batch 128) and DINO's reference
code for what the paper does not give (Caron et al. 2021, ``main_dino.py``): the learning rate is
the value at the end of a 10-epoch linear warm-up for a reference batch of 256 and scales
linearly with the batch (so 5e-4 at batch 128 peaks at 2.5e-4), then decays by a cosine to 1e-6;
weight decay 0.04 -> 0.4 (cosine) on weights only (not biases or norm parameters); teacher
momentum 0.996 -> 1 (cosine); teacher temperature 0.04, student 0.1, centre momentum 0.9;
gradient clipping at norm 3 per parameter; last head layer frozen during the first epoch;
output dimension 65536. On CUDA the forward passes run under bf16 autocast.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lobule.models.checkpoint import save_checkpoint
from lobule.models.dino import DINOLoss, build_dino_networks, cosine_schedule, teacher_temperatures, update_teacher
from lobule.core.errors import CheckpointError, LobuleError
from lobule.models.multicrop import MultiCropConfig, multi_crop
from lobule.models.train_state import load_training_state, read_training_meta, save_training_state

STATE_KIND = "DINO"
"""``kind`` of this trainer's states (:mod:`lobule.models.train_state`)."""

#: configuration fields that must agree between a saved state and a resumed run
ARCHITECTURE_FIELDS = ("depth", "base_width", "in_channels", "out_dim", "hidden_dim", "bottleneck_dim")


@dataclass
class DinoConfig:
    """Every DINO setting (defaults: the paper's and DINO's; see the module docstring)."""

    depth: int = 50
    base_width: int = 64
    in_channels: int = 3
    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    epochs: int = 100
    batch_size: int = 128
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    momentum_teacher: float = 0.996
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 0
    student_temp: float = 0.1
    centre_momentum: float = 0.9
    clip_grad: float = 3.0
    freeze_last_layer: int = 1
    crops: MultiCropConfig = field(default_factory=MultiCropConfig)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DinoConfig":
        data = dict(data)
        crops = {k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("crops", {}).items()}
        return cls(**data, crops=MultiCropConfig(**crops))

    @property
    def peak_lr(self) -> float:
        """Learning rate at the end of warm-up: ``lr * batch_size / 256`` (DINO's linear scaling rule)."""
        return self.lr * self.batch_size / 256


class DinoTrainer:
    """Student, teacher, loss, AdamW and the per-step schedules of one DINO run.

    Parameters
    ----------
    config : the settings. steps_per_epoch : optimisation steps in one epoch (schedules are per step).
    device : ``"cpu"``, ``"cuda"``...

    Attributes
    ----------
    student, teacher : :class:`lobule.models.dino.DINONetwork`. step : steps done so far.
    """

    def __init__(self, config: DinoConfig, steps_per_epoch: int, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.student, self.teacher = build_dino_networks(config.depth, config.base_width, config.in_channels,
                                                         config.out_dim, config.hidden_dim, config.bottleneck_dim)
        self.student.to(self.device).train()
        self.teacher.to(self.device).train()  # batch statistics, as DINO's teacher
        epochs = config.epochs
        warmup = min(config.warmup_epochs, max(epochs - 1, 0))
        self.loss = DINOLoss(config.out_dim, teacher_temperatures(config.warmup_teacher_temp, config.teacher_temp,
                                                                  min(config.warmup_teacher_temp_epochs, epochs),
                                                                  epochs),
                             config.student_temp, config.centre_momentum).to(self.device)
        regularised = [p for n, p in self.student.named_parameters() if p.ndim > 1 and not n.endswith(".bias")]
        plain = [p for n, p in self.student.named_parameters() if not (p.ndim > 1 and not n.endswith(".bias"))]
        self.optimizer = torch.optim.AdamW([{"params": regularised}, {"params": plain, "weight_decay": 0.0}],
                                           lr=config.peak_lr)
        self.lr_schedule = cosine_schedule(config.peak_lr, config.min_lr, epochs, self.steps_per_epoch, warmup)
        self.wd_schedule = cosine_schedule(config.weight_decay, config.weight_decay_end, epochs, self.steps_per_epoch)
        self.momentum_schedule = cosine_schedule(config.momentum_teacher, 1.0, epochs, self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.amp = self.device.type == "cuda"

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def train_step(self, tiles: torch.Tensor) -> dict[str, float]:
        """One DINO step on a batch of tiles.

        Parameters
        ----------
        tiles : (N, H, W, 3) uint8 RGB tiles.

        Returns
        -------
        {"loss", "teacher_entropy", "lr", "weight_decay", "momentum", "teacher_temp"} of this step;
        a teacher entropy approaching log(out_dim) means collapse to the uniform distribution.

        Raises
        ------
        LobuleError
            If the loss is not finite (learning rate too high for the batch).
        """
        it = min(self.step, self.total_steps - 1)
        lr, wd, momentum = (float(s[it]) for s in (self.lr_schedule, self.wd_schedule, self.momentum_schedule))
        for index, group in enumerate(self.optimizer.param_groups):
            group["lr"] = lr
            if index == 0:
                group["weight_decay"] = wd
        views = multi_crop(tiles.to(self.device, non_blocking=True), self.config.crops, self.generator)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            with torch.no_grad():
                teacher_out = self.teacher(views[:2])
            student_out = self.student(views)
            loss = self.loss(student_out, teacher_out, len(views), self.epoch)
        if not math.isfinite(loss.item()):
            raise LobuleError(f"DINO loss is not finite at step {self.step}; lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in self.student.parameters():  # per-parameter norm clipping (DINO utils.clip_gradients)
            if p.grad is not None:
                norm = p.grad.norm()
                p.grad.mul_(torch.clamp(self.config.clip_grad / (norm + 1e-6), max=1.0))
        if self.epoch < self.config.freeze_last_layer:
            self.student.head.last_layer.grad = None
        self.optimizer.step()
        update_teacher(self.student, self.teacher, momentum)
        self.step += 1
        return {"loss": loss.item(), "teacher_entropy": self.loss.last_teacher_entropy, "lr": lr,
                "weight_decay": wd, "momentum": momentum,
                "teacher_temp": float(self.loss.teacher_temps[min(self.epoch, len(self.loss.teacher_temps) - 1)])}

    def save_state(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Write the resumable state (networks, optimizer, centre, step, configuration, RNG)."""
        meta = {"step": self.step, "steps_per_epoch": self.steps_per_epoch, "config": self.config.to_json(),
                "generator": self.generator.get_state().tolist(), **(extra or {})}
        save_training_state(path, {"student": self.student, "teacher": self.teacher, "loss": self.loss},
                            {"adamw": self.optimizer}, meta, kind=STATE_KIND)

    def load_state(self, path: str | os.PathLike) -> dict[str, Any]:
        """Resume from :meth:`save_state`'s file.

        Raises
        ------
        CheckpointError
            If the state is not a DINO training state, or was made with another architecture or
            steps per epoch (names the setting).
        """
        meta = read_training_meta(path, kind=STATE_KIND)
        saved = meta.get("config", {})
        for key in ARCHITECTURE_FIELDS:
            if saved.get(key) != getattr(self.config, key):
                raise CheckpointError(f"training state {Path(path).name} was made with {key} {saved.get(key)}, "
                                      f"this run has {getattr(self.config, key)}")
        if meta.get("steps_per_epoch") != self.steps_per_epoch:
            raise CheckpointError(f"training state {Path(path).name} has {meta.get('steps_per_epoch')} steps per "
                                  f"epoch, this run {self.steps_per_epoch} (other tiles or batch size)")
        meta = load_training_state(path, {"student": self.student, "teacher": self.teacher, "loss": self.loss},
                                   {"adamw": self.optimizer}, kind=STATE_KIND)
        self.step = int(meta["step"])
        self.generator.set_state(torch.tensor(meta["generator"], dtype=torch.uint8))
        return meta


def _collate(batch: list) -> torch.Tensor:
    return torch.stack([torch.as_tensor(np.ascontiguousarray(tile)) for tile in batch])


def train_dino(config: DinoConfig, tiles: Dataset, out_card: str | os.PathLike, state_path: str | os.PathLike,
               device: str = "cpu", workers: int = 0, card_extra: dict[str, Any] | None = None,
               log: Callable[[str], None] = print, log_every: int = 10, save_every: int = 200,
               max_steps: int | None = None) -> Path:
    """Pretrain with DINO, resuming from ``state_path`` when it exists; write the backbone card.

    Parameters
    ----------
    config : the settings.
    tiles : map-style dataset of (H, W, 3) uint8 RGB tiles (``len`` and ``[i]``).
    out_card : ``.../NAME.json``; the backbone weights go beside it (fp16 safetensors). Rewritten
        after every epoch, so a partly trained backbone is usable.
    state_path : resumable state (float32 safetensors), saved every ``save_every`` steps and at
        the end of each epoch.
    device : torch device. workers : ``DataLoader`` worker processes reading tiles.
    card_extra : fields merged into the card (``training.data``, ``training.commands``, ``input``...).
    log : receives progress lines (epoch, step, loss, learning rate, tiles/s).
    max_steps : stop after this many steps in total (the schedules still span ``config.epochs``);
        for time-boxed runs that continue later.

    Returns
    -------
    The card path.

    Raises
    ------
    LobuleError
        If there are no tiles, the state does not fit, or the loss diverges.
    """
    if len(tiles) == 0:
        raise LobuleError("no tiles to train on")
    steps_per_epoch = max(1, len(tiles) // config.batch_size)
    trainer = DinoTrainer(config, steps_per_epoch, device)
    state_path = Path(state_path)
    if state_path.is_file():
        trainer.load_state(state_path)
        log(f"resumed from {state_path} at step {trainer.step} (epoch {trainer.epoch + 1})")
    history: list[dict[str, float]] = []
    started = time.monotonic()
    seen = 0
    last: dict[str, float] = {}
    stop_at = trainer.total_steps if max_steps is None else min(trainer.total_steps, max_steps)
    while trainer.step < stop_at:
        epoch = trainer.epoch
        order = torch.randperm(len(tiles), generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        if len(tiles) < config.batch_size:  # fewer tiles than a batch: draw with repetition
            order = order.repeat(math.ceil(config.batch_size / len(tiles)))
        done = trainer.step - epoch * steps_per_epoch
        order = order[done * config.batch_size: steps_per_epoch * config.batch_size].tolist()
        loader = DataLoader(Subset(tiles, order), batch_size=config.batch_size, num_workers=workers,
                            collate_fn=_collate, drop_last=True, pin_memory=trainer.device.type == "cuda")
        losses = []
        for batch in loader:
            stats = trainer.train_step(batch)
            losses.append(stats["loss"])
            seen += batch.shape[0]
            last = stats
            if trainer.step % log_every == 0 or trainer.step == stop_at:
                rate = seen / max(time.monotonic() - started, 1e-9)
                log(f"epoch {epoch + 1}/{config.epochs} "
                    f"step {trainer.step}/{trainer.total_steps} loss {stats['loss']:.4f} "
                    f"teacher entropy {stats['teacher_entropy']:.3f}/{math.log(config.out_dim):.3f} lr {stats['lr']:.2e} "
                    f"momentum {stats['momentum']:.5f} {rate:.2f} tiles/s")
            if trainer.step % save_every == 0:
                trainer.save_state(state_path)
            if trainer.step >= stop_at:
                break
        history.append({"epoch": epoch + 1, "mean_loss": float(np.mean(losses)) if losses else float("nan")})
        trainer.save_state(state_path)
        _write_card(trainer, out_card, card_extra, last, history)
    return Path(out_card)


def _write_card(trainer: DinoTrainer, out_card: str | os.PathLike, card_extra: dict[str, Any] | None,
                last: dict[str, float], history: list[dict[str, float]]) -> Path:
    config = trainer.config
    backbone = trainer.teacher.backbone
    extra = dict(card_extra or {})
    training = {
        "method": "DINO self-distillation (Caron et al. 2021), teacher backbone; liver paper section 3.1",
        "config": config.to_json(),
        "peak_lr": config.peak_lr,
        "steps_done": trainer.step,
        "steps_total": trainer.total_steps,
        "epochs_done": round(trainer.step / trainer.steps_per_epoch, 3),
        "device": str(trainer.device),
        **extra.pop("training", {}),
    }
    card = {
        "name": Path(out_card).stem,
        "task": "backbone",
        "architecture": "resnet",
        "arguments": backbone.arguments,
        "input": {"channels": config.in_channels,
                  "normalisation": {"mean": list(config.crops.mean), "std": list(config.crops.std)},
                  **extra.pop("input", {})},
        "training": training,
        "metrics": {
            "dino_loss_last_step": last.get("loss"),
            # near log(out_dim): the teacher's outputs collapsed to uniform (DINO fig. 7)
            "teacher_entropy_last_step": last.get("teacher_entropy"),
            "log_out_dim": math.log(config.out_dim),
            "mean_loss_per_epoch_this_session": history,
        },
        **extra,
    }
    return save_checkpoint(backbone, card, out_card, dtype="float16")
