"""``lobule models``: list installed models with their cards."""
from __future__ import annotations

import json


def register(commands, train) -> None:
    p = commands.add_parser("models", help="list installed models with their cards")
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from lobule.models.checkpoint import list_checkpoints

    items = list_checkpoints()
    if args.json:
        print(json.dumps([dict(card, path=str(path)) for path, card in items], indent=2))
        return 0
    if not items:
        print("no models installed")
        return 0
    for path, card in items:
        print(f"{card['name']:<16} {card['task']:<10} {card['architecture']:<28} {path}")
    return 0
