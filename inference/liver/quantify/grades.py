"""NAS-related grades derived from measured values (docs/nas.md; Kleiner et al., Hepatology 2005).

These are derived estimates, not a pathologist's score: the steatosis grade applies the NASH
CRN bands to an area fraction, the lobular-inflammation grade applies the CRN bands to an
automatic focus count, and the ballooning grade uses local, stated thresholds (Kleiner gives
none). Each grade carries the value it came from and the rule applied, so it can be checked
and overridden.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from lobule.inference.liver.quantify.settings import QuantSettings

DERIVED_NOTE = "derived estimate from the class map; not validated against pathologists' scores"
NOT_GRADED = "not graded: region smaller than one 200x field"


@dataclass(frozen=True)
class Grade:
    """One component's grade (None: not graded, ``note`` says why) and the value it came from."""

    component: str
    grade: int | None
    value: float | None
    unit: str
    rule: str
    note: str = DERIVED_NOTE

    def as_dict(self) -> dict:
        return asdict(self)


def steatosis_grade(percent: float) -> Grade:
    """0: < 5 %, 1: 5-33 %, 2: > 33-66 %, 3: > 66 % (NASH CRN bands)."""
    grade = 0 if percent < 5 else 1 if percent <= 33 else 2 if percent <= 66 else 3
    return Grade("steatosis", grade, percent, "% of tissue area (lipid droplets)",
                 "0: <5 %, 1: 5-33 %, 2: >33-66 %, 3: >66 % (NASH CRN)")


def inflammation_grade(foci_per_field: float) -> Grade:
    """0: no foci, 1: < 2, 2: 2-4, 3: > 4 foci per 200x field (NASH CRN)."""
    f = foci_per_field
    grade = 0 if f <= 0 else 1 if f < 2 else 2 if f <= 4 else 3
    return Grade("lobular inflammation", grade, f, "foci per 200x field",
                 "0: none, 1: <2, 2: 2-4, 3: >4 foci per 200x field (NASH CRN)")


def ballooning_grade(count: int, per_field: float, settings: QuantSettings) -> Grade:
    """0: none, 1: few (< ``ballooning_many_per_field`` per 200x field), 2: many."""
    many = settings.ballooning_many_per_field
    grade = 0 if count == 0 else 1 if per_field < many else 2
    return Grade("hepatocyte ballooning", grade, per_field, "ballooned cells per 200x field",
                 f"0: none, 1: few (< {many:g} per 200x field), 2: many (>= {many:g}); local threshold, "
                 "Kleiner et al. give no number")


def not_graded(component: str, unit: str, rule: str, tissue_mm2: float, settings: QuantSettings) -> Grade:
    """A per-field component of a region with too little tissue for a rate per 200x field."""
    fields = settings.grading_min_fields
    need = f"one 200x field ({settings.field_area_mm2:.3g} mm^2)" if fields == 1 else \
        f"{fields:g} 200x fields ({settings.grading_min_tissue_mm2:.3g} mm^2)"
    return Grade(component, None, None, unit, rule,
                 f"{NOT_GRADED}: {tissue_mm2:.3g} mm^2 of tissue, grading needs {need}")


def nas_sum(grades: list[Grade]) -> dict:
    """The unweighted sum of the three grades (0-8); None when a component is not graded."""
    missing = [g for g in grades if g.grade is None]
    return {"component": "NAS (sum)",
            "grade": None if missing else int(sum(g.grade for g in grades)),
            "parts": {g.component: g.grade for g in grades},
            "note": missing[0].note if missing else DERIVED_NOTE}
