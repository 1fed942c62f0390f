"""``lobule segment`` and ``lobule train segment`` (owned by the liver model training work)."""
from __future__ import annotations

from lobule.inference.cli import not_yet_available


def register(commands, train) -> None:
    p = commands.add_parser("segment", help="run the liver model on plain images, write class-id maps")
    p.set_defaults(func=not_yet_available("segment"))
    t = train.add_parser("segment", help="train a segmentation model on images and label maps")
    t.set_defaults(func=not_yet_available("train segment"))
