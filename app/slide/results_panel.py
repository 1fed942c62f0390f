"""The numbers of one region: class composition chart, NAS-related measurements with their
derived grades, and the quantification settings (editable, stated).

Widgets only: the values come from a :class:`~lobule.inference.liver.quantify.RegionResult`; a
settings change is sent as ``settingsChanged(QuantSettings)``. pyqtgraph and the
quantification package (scipy) are imported when the first result or the settings are shown,
so the main window starts without them.
"""
from __future__ import annotations

from dataclasses import fields
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractScrollArea, QApplication, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from lobule.resources.classes import LIVER_CLASSES

SETTING_LABELS = {
    "droplet_min_diameter_um": ("Smallest droplet", " µm", "Lipid-droplet components with a smaller equivalent "
                                "diameter are label noise (their area still counts as steatosis)"),
    "macro_threshold_um": ("Macrovesicular from", " µm", "A droplet at least this wide (equivalent diameter) is "
                           "macrovesicular (larger than a nucleus, about 6-7 µm)"),
    "nucleus_area_um2": ("Nominal nucleus area", " µm²", "A nucleus-class component of area A counts as "
                         "max(1, round(A / this)) nuclei"),
    "nucleus_min_area_um2": ("Smallest nucleus", " µm²", "Smaller nucleus-class components are noise"),
    "focus_min_nuclei": ("Focus: at least N nuclei", "", "N: an inflammatory focus is a cluster of at least N "
                         "inflammatory nuclei"),
    "focus_distance_um": ("Focus: within D", " µm", "D: nuclei whose centres lie within D belong to the same "
                          "cluster (single linkage)"),
    "field_number_mm": ("Eyepiece field number", " mm", "FN: field diameter = FN / M mm"),
    "objective_magnification": ("Objective of the 200x field", "x", "M of the reference 200x field "
                                "(20x objective, 10x eyepiece)"),
    "ballooning_min_area_um2": ("Ballooned cell: at least", " µm²", "Hydropic components at least this large "
                                "count as ballooned hepatocytes"),
    "ballooning_many_per_field": ("Ballooning 'many' from", " /field", "Ballooned cells per 200x field from "
                                  "which the ballooning grade is 2 (local threshold: Kleiner et al. give none)"),
}


def _grade_text(grade) -> str:
    """A grade cell: the text as given, the grade number, or "–" when not graded."""
    if isinstance(grade, str):
        return grade
    return "–" if grade.grade is None else str(grade.grade)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _percent_of_tissue(area_um2: float | None, tissue_um2: float) -> float:
    """``area_um2`` as % of ``tissue_um2`` (0 without tissue or area)."""
    return 100.0 * area_um2 / tissue_um2 if area_um2 and tissue_um2 > 0 else 0.0


