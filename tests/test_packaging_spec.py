"""The PyInstaller spec (packaging/lobule.spec) names files that exist; the frozen build itself is
checked by packaging/smoke.sh, not here (it takes many minutes)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC = REPO_ROOT / "packaging" / "lobule.spec"


def _assigned(name: str):
    tree = ast.parse(SPEC.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned in {SPEC.name}")


def test_spec_data_and_scripts_exist():
    for source, dest in _assigned("DATA"):
        folder = REPO_ROOT / source
        assert folder.is_dir() and any(folder.iterdir()), source
        assert dest.startswith("lobule/resources/")
    for name in ("entry.py", "build.sh", "smoke.sh", "png_check.py", "lobule.desktop", "install-desktop-entry.sh"):
        assert (REPO_ROOT / "packaging" / name).is_file(), name
    assert (REPO_ROOT / "resources" / "icons" / "lobule.png").is_file()
    assert "Icon=lobule" in (REPO_ROOT / "packaging" / "lobule.desktop").read_text()


def test_spec_bundles_the_metadata_the_app_reports():
    from lobule.inference.about import DISTRIBUTIONS

    assert tuple(_assigned("METADATA")) == DISTRIBUTIONS


def test_png_check_tells_tissue_from_a_blank_window(tmp_path):
    """The smoke check's screenshot test (standard library PNG reader) on real pictures."""
    import subprocess
    import sys

    from PySide6.QtGui import QColor, QImage

    blank = QImage(320, 200, QImage.Format.Format_RGB888)
    blank.fill(QColor(239, 239, 239))
    blank.save(str(tmp_path / "blank.png"))
    tissue = QImage(320, 200, QImage.Format.Format_RGB888)
    tissue.fill(QColor(239, 239, 239))
    for x in range(60, 260):
        for y in range(40, 160):
            tissue.setPixelColor(x, y, QColor(200, 120, 170) if (x + y) % 7 else QColor(90, 60, 140))
    tissue.save(str(tmp_path / "tissue.png"))
    check = str(REPO_ROOT / "packaging" / "png_check.py")
    assert subprocess.run([sys.executable, check, str(tmp_path / "blank.png")], capture_output=True).returncode == 1
    out = subprocess.run([sys.executable, check, str(tmp_path / "tissue.png")], capture_output=True, text=True)
    assert out.returncode == 0 and "37.5 % H&E-coloured" in out.stdout
