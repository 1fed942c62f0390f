"""The Slide tab's tool bar for regions and corrections, with the keyboard shortcuts.

Tools (one at a time; Esc goes back to panning): Pan (H), Rectangle (R), Polygon (P),
Freehand (F) draw regions; Brush (B), Eraser (E), Polygon fill (G), Flood fill (K) and Magic
wand (W) correct the class map. Keys 0-6 choose the class the brush and fills paint; [ and ]
shrink and grow the brush; Ctrl+Z / Ctrl+Shift+Z undo and redo; Enter closes a polygon,
Backspace removes its last vertex.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QToolBar, QWidget

from lobule.app.slide.edit_tools import BrushTool, ClickFillTool, class_colour
from lobule.app.slide.legend import swatch
from lobule.app.slide.region_tools import FreehandTool, PolygonTool, RectangleTool
from lobule.resources.classes import LIVER_CLASSES, PARENCHYMA

DEFAULT_BRUSH_UM = 20.0
FILL_BOUND_UM = 150.0
WAND_TOLERANCE = 10.0

# name, label, shortcut, tip, needs an analysis
TOOLS = (
    ("pan", "Pan", "H", "Drag the slide (Esc)", False),
    ("rectangle", "Rect", "R", "Draw a rectangular region", False),
    ("polygon", "Polygon", "P", "Draw a polygon region: click the vertices; click the first one, double-click or "
                                "press Enter to close", False),
    ("freehand", "Freehand", "F", "Draw a region freehand: press, drag around, release", False),
    ("brush", "Brush", "B", "Paint the chosen class over the class map ([ and ] change the size)", True),
    ("eraser", "Eraser", "E", "Remove your corrections (the model's output shows again)", True),
    ("polygon_fill", "Poly fill", "G", "Fill a polygon with the chosen class", True),
    ("flood_fill", "Flood fill", "K", f"Fill the connected area of one class under the click with the chosen class "
                                      f"(within {FILL_BOUND_UM:g} µm)", True),
    ("magic_wand", "Wand", "W", f"Fill the connected area of similar colour under the click with the chosen class "
                                f"(within {FILL_BOUND_UM:g} µm)", True),
)


class EditToolBar(QToolBar):
    """Tools, class, brush size, undo and redo for a SlideView and an AnalysisController.

    Signals
    -------
    toolChanged(str) : the active tool's name.
    """

    toolChanged = Signal(str)

    def __init__(self, view, controller, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.view, self.controller = view, controller
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.tool = None
        self.tool_name = "pan"
        self.tools = {
            "pan": None,
            "rectangle": RectangleTool(lambda g: controller.add_region(g)),
            "polygon": PolygonTool(lambda g: controller.add_region(g)),
            "freehand": FreehandTool(lambda g: controller.add_region(g)),
            "brush": BrushTool(controller, self.class_id, self.brush_um, "brush"),
            "eraser": BrushTool(controller, lambda: _erase(), self.brush_um, "eraser"),
            "polygon_fill": PolygonTool(lambda g: controller.fill_polygon(g, self.class_id())),
            "flood_fill": ClickFillTool(lambda p: controller.flood_fill(p, self.class_id(), FILL_BOUND_UM),
                                        "flood fill"),
            "magic_wand": ClickFillTool(lambda p: controller.magic_wand(p, self.class_id(), WAND_TOLERANCE,
                                                                        FILL_BOUND_UM), "magic wand"),
        }
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name, label, key, tip, _ in TOOLS:
            action = self.addAction(label)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{tip} ({key})")
            action.triggered.connect(lambda _=False, n=name: self.set_tool(n))
            group.addAction(action)
            self.tool_actions[name] = action
            if name in ("freehand", "pan"):
                self.addSeparator()
        self.tool_actions["pan"].setChecked(True)
        self.addSeparator()

        self.class_combo = QComboBox()
        for c in LIVER_CLASSES:
            self.class_combo.addItem(swatch(c.colour), f"{c.id} {c.key.replace('_', ' ')}", c.id)
        self.class_combo.setCurrentIndex(PARENCHYMA)
        self.class_combo.setToolTip("Class the brush and the fills paint (keys 0-6)")
        self.class_combo.currentIndexChanged.connect(lambda _: self.view.update())
        self.addWidget(QLabel(" Class "))
        self.addWidget(self.class_combo)
        self.class_actions = []
        for c in LIVER_CLASSES:
            action = QAction(f"Class {c.key}", self)
            action.setShortcut(QKeySequence(str(c.id)))
            action.triggered.connect(lambda _=False, i=c.id: self.set_class(i))
            view.addAction(action)  # a shortcut only, no button
            self.class_actions.append(action)

        self.size_field = QDoubleSpinBox()
        self.size_field.setRange(1.0, 1000.0)
        self.size_field.setDecimals(0)
        self.size_field.setValue(DEFAULT_BRUSH_UM)
        self.size_field.setSuffix(" µm")
        self.size_field.setToolTip("Brush diameter ([ smaller, ] larger)")
        self.size_field.valueChanged.connect(lambda _: self.view.update())
        self.addWidget(QLabel(" Size "))
        self.addWidget(self.size_field)
        for key, factor in (("[", 1 / 1.25), ("]", 1.25)):
            action = QAction(f"Brush size {key}", self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(lambda _=False, f=factor: self.size_field.setValue(self.size_field.value() * f))
            view.addAction(action)
        self.addSeparator()

        self.undo_action = self.addAction("Undo", controller.undo)
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self.addAction("Redo", controller.redo)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.escape_action = QAction("Back to panning", self)
        self.escape_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.escape_action.triggered.connect(self._escape)
        self.finish_action = QAction("Close the outline", self)
        self.finish_action.setShortcuts([QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)])
        self.finish_action.triggered.connect(lambda: self.tool is not None and self.tool.finish())
        self.backspace_action = QAction("Remove the last vertex", self)
        self.backspace_action.setShortcut(QKeySequence(Qt.Key.Key_Backspace))
        self.backspace_action.triggered.connect(
            lambda: isinstance(self.tool, PolygonTool) and self.tool.undo_vertex())
        for action in (self.escape_action, self.finish_action, self.backspace_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            view.addAction(action)
        controller.historyChanged.connect(self.update_state)
        controller.stateChanged.connect(self.update_state)
        self.update_state()

    # --- values -------------------------------------------------------------------------------
    def class_id(self) -> int:
        return int(self.class_combo.currentData())

    def set_class(self, class_id: int) -> None:
        self.class_combo.setCurrentIndex(self.class_combo.findData(class_id))

    def brush_um(self) -> float:
        return float(self.size_field.value())

    # --- tools --------------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        """Make ``name`` (see the module docstring) the view's tool."""
        if self.tool is not None:
            self.tool.deactivate()
        self.tool_name = name
        self.tool = self.tools[name]
        if self.tool is not None:
            if isinstance(self.tool, PolygonTool):
                self.tool.colour = class_colour(self.class_id()) if name == "polygon_fill" else self.tool.colour
            self.tool.activate(self.view)
        self.tool_actions[name].setChecked(True)
        self.toolChanged.emit(name)

    def _escape(self) -> None:
        if self.tool is not None and getattr(self.tool, "points", None):
            self.tool.cancel()  # first Esc drops the outline in progress
        else:
            self.set_tool("pan")

    def update_state(self) -> None:
        c = self.controller
        has_slide = c.document is not None
        for name, _, _, _, needs_analysis in TOOLS:
            self.tool_actions[name].setEnabled(has_slide and (c.can_edit if needs_analysis else True))
        if not self.tool_actions[self.tool_name].isEnabled() and self.tool_name != "pan":
            self.set_tool("pan")
        undo, redo = c.history_labels()
        self.undo_action.setEnabled(undo is not None)
        self.redo_action.setEnabled(redo is not None)
        self.undo_action.setToolTip(f"Undo {undo} (Ctrl+Z)" if undo else "Nothing to undo (Ctrl+Z)")
        self.redo_action.setToolTip(f"Redo {redo} (Ctrl+Shift+Z)" if redo else "Nothing to redo (Ctrl+Shift+Z)")


def _erase() -> int:
    from lobule.inference.annotations import ERASE

    return ERASE
