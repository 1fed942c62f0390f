"""``lobule analyze``: the main job headless (owned by the whole-slide analysis work)."""
from __future__ import annotations

from lobule.inference.cli import not_yet_available


def register(commands, train) -> None:
    p = commands.add_parser("analyze", help="segment a slide and export NAS-related quantification")
    p.set_defaults(func=not_yet_available("analyze"))
