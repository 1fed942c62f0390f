"""Episodic training loop of the few-shot organ networks (DPCENet, ALPNet), resumable.

The data side (volumes, superpixels, episodes) lives in :mod:`lobule.inference.fewshot`; this loop
only receives a ``sample(rng, batch)`` callable returning numpy episodes.

Recipe of the DPCENet paper (section 4.1.2): 100k iterations, batch 1, lr 1e-3 decayed x0.98
every 1000 iterations; SGD with momentum 0.9 and weight decay 5e-4 as SSL-ALPNet. Those are the
defaults of :class:`FewShotTrainConfig`.

Resumable state, never pickled: one ``STATE.safetensors`` file in the format of every trainer
(:mod:`lobule.models.train_state`: model weights, optimizer state, torch RNG; iteration, config,
numpy RNG state and loss history in its JSON meta), written atomically.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lobule.models.train_state import load_training_state, save_training_state

STATE_KIND = "few-shot"
"""``kind`` of the few-shot trainer's states (:mod:`lobule.models.train_state`)."""


@dataclass
class FewShotTrainConfig:
    """Optimisation settings (defaults: the DPCENet paper)."""

    iterations: int = 100_000
    batch_size: int = 1
    lr: float = 1e-3
    lr_gamma: float = 0.98
    lr_step: int = 1000
    optimizer: str = "sgd"  # "sgd" (paper / SSL-ALPNet) or "adamw"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    align: bool = True  # L_reg
    freeze_backbone: bool = False
    seed: int = 0
    log_every: int = 50
    save_every: int = 500


def _optimizer(model: torch.nn.Module, config: FewShotTrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (sgd, adamw)")


def learning_rate(config: FewShotTrainConfig, iteration: int) -> float:
    """Step decay: lr * gamma ** (iteration // step)."""
    return config.lr * config.lr_gamma ** (iteration // max(1, config.lr_step))


def state_file(stem: str | Path) -> Path:
    """The state file of a state stem: ``stem`` + ``.safetensors`` (a path already ending so is kept)."""
    stem = Path(stem)
    return stem if stem.suffix == ".safetensors" else stem.with_name(stem.name + ".safetensors")


def _save(path: Path, model, optimizer, config: FewShotTrainConfig, iteration: int, rng: np.random.Generator,
          history: list[dict], extra: dict) -> None:
    meta = {"iteration": iteration, "config": dataclasses.asdict(config), "numpy_rng": rng.bit_generator.state,
            "history": history, "extra": extra}
    save_training_state(path, {"model": model}, {config.optimizer: optimizer}, meta,
                        tensors={"torch_rng": torch.get_rng_state()}, kind=STATE_KIND)


def _load(path: Path, model, optimizer, config: FewShotTrainConfig,
          rng: np.random.Generator) -> tuple[int, list[dict], dict]:
    """Restore a state of :func:`_save`; returns (iteration, history, extra). The optimizer keeps
    this run's hyper-parameters (the learning rate is set every iteration anyway)."""
    groups = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    tensors: dict[str, torch.Tensor] = {}
    meta = load_training_state(path, {"model": model}, {config.optimizer: optimizer}, tensors=tensors,
                               kind=STATE_KIND)
    for group, settings in zip(optimizer.param_groups, groups):
        group.update(settings)
    torch.set_rng_state(tensors["torch_rng"])
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["iteration"]), list(meta.get("history", [])), dict(meta.get("extra", {}))


def train_fewshot(
    model: torch.nn.Module,
    sample: Callable[[np.random.Generator, int], tuple],
    config: FewShotTrainConfig,
    state_path: str | Path,
    log: Callable[[str], None] = print,
    max_seconds: float | None = None,
    extra: dict | None = None,
) -> dict:
    """Run (or resume) episodic training until ``config.iterations`` or ``max_seconds``.

    Parameters
    ----------
    model : a few-shot network with ``encode`` / ``predict`` (:mod:`lobule.models.fewshot`).
    sample : ``sample(rng, batch)`` -> numpy (support (B,3,S,S), support_mask (B,S,S), query, query_mask).
    state_path : stem of the resumable state file (``stem.safetensors``, see :func:`state_file`);
        resumed if present.
    max_seconds : stop (after saving) when this much wall time has passed; call again to resume.
    extra : JSON-able facts stored with the state (data, command), returned on resume.

    Returns
    -------
    dict with ``iteration``, ``done`` (reached ``config.iterations``), ``history`` (logged losses),
    ``seconds`` (this call's wall time) and ``extra``.

    Raises
    ------
    CheckpointError
        If the state file is unreadable, another trainer's, or of another architecture / optimizer.
    """
    from lobule.models.fewshot import episode_loss

    state_path = state_file(state_path)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    if config.freeze_backbone:
        for p in model.encoder.backbone.parameters():
            p.requires_grad_(False)
    optimizer = _optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    iteration, history, extra = 0, [], dict(extra or {})
    if state_path.is_file():
        iteration, history, saved_extra = _load(state_path, model, optimizer, config, rng)
        extra = {**saved_extra, **extra}
        log(f"resumed at iteration {iteration}")
    model.train()
    if config.freeze_backbone:
        model.encoder.backbone.eval()  # frozen BatchNorm statistics too
    start = time.monotonic()
    window: list[float] = []
    parts_window: dict[str, list[float]] = {}
    while iteration < config.iterations:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, iteration)
        s, sm, q, qm = (torch.from_numpy(np.ascontiguousarray(x)) for x in sample(rng, config.batch_size))
        loss, parts = episode_loss(model, s, sm, q, qm, align=config.align)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"loss became {value} at iteration {iteration}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        window.append(value)
        for key, value in parts.items():
            parts_window.setdefault(key, []).append(value)
        if iteration % config.log_every == 0 or iteration == config.iterations:
            entry = {"iteration": iteration, "loss": float(np.mean(window)), "lr": learning_rate(config, iteration - 1)}
            entry.update({k: float(np.mean(v)) for k, v in parts_window.items()})
            history.append(entry)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
                + f" elapsed={time.monotonic() - start:.0f}s")
            window, parts_window = [], {}
        out_of_time = max_seconds is not None and time.monotonic() - start >= max_seconds
        if iteration % config.save_every == 0 or iteration == config.iterations or out_of_time:
            _save(state_path, model, optimizer, config, iteration, rng, history, extra)
        if out_of_time:
            log(f"stopping at iteration {iteration} after {time.monotonic() - start:.0f}s (time limit); run again to resume")
            break
    model.eval()
    return {
        "iteration": iteration,
        "done": iteration >= config.iterations,
        "history": history,
        "seconds": time.monotonic() - start,
        "extra": extra,
    }
