"""The Slide tab: toolbars (view; region and correction tools), missing-mpp and recovery
banners, slide view with overview, side panel (analysis, numbers; slide info)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSplitter,
                               QTabWidget, QToolBar, QVBoxLayout, QWidget)

from lobule.app.common import settings
from lobule.app.slide.analysis_controller import AnalysisController
from lobule.app.slide.analysis_panel import AnalysisPanel
from lobule.app.slide.edit_toolbar import EditToolBar
from lobule.app.common.errors import error_message
from lobule.app.slide.overview import OverviewWidget
from lobule.app.slide.region_overlay import RegionOverlay
from lobule.app.slide.slide_document import SlideDocument, load_document
from lobule.app.slide.slide_info import SlideInfoPanel, mpp_field
from lobule.app.slide.slide_view import SlideView
from lobule.app.slide.tile_layer import SlideTileProvider, TileLayer
from lobule.app.slide.view_state import PRESET_MAGNIFICATIONS, base_magnification
from lobule.app.common.jobs import run_in_background

BANNER_STYLE = ("QFrame#mppBanner { background: #fff4ce; border-bottom: 1px solid #e0c36a; }"
                " QLabel { color: #4a3b00; }")
RECOVERY_STYLE = ("QFrame#recoveryBanner { background: #dcefff; border-bottom: 1px solid #7fb2e5; }"
                  " QLabel { color: #0b3a66; }")



def _banner(name: str, style: str) -> tuple[QFrame, QHBoxLayout]:
    """An empty banner frame above the view (object ``name``, style sheet ``style``) and its row."""
    banner = QFrame()
    banner.setObjectName(name)
    banner.setStyleSheet(style)
    row = QHBoxLayout(banner)
    row.setContentsMargins(10, 6, 10, 6)
    return banner, row

class SlideTab(QWidget):
    """Views one slide at a time.

    Signals
    -------
    opened(str) : the slide at this path is shown.
    openFailed(str, str) : path, one-line reason.
    statusChanged() : :meth:`position_text` or :meth:`zoom_text` changed.
    message(str) : a passing note for the status bar (e.g. a tile that could not be decoded).
    actionFailed(str, str) : title, one-line reason of an analysis or editing action that failed.
    """

    opened = Signal(str)
    openFailed = Signal(str, str)
    statusChanged = Signal()
    message = Signal(str)
    actionFailed = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: SlideDocument | None = None
        self.slide_layer: TileLayer | None = None
        self._open_token = 0
        self._cursor: tuple[float, float] | None = None
        self.loading_path: str | None = None

        self.view = SlideView(settings.tile_cache_bytes(), settings.tile_threads())
        self.overview = OverviewWidget(self.view)
        self.info = SlideInfoPanel()
        self.info.mppEntered.connect(self.set_mpp)
        self.analysis = AnalysisController(self.view, self)
        self.analysis_panel = AnalysisPanel(self.analysis)
        self.side = QTabWidget()
        self.side.setDocumentMode(True)
        self.side.addTab(self.analysis_panel, "Analysis")
        self.side.addTab(self.info, "Slide info")
        self.region_overlay = RegionOverlay(self.analysis)
        self.view.add_overlay(self.region_overlay)

        self.toolbar = self._build_toolbar()
        self.edit_bar = EditToolBar(self.view, self.analysis)
        self.banner = self._build_banner()
        self.recovery_banner = self._build_recovery_banner()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([1000, 400])
        splitter.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.edit_bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.recovery_banner)
        layout.addWidget(splitter, 1)
        self._connect_analysis()

        self.view.viewChanged.connect(self._on_view_changed)
        self.view.cursorMoved.connect(self._on_cursor)
        self.view.tileFailed.connect(lambda reason: self.message.emit(f"Part of the slide could not be read: {reason}"))
        self._update_controls()

    # --- construction -----------------------------------------------------------------------
    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar("Slide")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.fit_action = bar.addAction("Fit", self.view.fit)
        self.fit_action.setToolTip("Fit the whole slide in the window (Ctrl+0)")
        self.zoom_out_action = bar.addAction("−", lambda: self.view.zoom_by(1 / 1.5))
        self.zoom_out_action.setToolTip("Zoom out (-)")
        self.zoom_in_action = bar.addAction("+", lambda: self.view.zoom_by(1.5))
        self.zoom_in_action.setToolTip("Zoom in (+)")
        bar.addSeparator()
        self.magnification_actions: dict[float, QAction] = {}
        group = QActionGroup(self)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for mag in PRESET_MAGNIFICATIONS:
            action = bar.addAction(f"{mag:g}x", lambda m=mag: self.view.set_magnification(m))
            action.setCheckable(True)
            action.setToolTip(f"Show the slide at {mag:g}x equivalent magnification (40x ~ 0.25 µm/px)")
            group.addAction(action)
            self.magnification_actions[mag] = action
        bar.addSeparator()
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(70)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_label.setToolTip("Current equivalent magnification")
        bar.addWidget(self.zoom_label)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.overview_action = bar.addAction("Overview")
        self.overview_action.setCheckable(True)
        self.overview_action.setChecked(True)
        self.overview_action.toggled.connect(self._toggle_overview)
        self.info_action = bar.addAction("Side panel")
        self.info_action.setToolTip("Show or hide the side panel (analysis and numbers, slide info)")
        self.info_action.setCheckable(True)
        self.info_action.setChecked(True)
        self.info_action.toggled.connect(self.side.setVisible)
        return bar

    def _build_banner(self) -> QFrame:
        banner, row = _banner("mppBanner", BANNER_STYLE)
        text = QLabel("<b>Pixel size unknown.</b> This slide does not record its micrometres per pixel (mpp); "
                      "the scale bar, µm readouts and magnification need it.")
        text.setWordWrap(True)
        self.banner_field = mpp_field()
        button = QPushButton("Set pixel size")
        button.clicked.connect(lambda: self.set_mpp(self.banner_field.value()))
        row.addWidget(text, 1)
        row.addWidget(self.banner_field)
        row.addWidget(button)
        banner.hide()
        return banner

    def _build_recovery_banner(self) -> QFrame:
        banner, row = _banner("recoveryBanner", RECOVERY_STYLE)
        self.recovery_text = QLabel()
        self.recovery_text.setWordWrap(True)
        self.recover_button = QPushButton("Recover")
        self.recover_button.setToolTip("Take the unsaved corrections and regions back (one undo step)")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Go back to the last saved corrections")
        self.recover_button.clicked.connect(lambda: self._answer_recovery(True))
        self.discard_button.clicked.connect(lambda: self._answer_recovery(False))
        row.addWidget(self.recovery_text, 1)
        row.addWidget(self.recover_button)
        row.addWidget(self.discard_button)
        banner.hide()
        return banner

    def _connect_analysis(self) -> None:
        analysis = self.analysis
        analysis.message.connect(self.message)
        analysis.failed.connect(self._on_action_failed)
        analysis.regionsChanged.connect(self.view.update)
        analysis.recoveryOffered.connect(self._offer_recovery)
        analysis.stateChanged.connect(self.statusChanged)
        self.analysis_panel.selectedRegionChanged.connect(self._select_region)
        self.analysis_panel.finetuneRequested.connect(self.open_finetune)

    def _on_action_failed(self, title: str, reason: str) -> None:
        self.message.emit(f"{title}: {reason}")
        self.actionFailed.emit(title, reason)

    def _select_region(self, name: str) -> None:
        self.region_overlay.selected = name
        self.view.update()

    def _offer_recovery(self, summary: str) -> None:
        self.recovery_text.setText(f"<b>Recover unsaved work?</b> Lobule found {summary}.")
        self.recovery_banner.show()

    def _answer_recovery(self, recover: bool) -> None:
        self.recovery_banner.hide()
        if recover:
            self.analysis.recover()
        else:
            self.analysis.discard_recovery()

    def open_finetune(self) -> None:
        """Show the "Fine-tune on my corrections" dialog."""
        from lobule.app.slide.finetune_dialog import FinetuneDialog

        dialog = FinetuneDialog(self.analysis, self)
        dialog.modelChosen.connect(self._use_model)
        dialog.show()
        self._finetune_dialog = dialog

    def _use_model(self, name: str) -> None:
        self.analysis_panel.refresh_models(select=name)
        self.message.emit(f"Model {name} chosen: press Analyze to segment the slide with it")

    # --- opening ----------------------------------------------------------------------------
    def open_path(self, path: str | os.PathLike, mpp=None) -> None:
        """Start opening ``path`` on a worker thread; ``opened`` or ``openFailed`` follows."""
        self._open_token += 1
        token = self._open_token
        path = str(path)
        self.loading_path = path
        self.statusChanged.emit()
        run_in_background(lambda: load_document(path, mpp),
                          lambda document: self._on_loaded(token, path, document),
                          lambda error: self._on_failed(token, path, error))

    def _on_loaded(self, token: int, path: str, document: SlideDocument) -> None:
        if token != self._open_token:  # a newer open superseded this one
            document.reader.close()
            return
        self.loading_path = None
        self.close_slide()
        self.document = document
        self.slide_layer = TileLayer(SlideTileProvider(document.reader), "Slide", preview=document.thumbnail)
        self._apply_mpp()
        self.view.add_layer(self.slide_layer)
        self.analysis_panel.refresh_models()  # models installed meanwhile (e.g. fine-tuned)
        self.analysis.set_document(document)
        self.overview.set_thumbnail(document.thumbnail if self.overview_action.isChecked() else None)
        self.info.set_document(document)
        self._update_controls()
        self.opened.emit(path)

    def _on_failed(self, token: int, path: str, error: BaseException) -> None:
        if token != self._open_token:
            return
        self.loading_path = None
        self.statusChanged.emit()
        self.openFailed.emit(path, error_message(error))

    def close_slide(self) -> None:
        """Remove the current slide (its reader is closed once no tile read uses it; its
        corrections and regions are saved)."""
        self.analysis.set_document(None)
        self.recovery_banner.hide()
        if self.slide_layer is not None:
            self.view.clear_layers(close_providers=True)
        self.slide_layer = None
        self.document = None
        self.overview.set_thumbnail(None)
        self.info.set_document(None)
        self._update_controls()

    def shutdown(self) -> None:
        """Stop the analysis, save the corrections, stop tile workers and close the slide (the
        window is closing)."""
        self._open_token += 1
        self.edit_bar.set_tool("pan")
        self.analysis.shutdown()
        self.view.shutdown()
        self.document = None
        self.slide_layer = None

    # --- pixel size -------------------------------------------------------------------------
    def set_mpp(self, mpp: float) -> None:
        """Use ``mpp`` micrometres per pixel for this slide (the user typed it).

        Raises InputError for a value that is not a positive number (the fields cannot send one).
        """
        if self.document is None:
            return
        self.document.set_user_mpp(mpp)
        self._apply_mpp()
        self.info.update_mpp(self.document)
        self._update_controls()

    def _apply_mpp(self) -> None:
        document = self.document
        mpp = document.mpp[0] if document and document.mpp else None
        self.view.set_mpp(mpp)
        self.view.base_magnification = (base_magnification(mpp, document.reader.objective_power)
                                        if document else None)
        self.banner.setVisible(document is not None and document.mpp is None)

    # --- status -----------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """True when the slide is open, its visible tiles are loaded and the analysis is idle
        (a saved analysis restored, the numbers up to date)."""
        return (self.document is not None and self.loading_path is None and self.analysis.is_idle()
                and self.view.is_viewport_complete())

    def _toggle_overview(self, on: bool) -> None:
        self.overview.set_thumbnail(self.document.thumbnail if on and self.document else None)

    def _on_cursor(self, point) -> None:
        self._cursor = point
        self.statusChanged.emit()

    def _on_view_changed(self) -> None:
        self._update_controls()

    def _update_controls(self) -> None:
        has_slide = self.document is not None
        magnification = self.view.magnification() if has_slide else None
        native = self.view.base_magnification if has_slide else None  # level-0 pixels shown 1:1
        for mag, action in self.magnification_actions.items():
            action.setEnabled(has_slide and self.view.base_magnification is not None)
            digital = bool(native) and mag > float(native) * 1.01
            action.setText(f"{mag:g}x digital" if digital else f"{mag:g}x")
            action.setToolTip(f"{mag:g}x: digital zoom, beyond the scan's native {native:.3g}x (its pixels enlarged)"
                              if digital else f"Show the slide at {mag:g}x equivalent magnification "
                                              "(40x ~ 0.25 µm/px)")
            action.setChecked(magnification is not None and abs(magnification / mag - 1) < 0.01)
        for action in (self.fit_action, self.zoom_in_action, self.zoom_out_action):
            action.setEnabled(has_slide)
        self.zoom_label.setText(self.zoom_text(short=True) if has_slide else "")
        self.statusChanged.emit()

    def position_text(self) -> str:
        """Cursor position for the status bar: level-0 px and, with an mpp, µm."""
        if self.loading_path:
            return f"Opening {Path(self.loading_path).name}..."
        if self.document is None:
            return ""
        width, height = self.document.reader.dimensions
        if self._cursor is None:
            return f"{self.document.reader.path.name}   {width:,} x {height:,} px"
        x, y = self._cursor
        if not (0 <= x < width and 0 <= y < height):
            return "outside the slide"
        text = f"x {x:,.0f}  y {y:,.0f} px"
        if self.document.mpp:
            text += f"   ({x * self.document.mpp[0]:,.1f}, {y * self.document.mpp[1]:,.1f} µm)"
        return text

    def zoom_text(self, short: bool = False) -> str:
        """``"12.5x"`` (or the zoom in % without a scale), plus the level shown unless ``short``."""
        if self.document is None or self.slide_layer is None:
            return ""
        magnification = self.view.magnification()
        zoom = f"{magnification:.3g}x" if magnification is not None else f"{self.view.state.scale * 100:.3g}%"
        if short:
            return zoom
        level = self.view.level_for(self.slide_layer)
        downsample = self.slide_layer.provider.level_downsamples[level]
        return f"{zoom}   level {level} (downsample {downsample:.3g})"
