"""``lobule fewshot ...`` and ``lobule train fewshot`` (owned by the MRI/CT work)."""
from __future__ import annotations

from lobule.inference.cli import not_yet_available


def register(commands, train) -> None:
    p = commands.add_parser("fewshot", help="one-shot organ segmentation of MRI/CT volumes")
    p.set_defaults(func=not_yet_available("fewshot"))
    t = train.add_parser("fewshot", help="episodic training of the few-shot organ model")
    t.set_defaults(func=not_yet_available("train fewshot"))
