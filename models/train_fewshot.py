"""Episodic training loop of the few-shot organ networks (DPCENet, ALPNet), resumable.

The data side (volumes, superpixels, episodes) lives in :mod:`lobule.inference.fewshot`; this loop
only receives a ``sample(rng, batch)`` callable returning numpy episodes.

Recipe of the DPCENet paper (section 4.1.2): 100k iterations, batch 1, lr 1e-3 decayed x0.98
every 1000 iterations; SGD with momentum 0.9 and weight decay 5e-4 as SSL-ALPNet. Those are the
defaults of :class:`FewShotTrainConfig`.

Resumable state, never pickled: ``STATE.safetensors`` (model weights, optimizer buffers, torch RNG)
and ``STATE.json`` (iteration, config, numpy RNG state, loss history), both written atomically.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lobule.core.atomic import atomic_write
from lobule.core.errors import CheckpointError

STATE_FORMAT = "lobule-fewshot-train-state/1"


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


def _with(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix`` (``Path.with_suffix`` would replace a dotted stem's ending)."""
    return stem.with_name(stem.name + suffix)


def save_state(path: Path, model, optimizer, iteration: int, config: FewShotTrainConfig, rng: np.random.Generator,
               history: list[dict], extra: dict) -> None:
    """Write ``path``.safetensors and ``path``.json atomically (weights + optimizer + RNG, no pickle)."""
    from safetensors.torch import save as save_bytes

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for pid, state in opt_state["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.ndim > 0:
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = float(value)
    tensors["rng.torch"] = torch.get_rng_state()
    blob = save_bytes(tensors)
    with atomic_write(_with(path, ".safetensors"), "wb") as handle:
        handle.write(blob)
    meta = {
        "format": STATE_FORMAT,
        "iteration": iteration,
        "config": dataclasses.asdict(config),
        "optimizer_scalars": scalars,
        "numpy_rng": rng.bit_generator.state,
        "history": history,
        "extra": extra,
    }
    with atomic_write(_with(path, ".json"), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, default=int)


def load_state(path: Path, model, optimizer, rng: np.random.Generator) -> tuple[int, list[dict], dict]:
    """Restore a state written by :func:`save_state`; returns (iteration, history, extra).

    Raises
    ------
    CheckpointError
        If the files are missing, unreadable, or belong to another architecture.
    """
    from safetensors.torch import load_file

    json_path, weights_path = _with(path, ".json"), _with(path, ".safetensors")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        tensors = load_file(str(weights_path))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot resume from {path}: {exc}") from None
    if meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{json_path.name} is not a few-shot training state")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"training state {path.name} does not fit this model: {str(exc).splitlines()[0]}") from None
    opt_state = optimizer.state_dict()
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("optimizer_scalars", {}).items():
        for name, value in values.items():
            state.setdefault(int(pid), {})[name] = torch.tensor(value)
    opt_state["state"] = state
    optimizer.load_state_dict(opt_state)
    torch.set_rng_state(tensors["rng.torch"])
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
    state_path : stem of the resumable state (``.json`` + ``.safetensors``); resumed if present.
    max_seconds : stop (after saving) when this much wall time has passed; call again to resume.
    extra : JSON-able facts stored with the state (data, command), returned on resume.

    Returns
    -------
    dict with ``iteration``, ``done`` (reached ``config.iterations``), ``history`` (logged losses),
    ``seconds`` (this call's wall time) and ``extra``.
    """
    from lobule.models.fewshot import episode_loss

    state_path = Path(state_path)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    if config.freeze_backbone:
        for p in model.encoder.backbone.parameters():
            p.requires_grad_(False)
    optimizer = _optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    iteration, history, extra = 0, [], dict(extra or {})
    if _with(state_path, ".json").is_file():
        iteration, history, saved_extra = load_state(state_path, model, optimizer, rng)
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
            save_state(state_path, model, optimizer, iteration, config, rng, history, extra)
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
