"""Checkpoints: a weights file ``NAME.safetensors`` and its card ``NAME.json``.

The card (ARCHITECTURE.md, "Models and checkpoints") is a JSON object::

    {
      "format": "lobule-checkpoint/1",
      "name": "liver-hne",                       # how users refer to it
      "task": "liver-hne" | "ffa-cnp" | "fewshot",
      "architecture": "deformable_deeplabv3plus",  # a registry name
      "arguments": {...},                        # constructor keyword arguments
      "classes": [{"id": 0, "name": "background", "colour": [255, 255, 255]}, ...],
      "input": {"mpp": 0.5, "tile_size": 512, "channels": 3,
                "normalisation": {"mean": [...], "std": [...]}},
      "training": {"data": [...], "commands": [...], "compute": "...", ...},
      "metrics": {...},                          # measured values and the data they were measured on
      "lineage": {...},                          # optional: parent model, corrections used, when
      "weights": {"file": "liver-hne.safetensors", "sha256": "...", "dtype": "float16"},
      "created": "2026-11-20T22:00:00+00:00"
    }

Weights are stored with safetensors and never unpickled. Loading checks the sha256, the
architecture, the parameter names and shapes, and the class count, and names what differs.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lobule.models.atomic import atomic_write
from lobule.models.errors import CheckpointError, UnknownModelError

CARD_FORMAT = "lobule-checkpoint/1"
REQUIRED_KEYS = ("name", "task", "architecture", "arguments", "weights")
USER_MODELS_ENV = "LOBULE_MODELS_DIR"


def sha256_file(path: str | os.PathLike, limit: int | None = None) -> str:
    """Hex sha256 of a file, or of its first ``limit`` bytes."""
    digest = hashlib.sha256()
    remaining = limit
    with open(path, "rb") as handle:
        while True:
            size = 1 << 20 if remaining is None else min(1 << 20, remaining)
            if size == 0:
                break
            block = handle.read(size)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def model_dirs() -> list[Path]:
    """Folders searched for installed checkpoints: ``$LOBULE_MODELS_DIR`` (if set), then the
    user's models folder (:func:`lobule.models.folders.user_models_dir`), then the bundled
    ``lobule/resources/models``."""
    from lobule.models.folders import user_models_dir
    from lobule.resources import MODELS_DIR

    dirs = []
    if os.environ.get(USER_MODELS_ENV):
        dirs.append(Path(os.environ[USER_MODELS_ENV]))
    dirs.append(user_models_dir())
    dirs.append(MODELS_DIR)
    return dirs


def read_card(card_path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a card JSON file.

    Raises
    ------
    CheckpointError
        If the file is missing, not JSON, or lacks a required key.
    """
    card_path = Path(card_path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint card not found: {card_path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint card {card_path.name} is not valid JSON: {exc}") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"checkpoint card {card_path.name} is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in card]
    if missing:
        raise CheckpointError(f"checkpoint card {card_path.name} lacks {', '.join(missing)}")
    return card


def find_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """Resolve a model name (``liver-hne``) or a card/weights path to the card path.

    Raises
    ------
    UnknownModelError
        If nothing matches; the message lists the installed names.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".json", ".safetensors") or candidate.exists():
        card = candidate.with_suffix(".json")
        if card.is_file():
            return card
        raise CheckpointError(f"checkpoint card not found: {card}")
    for folder in model_dirs():
        card = folder / f"{name_or_path}.json"
        if card.is_file():
            return card
    names = sorted({c["name"] for _, c in list_checkpoints()})
    raise UnknownModelError(
        f"no installed model named {str(name_or_path)!r}; installed: {', '.join(names) or 'none'}"
    )


def list_checkpoints(task: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """All readable cards in :func:`model_dirs` (earlier folders shadow later ones by name),
    optionally only those of ``task``."""
    seen: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder in model_dirs():
        if not folder.is_dir():
            continue
        for card_path in sorted(folder.glob("*.json")):
            try:
                card = read_card(card_path)
            except CheckpointError:
                continue
            if card.get("format") != CARD_FORMAT:
                continue
            seen.setdefault(card["name"], (card_path, card))
    items = list(seen.values())
    if task is not None:
        items = [item for item in items if item[1].get("task") == task]
    return items


def save_checkpoint(model, card: dict[str, Any], card_path: str | os.PathLike, dtype: str = "float16") -> Path:
    """Write ``model``'s weights beside ``card_path`` and the completed card, atomically.

    Parameters
    ----------
    model : torch.nn.Module whose ``state_dict`` is saved (floating tensors cast to ``dtype``).
    card : the card fields; ``format``, ``weights`` and ``created`` are filled in here.
    card_path : ``.../NAME.json``; the weights go to ``.../NAME.safetensors``.
    dtype : ``"float16"`` (shipped checkpoints) or ``"float32"`` (resumable training states).

    Returns
    -------
    The card path.
    """
    import torch
    from safetensors.torch import save as save_bytes

    card_path = Path(card_path)
    weights_path = card_path.with_suffix(".safetensors")
    torch_dtype = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.to(torch_dtype)
        state[key] = tensor.contiguous()
    blob = save_bytes(state, metadata={"format": CARD_FORMAT, "architecture": str(card.get("architecture"))})
    with atomic_write(weights_path, "wb") as handle:
        handle.write(blob)
    card = dict(card)
    card["format"] = CARD_FORMAT
    card["weights"] = {
        "file": weights_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "dtype": dtype,
        "parameters": int(sum(t.numel() for t in state.values())),
    }
    card.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    with atomic_write(card_path, "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2)
        handle.write("\n")
    return card_path


def load_checkpoint(name_or_path: str | os.PathLike, device: str = "cpu"):
    """Build the model a card describes and load its weights (float32, eval mode).

    Returns
    -------
    (model, card) : the ``torch.nn.Module`` on ``device`` and the card dict (with ``"path"``
    added: the card's location).

    Raises
    ------
    CheckpointError
        If the weights file is missing, its sha256 differs from the card's, the architecture is
        unknown, or parameter names / shapes / class count do not match the card; the message
        names what differs.
    UnknownModelError
        If ``name_or_path`` names no installed model.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from lobule.models.registry import create_model

    card_path = find_checkpoint(name_or_path)
    card = read_card(card_path)
    weights_path = card_path.parent / card["weights"].get("file", card_path.with_suffix(".safetensors").name)
    if not weights_path.is_file():
        raise CheckpointError(f"weights file of {card['name']} not found: {weights_path}")
    expected = card["weights"].get("sha256")
    actual = sha256_file(weights_path)
    if expected and expected != actual:
        raise CheckpointError(
            f"weights {weights_path.name} do not match card {card_path.name}: sha256 {actual[:12]}… != {expected[:12]}…"
        )
    try:
        model = create_model(card["architecture"], **card["arguments"])
    except UnknownModelError as exc:
        raise CheckpointError(f"card {card_path.name}: {exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"card {card_path.name}: bad arguments for {card['architecture']}: {exc}") from None
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights {weights_path.name} are not a readable safetensors file: {exc}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"weights {weights_path.name} do not fit architecture {card['architecture']}: " + ", ".join(parts)
        )
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"weights {weights_path.name}: {key} has shape {tuple(state[key].shape)}, "
                f"architecture {card['architecture']} expects {tuple(tensor.shape)}"
            )
    classes = card.get("classes")
    num_classes = card["arguments"].get("num_classes")
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise CheckpointError(
            f"card {card_path.name} lists {len(classes)} classes but the architecture has {num_classes} outputs"
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    card = dict(card)
    card["path"] = str(card_path)
    return model, card