class CompositionChart(QWidget):
    """A horizontal pyqtgraph bar chart: % of tissue area per class, in the class colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        class StillPlot(pg.PlotWidget):
            def wheelEvent(self, event) -> None:  # noqa: N802 - the wheel scrolls the panel, not the chart
                area = self.parentWidget()
                while area is not None and not isinstance(area, QAbstractScrollArea):
                    area = area.parentWidget()
                if area is None:
                    event.ignore()
                    return
                QApplication.sendEvent(area.viewport(), event)
                event.accept()

        self.plot = StillPlot(background="w")
        self.plot.setFixedHeight(150)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "% of tissue area")
        classes = [c for c in LIVER_CLASSES if c.id != 0]
        self.classes = classes
        axis = self.plot.getAxis("left")
        axis.setTicks([[(i, c.key.replace("_", " ")) for i, c in enumerate(classes)]])
        axis.setWidth(136)  # room for the class names from the first frame
        self.plot.getViewBox().invertY(True)
        self.bars = pg.BarGraphItem(x0=[0] * len(classes), y=list(range(len(classes))), height=0.7,
                                    width=[0] * len(classes), brushes=[QColor(*c.colour) for c in classes],
                                    pens=[QColor(60, 60, 60)] * len(classes))
        self.plot.addItem(self.bars)
        self.plot.setYRange(-0.6, len(classes) - 0.4, padding=0)
        layout.addWidget(self.plot)

    def set_percentages(self, percent: dict[int, float]) -> None:
        """``percent`` class id -> % of tissue area."""
        widths = [float(percent.get(c.id) or 0.0) for c in self.classes]
        self.bars.setOpts(width=widths)
        self.plot.setXRange(0, max(10.0, max(widths) * 1.1), padding=0)

    def values(self) -> list[float]:
        return [float(w) for w in self.bars.opts["width"]]


class ResultsPanel(QWidget):
    """Numbers of the region shown.

    Signals
    -------
    settingsChanged(object) : the user applied new :class:`QuantSettings`.
    """

    settingsChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = None
        self.chart: CompositionChart | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("No numbers yet: analyse the slide")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self._chart_slot = QVBoxLayout()
        layout.addLayout(self._chart_slot)
        self.rows: list[tuple] = []
        self.table = QLabel()
        self.table.setTextFormat(Qt.TextFormat.RichText)
        self.table.setWordWrap(True)
        self.table.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.table)
        self.quality = QLabel("")
        self.quality.setWordWrap(True)
        layout.addWidget(self.quality)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #666; font-size: 9pt;")
        layout.addWidget(self.note)
        self.setting_fields: dict[str, QWidget] = {}
        self.settings_box = QGroupBox("Quantification settings (stated in every export)")
        self.settings_box.setCheckable(True)
        self.settings_box.setChecked(False)
        self.settings_box.toggled.connect(self._toggle_settings)
        QVBoxLayout(self.settings_box).setContentsMargins(4, 4, 4, 4)
        self._settings_form: QWidget | None = None
        self._shown_settings = None
        layout.addWidget(self.settings_box)
        self.set_result(None)

    # --- settings -----------------------------------------------------------------------------
    def _toggle_settings(self, shown: bool) -> None:
        if shown and self._settings_form is None:
            self._settings_form = self._build_settings()
            self.settings_box.layout().addWidget(self._settings_form)
        if self._settings_form is not None:
            self._settings_form.setVisible(shown)

    def _build_settings(self) -> QWidget:
        from lobule.inference.liver.quantify import QuantSettings

        form = QFormLayout()
        defaults = self._shown_settings or QuantSettings()
        for f in fields(QuantSettings):
            if f.name not in SETTING_LABELS:
                continue
            label, suffix, tip = SETTING_LABELS[f.name]
            value = getattr(defaults, f.name)
            if f.type == "int":
                field = QSpinBox()
                field.setRange(1, 1000)
            else:
                field = QDoubleSpinBox()
                field.setDecimals(2)
                field.setRange(0.0, 1e6)
            field.setValue(value)
            field.setSuffix(suffix)
            field.setToolTip(tip)
            form.addRow(label, field)
            self.setting_fields[f.name] = field
        self.field_area = QLabel()
        form.addRow("200x field area", self.field_area)
        self.definition = QLabel(defaults.steatosis_definition)
        self.definition.setWordWrap(True)
        form.addRow("Steatosis grade", self.definition)
        self.apply_button = QPushButton("Apply and measure again")
        self.apply_button.clicked.connect(self._apply)
        form.addRow(self.apply_button)
        inner = QWidget()
        inner.setLayout(form)
        self._settings_form = inner
        self.show_settings(defaults)
        return inner

    def show_settings(self, settings) -> None:
        """Put ``settings`` (QuantSettings) into the fields."""
        self._shown_settings = settings
        if self._settings_form is None:
            return
        for name, field in self.setting_fields.items():
            field.setValue(getattr(settings, name))
        self.field_area.setText(f"{settings.field_area_mm2:.3f} mm² (π (FN / M / 2)²)")
        self.definition.setText(settings.steatosis_definition)

    def current_settings(self):
        """QuantSettings from the fields. Raises InputError for values the settings refuse."""
        from lobule.inference.liver.quantify import QuantSettings

        if self._settings_form is None:
            return self._shown_settings or QuantSettings()
        values = {name: (int(field.value()) if isinstance(field, QSpinBox) else float(field.value()))
                  for name, field in self.setting_fields.items()}
        return QuantSettings(**values)

    def _apply(self) -> None:
        from lobule.app.common.errors import error_message, show_error

        try:
            settings = self.current_settings()
        except Exception as error:  # noqa: BLE001 - InputError: shown in one line
            show_error(self, "Invalid setting", error_message(error))
            return
        self.show_settings(settings)
        self.settingsChanged.emit(settings)

    # --- numbers ------------------------------------------------------------------------------
    def set_quality(self, quality: dict | None) -> None:
        """Show the slide's quality check (:mod:`lobule.inference.liver.quality`): a green line when it
        looks like the training data, else each flag in red; nothing while unknown (None)."""
        if quality is None:
            self.quality.setText("")
            return
        if quality.get("ok"):
            self.quality.setStyleSheet("color: #1a7f37;")
            self.quality.setText("Slide check: stain, lipid droplets and tissue mix look like the training data.")
            return
        self.quality.setStyleSheet("color: #b42318;")
        self.quality.setText("Slide check: the numbers may be wrong. " +
                             " ".join(f"{flag['message'][0].upper()}{flag['message'][1:]}." for flag in quality["flags"]))

    def set_pending(self, name: str) -> None:
        """The region ``name`` is being measured."""
        self.title.setText(f"<b>{name}</b>: measuring...")

    def set_result(self, result, name: str | None = None) -> None:
        """Show ``result`` (a RegionResult), or nothing (None: ``name`` has no numbers yet)."""
        self.result = result
        if result is None:
            self.rows = []
            self.title.setText(f"<b>{name}</b>: measuring..." if name else "No numbers yet: analyse the slide")
            self.table.setText("")
            if self.chart is not None:
                self.chart.set_percentages({})
            return
        if self.chart is None:
            from lobule.inference.liver.quantify import DERIVED_NOTE

            self.chart = CompositionChart()
            self._chart_slot.addWidget(self.chart)
            self._derived_note = DERIVED_NOTE
        st = result.settings
        self.note.setText(
            f"Settings: droplets macrovesicular from {st.macro_threshold_um:g} µm; a focus is ≥ {st.focus_min_nuclei} "
            f"inflammatory nuclei within {st.focus_distance_um:g} µm; 200x field {st.field_area_mm2:.3f} mm² "
            f"(FN {st.field_number_mm:g} / {st.objective_magnification:g}x), rates per field graded from "
            f"{st.grading_min_tissue_mm2:.3g} mm² of tissue; ballooned cell ≥ "
            f"{st.ballooning_min_area_um2:g} µm² and {st.ballooning_min_width_um:g} µm wide, 'many' from {st.ballooning_many_per_field:g} per field. "
            f"Grades are {self._derived_note}.")
        self.chart.set_percentages({row["id"]: row["percent_of_tissue"] for row in result.classes})
        self.title.setText(f"<b>{result.name}</b>: region {result.region_area_um2 / 1e6:.4g} mm², "
                           f"tissue {result.tissue_area_mm2:.4g} mm² (label pixels {result.mpp:.3g} µm)")
        from lobule.inference.liver.quantify.grades import NOT_GRADED

        grades = {g.component: g for g in result.grades}
        d, infl, bal = result.droplets, result.inflammation, result.ballooning
        per_field = infl["foci_per_200x_field"] is not None
        nas = result.nas
        self.rows = [
            ("Steatosis", f"{d['percent_of_tissue']:.2f} % of tissue", grades.get("steatosis")),
            ("lipid droplets, macro / micro",
             f"{_fmt(d['droplet_count'])}, {_fmt(d['macro_count'])} / {_fmt(d['micro_count'])}", None),
            # the chart's lipid bar is the class; the steatosis % counts only what the droplet rules accept
            ("lipid class not counted (glass, tears, sinusoids)",
             f"{_percent_of_tissue(d.get('excluded_lipid_class_area_um2'), result.tissue_area_um2):.2f} % of tissue",
             None),
            ("Lobular inflammation", f"{infl['foci_per_200x_field']:.2f} foci / 200x field" if per_field
             else f"{infl['foci_per_mm2']:.3g} foci / mm²", grades.get("lobular inflammation")),
            ("inflammatory foci", f"{_fmt(infl['foci_count'])} ({infl['foci_per_mm2']:.3g} / mm²)", None),
            ("Hepatocyte ballooning", f"{bal['per_200x_field']:.2f} cells / 200x field" if per_field
             else f"{bal['per_mm2']:.3g} cells / mm²", grades.get("hepatocyte ballooning")),
            ("ballooned cells", f"{_fmt(bal['count'])} ({bal['percent_of_tissue']:.2f} % of tissue)", None),
            ("NAS-related sum", "derived estimate" if nas["grade"] is not None else "not graded",
             f"{nas['grade']} / 8" if nas["grade"] is not None else "–"),
        ]
        if not per_field:
            self.rows.append((f"{NOT_GRADED} ({result.tissue_area_mm2:.3g} mm² of tissue < "
                              f"{st.grading_min_tissue_mm2:.3g} mm²)", "", None))
        html = ["<table width='100%' cellspacing='0' cellpadding='2'>",
                "<tr><th align='left'>Measure</th><th align='right'>Value</th><th>Grade</th></tr>"]
        for label, value, grade in self.rows:
            if grade is None:
                html.append(f"<tr><td style='color:#444'>&nbsp;&nbsp;{escape(label)}</td>"
                            f"<td align='right' style='color:#444'>{escape(value)}</td><td></td></tr>")
                continue
            grade_text = _grade_text(grade)
            html.append(f"<tr><td><b>{escape(label)}</b></td><td align='right'>{escape(value)}</td>"
                        f"<td align='center'><b>{escape(grade_text)}</b></td></tr>")
            if not isinstance(grade, str):
                why = (f"grade {grade.grade} from {grade.value:.3g} {escape(grade.unit)}; {escape(grade.rule)}"
                       if grade.grade is not None else escape(grade.note))
                html.append(f"<tr><td colspan='3' style='color:#777; font-size:8pt'>&nbsp;&nbsp;{why}</td></tr>")
        html.append("</table>")
        self.table.setText("".join(html))

    def row_texts(self) -> list[tuple[str, str, str]]:
        """The numbers shown as text: (measure, value, grade) per row."""
        return [(label, value, "" if grade is None else _grade_text(grade)) for label, value, grade in self.rows]
