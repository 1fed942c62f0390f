"""Typed input errors of the inference layer. All derive from :class:`LobuleError`, whose
message is one line; the CLI prints it and exits non-zero, the GUI shows it in a dialog."""
from __future__ import annotations

from lobule.core.errors import CheckpointError, LobuleError, UnknownModelError

__all__ = [
    "LobuleError",
    "CheckpointError",
    "UnknownModelError",
    "InputError",
    "SlideError",
    "UnsupportedFormatError",
    "MissingMppError",
    "VolumeError",
]


class InputError(LobuleError):
    """A file or argument given by the user is missing, empty or unusable."""


class SlideError(InputError):
    """A slide cannot be opened or read (missing, a folder, empty, truncated, corrupt)."""


class UnsupportedFormatError(SlideError):
    """The file is readable but in no format OpenSlide, tiffslide or the image readers support."""


class MissingMppError(InputError):
    """A computation needs the slide's micrometres per pixel and the slide does not say it;
    the message names the way to give it (``--mpp`` or the GUI field)."""


class VolumeError(InputError):
    """An MRI/CT volume or a support mask cannot be read or has the wrong shape."""
