"""The main window: errors become one-line dialogs, files route to their tab, recent files,
drag and drop, and the offscreen screenshot of ``lobule view``."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage


@pytest.fixture
def dialogs(monkeypatch):
    """Messages of the critical dialogs shown (the dialogs themselves are not opened)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda parent, title, text, *a: shown.append(text)))
    return shown


@pytest.fixture
def window(shown):
    from lobule.app.main_window import MainWindow

    win = shown(MainWindow())
    yield win
    win.close()


def _image_rgb(path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3)


def test_bad_slide_shows_a_one_line_dialog_and_the_app_goes_on(window, dialogs, qtbot, tmp_path, demo_slide):
    bad = tmp_path / "random.svs"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    window.open_path(bad)
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=10000)
    assert "random.svs" in dialogs[0] and "\n" not in dialogs[0]
    assert window.slide_tab.document is None
    with qtbot.waitSignal(window.slide_tab.opened, timeout=10000):
        window.open_path(demo_slide)  # still works after the error
    assert window.windowTitle().startswith("CMU-1-Small-Region.svs")


def test_volumes_go_to_the_mri_ct_tab(window, dialogs, qtbot, tmp_path):
    assert not window._pages["volume"].created  # built on first use: a cheap start
    assert window.open_path(tmp_path / "missing.nii.gz") == "volume"
    assert window.current_tab() is window.volume_tab
    qtbot.waitUntil(lambda: not window.is_opening("volume"), timeout=10000)
    assert len(dialogs) == 1 and "\n" not in dialogs[0]
    assert not window.slide_view_actions[0].isEnabled()  # slide zoom shortcuts sleep on other tabs
    assert window.open_path(tmp_path / "missing.png", target="ffa") == "ffa"  # e.g. lobule view --tab ffa
    assert window.current_tab() is window.ffa_tab
    qtbot.waitUntil(lambda: not window.is_opening("ffa"), timeout=10000)
    assert len(dialogs) == 2 and "missing.png" in dialogs[1]


def test_dropped_file_opens_and_is_remembered(window, qtbot, demo_slide):
    from lobule.app.common import settings

    assert settings.recent_files() == []
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_slide))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.slide_tab.opened, timeout=10000):
        window.dropEvent(event)
    assert settings.recent_files() == [str(demo_slide)]
    window._fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()][0] == "CMU-1-Small-Region.svs"


def test_status_bar_shows_position_and_magnification(window, qtbot, demo_slide):
    with qtbot.waitSignal(window.slide_tab.opened, timeout=10000):
        window.open_path(demo_slide)
    view = window.slide_tab.view
    view.set_magnification(10.0)
    view.cursorMoved.emit(view.widget_to_level0(view.width() / 2, view.height() / 2))
    assert window.zoom_label.text().startswith("10x")
    assert "px" in window.position_label.text() and "µm" in window.position_label.text()


def test_screenshot_waits_for_sharp_tiles_and_shows_tissue(qapp, tmp_path, demo_slide):
    from lobule.app.launch import save_screenshot

    png = save_screenshot(demo_slide, tmp_path / "shot.png", size=(1000, 700))
    rgb = _image_rgb(png).astype(int)
    assert rgb.shape[1] >= 1000
    stained = (rgb[..., 0] - rgb[..., 1] > 30) & (rgb[..., 2] - rgb[..., 1] > 10)
    assert stained.mean() > 0.05  # pink and purple tissue, not a blank window
    assert not list(tmp_path.glob(".*part"))  # written atomically


def test_view_command_on_a_bad_file_prints_one_line(tmp_path):
    bad = tmp_path / "bytes.svs"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    out = subprocess.run([sys.executable, "-m", "lobule.app.cli", "view", str(bad), "--screenshot",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("lobule: error: bytes.svs")
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_work_under_way_stays_in_the_status_bar_until_it_ends(window, monkeypatch):
    """An export can take longer than a status message's 10 s: "Exporting to ..." must not
    vanish while the files are still being written."""
    shown = []
    bar = window.statusBar()
    monkeypatch.setattr(bar, "showMessage", lambda text, timeout=0: shown.append((text, timeout)))
    window.slide_tab.message.emit("Exporting to /data/case 7...")
    window.slide_tab.message.emit("Exported summary.json to /data/case 7")
    assert shown == [("Exporting to /data/case 7...", 0), ("Exported summary.json to /data/case 7", 10000)]
