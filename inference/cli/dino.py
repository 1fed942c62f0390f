"""``lobule train dino`` (owned by the liver model work)."""
from __future__ import annotations

from lobule.inference.cli import not_yet_available


def register(commands, train) -> None:
    t = train.add_parser("dino", help="DINO self-supervised pretraining of the ResNet backbone")
    t.set_defaults(func=not_yet_available("train dino"))
