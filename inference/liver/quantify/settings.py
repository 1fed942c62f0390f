"""Settings of the NAS-related quantification (docs/nas.md), every one stated in the exports."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from lobule.inference.errors import InputError


@dataclass(frozen=True)
class QuantSettings:
    """Thresholds and definitions used by :func:`~lobule.inference.liver.quantify.quantify`.

    Lengths in um, areas in um^2.

    Attributes
    ----------
    droplet_min_diameter_um : lipid-droplet components with a smaller equivalent diameter are
        not counted as droplets (their area still counts as steatosis). Default 3 um: about 6
        pixels across at the liver model's 0.5 um/px, below which a component is a fragment or
        speck the model cannot resolve as a droplet (the smallest expert-drawn ISBI droplets
        are about 5 um across; on the Polito validation patients the count error falls from
        18 to 14 droplets per tile against 1 um).
    droplet_glass_min_area_um2, droplet_max_axis_ratio, droplet_min_solidity : a lipid-class
        component touching a background area of at least this size (slide glass, a tear, a
        large lumen), or more elongated / less convex than these, is not a droplet and is
        neither counted nor part of the steatosis area
        (:mod:`lobule.inference.liver.quantify.droplet_rules`). An area of 0, a ratio of 1000 or a
        solidity of 0 turns that rule off.
    droplet_max_neck_ratio : when > 0, a component rejected for its shape is cut into droplets
        (watershed, :mod:`lobule.inference.liver.quantify.droplet_split`) and each droplet that
        passes the same shape bounds and meets its neighbours through necks summing at most this
        times its inscribed diameter is kept. Default 0 (off): on the Polito validation patients
        it let sinusoid pieces through (stage-2 weights: pooled Dice 0.334 -> 0.296 at 1.0) for little gain on
        ISBI training tiles (0.729 -> 0.732); docs/liver-model.md.
    macro_threshold_um : a droplet with equivalent diameter >= this is macrovesicular (larger
        than a nucleus, about 6-7 um; docs/nas.md), smaller ones microvesicular.
    nucleus_area_um2 : nominal area of one nucleus; a nucleus-class component of area A counts as
        max(1, round(A / nucleus_area_um2)) nuclei (touching nuclei form one component).
    nucleus_min_area_um2 : nucleus-class components smaller than this are noise, not nuclei.
    focus_min_nuclei : N, a focus is a cluster of at least N inflammatory nuclei (default 3).
    focus_distance_um : D, nuclei whose centres are within D belong to the same cluster
        (single linkage; default 20 um).
    field_number_mm : eyepiece field number FN (default 22 mm).
    objective_magnification : M of the reference "200x field" (20x objective, 10x eyepiece);
        field diameter = FN / M mm.
    ballooning_min_area_um2 : hydropic (class 5) components of at least this area are counted as
        ballooned hepatocytes (default 100 um^2).
    ballooning_min_width_um : and whose widest inscribed disc is at least this wide (twice the
        largest distance transform value inside the component), so that a brush stroke or a
        thin band narrower than a hepatocyte (20-30 um across; ballooned ones are larger) is not
        counted as a ballooned cell (default 25 um).
    grading_min_fields : per-field rates (inflammatory foci and ballooned cells per 200x field)
        and their grades are given only when the region holds at least this many 200x fields of
        tissue (default 1: one field, about 0.95 mm^2); smaller regions get counts and densities
        per mm^2 and "not graded". A rate extrapolated from a fraction of a field is not a grade.
    ballooning_many_per_field : ballooned cells per 200x field from which the ballooning grade is
        2 ("many"), below it 1 ("few"), none 0. A local threshold: Kleiner et al. give no number.
    steatosis_definition : which steatosis definition the grade uses (stated in exports).
    """

    droplet_min_diameter_um: float = 3.0
    droplet_glass_min_area_um2: float = 100000.0
    droplet_max_axis_ratio: float = 2.5
    droplet_min_solidity: float = 0.7
    droplet_max_neck_ratio: float = 0.0
    macro_threshold_um: float = 6.5
    nucleus_area_um2: float = 38.0
    nucleus_min_area_um2: float = 5.0
    focus_min_nuclei: int = 3
    focus_distance_um: float = 20.0
    field_number_mm: float = 22.0
    objective_magnification: float = 20.0
    ballooning_min_area_um2: float = 100.0
    ballooning_min_width_um: float = 25.0
    ballooning_many_per_field: float = 5.0
    grading_min_fields: float = 1.0
    steatosis_definition: str = "NASH CRN (Kleiner 2005) bands on lipid-droplet area / tissue area"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "int") and (not isinstance(value, (int, float)) or not math.isfinite(value)
                                               or value < 0):
                raise InputError(f"quantification setting {f.name} must be a number >= 0, got {value!r}")
        for name in ("nucleus_area_um2", "field_number_mm", "objective_magnification"):
            if getattr(self, name) <= 0:
                raise InputError(f"quantification setting {name} must be > 0")
        if self.droplet_min_solidity > 1 or self.droplet_max_axis_ratio < 1:
            raise InputError("droplet_min_solidity must be <= 1 and droplet_max_axis_ratio >= 1, got "
                             f"{self.droplet_min_solidity!r} and {self.droplet_max_axis_ratio!r}")
        if self.focus_min_nuclei < 1 or int(self.focus_min_nuclei) != self.focus_min_nuclei:
            raise InputError(f"focus_min_nuclei must be a whole number >= 1, got {self.focus_min_nuclei!r}")

    @property
    def field_area_mm2(self) -> float:
        """Area of one reference field: pi * (FN / M / 2)^2 mm^2 (about 0.95 for FN 22, 20x)."""
        diameter = self.field_number_mm / self.objective_magnification
        return math.pi * diameter * diameter / 4.0

    @property
    def grading_min_tissue_mm2(self) -> float:
        """Tissue area from which per-field rates are graded: ``grading_min_fields`` fields, mm^2."""
        return self.grading_min_fields * self.field_area_mm2

    def as_dict(self) -> dict:
        data = asdict(self)
        data["field_area_mm2"] = self.field_area_mm2
        data["grading_min_tissue_mm2"] = self.grading_min_tissue_mm2
        return data

    @classmethod
    def from_strings(cls, pairs: list[str]) -> "QuantSettings":
        """Settings from ``KEY=VALUE`` strings (the CLI's ``--set``).

        Raises
        ------
        InputError
            For an unknown key or a value of the wrong type.
        """
        known = {f.name: f for f in fields(cls)}
        values = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in known:
                raise InputError(f"unknown setting {pair!r}; known: {', '.join(known)}")
            kind = known[key].type
            try:
                values[key] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                raise InputError(f"setting {key} needs a {kind}, got {raw!r}") from None
        return cls(**values)
