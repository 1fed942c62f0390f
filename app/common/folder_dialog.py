"""A folder chooser that also accepts a folder that does not exist yet (it is created).

Qt's own directory dialog (the one used where the platform offers no native dialog, e.g. a
plain X11 session) refuses a typed path that does not exist ("Directory not found"), so an
export to a new folder needed a detour through the "New folder" button. Here a typed path
that does not exist is created (with its parents) and chosen.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QLineEdit, QMessageBox, QWidget


class FolderDialog(QFileDialog):
    """Directory mode, Qt's widget dialog; :attr:`chosen` is the folder after ``exec()``."""

    def __init__(self, parent: QWidget | None, caption: str, start: str = "") -> None:
        super().__init__(parent, caption, start)
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly, True)
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.chosen: Path | None = None

    def typed_path(self) -> Path | None:
        """The path in the name field (relative to the folder shown), or None when empty."""
        edit = self.findChild(QLineEdit, "fileNameEdit")
        text = edit.text().strip() if edit is not None else ""
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else Path(self.directory().absolutePath()) / path

    def accept(self) -> None:
        typed = self.typed_path()
        if typed is not None and not typed.exists():
            try:
                typed.mkdir(parents=True)
            except OSError as error:
                QMessageBox.warning(self, "Cannot create the folder", f"{typed}: {error.strerror or error}")
                return
            self.chosen = typed
            QDialog.accept(self)  # Qt's own accept refuses a folder it did not see
            return
        super().accept()
        files = self.selectedFiles()
        if self.result() == QDialog.DialogCode.Accepted and files:
            self.chosen = Path(files[0])


def choose_folder(parent: QWidget | None, caption: str, start: str = "") -> Path | None:
    """Ask for a folder (existing, or typed and then created); None when cancelled."""
    dialog = FolderDialog(parent, caption, start)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.chosen
