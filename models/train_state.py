"""Resumable training states in one safetensors file (never pickle).

A state holds module state dicts, optimizer states (their tensors; the rest as JSON) and a JSON
``meta`` dict (step, epoch, configuration...). It is written atomically, so an interrupted run
resumes from the last state that was completely written.

Layout: tensors ``module/<name>/<key>`` and ``optim/<name>/<param index>/<key>``; the metadata
entry ``lobule_state`` is JSON ``{"meta": ..., "optim": {<name>: {"param_groups": ...,
"scalars": {<index>: {<key>: value}}}}}``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lobule.core.atomic import atomic_write
from lobule.core.errors import CheckpointError

STATE_FORMAT = "lobule-training-state/1"


def save_training_state(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], meta: dict[str, Any]) -> Path:
    """Write modules, optimizers and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    from safetensors.torch import save as save_bytes

    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, tensor in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = tensor.detach().cpu().contiguous()
    optim_json: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{name}/{index}/{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optim_json[name] = {"param_groups": state["param_groups"], "scalars": scalars}
    header = json.dumps({"format": STATE_FORMAT, "meta": meta, "optim": optim_json})
    blob = save_bytes(tensors, metadata={"lobule_state": header})
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(blob)
    return path


def load_training_state(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote into ``modules`` and ``optimizers``.

    Returns
    -------
    The ``meta`` dict.

    Raises
    ------
    CheckpointError
        If the file is not a training state or does not fit the given modules (names the first
        differing key or shape).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {}).get("lobule_state", "null"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"training state {path.name} is not readable: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path.name} is not a Lobule training state")
    for name, module in modules.items():
        prefix = f"module/{name}/"
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        own = module.state_dict()
        if set(state) != set(own):
            diff = sorted(set(state) ^ set(own))
            raise CheckpointError(f"training state {path.name} does not fit {name}: {len(diff)} keys differ "
                                  f"(e.g. {diff[0]})")
        for key, tensor in own.items():
            if state[key].shape != tensor.shape:
                raise CheckpointError(f"training state {path.name}: {name}.{key} has shape "
                                      f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)}")
        module.load_state_dict(state)
    for name, optimizer in optimizers.items():
        saved = header["optim"].get(name)
        if saved is None:
            raise CheckpointError(f"training state {path.name} has no optimizer {name!r}")
        prefix = f"optim/{name}/"
        state: dict[int, dict[str, Any]] = {}
        for key, tensor in tensors.items():
            if key.startswith(prefix):
                index, entry = key[len(prefix):].split("/", 1)
                state.setdefault(int(index), {})[entry] = tensor
        for index, entries in saved["scalars"].items():
            state.setdefault(int(index), {}).update(entries)
        try:
            optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"training state {path.name}: optimizer {name!r} does not fit: {exc}") from None
    return header["meta"]
