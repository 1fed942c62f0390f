"""User settings of the desktop app (an INI file under the user's config folder).

The file is ``lobule.ini`` in :func:`lobule.models.folders.config_dir` (``~/.config/lobule`` on
Linux), looked up on every access, so tests that point HOME / XDG_CONFIG_HOME elsewhere are isolated.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from lobule.models.folders import config_dir

MAX_RECENT = 10
DEFAULT_TILE_CACHE_MB = 512
MIN_TILE_CACHE_MB = 64


def settings_path() -> Path:
    return config_dir() / "lobule.ini"


def _settings() -> QSettings:
    return QSettings(str(settings_path()), QSettings.Format.IniFormat)


def recent_files() -> list[str]:
    """Recently opened files and folders, newest first."""
    value = _settings().value("recent/files", [])
    if isinstance(value, str):  # QSettings returns a lone string for a one-element list
        value = [value]
    return [str(v) for v in value or []][:MAX_RECENT]


def add_recent_file(path: str | os.PathLike) -> list[str]:
    """Put ``path`` (made absolute) first in the recent files; returns the new list."""
    path = str(Path(path).expanduser().absolute())
    files = [path] + [p for p in recent_files() if p != path]
    files = files[:MAX_RECENT]
    settings = _settings()
    settings.setValue("recent/files", files)
    settings.sync()
    return files


def clear_recent_files() -> None:
    settings = _settings()
    settings.remove("recent/files")
    settings.sync()


def tile_cache_bytes() -> int:
    """Budget of the viewer's tile cache in bytes (setting ``viewer/tile_cache_mb``, at least
    :data:`MIN_TILE_CACHE_MB` so a full-screen viewport always fits)."""
    try:
        mb = int(_settings().value("viewer/tile_cache_mb", DEFAULT_TILE_CACHE_MB))
    except (TypeError, ValueError):
        mb = DEFAULT_TILE_CACHE_MB
    return max(mb, MIN_TILE_CACHE_MB) << 20


def overlay_palette() -> str:
    """The class-overlay palette the user chose (setting ``overlay/palette``; a key of
    :data:`lobule.resources.classes.PALETTES`, default ``okabe-ito``)."""
    from lobule.resources.classes import DEFAULT_PALETTE, PALETTES

    name = str(_settings().value("overlay/palette", DEFAULT_PALETTE))
    return name if name in PALETTES else DEFAULT_PALETTE


def set_overlay_palette(name: str) -> None:
    settings = _settings()
    settings.setValue("overlay/palette", name)
    settings.sync()


def tile_threads() -> int:
    """Tile-reading worker threads (setting ``viewer/tile_threads``; default: CPU cores, 2..8)."""
    default = min(max(os.cpu_count() or 2, 2), 8)
    try:
        return max(1, int(_settings().value("viewer/tile_threads", default)))
    except (TypeError, ValueError):
        return default


def model_runtime() -> str:
    """The runtime the Analyze button runs models with (setting ``analysis/runtime``: ``auto``,
    ``torch``, ``torch-bf16`` or ``openvino``; default ``$LOBULE_RUNTIME`` or ``auto``)."""
    from lobule.inference.engine.runtime import RUNTIMES, default_runtime

    value = str(_settings().value("analysis/runtime", default_runtime()))
    return value if value in RUNTIMES else default_runtime()


def set_model_runtime(runtime: str) -> None:
    """Store the runtime (one of ``RUNTIMES``; ValueError otherwise)."""
    from lobule.inference.engine.runtime import RUNTIMES

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}")
    settings = _settings()
    settings.setValue("analysis/runtime", runtime)
    settings.sync()
