"""``lobule ffa ...`` and ``lobule train ffa`` (owned by the FFA work)."""
from __future__ import annotations

from lobule.inference.cli import not_yet_available


def register(commands, train) -> None:
    p = commands.add_parser("ffa", help="capillary non-perfusion segmentation in FFA images")
    p.set_defaults(func=not_yet_available("ffa"))
    t = train.add_parser("ffa", help="train Enhance LadderNet on FFA images and CNP labels")
    t.set_defaults(func=not_yet_available("train ffa"))
