"""The ``lobule`` console script: headless sub-commands from ``lobule.inference.cli`` plus the
GUI ones (``gui``, ``view``), whose Qt imports happen only when they run."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from lobule.inference.cli import not_yet_available, run


def register_gui(commands, train) -> None:
    p = commands.add_parser("gui", help="the desktop app, optionally opening FILE")
    p.add_argument("file", nargs="?", help="slide, FFA image or volume to open")
    p.set_defaults(func=not_yet_available("gui"))
    v = commands.add_parser("view", help="open FILE offscreen and save a screenshot of the main window")
    v.add_argument("file")
    v.add_argument("--screenshot", required=True, metavar="PNG")
    v.set_defaults(func=not_yet_available("view"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, extra=[register_gui])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
