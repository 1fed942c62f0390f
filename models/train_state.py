"""Resumable training states in one safetensors file (never pickle): the one format of every trainer.

A state holds module state dicts, optimizer states (their tensors; the rest as JSON), optional
extra tensors (e.g. the torch RNG state) and a JSON ``meta`` dict (step, epoch, configuration,
numpy RNG state, history...). It is written atomically, so an interrupted run resumes from the
last state that was completely written. A trainer may name its ``kind``; a state of another
kind is then refused before anything is loaded.

Layout: tensors ``module/<name>/<key>``, ``optim/<name>/<param index>/<key>`` and
``tensor/<name>``; the metadata entry ``lobule_state`` is JSON ``{"format": ..., "kind": ...,
"meta": ..., "optim": {<name>: {"param_groups": ..., "scalars": {<index>: {<key>: value}}}}}``.
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


def _json_default(value: Any) -> Any:
    """numpy / torch scalars and arrays in ``meta`` become plain JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_training_state(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], meta: dict[str, Any],
                        tensors: Mapping[str, torch.Tensor] | None = None, kind: str | None = None) -> Path:
    """Write modules, optimizers, ``meta`` (JSON-serialisable) and the extra ``tensors`` (e.g.
    ``{"torch_rng": torch.get_rng_state()}``) to ``path`` atomically; ``kind`` names the trainer."""
    from safetensors.torch import save as save_bytes

    blobs: dict[str, torch.Tensor] = {f"tensor/{name}": t.detach().cpu().contiguous()
                                      for name, t in (tensors or {}).items()}
    for name, module in modules.items():
        for key, tensor in module.state_dict().items():
            blobs[f"module/{name}/{key}"] = tensor.detach().cpu().contiguous()
    optim_json: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    blobs[f"optim/{name}/{index}/{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optim_json[name] = {"param_groups": state["param_groups"], "scalars": scalars}
    header = json.dumps({"format": STATE_FORMAT, "kind": kind, "meta": meta, "optim": optim_json},
                        default=_json_default)
    blob = save_bytes(blobs, metadata={"lobule_state": header})
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(blob)
    return path


def _read(path: Path, kind: str | None, with_tensors: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {}).get("lobule_state", "null"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"training state {path.name} is not readable: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path.name} is not a Lobule training state")
    saved = header.get("kind")
    if kind is not None and saved is not None and saved != kind:  # states of before kinds: the module check decides
        raise CheckpointError(f"training state {path.name} belongs to the {saved} trainer, not the {kind} trainer")
    return header, tensors


def read_training_meta(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The ``meta`` dict of a state, without loading anything (to check settings first).

    Raises
    ------
    CheckpointError
        If the file is not a readable training state, or one of another ``kind``.
    """
    return _read(Path(path), kind, with_tensors=False)[0]["meta"]


def load_training_state(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer],
                        tensors: dict[str, torch.Tensor] | None = None, kind: str | None = None) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote into ``modules`` and ``optimizers``.

    Parameters
    ----------
    tensors : if given, receives the extra tensors saved with ``tensors=``.
    kind : refuse a state written by another kind of trainer.

    Returns
    -------
    The ``meta`` dict.

    Raises
    ------
    CheckpointError
        If the file is not a training state, is of another ``kind``, or does not fit the given
        modules (names the first differing key or shape).
    """
    path = Path(path)
    header, stored = _read(path, kind, with_tensors=True)
    if tensors is not None:
        tensors.update({k[len("tensor/"):]: v for k, v in stored.items() if k.startswith("tensor/")})
    for name, module in modules.items():
        prefix = f"module/{name}/"
        state = {k[len(prefix):]: v for k, v in stored.items() if k.startswith(prefix)}
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
        for key, tensor in stored.items():
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
