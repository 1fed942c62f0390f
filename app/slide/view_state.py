"""Where the slide view looks: centre and zoom, and the level-0 <-> widget transforms (no Qt).

Units: level-0 pixels of the slide for positions; ``scale`` is widget (logical) pixels per
level-0 pixel; ``downsample`` is level-0 pixels per *device* pixel, the quantity pyramid levels
are chosen from (a HiDPI screen with device-pixel ratio 2 wants twice the detail).
"""
from __future__ import annotations

from dataclasses import dataclass

#: Equivalent objective magnification of 1 um/px, so that 40x ~ 0.25 um/px (the usual scanner
#: convention: 20x ~ 0.5 um/px).
MAGNIFICATION_TIMES_MPP = 10.0

#: Magnification buttons of the slide tab.
PRESET_MAGNIFICATIONS = (1.0, 5.0, 10.0, 20.0, 40.0)


def base_magnification(mpp: float | None, objective_power: float | None) -> float | None:
    """Magnification of the level-0 pixels shown 1:1: ``10 / mpp`` when mpp is known (so 40x ~
    0.25 um/px), else the scanner's objective power, else None (unknown)."""
    if mpp:
        return MAGNIFICATION_TIMES_MPP / mpp
    if objective_power:
        return float(objective_power)
    return None


@dataclass
class ViewState:
    """Centre and zoom of a view onto a slide of ``slide_size`` (level-0 width, height).

    ``center`` is the level-0 point shown at the middle of the widget.
    """

    slide_size: tuple[float, float] = (1.0, 1.0)
    widget_size: tuple[int, int] = (640, 480)
    center: tuple[float, float] = (0.5, 0.5)
    scale: float = 1.0
    device_pixel_ratio: float = 1.0
    max_scale: float = 8.0  # at most 8 screen pixels per level-0 pixel

    # --- transforms -------------------------------------------------------------------------
    def level0_to_widget(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.widget_size
        return (x - self.center[0]) * self.scale + w / 2, (y - self.center[1]) * self.scale + h / 2

    def widget_to_level0(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.widget_size
        return (x - w / 2) / self.scale + self.center[0], (y - h / 2) / self.scale + self.center[1]

    def visible_rect(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the level-0 area the widget shows (may extend past the slide)."""
        w, h = self.widget_size
        x0, y0 = self.widget_to_level0(0, 0)
        x1, y1 = self.widget_to_level0(w, h)
        return x0, y0, x1, y1

    @property
    def downsample(self) -> float:
        """Level-0 pixels per device pixel."""
        return 1.0 / (self.scale * self.device_pixel_ratio)

    # --- changes ----------------------------------------------------------------------------
    @property
    def fit_scale(self) -> float:
        """Scale at which the whole slide fits the widget with a small margin."""
        w, h = self.widget_size
        sw, sh = self.slide_size
        return 0.96 * min(max(w, 1) / sw, max(h, 1) / sh)

    @property
    def min_scale(self) -> float:
        return min(self.fit_scale / 2, self.max_scale)

    def fit(self) -> None:
        self.scale = self.fit_scale
        self.center = (self.slide_size[0] / 2, self.slide_size[1] / 2)

    def set_scale(self, scale: float, anchor: tuple[float, float] | None = None) -> None:
        """Zoom to ``scale`` keeping the level-0 point under widget point ``anchor`` (default: the
        widget centre) where it is."""
        scale = min(max(scale, self.min_scale), self.max_scale)
        if anchor is None:
            self.scale = scale
        else:
            before = self.widget_to_level0(*anchor)
            self.scale = scale
            after = self.widget_to_level0(*anchor)
            self.center = (self.center[0] + before[0] - after[0], self.center[1] + before[1] - after[1])
        self.clamp()

    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        self.set_scale(self.scale * factor, anchor)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the content by (dx, dy) widget pixels (dragging right shows what is to the left)."""
        self.center = (self.center[0] - dx / self.scale, self.center[1] - dy / self.scale)
        self.clamp()

    def center_on(self, x: float, y: float) -> None:
        self.center = (x, y)
        self.clamp()

    def clamp(self) -> None:
        """Keep part of the slide in view: the centre stays within the slide bounds."""
        sw, sh = self.slide_size
        self.center = (min(max(self.center[0], 0.0), sw), min(max(self.center[1], 0.0), sh))
