"""Starting the GUI: the interactive app (``lobule gui``) and offscreen screenshots (``lobule view``)."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lobule.core.atomic import atomic_path
from lobule.core.errors import LobuleError

SCREENSHOT_SIZE = (1600, 1000)


class ViewTimeout(LobuleError):
    """``lobule view`` gave up waiting for the view to load (its loader threads may still run)."""


def application():
    """The QApplication (created on first use)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Lobule")
        app.setOrganizationName("Lobule")
    return app


def _check_display() -> None:
    """On Linux without X11/Wayland, Qt would abort; say so in one line instead."""
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        raise LobuleError("no display to show the window on (DISPLAY/WAYLAND_DISPLAY unset); "
                          "run it in a desktop session, or save a screenshot with `lobule view FILE --screenshot PNG`")


def run_gui(path: str | os.PathLike | None = None, tab: str | None = None) -> int:
    """Show the main window (opening ``path`` if given, in ``tab`` if given: ``"slide"``,
    ``"ffa"`` or ``"volume"``) and run until it closes; the exit code."""
    from PySide6.QtCore import QTimer

    from lobule.app.main_window import MainWindow

    _check_display()
    app = application()
    window = MainWindow()
    window.show()
    if path is not None:
        QTimer.singleShot(0, lambda: window.open_path(path, tab))
    return app.exec()


def quiet_qt_warnings() -> None:
    """Drop Qt's debug/info/warning chatter (e.g. the offscreen platform's "does not support
    propagateSizeHints()") so a command's stderr holds only its own one-line messages; set
    LOBULE_QT_DEBUG=1 to see them. Critical and fatal messages still go to stderr."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    if os.environ.get("LOBULE_QT_DEBUG"):
        return

    def handler(kind, context, message) -> None:
        if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            print(f"Qt: {message}", file=sys.stderr)

    qInstallMessageHandler(handler)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Run the Qt event loop until ``condition()`` is true or ``timeout`` seconds passed."""
    from PySide6.QtCore import QEventLoop

    app = application()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)
    return True


def _tab_ready(window, target: str) -> bool:
    from lobule.app import routing

    if window.is_opening(target):
        return False
    if target == routing.SLIDE:
        return window.slide_tab.is_ready()  # slide open, visible tiles loaded, saved analysis restored
    tab = window.volume_tab if target == routing.VOLUME else window.ffa_tab
    ready = getattr(tab, "is_ready", None)
    return True if ready is None else bool(ready())


def _move_slide_view(window, magnification, center, timeout: float) -> bool:
    view = window.slide_tab.view
    if magnification:
        if view.base_magnification is None:
            raise LobuleError("the slide gives no pixel size or objective power: --magnification needs one")
        view.set_magnification(magnification)
    if center:
        view.center_on(*center)
    application().processEvents()
    return wait_until(view.is_viewport_complete, timeout)


def _settle(app, seconds: float = 0.3) -> None:
    """Let posted layout requests and zero-delay timers run (widgets added when the last results
    arrived are laid out only then), so the grab shows the final layout."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.sendPostedEvents()
        app.processEvents()
        time.sleep(0.01)


def save_screenshot(path: str | os.PathLike, png: str | os.PathLike,
                    size: tuple[int, int] = SCREENSHOT_SIZE, timeout: float = 120.0,
                    magnification: float | None = None, center: tuple[float, float] | None = None,
                    tab: str | None = None, series: str | None = None) -> Path:
    """Open ``path`` in an offscreen main window, wait until the visible tiles are loaded at the
    level the zoom asks for (not stretched stand-ins), save the window as PNG (atomically).

    For slides, ``magnification`` (equivalent objective power, e.g. 20) and ``center`` (level-0
    x, y) choose the view; by default the whole slide is fitted. ``tab`` (``"slide"``, ``"ffa"``,
    ``"volume"``) overrides where the file opens (default: by its type). ``series`` picks the
    series of a DICOM folder holding several; without it such a folder fails in one line listing
    them (no dialog is ever shown).

    Raises
    ------
    LobuleError
        The file cannot be opened (its one-line reason) or the PNG's folder does not exist.
    ViewTimeout
        Loading took longer than ``timeout`` seconds.
    """
    png = Path(png)
    if not png.parent.is_dir():
        raise LobuleError(f"{png.parent}: no such folder for the screenshot")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from lobule.app.main_window import MainWindow

    app = application()
    window = MainWindow(show_dialogs=False)
    failures: list[str] = []
    window.openFailed.connect(lambda _path, message: failures.append(message))
    window.resize(*size)
    window.show()
    try:
        target = window.open_path(path, tab, series=series)
        done = wait_until(lambda: bool(failures) or _tab_ready(window, target), timeout)
        if failures:
            raise LobuleError(failures[0])
        if done and target == "slide" and (magnification or center):
            done = _move_slide_view(window, magnification, center, timeout)
        if not done:
            raise ViewTimeout(f"{Path(path).name}: timed out after {timeout:g} s waiting for the view to load")
        _settle(app)
        image = window.grab().toImage()
        with atomic_path(png) as tmp:
            if not image.save(str(tmp), "PNG"):
                raise LobuleError(f"{png}: cannot write the screenshot")
    finally:
        window.close()
    return png
