"""``lobule models [NAME] [--json] [--verify]``: list installed models with their cards.

Without NAME: one line per installed checkpoint (name, task, architecture, input mpp, classes,
weights size, where it is installed; then the card's headline metrics). With NAME (an installed
name or a card path): that card in full. ``--verify`` also loads the weights, checking sha256,
architecture, shapes and class count (:func:`lobule.models.checkpoint.load_checkpoint`).
A card that cannot be read or validated is listed as BROKEN with its reason; ``--verify`` reports
every card and exits 1 if any is broken. Folders searched, in order: ``$LOBULE_MODELS_DIR``, ``~/.lobule/models``, the bundled models.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def register(commands, train) -> None:
    p = commands.add_parser("models", help="list installed models with their cards")
    p.add_argument("name", nargs="?", help="show this model's card in full (an installed name or a card path)")
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    p.add_argument("--verify", action="store_true",
                   help="also load each model's weights and check them against its card (slower)")
    p.set_defaults(func=run)


def _size(card_path: Path, card: dict[str, Any]) -> str:
    weights = card_path.parent / card.get("weights", {}).get("file", card_path.with_suffix(".safetensors").name)
    if not weights.is_file():
        return "missing"
    return f"{weights.stat().st_size / 1e6:.1f} MB"


def _metrics_line(card: dict[str, Any]) -> str:
    """The numeric leaves of the card's metrics, flattened: ``model.steatosis_iou=0.66 ...`` (at most 6)."""
    items: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            items.append(f"{prefix}={value:.3g}" if isinstance(value, float) else f"{prefix}={value}")

    walk("", card.get("metrics") or {})
    more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
    return " ".join(items[:6]) + more


def _verify(card_path: Path) -> str:
    from lobule.models.checkpoint import load_checkpoint
    from lobule.models.errors import LobuleError

    try:
        load_checkpoint(card_path)
    except LobuleError as exc:
        return f"BROKEN: {exc}"
    return "ok"


def run(args) -> int:
    from lobule.models.checkpoint import find_checkpoint, list_checkpoints, read_card

    if args.name:
        card_path = find_checkpoint(args.name)
        card = dict(read_card(card_path), path=str(card_path))
        if args.verify:
            card["verified"] = _verify(card_path)
        print(json.dumps(card, indent=2))
        return 0 if not args.verify or card["verified"] == "ok" else 1
    broken_cards: list[tuple[Path, str]] = []
    items = list_checkpoints(broken=broken_cards)
    if args.json:
        cards = [{"path": str(path), "broken": reason} for path, reason in broken_cards]
        for path, card in items:
            card = dict(card, path=str(path))
            if args.verify:
                card["verified"] = _verify(path)
            cards.append(card)
        print(json.dumps(cards, indent=2))
        return 1 if args.verify and (broken_cards or any(c.get("verified", "ok") != "ok" for c in cards)) else 0
    if not items and not broken_cards:
        print("no models installed")
        return 0
    print(f"{'NAME':<20} {'TASK':<10} {'ARCHITECTURE':<26} {'MPP':>5} {'CLASSES':>7} {'WEIGHTS':>9}  PATH")
    broken = 0
    for path, card in items:
        mpp = card.get("input", {}).get("mpp")
        classes = len(card.get("classes") or []) or "-"
        print(f"{card['name']:<20} {card['task']:<10} {card['architecture']:<26} "
              f"{mpp if mpp is not None else '-':>5} {classes:>7} {_size(path, card):>9}  {path}")
        metrics = _metrics_line(card)
        if metrics:
            print(f"{'':<20} {metrics}")
        if args.verify:
            status = _verify(path)
            broken += status != "ok"
            print(f"{'':<20} weights: {status}")
    for path, reason in broken_cards:  # listed, never silently dropped
        print(f"{path.stem:<20} BROKEN: {reason}")
    return 1 if args.verify and (broken or broken_cards) else 0
