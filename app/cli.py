"""The ``lobule`` console script: headless sub-commands from ``lobule.inference.cli`` plus the
GUI ones (``gui``, ``view``), whose Qt imports happen only when they run."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lobule.inference.cli import run
from lobule.core.errors import LobuleError


TABS = {"slide": "slide", "ffa": "ffa", "mri": "volume"}  # --tab choice -> route


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if not (200 <= width <= 8000 and 150 <= height <= 8000):
        raise argparse.ArgumentTypeError(f"window size out of range: {text}")
    return width, height


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in level-0 pixels, got {text!r}") from None
    return x, y


def _gui(args: argparse.Namespace) -> int:
    from lobule.app.launch import run_gui

    path = args.file
    if args.demo:
        if path is not None:
            raise LobuleError("give either FILE or --demo, not both")
        from lobule.resources import DEMO_SLIDE

        path = DEMO_SLIDE
    return run_gui(path, TABS[args.tab] if args.tab else None)


def _view(args: argparse.Namespace) -> int:
    from lobule.app.launch import ViewTimeout, quiet_qt_warnings, save_screenshot

    quiet_qt_warnings()
    if not args.timeout > 0:
        raise LobuleError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    try:
        out = save_screenshot(args.file, args.screenshot, size=args.size, timeout=args.timeout,
                              magnification=args.magnification, center=args.center,
                              tab=TABS[args.tab] if args.tab else None, series=args.series)
    except ViewTimeout as exc:
        # Tile and overview loader threads may still be decoding (a slow or huge slide); waiting
        # for them would keep the process alive long after --timeout. Nothing is half-written
        # (the screenshot is atomic), so leave at once.
        print(f"lobule: error: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(2)
    print(out)
    return 0


def register_gui(commands, train) -> None:
    p = commands.add_parser("gui", help="the desktop app, optionally opening FILE")
    p.add_argument("file", nargs="?", help="slide, FFA image or volume to open")
    p.add_argument("--demo", action="store_true", help="open the bundled demo slide")
    p.add_argument("--tab", choices=sorted(TABS), help="open FILE in this tab (default: chosen by file type)")
    p.set_defaults(func=_gui)
    v = commands.add_parser("view", help="open FILE offscreen and save a screenshot of the main window")
    v.add_argument("file", help="slide, FFA image or volume")
    v.add_argument("--screenshot", required=True, metavar="PNG", help="where to write the screenshot")
    v.add_argument("--size", type=_size, default=(1600, 1000), metavar="WxH", help="window size (1600x1000)")
    v.add_argument("--tab", choices=sorted(TABS), help="open FILE in this tab (default: chosen by file type)")
    v.add_argument("--magnification", type=float, metavar="M",
                   help="slides: show at M x equivalent magnification (default: whole slide fitted)")
    v.add_argument("--center", type=_point, metavar="X,Y", help="slides: centre the view on level-0 pixel X,Y")
    v.add_argument("--series", metavar="N", default=None,
                   help="DICOM folder with several series: which one (index as listed, #SeriesNumber or UID)")
    v.add_argument("--timeout", type=float, default=120.0, metavar="S", help="give up after S seconds (120)")
    v.set_defaults(func=_view)


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, extra=[register_gui])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
