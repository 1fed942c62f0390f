"""The scale bar drawn in a corner of the slide view."""
from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

_NICE = (1.0, 2.0, 5.0)


def nice_length_um(um_per_widget_px: float, target_px: float = 140.0) -> float:
    """The longest 1/2/5 x 10^k micrometre length whose bar is at most ``target_px`` widget
    pixels long (and at least a third of that)."""
    if not um_per_widget_px > 0:
        raise ValueError("um_per_widget_px must be positive")
    limit = um_per_widget_px * target_px
    exponent = math.floor(math.log10(limit))
    best = 10.0 ** exponent
    for mantissa in _NICE:
        value = mantissa * 10.0 ** exponent
        if value <= limit * 1.0001:
            best = value
    return best


def format_length_um(um: float) -> str:
    """``"250 µm"``, ``"2 mm"``, ``"0.5 µm"``."""
    if um >= 1000:
        mm = um / 1000
        return f"{mm:g} mm"
    return f"{um:g} µm"


def paint_scale_bar(painter: QPainter, bounds: QRectF, mpp: float | None, scale: float) -> None:
    """Draw a scale bar at the bottom-left of ``bounds`` (widget pixels).

    Parameters
    ----------
    mpp : micrometres per level-0 pixel, or None (then the bar says the scale is unknown).
    scale : widget pixels per level-0 pixel.
    """
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont(painter.font())
    font.setPointSizeF(9.0)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    margin, pad = 12.0, 6.0
    if mpp:
        length_um = nice_length_um(mpp / scale)
        bar_px = length_um / (mpp / scale)
        text = format_length_um(length_um)
    else:
        bar_px, text = 0.0, "scale unknown: set the pixel size (mpp)"
    text_w = metrics.horizontalAdvance(text)
    box_w = max(bar_px, text_w) + 2 * pad
    box_h = metrics.height() + (10 if mpp else 0) + 2 * pad
    box = QRectF(bounds.left() + margin, bounds.bottom() - margin - box_h, box_w, box_h)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255, 210))
    painter.drawRoundedRect(box, 4, 4)
    painter.setPen(QColor(20, 20, 20))
    painter.drawText(QRectF(box.left(), box.top() + pad - 1, box_w, metrics.height()),
                     Qt.AlignmentFlag.AlignHCenter, text)
    if mpp:
        y = box.bottom() - pad - 4
        x0 = box.left() + (box_w - bar_px) / 2
        painter.setBrush(QColor(20, 20, 20))
        painter.drawRect(QRectF(x0, y, bar_px, 4))
        painter.drawRect(QRectF(x0, y - 4, 1.5, 8))
        painter.drawRect(QRectF(x0 + bar_px - 1.5, y - 4, 1.5, 8))
    painter.restore()
