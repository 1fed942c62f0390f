"""DIR/cohort.html: a self-contained cohort report (figures embedded as base64 PNG).

Grade distributions (steatosis 0-3, lobular inflammation 0-3, hepatocyte ballooning 0-2, and the
NAS-related sum 0-8; bands of the NASH CRN score, "Design and validation of a histological scoring
system for nonalcoholic fatty liver disease", Kleiner et al. 2005), a histogram of steatosis % of
tissue area, the failures with their reasons, and the per-slide table. Made with matplotlib
(Agg, no display needed).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from lobule.core.atomic import atomic_write

GRADES = (  # (cohort.csv column, title, highest grade)
    ("steatosis_grade", "Steatosis", 3),
    ("inflammation_grade", "Lobular inflammation", 3),
    ("ballooning_grade", "Hepatocyte ballooning", 2),
    ("nas_sum", "NAS-related sum", 8),
)
_TABLE_COLUMNS = ("case", "region", "tissue_mm2", "steatosis_percent", "foci_per_200x_field",
                  "ballooned_per_200x_field", "steatosis_grade", "inflammation_grade", "ballooning_grade",
                  "nas_sum", "qc_flags", "seconds", "status")  # reasons of failures: their own table


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def grade_figure(rows: list[dict]):
    """Bar charts of the number of regions at each grade (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.2), layout="constrained")
    for axes, (column, title, top) in zip(figure.subplots(1, len(GRADES)), GRADES):
        grades = [int(row[column]) for row in rows if row.get(column) not in (None, "")]
        counts = [grades.count(g) for g in range(top + 1)]
        axes.bar(range(top + 1), counts, color="#4c72b0")
        axes.set_xticks(range(top + 1))
        axes.set_title(title)
        axes.set_xlabel("grade (derived estimate)")
        axes.set_ylabel("slides")
        axes.yaxis.get_major_locator().set_params(integer=True)
    return figure


def steatosis_figure(rows: list[dict]):
    """Histogram of steatosis (% of tissue area), with the grade band edges 5, 33 and 66 %."""
    from matplotlib.figure import Figure

    values = [float(row["steatosis_percent"]) for row in rows if row.get("steatosis_percent") not in (None, "")]
    figure = Figure(figsize=(7, 3.2), layout="constrained")
    axes = figure.subplots()
    axes.hist(values, bins=[i * 2.5 for i in range(41)], color="#dd8452", edgecolor="white")
    for edge in (5, 33, 66):
        axes.axvline(edge, color="grey", linestyle="--", linewidth=1)
    axes.set_xlim(0, 100)
    axes.set_xlabel("steatosis: lipid-droplet area, % of tissue area")
    axes.set_ylabel("slides")
    axes.set_title(f"Steatosis ({len(values)} regions; dashed: grade bands 5 / 33 / 66 %)")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return figure


def _cell(value) -> str:
    if isinstance(value, str) and "." in value:  # numbers read back from cohort.csv
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def write_cohort_html(path: Path, rows: list[dict], *, title: str = "Lobule cohort") -> None:
    """Write the report atomically.

    Parameters
    ----------
    path : the .html file.
    rows : cohort.csv rows (dicts keyed by ``lobule.inference.batch.table.COLUMNS``).
    """
    ok = [row for row in rows if row.get("status") == "ok"]
    failed = [row for row in rows if row.get("status") != "ok"]
    cases = len({row["case"] for row in rows})
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}td.t,th{text-align:left}"
        "img{max-width:100%}.fail{color:#b00}td.fail{white-space:normal}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{cases} slides: {len({r['case'] for r in ok})} analysed, "
        f"<span class='fail'>{len(failed)} not analysed</span>. Grades are derived estimates from the "
        "class map, not pathologists' scores.</p>",
    ]
    if ok:
        parts += ["<h2>Grade distributions</h2>", f"<img alt='grade distributions' src='data:image/png;base64,"
                  f"{_png(grade_figure(ok))}'>",
                  "<h2>Steatosis</h2>", f"<img alt='steatosis histogram' src='data:image/png;base64,"
                  f"{_png(steatosis_figure(ok))}'>"]
    if failed:
        parts.append("<h2>Not analysed</h2><table><tr><th>case</th><th>slide</th><th>status</th><th>reason</th></tr>")
        parts += [f"<tr><td class='t'>{_cell(r['case'])}</td><td class='t'>{_cell(r['slide'])}</td>"
                  f"<td class='t'>{_cell(r['status'])}</td><td class='t fail'>{_cell(r.get('error'))}</td></tr>"
                  for r in failed]
        parts.append("</table>")
    parts.append("<h2>Slides</h2><table><tr>" + "".join(f"<th>{c}</th>" for c in _TABLE_COLUMNS) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(
            f"<td class='{'t' if c in ('case', 'region', 'qc_flags', 'status') else ''}'>"
            f"{_cell(row.get(c))}</td>" for c in _TABLE_COLUMNS) + "</tr>")
    parts.append("</table></body></html>\n")
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(parts))
