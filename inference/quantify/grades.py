"""NAS-related grades derived from measured values (NAS.md; Kleiner et al., Hepatology 2005).

These are derived estimates, not a pathologist's score: the steatosis grade applies the NASH
CRN bands to an area fraction, the lobular-inflammation grade applies the CRN bands to an
automatic focus count, and the ballooning grade uses local, stated thresholds (Kleiner gives
none). Each grade carries the value it came from and the rule applied, so it can be checked
and overridden.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from lobule.inference.quantify.settings import QuantSettings

DERIVED_NOTE = "derived estimate from the class map; not validated against pathologists' scores"


@dataclass(frozen=True)
class Grade:
    component: str
    grade: int
    value: float
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


def nas_sum(grades: list[Grade]) -> dict:
    """The unweighted sum of the three grades (0-8)."""
    return {"component": "NAS (sum)", "grade": int(sum(g.grade for g in grades)),
            "parts": {g.component: g.grade for g in grades}, "note": DERIVED_NOTE}
