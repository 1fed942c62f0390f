"""Where Lobule keeps the user's files, following each operating system's conventions
(platformdirs): settings, cache (analyses of read-only slides and their autosave journals) and
user-installed models.

On Linux these are ``$XDG_CONFIG_HOME/lobule`` (``~/.config/lobule``), ``$XDG_CACHE_HOME/lobule``
(``~/.cache/lobule``) and ``$XDG_DATA_HOME/lobule/models`` (``~/.local/share/lobule/models``);
on Windows under ``%APPDATA%`` / ``%LOCALAPPDATA%``; on macOS under ``~/Library``. Every
function looks the environment up again, so tests that point HOME or XDG_* elsewhere are
isolated. Nothing is created here.
"""
from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "lobule"


def config_dir() -> Path:
    """Folder of the settings file (``lobule.ini``)."""
    return platformdirs.user_config_path(APP, appauthor=False)


def cache_dir() -> Path:
    """Folder of data that can be recomputed: analyses of slides whose own folder is read-only."""
    return platformdirs.user_cache_path(APP, appauthor=False)


def analyses_cache_dir() -> Path:
    """Analyses (class maps, annotations, autosave journals) of slides whose folder cannot be written."""
    return cache_dir() / "analyses"


def user_models_dir() -> Path:
    """Folder of the user's own checkpoints (fine-tuned models); searched before the bundled ones."""
    return platformdirs.user_data_path(APP, appauthor=False) / "models"


def folders() -> dict[str, Path]:
    """Every user folder by what it holds, for ``lobule --version --verbose`` and Help > About."""
    return {"settings": config_dir(), "cache": cache_dir(), "analyses and autosave of read-only slides":
            analyses_cache_dir(), "user models": user_models_dir()}
