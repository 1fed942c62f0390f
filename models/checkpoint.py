"""Checkpoints: a weights file ``NAME.safetensors`` and its card ``NAME.json``.

The card (docs/architecture.md, "Models and checkpoints") is a JSON object::

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
import math
import os
from pathlib import Path
from typing import Any

from lobule.core.atomic import atomic_write
from lobule.core.errors import CheckpointError, UnknownModelError

CARD_FORMAT = "lobule-checkpoint/1"
REQUIRED_KEYS = ("name", "task", "architecture", "arguments", "weights")
USER_MODELS_ENV = "LOBULE_MODELS_DIR"
# plausible input.mpp of a card: the slide bound of lobule.inference.slide.levels.MPP_RANGE
# (a model at 1e-9 um/px would make every analysis grid endless)
CARD_MPP_RANGE = (0.05, 20.0)
# card "task" -> what the model is, in the user's words
TASK_NAMES = {"liver-hne": "a liver H&E model", "ffa-cnp": "an FFA model", "fewshot": "an MRI/CT few-shot model"}


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
    """Read and validate a card JSON file (see :func:`validate_card`).

    Raises
    ------
    CheckpointError
        If the file is missing or unreadable, not JSON, or a field is missing or of the wrong
        type; the one-line message names the card file and the field.
    """
    card_path = Path(card_path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint card not found: {card_path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint card {card_path} is a folder, not a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint card {card_path.name} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint card {card_path.name} cannot be read: {exc.strerror or exc}") from None
    validate_card(card, card_path.name)
    return card


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_card(card: Any, label: str) -> None:
    """Check the types of the card fields Lobule relies on, before anything is built from them.

    ``name``, ``task``, ``architecture`` are non-empty strings; ``arguments`` and ``weights``
    objects; ``weights.file`` a plain file name (the weights live beside the card: no folder
    part, no ``..``); ``weights.sha256`` a string; ``classes`` a list; ``input`` an object whose
    ``mpp`` is null or a number in :data:`CARD_MPP_RANGE` and ``tile_size`` an integer of 16..8192 px.
    Argument values are checked by building the architecture (see :func:`load_checkpoint`).

    Raises
    ------
    CheckpointError
        Naming ``label`` (the card's file name) and the first bad field.
    """
    def bad(field: str, expected: str, value) -> CheckpointError:
        shown = json.dumps(value)[:60] if _jsonable(value) else type(value).__name__
        return CheckpointError(f"checkpoint card {label}: '{field}' must be {expected}, not {shown}")

    if not isinstance(card, dict):
        raise CheckpointError(f"checkpoint card {label} is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in card]
    if missing:
        raise CheckpointError(f"checkpoint card {label} lacks {', '.join(missing)}")
    for key in ("name", "task", "architecture"):
        if not isinstance(card[key], str) or not card[key].strip():
            raise bad(key, "a non-empty string", card[key])
    for key in ("arguments", "weights"):
        if not isinstance(card[key], dict):
            raise bad(key, "an object", card[key])
    weights = card["weights"]
    if "file" in weights:
        name = weights["file"]
        if not isinstance(name, str) or not name.strip():
            raise bad("weights.file", "a file name", name)
        if name in (".", "..") or "/" in name or "\\" in name or Path(name).name != name:
            raise CheckpointError(
                f"checkpoint card {label}: 'weights.file' must be a file name beside the card, not a path ({name[:80]})"
            )
    if "sha256" in weights and not isinstance(weights["sha256"], str):
        raise bad("weights.sha256", "a hex string", weights["sha256"])
    if "classes" in card and card["classes"] is not None and not isinstance(card["classes"], list):
        raise bad("classes", "a list", card["classes"])
    spec = card.get("input")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise bad("input", "an object", spec)
    mpp = spec.get("mpp")
    if mpp is not None and not (_is_number(mpp) and CARD_MPP_RANGE[0] <= mpp <= CARD_MPP_RANGE[1]):
        raise bad("input.mpp", f"a number of micrometres per pixel in {CARD_MPP_RANGE[0]}..{CARD_MPP_RANGE[1]}", mpp)
    tile = spec.get("tile_size")
    if tile is not None and not (isinstance(tile, int) and not isinstance(tile, bool) and 16 <= tile <= 8192):
        raise bad("input.tile_size", "an integer of 16..8192 px", tile)


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


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


def list_checkpoints(task: str | None = None,
                     broken: list[tuple[Path, str]] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """All readable cards in :func:`model_dirs` (earlier folders shadow later ones by name),
    optionally only those of ``task``.

    ``broken``: if a list is given, each ``*.json`` card that cannot be read or validated is
    appended to it as ``(path, one-line reason)`` instead of being skipped silently (JSON files
    with none of the card keys ``format``, ``architecture``, ``weights`` are not cards).
    """
    seen: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder in model_dirs():
        if not folder.is_dir():
            continue
        for card_path in sorted(folder.glob("*.json")):
            try:
                card = read_card(card_path)
            except CheckpointError as exc:
                if broken is not None and _looks_like_card(card_path):
                    broken.append((card_path, str(exc)))
                continue
            if card.get("format") != CARD_FORMAT:
                if broken is not None and "format" in card:
                    broken.append((card_path, f"checkpoint card {card_path.name}: format is not {CARD_FORMAT}"))
                continue
            seen.setdefault(card["name"], (card_path, card))
    items = list(seen.values())
    if task is not None:
        items = [item for item in items if item[1].get("task") == task]
    return items


def _looks_like_card(path: Path) -> bool:
    """True unless ``path`` is valid JSON without any card key (other JSON files in a models
    folder, e.g. notes, are not cards); a file that is not valid JSON counts as a broken card."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return True
    return not isinstance(data, dict) or any(key in data for key in ("format", "architecture", "weights"))


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


def load_checkpoint(name_or_path: str | os.PathLike, device: str = "cpu", task: str | None = None):
    """Build the model a card describes and load its weights (float32, eval mode).

    ``task``: if given, the card's ``task`` must be this (checked before anything is loaded).

    Returns
    -------
    (model, card) : the ``torch.nn.Module`` on ``device`` and the card dict (with ``"path"``
    added: the card's location).

    Raises
    ------
    CheckpointError
        If the card is invalid (:func:`validate_card`), the weights file is missing, its sha256
        differs from the card's, the architecture is unknown or rejects the card's arguments,
        or parameter names / shapes / class count do not match the card; the message names
        what differs. Shapes are checked on a meta-device model against the safetensors header
        before any weights are allocated.
    UnknownModelError
        If ``name_or_path`` names no installed model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    card_path = find_checkpoint(name_or_path)
    card = read_card(card_path)
    if task is not None:
        require_task(card, task)
    weights_path = card_path.parent / card["weights"].get("file", card_path.with_suffix(".safetensors").name)
    if not weights_path.is_file():
        raise CheckpointError(f"weights file of {card['name']} not found: {weights_path}")
    expected = card["weights"].get("sha256")
    actual = sha256_file(weights_path)
    if expected and expected != actual:
        raise CheckpointError(
            f"weights {weights_path.name} do not match card {card_path.name}: sha256 {actual[:12]}… != {expected[:12]}…"
        )
    classes = card.get("classes")
    num_classes = card["arguments"].get("num_classes")
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise CheckpointError(
            f"card {card_path.name} lists {len(classes)} classes but the architecture has {num_classes} outputs"
        )
    # Build the architecture on the meta device first (no memory): bad argument values fail here
    # and the parameter shapes are compared with the weights' header before anything is allocated.
    skeleton = _build(card, card_path.name, device="meta")
    shapes = _weight_shapes(weights_path)
    own = {key: tuple(tensor.shape) for key, tensor in skeleton.state_dict().items()}
    del skeleton
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"weights {weights_path.name} do not fit architecture {card['architecture']}: " + ", ".join(parts)
        )
    for key, shape in own.items():
        if shapes[key] != shape:
            raise CheckpointError(
                f"weights {weights_path.name}: {key} has shape {shapes[key]}, "
                f"architecture {card['architecture']} expects {shape}"
            )
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights {weights_path.name} are not a readable safetensors file: {exc}") from None
    model = _build(card, card_path.name)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    card = dict(card)
    card["path"] = str(card_path)
    return model, card


def require_task(card: dict[str, Any], task: str) -> None:
    """Raise CheckpointError "NAME is an FFA model, not a liver H&E model" unless the card's
    ``task`` is ``task``."""
    if card.get("task") != task:
        what = TASK_NAMES.get(card.get("task"), f"a {card.get('task')!r} model")
        wanted = TASK_NAMES.get(task, f"a {task!r} model")
        raise CheckpointError(f"{card.get('name')} is {what}, not {wanted}")


def _build(card: dict[str, Any], label: str, device: str | None = None):
    """The card's architecture built from its arguments (on ``device``, e.g. ``"meta"``).

    Any failure of the constructor on the card's values (``"depth": "eighteen"``, a negative
    width...) is a :class:`CheckpointError` naming the card.
    """
    import torch

    from lobule.models.registry import create_model

    try:
        if device is None:
            return create_model(card["architecture"], **card["arguments"])
        with torch.device(device):
            return create_model(card["architecture"], **card["arguments"])
    except UnknownModelError as exc:
        raise CheckpointError(f"card {label}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any constructor failure on card values is a bad card
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"card {label}: bad arguments for {card['architecture']}: {text}") from None


def _weight_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header (nothing else is read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights {weights_path.name} are not a readable safetensors file: {exc}") from None
