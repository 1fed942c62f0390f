"""What this installation is: versions of Lobule and its main libraries, the installed models and
where the user's files are kept. Shown by ``lobule --version --verbose`` and Help > About.

Versions come from the installed distributions' metadata (nothing heavy is imported); the
OpenSlide C library reports its own version.
"""
from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Distributions whose versions are reported, in this order (the frozen app bundles their metadata).
DISTRIBUTIONS = ("lobule", "torch", "numpy", "PySide6-Essentials", "openslide-python", "openslide-bin",
                 "tiffslide", "shapely", "scikit-image", "zarr", "safetensors")


def lobule_version() -> str:
    """Lobule's version (``0+unknown`` when running from a source tree that is not installed)."""
    try:
        return version("lobule")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def versions() -> dict[str, str]:
    """``{name: version}`` of Python, the distributions in :data:`DISTRIBUTIONS` and the OpenSlide
    library; ``"not installed"`` where one is missing."""
    found = {"Python": f"{platform.python_version()} ({'frozen app' if getattr(sys, 'frozen', False) else sys.prefix})"}
    for name in DISTRIBUTIONS[1:]:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    try:
        import openslide

        found["OpenSlide library"] = openslide.__library_version__
    except (ImportError, OSError, AttributeError):
        found["OpenSlide library"] = "not available"
    return found


def models() -> list[dict[str, str]]:
    """Installed models: ``name``, ``task``, ``architecture`` and ``card`` (path of the card file)."""
    from lobule.models.checkpoint import list_checkpoints

    return [{"name": card["name"], "task": card.get("task", "-"), "architecture": card.get("architecture", "-"),
             "card": str(path)} for path, card in list_checkpoints()]


def folders() -> dict[str, Path]:
    """The user's folders by what they hold (see :mod:`lobule.models.folders`), plus the bundled data."""
    from lobule.models.folders import folders as user_folders
    from lobule.resources import RESOURCES_DIR

    return {**user_folders(), "bundled models and demo slide": RESOURCES_DIR}


def report() -> str:
    """The plain-text report of ``lobule --version --verbose``."""
    lines = [f"lobule {lobule_version()}", "", "versions:"]
    lines += [f"  {name:<20} {value}" for name, value in versions().items()]
    lines += ["", "models:"]
    lines += [f"  {m['name']:<20} {m['task']:<10} {m['architecture']:<26} {m['card']}" for m in models()] or ["  (none)"]
    lines += ["", "folders:"]
    lines += [f"  {what:<42} {path}" for what, path in folders().items()]
    return "\n".join(lines)
