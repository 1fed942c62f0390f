"""The export folder chooser accepts a typed folder that does not exist yet and creates it
(Qt's own directory dialog answered "Directory not found")."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QLineEdit

from lobule.app.common.folder_dialog import FolderDialog


def _type(dialog: FolderDialog, text: str) -> None:
    dialog.findChild(QLineEdit, "fileNameEdit").setText(text)


def test_a_typed_new_folder_is_created_and_chosen(qtbot, tmp_path):
    dialog = FolderDialog(None, "Export to", str(tmp_path))
    qtbot.addWidget(dialog)
    _type(dialog, str(tmp_path / "exports" / "case 7"))
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.chosen == tmp_path / "exports" / "case 7"
    assert dialog.chosen.is_dir()


def test_a_relative_name_is_made_in_the_folder_shown(qtbot, tmp_path):
    dialog = FolderDialog(None, "Export to", str(tmp_path))
    qtbot.addWidget(dialog)
    _type(dialog, "new")
    dialog.accept()
    assert dialog.chosen == tmp_path / "new" and dialog.chosen.is_dir()


def test_an_existing_folder_is_chosen_as_it_is(qtbot, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("x")
    dialog = FolderDialog(None, "Export to", str(tmp_path))
    qtbot.addWidget(dialog)
    _type(dialog, str(tmp_path / "old"))
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.chosen == tmp_path / "old"
    assert (tmp_path / "old" / "keep.txt").read_text() == "x"


def test_a_folder_that_cannot_be_made_is_reported_and_the_dialog_stays(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    (tmp_path / "file").write_text("not a folder")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    dialog = FolderDialog(None, "Export to", str(tmp_path))
    qtbot.addWidget(dialog)
    _type(dialog, str(tmp_path / "file" / "sub"))
    dialog.accept()
    assert dialog.chosen is None and dialog.result() != QDialog.DialogCode.Accepted
    assert warnings and str(tmp_path / "file" / "sub") in warnings[0]
