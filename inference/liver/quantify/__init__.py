"""NAS-related quantification of a class map per region (docs/nas.md).

``quantify(store, region, settings)`` -> :class:`RegionResult` (class areas, lipid droplets,
inflammatory foci, ballooning, derived grades); computed window by window with vectorised
counts, so it can be re-run whenever a region changes.
"""
from lobule.inference.liver.quantify.grades import DERIVED_NOTE, Grade
from lobule.inference.liver.quantify.measure import RegionResult, quantify
from lobule.inference.liver.quantify.settings import QuantSettings

__all__ = ["DERIVED_NOTE", "Grade", "QuantSettings", "RegionResult", "quantify"]
