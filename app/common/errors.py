"""Showing errors to the user: one dialog with the one-line message, never a crash."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from lobule.core.errors import LobuleError


def error_message(error: BaseException) -> str:
    """The one-line text a user sees for ``error``: a :class:`LobuleError`'s message; for an
    ``OSError`` its reason and file; for anything else (a bug) its type and message."""
    if isinstance(error, LobuleError):
        return str(error)
    if isinstance(error, OSError):
        where = f": {error.filename}" if getattr(error, "filename", None) else ""
        return f"{error.strerror or error}{where}"
    text = " ".join(str(error).split())
    return f"unexpected error ({type(error).__name__}){': ' + text if text else ''}"


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """A modal critical message box with ``message`` (one line)."""
    QMessageBox.critical(parent, title, message)
