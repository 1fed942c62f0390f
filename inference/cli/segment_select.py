"""Choose the training iteration on a validation set (``lobule train segment --select-on``).

Each snapshot kept during training (``WORK/snapshots/NAME-iterN.json``) labels the validation
tiles; the one with the best pooled lipid-droplet Dice (ties: the later iteration) is the one
shipped. The test set is never seen here.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lobule.inference.errors import InputError


def snapshot_iteration(card_path: Path) -> int:
    """Iteration number of a snapshot card named ``...-iterN.json``."""
    found = re.search(r"-iter(\d+)$", card_path.stem)
    if not found:
        raise InputError(f"{card_path.name} is not a snapshot card (NAME-iterN.json)")
    return int(found.group(1))


def select_snapshot(model, snapshots: Path, items: list[dict], set_path: Path, device: str = "cpu") -> dict[str, Any]:
    """Load the best snapshot's weights into ``model`` (in place) and say which it was.

    Parameters
    ----------
    model : the trained ``torch.nn.Module`` (same architecture as the snapshots).
    snapshots : folder of snapshot cards. items : validation-set items
        (:func:`lobule.inference.liver.segdata.read_evalset`) with lipid-droplet masks.
    set_path : the validation set's file (only its name is recorded).

    Returns
    -------
    dict: ``set`` (file name), ``metric``, ``scores`` ({iteration: pooled Dice}), ``chosen``
    (iteration).

    Raises
    ------
    InputError
        If there are no snapshots or the validation set has no lipid-droplet tiles.
    """
    from lobule.inference.liver.segmenter import checkpoint_segmenter, evaluate_set
    from lobule.models.checkpoint import load_checkpoint

    cards = sorted(snapshots.glob("*-iter*.json"), key=snapshot_iteration)
    if not cards:
        raise InputError(f"no snapshots in {snapshots} (train with --snapshot-every N)")
    droplet_items = [i for i in items if i.get("kind") == "droplets"]
    if not droplet_items:
        raise InputError(f"validation set {set_path.name} holds no lipid-droplet tiles")
    scores = {}
    for card in cards:
        result = evaluate_set(checkpoint_segmenter(str(card), device=device), droplet_items, log=lambda line: None)
        scores[snapshot_iteration(card)] = result["by_kind"]["droplets"]["dice"] or 0.0
        print(f"validation: iteration {snapshot_iteration(card)} lipid-droplet Dice {scores[snapshot_iteration(card)]:.4f}",
              flush=True)
    chosen = max(scores, key=lambda it: (scores[it], it))
    best, _ = load_checkpoint(str(next(c for c in cards if snapshot_iteration(c) == chosen)))
    model.load_state_dict(best.state_dict())
    print(f"chose iteration {chosen} (validation Dice {scores[chosen]:.4f})", flush=True)
    return {"set": set_path.name, "tiles": len(droplet_items),
            "metric": "pooled lipid-droplet Dice on the validation tiles", "scores": scores, "chosen": chosen}
