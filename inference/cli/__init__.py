"""Back ends of the ``lobule`` command line (docs/architecture.md, "Command line").

Each module of this package registers its sub-commands with ``register(commands, train)``:
``commands`` is the top-level sub-parser set, ``train`` the set under ``lobule train``. A
handler takes the parsed ``argparse.Namespace`` and returns an exit code. The console script
itself is :func:`lobule.app.cli.main`, which adds the GUI commands (``gui``, ``view``).

Errors: a :class:`LobuleError` (or ``OSError``) raised by a handler is printed as one line,
``lobule: error: ...``, and the exit code is 2; Ctrl-C exits 130. No traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from lobule.core.errors import LobuleError

# Modules registering headless sub-commands, in help order.
HEADLESS_MODULES = (
    "lobule.inference.cli.analyze",  # lobule analyze
    "lobule.inference.cli.batch",  # lobule batch
    "lobule.inference.cli.segment",  # lobule segment, lobule train segment
    "lobule.inference.cli.ffa",  # lobule ffa predict|evaluate, lobule train ffa
    "lobule.inference.cli.fewshot",  # lobule fewshot segment|evaluate, lobule train fewshot
    "lobule.inference.cli.dino",  # lobule train dino
    "lobule.inference.cli.models",  # lobule models
)

Registrar = Callable[[argparse._SubParsersAction, argparse._SubParsersAction], None]


def version() -> str:
    from lobule.inference.about import lobule_version

    return lobule_version()


def build_parser(extra: Sequence[Registrar] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lobule",
        description="Quantitative liver pathology: whole-slide viewer, tissue segmentation, NAS-related numbers.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit (with --verbose: "
                        "library versions, installed models and the user's folders)")
    parser.add_argument("--verbose", action="store_true", help="with --version: the full report")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train_parser = commands.add_parser("train", help="train a model (resumable; writes a checkpoint card)")
    train = train_parser.add_subparsers(dest="train_command", metavar="MODEL")
    train_parser.set_defaults(func=lambda args: _usage(train_parser))
    for registrar in extra:
        registrar(commands, train)
    for name in HEADLESS_MODULES:
        importlib.import_module(name).register(commands, train)
    return parser


def apply_saved_palette() -> None:
    """Use the overlay palette saved by the GUI (``[overlay] palette`` in the settings file, read
    without Qt) for overlays and GeoJSON colours; the default one when none is saved or readable."""
    import configparser

    from lobule.models.folders import config_dir
    from lobule.resources.classes import DEFAULT_PALETTE, PALETTES, set_palette

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_dir() / "lobule.ini", encoding="utf-8")
        name = parser.get("overlay", "palette", fallback=DEFAULT_PALETTE)
    except (configparser.Error, UnicodeDecodeError):
        name = DEFAULT_PALETTE
    set_palette(name if name in PALETTES else DEFAULT_PALETTE)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run(argv: Sequence[str] | None = None, extra: Sequence[Registrar] = ()) -> int:
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    apply_saved_palette()
    if args.version:
        if args.verbose:
            from lobule.inference.about import report

            print(report())
        else:
            print(f"lobule {version()}")
        return 0
    func = getattr(args, "func", None)
    if func is None:
        return _usage(parser)
    try:
        return int(func(args) or 0)
    except LobuleError as exc:
        print(f"lobule: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable folder, full disk, ...
        reason = exc.strerror or str(exc)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"lobule: error: {reason}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lobule: cancelled", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Headless entry (no GUI commands); the console script uses lobule.app.cli.main."""
    return run(argv)
