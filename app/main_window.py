"""The main window: Slide, FFA and MRI/CT tabs, File menu with recent files, drag and drop."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from lobule.app import routing
from lobule.app.common import settings
from lobule.app.common.errors import error_message, show_error
from lobule.app.lazy_tab import LazyTab
from lobule.app.slide.slide_tab import SlideTab
from lobule.app.slide.view_state import PRESET_MAGNIFICATIONS
from lobule.core.errors import LobuleError

SLIDE_FILTER = ("Slides and images (*.svs *.tif *.tiff *.ndpi *.mrxs *.scn *.bif *.vms *.vmu *.svslide *.dcm "
                "*.png *.jpg *.jpeg *.bmp *.gif *.webp)")
VOLUME_FILTER = "Volumes (*.nii *.nii.gz *.dcm)"
ALL_FILTER = "All files (*)"


class MainWindow(QMainWindow):
    """Lobule's main window.

    Parameters
    ----------
    show_dialogs : show open errors in a message box (False for offscreen screenshots, which
        listen to ``openFailed`` instead).

    Signals
    -------
    openFailed(str, str) : path, one-line reason (also shown in a dialog when ``show_dialogs``).
    """

    openFailed = Signal(str, str)

    def __init__(self, show_dialogs: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_dialogs = show_dialogs
        self.setWindowTitle("Lobule")
        self.setAcceptDrops(True)
        self._opening: dict[str, str] = {}  # route -> path being opened there
        self.slide_tab = SlideTab()
        self._connect_tab(routing.SLIDE, self.slide_tab)
        # the FFA and MRI/CT tabs are built when first shown or given a file
        self._pages: dict[str, QWidget] = {
            routing.SLIDE: self.slide_tab,
            routing.FFA: LazyTab(_make_ffa_tab, lambda tab: self._connect_tab(routing.FFA, tab)),
            routing.VOLUME: LazyTab(_make_volume_tab, lambda tab: self._connect_tab(routing.VOLUME, tab)),
        }
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._pages[routing.SLIDE], "Slide")
        self.tabs.addTab(self._pages[routing.FFA], "FFA")
        self.tabs.addTab(self._pages[routing.VOLUME], "MRI/CT")
        self.setCentralWidget(self.tabs)

        self.position_label = QLabel()
        self.zoom_label = QLabel()
        self.statusBar().addWidget(self.position_label, 1)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.slide_tab.statusChanged.connect(self._update_status)
        self.slide_tab.message.connect(self.show_status)
        self.slide_tab.actionFailed.connect(self._on_action_failed)
        self.tabs.currentChanged.connect(lambda _: self._update_status())
        self._build_menus()
        self.resize(1400, 900)

    # --- menus ------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = file_menu.addAction("&Open...", self.open_dialog)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction("Open &Demo Slide", self.open_demo)
        file_menu.addSeparator()
        self.export_action = file_menu.addAction("&Export Analysis...", self.slide_tab.analysis_panel.export_dialog)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setToolTip("Write the slide's numbers, regions and class map into a folder per slide")
        file_menu.aboutToShow.connect(self._update_export_action)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)

        view = self.slide_tab.view
        view_menu = self.menuBar().addMenu("&View")
        self.slide_view_actions = []  # enabled while the Slide tab is current
        for text, shortcut, slot in (("Zoom &In", "Ctrl+=", lambda: view.zoom_by(1.5)),
                                     ("Zoom &Out", "Ctrl+-", lambda: view.zoom_by(1 / 1.5)),
                                     ("&Fit to Window", "Ctrl+0", view.fit)):
            action = view_menu.addAction(text, slot)
            action.setShortcut(QKeySequence(shortcut))
            self.slide_view_actions.append(action)
        view_menu.addSeparator()
        for index, mag in enumerate(PRESET_MAGNIFICATIONS, start=1):
            action = view_menu.addAction(f"{mag:g}x Magnification", lambda m=mag: view.set_magnification(m))
            action.setShortcut(QKeySequence(f"Ctrl+{index}"))
            self.slide_view_actions.append(action)
        view_menu.addSeparator()
        self.palette_actions = self._build_palette_menu(view_menu.addMenu("Overlay &Colours"))
        view_menu.addSeparator()
        view_menu.addAction(self.slide_tab.overview_action)
        view_menu.addAction(self.slide_tab.info_action)

        self._build_runtime_menu(self.menuBar().addMenu("&Settings"))

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&About Lobule", self._about)

    def _build_runtime_menu(self, menu) -> None:
        """Settings > Model Runtime: which runtime the Analyze button runs models with."""
        from PySide6.QtGui import QActionGroup

        from lobule.inference.engine.runtime import RUNTIMES, cpu_has_native_bf16, openvino_available

        runtime_menu = menu.addMenu("Model &Runtime")
        group = QActionGroup(runtime_menu)
        group.setExclusive(True)
        labels = {"auto": "Automatic (fastest verified)", "torch": "PyTorch fp32 (reference)",
                  "torch-bf16": "PyTorch bf16 (CPUs with native bf16)", "openvino": "OpenVINO"}
        current = settings.model_runtime()
        runnable = {"torch-bf16": cpu_has_native_bf16(), "openvino": openvino_available()}
        self.runtime_actions = {}
        for runtime in RUNTIMES:
            action = runtime_menu.addAction(labels[runtime], lambda r=runtime: settings.set_model_runtime(r))
            action.setCheckable(True)
            action.setChecked(runtime == current)
            action.setEnabled(runnable.get(runtime, True))  # never offered where it cannot run
            group.addAction(action)
            self.runtime_actions[runtime] = action

    def _build_palette_menu(self, menu) -> dict:
        """One checkable action per overlay palette; the choice is kept in the settings."""
        from lobule.resources.classes import PALETTE_LABELS, palette

        group = QActionGroup(self)
        actions = {}
        for name, label in PALETTE_LABELS.items():
            action = menu.addAction(label, lambda n=name: self.set_palette(n))
            action.setCheckable(True)
            action.setChecked(name == palette())
            group.addAction(action)
            actions[name] = action
        return actions

    def set_palette(self, name: str) -> None:
        """Use overlay palette ``name`` (see :data:`lobule.resources.classes.PALETTES`) from now on:
        redraw the overlay and legend, keep the choice in the settings."""
        from lobule.resources.classes import set_palette

        set_palette(name)
        self.palette_actions[name].setChecked(True)
        self.slide_tab.analysis.refresh_colours()
        self.slide_tab.analysis_panel.legend.refresh_colours()
        try:
            settings.set_overlay_palette(name)
        except OSError:  # an unwritable settings folder must not stop the viewer
            pass

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name, lambda p=path: self.open_path(p))
            action.setToolTip(path)
            action.setStatusTip(path)
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent Files", settings.clear_recent_files)

    def _about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Lobule", about_html(), parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        box.exec()

    # --- opening ----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        filters = [SLIDE_FILTER, VOLUME_FILTER, ALL_FILTER]
        path, _ = QFileDialog.getOpenFileName(self, "Open slide, image or volume", "", ";;".join(filters))
        if path:
            self.open_path(path)

    def open_demo(self) -> None:
        from lobule.resources import DEMO_SLIDE

        self.open_path(DEMO_SLIDE)

    @property
    def ffa_tab(self) -> QWidget:
        """The FFA tab's widget (built on first use)."""
        return self._pages[routing.FFA].widget()

    @property
    def volume_tab(self) -> QWidget:
        """The MRI/CT tab's widget (built on first use)."""
        return self._pages[routing.VOLUME].widget()

    def current_tab(self) -> QWidget:
        """The widget of the current tab (SlideTab, FFATab or VolumeTab)."""
        page = self.tabs.currentWidget()
        return page.widget() if isinstance(page, LazyTab) else page

    def _tab(self, target: str) -> QWidget:
        page = self._pages[target]
        return page.widget() if isinstance(page, LazyTab) else page

    def _connect_tab(self, target: str, tab: QWidget) -> None:
        """Follow a tab's open outcome: a success signal (``opened(str)`` or ``imageOpened(str)``)
        and a failure signal (``openFailed(str, str)`` or ``failed(str)``), where it has them."""
        if not self.show_dialogs and hasattr(tab, "series_chooser"):
            tab.series_chooser = None  # never wait on a dialog offscreen: several series fail in one line
        for name in ("opened", "imageOpened"):
            if hasattr(tab, name):
                getattr(tab, name).connect(lambda path, t=target: self._on_opened(t, str(path)))
                break
        if hasattr(tab, "openFailed"):
            tab.openFailed.connect(lambda path, message, t=target: self._on_open_failed(t, path, message))
        elif hasattr(tab, "failed"):
            tab.failed.connect(lambda message, t=target: self._on_open_failed(t, None, message))

    def is_opening(self, target: str) -> bool:
        """True while a path routed to ``target`` (see :mod:`lobule.app.routing`) is being opened."""
        return target in self._opening

    def open_path(self, path: str | os.PathLike, target: str | None = None, series: str | None = None) -> str:
        """Open ``path`` in the tab it belongs to (see :func:`lobule.app.routing.route`; ``target``
        ``"slide"``, ``"ffa"`` or ``"volume"`` forces one), make that tab current and return it. Tabs open in the background and report through their
        signals; a tab's ``open_path`` may also raise at once. ``series`` picks the series of a
        DICOM folder holding several (volume tab only). Errors are reported through
        ``openFailed`` (and a dialog), never raised."""
        path = str(path)
        if target is None:
            target = routing.route(path, ffa_current=self.tabs.currentWidget() is self._pages[routing.FFA])
        tab = self._tab(target)
        self.tabs.setCurrentWidget(self._pages[target])
        self._opening[target] = path
        try:
            if series is None:
                tab.open_path(path)
            elif target == routing.VOLUME:
                tab.open_path(path, series=series)
            else:
                raise LobuleError(f"{Path(path).name}: --series picks a DICOM volume series; this file opens as a {target}")
        except Exception as error:  # noqa: BLE001 - any failure becomes a dialog, never a crash
            self._on_open_failed(target, path, error_message(error))
        else:
            if not any(hasattr(tab, name) for name in ("opened", "imageOpened")):
                self._on_opened(target, path)  # a tab that opens synchronously
        return target

    def _on_opened(self, target: str, path: str) -> None:
        path = self._opening.pop(target, path)
        try:
            settings.add_recent_file(path)
        except OSError:  # an unwritable settings folder must not stop the viewer
            pass
        self.setWindowTitle(f"{Path(path).name} - Lobule")

    def show_status(self, text: str) -> None:
        """A message in the status bar for 10 s; one of work under way ("Exporting to ...")
        stays until the next message says how it ended (an export can outlast 10 s)."""
        self.statusBar().showMessage(text, 0 if text.endswith("...") else 10000)

    def _on_open_failed(self, target: str, path: str | None, message: str) -> None:
        if path is None and target not in self._opening:
            return  # a tab's failure that is not about opening (it shows those itself)
        path = self._opening.pop(target, path)
        self._report_failure(path, message)

    def _report_failure(self, path: str, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        self.openFailed.emit(path, message)
        if self.show_dialogs:
            show_error(self, "Cannot open", message)

    def _on_action_failed(self, title: str, message: str) -> None:
        """An analysis or editing action failed (the status bar has the message already)."""
        if self.show_dialogs:
            show_error(self, title, message)

    # --- status and window events -----------------------------------------------------------
    def _update_status(self) -> None:
        on_slide = self.tabs.currentWidget() is self.slide_tab
        for action in self.slide_view_actions:
            action.setEnabled(on_slide)
        self.position_label.setText(self.slide_tab.position_text() if on_slide else "")
        self.zoom_label.setText(self.slide_tab.zoom_text() if on_slide else "")

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def _update_export_action(self) -> None:
        self.export_action.setEnabled(self.slide_tab.analysis_panel.export_button.isEnabled())

    def unsaved_results(self) -> list[str]:
        """Names of the tabs holding results that were not exported (their ``has_unsaved_results()``)."""
        names = []
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            if isinstance(page, LazyTab):
                if not page.created:
                    continue
                page = page.widget()
            check = getattr(page, "has_unsaved_results", None)
            if check is not None and check():
                names.append(self.tabs.tabText(index))
        return names

    def closeEvent(self, event) -> None:  # noqa: N802
        unsaved = self.unsaved_results()
        if unsaved and self.show_dialogs:
            answer = QMessageBox.question(
                self, "Quit Lobule",
                f"The {' and '.join(unsaved)} results were not exported and will be lost. Quit anyway?",
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Discard:
                event.ignore()
                return
        self.slide_tab.shutdown()
        super().closeEvent(event)


def _make_ffa_tab() -> QWidget:
    from lobule.app.ffa.ffa_tab import FFATab

    return FFATab()


def _make_volume_tab() -> QWidget:
    from lobule.app.volume.volume_tab import VolumeTab

    return VolumeTab()


def about_html() -> str:
    """Help > About: versions, installed models with their cards and headline held-out metric,
    and the folders where Lobule keeps files (rich text)."""
    from html import escape

    from lobule.inference import about
    from lobule.inference.cli.models import headline_metric
    from lobule.models.checkpoint import read_card

    def link(path) -> str:
        return f'<a href="{Path(path).as_uri()}">{escape(str(path))}</a>'

    rows = "".join(f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>"
                   for name, value in about.versions().items())
    models = "".join(f"<tr><td><b>{escape(m['name'])}</b></td><td>{escape(m['task'])}, {escape(m['architecture'])}"
                     f"<br>{escape(headline_metric(read_card(m['card'])))}<br>card: {link(m['card'])}</td></tr>"
                     for m in about.models()) or "<tr><td>(none installed)</td></tr>"
    folders = "".join(f"<tr><td>{escape(what)}</td><td>{link(path)}</td></tr>" for what, path in about.folders().items())
    return (f"<h3>Lobule {escape(about.lobule_version())}</h3>"
            "<p>Quantitative liver pathology: whole-slide viewer, tissue segmentation, NAS-related "
            "quantification; FFA and MRI/CT tabs.</p>"
            f"<p><b>Models</b></p><table cellspacing=4>{models}</table>"
            f"<p><b>Folders</b></p><table cellspacing=4>{folders}</table>"
            f"<p><b>Versions</b></p><table cellspacing=2>{rows}</table>")

