"""The editing tool state of the Slide tab (current tool, class, brush size), without Qt.

The GUI's tool buttons, class buttons, brush-size field and cursor preview all read and set one
:class:`ToolState`; its ``changed`` event keeps them in step. :data:`SHORTCUTS` is the default
key map (Qt key sequences as strings), kept here so that the GUI, its help text and the
documentation agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from lobule.inference.annotations.events import Event
from lobule.inference.errors import InputError
from lobule.resources.classes import LIVER_CLASSES

TOOLS = ("brush", "eraser", "polygon", "flood_fill", "magic_wand", "region")
"""Editing tools: class brush, eraser (restores the model's output), polygon fill, flood fill
(same class, bounded), magic wand (similar colour, bounded), region drawing."""
MIN_RADIUS_UM, MAX_RADIUS_UM = 0.5, 500.0

SHORTCUTS: dict[str, str] = {
    "B": "tool:brush",
    "E": "tool:eraser",
    "P": "tool:polygon",
    "F": "tool:flood_fill",
    "W": "tool:magic_wand",
    "R": "tool:region",
    "[": "radius:smaller",
    "]": "radius:larger",
    "Ctrl+Z": "undo",
    "Ctrl+Shift+Z": "redo",
    "Ctrl+Y": "redo",
    "Ctrl+S": "save",
    "Esc": "cancel stroke",
    **{str(c.id): f"class:{c.id}" for c in LIVER_CLASSES},
}
"""Key -> action; ``0``-``6`` pick the class with that id (LIVER_CLASSES)."""


@dataclass(frozen=True)
class ToolSettings:
    """One snapshot of the tool state.

    Attributes
    ----------
    tool : one of :data:`TOOLS`.
    class_id : class the brush, polygon and fills paint.
    radius_um : brush and eraser radius in micrometres.
    fill_radius_um : half-side of the square that bounds flood fill and magic wand.
    tolerance : magic wand colour tolerance (CIELAB Delta E).
    """

    tool: str = "brush"
    class_id: int = 4
    radius_um: float = 10.0
    fill_radius_um: float = 100.0
    tolerance: float = 10.0


@dataclass
class ToolState:
    """Observable :class:`ToolSettings`; ``changed(settings)`` fires after every change."""

    settings: ToolSettings = field(default_factory=ToolSettings)
    changed: Event = field(default_factory=Event, repr=False)

    def set(self, **changes) -> ToolSettings:
        """Change some fields (validated); returns the new settings.

        Raises
        ------
        InputError
            For an unknown tool or class, or a radius outside [0.5, 500] um.
        """
        new = replace(self.settings, **changes)
        if new.tool not in TOOLS:
            raise InputError(f"unknown tool {new.tool!r}; tools: {', '.join(TOOLS)}")
        if new.class_id not in {c.id for c in LIVER_CLASSES}:
            raise InputError(f"unknown class id {new.class_id}")
        if not MIN_RADIUS_UM <= new.radius_um <= MAX_RADIUS_UM:
            raise InputError(f"brush radius must be in [{MIN_RADIUS_UM}, {MAX_RADIUS_UM}] um, got {new.radius_um}")
        if new != self.settings:
            self.settings = new
            self.changed.emit(new)
        return new

    def action(self, name: str) -> ToolSettings:
        """Apply a tool/class/radius action of :data:`SHORTCUTS` (``"tool:eraser"``,
        ``"class:3"``, ``"radius:larger"``: x 1.25); other actions belong to the session."""
        kind, _, value = name.partition(":")
        if kind == "tool":
            return self.set(tool=value)
        if kind == "class":
            return self.set(class_id=int(value))
        if kind == "radius":
            factor = 1.25 if value == "larger" else 0.8
            radius = min(MAX_RADIUS_UM, max(MIN_RADIUS_UM, self.settings.radius_um * factor))
            return self.set(radius_um=round(radius, 2))
        raise InputError(f"{name!r} is not a tool, class or radius action")
