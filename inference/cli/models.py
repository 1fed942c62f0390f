"""``lobule models [NAME] [--json] [--verify]``: list installed models with their cards.

Without NAME: one line per installed checkpoint (name, task, architecture, input mpp, classes,
weights size and the card's headline held-out metric, see :func:`headline_metric`; in a terminal
that metric wraps within its column), then the folders searched. ``--json``: the full cards, each with its ``path``, for scripts. With NAME (an installed
name or a card path): that card in full. ``--verify`` also loads the weights, checking sha256,
architecture, shapes and class count (:func:`lobule.models.checkpoint.load_checkpoint`).
A card that cannot be read or validated is listed as BROKEN with its reason; ``--verify`` reports
every card and exits 1 if any is broken. Folders searched, in order: ``$LOBULE_MODELS_DIR``, the user's models folder, the bundled models.
"""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
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


# Metric keys by how well they summarise a segmentation or detection model, best first.
_METRIC_ORDER = ("dice", "f1", "auc_roc", "iou", "accuracy", "sensitivity", "specificity")
_METRIC_LABELS = {"dice": "Dice", "f1": "F1", "auc_roc": "AUC", "iou": "IoU"}
# Sections of a card's metrics holding held-out numbers, in the order they are looked for.
_HELD_OUT_SECTIONS = (("headline", ""), ("summary", ""), ("held_out", "held out"), ("heldout", "held out"),
                      ("test", "test set"), ("validation", "validation set"))


def _metric_label(key: str) -> tuple[int, str]:
    """``lipid_droplets_dice`` -> (rank of Dice, "lipid droplets Dice")."""
    for rank, metric in enumerate(_METRIC_ORDER):
        if key == metric or key.endswith("_" + metric):
            what = key[: -len(metric)].strip("_").replace("_", " ")
            label = _METRIC_LABELS.get(metric, metric)
            return rank, f"{what} {label}".strip()
    return len(_METRIC_ORDER), key.replace("_", " ")


def headline_metric(card: dict[str, Any], limit: int = 3) -> str:
    """The card's headline held-out number(s) as one short phrase, e.g. ``lipid droplets Dice 0.876,
    nuclei Dice 0.826 (3 held-out droplets tiles, ...)``; ``-`` when the card has none.

    Looks, in order, for ``metrics.headline`` (a string, used as is), ``metrics.summary``,
    ``held_out``/``heldout``, ``test`` and ``validation``; in a section it takes its ``pooled``
    numbers if present, its best ``limit`` metrics (Dice, then F1 and AUC, then IoU) or, for a
    table of results by setting, the first row's ``mean``.
    """
    metrics = card.get("metrics") or {}
    for key, where in _HELD_OUT_SECTIONS:
        section = metrics.get(key)
        if isinstance(section, str) and section:
            return section
        if not isinstance(section, dict):
            continue
        note = section.get("measured_on") or where
        if isinstance(section.get("pooled"), dict):
            section, note = section["pooled"], f"pooled, {note}" if note else "pooled"
        numbers = sorted((_metric_label(k) + (v,) for k, v in section.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("threshold", "tiles")),
                         key=lambda item: item[0])
        if numbers:
            best = numbers[0][0]
            if best == len(_METRIC_ORDER):  # no known metric: the first numbers as they are
                chosen = numbers
            else:  # the best kind of metric (F1 goes with AUC)
                pair = {best, _METRIC_ORDER.index("auc_roc")} if best == _METRIC_ORDER.index("f1") else {best}
                chosen = [number for number in numbers if number[0] in pair]
            text = ", ".join(f"{label} {value:.3g}" for _, label, value in chosen[:limit])
            tiles = section.get("tiles")
            if isinstance(tiles, int) and not isinstance(tiles, bool):
                note = f"{note}, {tiles} tiles" if note else f"{tiles} tiles"
            return f"{text} ({note})" if note else text
        rows = [(name, row) for name, row in section.items() if isinstance(row, dict) and "mean" in row]
        if rows:
            name, row = rows[0]
            unit = section.get("unit", "")
            return f"mean {unit} {row['mean']:.3g} ({name})".replace("  ", " ")
    return "-"


def _verify(card_path: Path) -> str:
    from lobule.models.checkpoint import load_checkpoint
    from lobule.core.errors import LobuleError

    try:
        load_checkpoint(card_path)
    except LobuleError as exc:
        return f"BROKEN: {exc}"
    return "ok"


def run(args) -> int:
    from lobule.models.checkpoint import find_checkpoint, list_checkpoints, model_dirs, read_card

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
    header = ("NAME", "TASK", "ARCHITECTURE", "MPP", "CLASSES", "SIZE", "HELD-OUT")
    rows = []
    for path, card in items:
        mpp = (card.get("input") or {}).get("mpp")
        rows.append((card["name"], card["task"], card["architecture"], f"{mpp:g}" if mpp is not None else "-",
                     str(len(card.get("classes") or []) or "-"), _size(path, card), headline_metric(card)))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)
    # In a terminal the last column wraps under itself; piped, each model stays on one line.
    room = shutil.get_terminal_size().columns - indent if sys.stdout.isatty() else 0
    broken = 0
    for row, (path, card) in zip([header, *rows], [(None, None), *items]):
        cells = [cell.rjust(w) if i in (3, 4, 5) else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        last = textwrap.wrap(row[-1], room) if room >= 30 else [row[-1]]
        print("  ".join([*cells, last[0]]))
        for more in last[1:]:
            print(" " * indent + more)
        if args.verify and path is not None:
            status = _verify(path)
            broken += status != "ok"
            print(f"{'':<{widths[0]}}  weights: {status}")
    for path, reason in broken_cards:  # listed, never silently dropped
        print(f"{path.stem}  BROKEN: {reason}")
    folders = ", ".join(str(folder) for folder in model_dirs() if folder.is_dir())
    print(f"(cards: `lobule models NAME`; folders searched: {folders})")
    return 1 if args.verify and (broken or broken_cards) else 0
