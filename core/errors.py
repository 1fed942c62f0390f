"""Typed errors shared by every layer of Lobule.

Every error a user can cause derives from :class:`LobuleError`; its ``str()`` is one line that
says what was wrong. The CLI prints it and exits non-zero; the GUI shows it in a dialog.
"""
from __future__ import annotations


class LobuleError(Exception):
    """Base class of errors caused by input (files, arguments, checkpoints), never by a bug."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line


class CheckpointError(LobuleError):
    """A checkpoint card or weights file is missing, malformed, or the two do not match."""


class UnknownModelError(LobuleError):
    """A model name that is not registered or installed; the message lists the valid names."""
